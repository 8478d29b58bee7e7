"""Report text for a synth-cxr study from a phrase grammar, as a plan of labelled sentences.

:func:`plan_report` turns :class:`StudyFindings` into a list of :class:`Statement` (sentence text
plus the CheXpert observations it mentions); :func:`report_text` joins them. The grammar has
several phrasings per finding with side, lobe and severity words, negates *some* absent findings
("No pleural effusion or pneumothorax."), words some findings as uncertain ("cannot be
excluded", "possible", "may represent"), uses normal templates ("The heart size and mediastinal
contours are within normal limits.") and varies sentence order. Reports read like IU-Xray
findings (mean about 30 words). Every sentence has one polarity: positive, negated or uncertain.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from uarbench.data.synth.findings import (
    Atelectasis, Devices, Edema, Effusion, Fracture, Nodule, Opacity, PleuralThickening,
    Pneumothorax, Statement, StudyFindings,
)

CM, EC, LO, LL, ED, CO, PN, AT, PX, PE, PO, FR, SD = (
    "Cardiomegaly", "Enlarged Cardiomediastinum", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices")


def _st(text: str, **mentions: int) -> Statement:
    """A sentence: capitalised, one period; mentions given by short code (CM=1, PE=0...)."""
    text = text.strip()
    text = text[0].upper() + text[1:]
    if not text.endswith("."):
        text += "."
    names = {"CM": CM, "EC": EC, "LO": LO, "LL": LL, "ED": ED, "CO": CO, "PN": PN, "AT": AT,
             "PX": PX, "PE": PE, "PO": PO, "FR": FR, "SD": SD}
    return Statement(text, tuple((names[k], v) for k, v in mentions.items()))


class _Pick:
    """Random choices from one generator (the study's grammar stream)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def one(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def shuffle(self, items: list) -> list:
        order = self.rng.permutation(len(items))
        return [items[i] for i in order]


class _Template(_Pick):
    """The structured-reporting style: the first phrasing of every statement, a chance taken
    when it is at least even, sections in their fixed order. The report is then a function of
    the findings alone, as with a structured-reporting template: every word a model must learn
    is explained by the image."""

    def one(self, options: Sequence):
        return options[0]

    def chance(self, p: float) -> bool:
        return p >= 0.5

    def shuffle(self, items: list) -> list:
        return list(items)


REPORT_STYLES = {"varied": _Pick, "structured": _Template}


def lobe_name(side: str, lobe: str) -> str:
    if lobe == "middle":
        return "right middle lobe" if side == "right" else "lingula"
    return f"{side} {lobe} lobe"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _heart_severity(ctr: float) -> str:
    return "mild" if ctr < 0.59 else ("moderate" if ctr < 0.63 else "marked")


_ADVERB = {"mild": "mildly", "moderate": "moderately", "marked": "markedly"}


# --- per-finding sentences --------------------------------------------------------------------
def _heart(f: StudyFindings, pk: _Pick) -> list[Statement]:
    out: list[Statement] = []
    ec_said = False
    if f.heart == "enlarged":
        sev = _heart_severity(f.ctr)
        out.append(pk.one((
            _st(f"the heart is {_ADVERB[sev]} enlarged", CM=1),
            _st(f"{sev} cardiomegaly", CM=1),
            _st(f"there is {sev} cardiomegaly", CM=1),
            _st(f"the cardiac silhouette is {_ADVERB[sev]} enlarged", CM=1),
            _st(f"{sev} enlargement of the cardiac silhouette", CM=1),
            _st("cardiomegaly is present", CM=1),
        )))
    elif f.heart == "borderline":
        out.append(pk.one((
            _st("the heart size is borderline enlarged", CM=-1),
            _st("borderline cardiomegaly", CM=-1),
            _st("possible mild cardiomegaly", CM=-1),
            _st("the heart is possibly mildly enlarged", CM=-1),
        )))
    elif pk.chance(0.92):
        if not f.enlarged_mediastinum and pk.chance(0.45):
            out.append(pk.one((
                _st("the heart size and mediastinal contours are within normal limits", CM=0, EC=0),
                _st("normal heart size and mediastinal contours", CM=0, EC=0),
                _st("heart size and mediastinal contours are normal", CM=0, EC=0),
                _st("the heart and mediastinum are within normal limits", CM=0, EC=0),
            )))
            ec_said = True
        else:
            out.append(pk.one((
                _st("the heart is normal in size", CM=0),
                _st("heart size is normal", CM=0),
                _st("the cardiac silhouette is normal in size", CM=0),
                _st("heart size and pulmonary vascularity are within normal limits", CM=0),
                _st("the heart size is within normal limits", CM=0),
            )))
    if f.enlarged_mediastinum:
        out.append(pk.one((
            _st("the mediastinum is widened", EC=1),
            _st("the cardiomediastinal silhouette is enlarged", EC=1),
            _st("there is widening of the superior mediastinum", EC=1),
            _st("the mediastinal contours are prominent", EC=1),
        )))
    elif not ec_said and pk.chance(0.5):
        out.append(pk.one((
            _st("the mediastinum is unremarkable", EC=0),
            _st("mediastinal contours are normal", EC=0),
            _st("the mediastinal contours are within normal limits", EC=0),
            _st("the cardiomediastinal silhouette is within normal limits", EC=0),
        )))
    return out


def _opacity(o: Opacity, pk: _Pick) -> list[Statement]:
    lobe = lobe_name(o.side, o.lobe)
    out: list[Statement] = []
    if o.kind == "consolidation" and o.pneumonia == "present":
        out.append(pk.one((
            _st(f"there is {lobe} consolidation consistent with pneumonia", CO=1, PN=1),
            _st(f"{lobe} consolidation, compatible with pneumonia", CO=1, PN=1),
            _st(f"focal airspace consolidation in the {lobe} is consistent with pneumonia",
                CO=1, PN=1),
            _st(f"there is {lobe} pneumonia", PN=1),
        )))
        return out
    if o.kind == "consolidation":
        out.append(pk.one((
            _st(f"there is a {lobe} consolidation", CO=1),
            _st(f"{lobe} consolidation is present", CO=1),
            _st(f"focal consolidation in the {lobe}", CO=1),
            _st(f"there is airspace consolidation in the {lobe}", CO=1),
        )))
    else:
        where = f"the {o.side} lung base" if o.lobe == "lower" else f"the {lobe}"
        out.append(pk.one((
            _st(f"there is a faint opacity in the {lobe}", LO=1),
            _st(f"patchy airspace opacity in {where}", LO=1),
            _st(f"hazy opacity in the {lobe}", LO=1),
            _st(f"there is mild patchy opacity in {where}", LO=1),
        )))
    if o.pneumonia == "possible":
        out.append(pk.one((
            _st("this may represent pneumonia", PN=-1),
            _st("pneumonia cannot be excluded", PN=-1),
            _st("findings may reflect pneumonia", PN=-1),
            _st("infection cannot be excluded", PN=-1),
        )))
    return out


def _atelectasis(a: Atelectasis, pk: _Pick) -> Statement:
    kind = pk.one(("linear", "subsegmental") if a.form == "linear" else ("plate-like", "discoid"))
    base = "bibasilar" if a.side == "bilateral" else f"{a.side} basilar"
    at_base = "both lung bases" if a.side == "bilateral" else f"the {a.side} lung base"
    if a.uncertain:
        return pk.one((
            _st(f"possible {base} atelectasis", AT=-1),
            _st(f"minimal {base} atelectasis is possible", AT=-1),
            _st(f"questionable {kind} atelectasis at {at_base}", AT=-1),
        ))
    return pk.one((
        _st(f"{kind} atelectasis at {at_base}", AT=1),
        _st(f"there is {kind} {base} atelectasis", AT=1),
        _st(f"{base} {kind} atelectasis", AT=1),
        _st(f"{kind} atelectasis is present at {at_base}", AT=1),
    ))


def _pneumothorax(p: Pneumothorax, pk: _Pick) -> Statement:
    return pk.one((
        _st(f"there is a {p.size} {p.side} apical pneumothorax", PX=1),
        _st(f"{p.size} {p.side} pneumothorax with a visible pleural line at the apex", PX=1),
        _st(f"a {p.size} {p.side}-sided pneumothorax is present", PX=1),
        _st(f"{p.size} {p.side} apical pneumothorax", PX=1),
    ))


def _edema(e: Edema, pk: _Pick) -> Statement:
    if e.uncertain:
        return pk.one((
            _st("possible mild interstitial edema", ED=-1),
            _st("mild perihilar haziness may represent early edema", ED=-1),
            _st("questionable mild pulmonary edema", ED=-1),
        ))
    s = e.severity
    return pk.one((
        _st(f"{s} pulmonary edema", ED=1),
        _st(f"there is {s} interstitial pulmonary edema", ED=1),
        _st(f"bilateral perihilar haziness, consistent with {s} pulmonary edema", ED=1),
        _st(f"{s} pulmonary vascular congestion and interstitial edema", ED=1),
        _st(f"findings are consistent with {s} pulmonary edema", ED=1),
    ))


def _nodule(n: Nodule, pk: _Pick) -> Statement:
    zone = pk.one({"upper": (f"{n.side} upper lung zone", f"{n.side} upper lobe"),
                   "mid": (f"{n.side} midlung zone", f"{n.side} mid lung"),
                   "lower": (f"{n.side} lower lung zone", f"{n.side} lung base")}[n.zone])
    word = "mass" if n.size_mm >= 22 and pk.chance(0.5) else "nodule"
    return pk.one((
        _st(f"there is a {n.size_mm} mm {word} in the {zone}", LL=1),
        _st(f"a {n.size_mm} mm pulmonary {word} projects over the {zone}", LL=1),
        _st(f"in the {zone}, there is a {n.size_mm} mm {word}", LL=1),
        _st(f"{zone} {word} measuring {n.size_mm} mm", LL=1),
    ))


def _fracture(fr: Fracture, pk: _Pick) -> Statement:
    names = [_ordinal(r) for r in fr.ribs]
    if len(names) == 1:
        return pk.one((
            _st(f"there is a fracture of the {fr.side} {names[0]} rib", FR=1),
            _st(f"acute fracture of the lateral {fr.side} {names[0]} rib", FR=1),
            _st(f"{fr.side} {names[0]} rib fracture", FR=1),
        ))
    ribs = ", ".join(names[:-1]) + f" and {names[-1]}"
    return pk.one((
        _st(f"there are fractures of the {fr.side} {ribs} ribs", FR=1),
        _st(f"acute {fr.side} {ribs} rib fractures", FR=1),
        _st(f"{fr.side} lateral {ribs} rib fractures", FR=1),
    ))


def _thickening(t: PleuralThickening, pk: _Pick) -> Statement:
    if t.site == "apical":
        return pk.one((_st(f"{t.side} apical pleural thickening", PO=1),
                       _st(f"mild {t.side} apical pleural thickening", PO=1),
                       _st(f"there is {t.side} apical pleural thickening", PO=1)))
    return pk.one((_st(f"there is {t.side} lateral pleural thickening", PO=1),
                   _st(f"pleural thickening along the {t.side} lateral chest wall", PO=1)))


def _effusion(e: Effusion, pk: _Pick) -> Statement:
    if e.side == "bilateral":
        if e.uncertain:
            return pk.one((
                _st("blunting of both costophrenic angles may represent small effusions", PE=-1),
                _st("possible trace bilateral pleural effusions", PE=-1),
                _st("trace bilateral pleural effusions cannot be excluded", PE=-1),
            ))
        return pk.one((
            _st(f"there are {e.size} bilateral pleural effusions", PE=1),
            _st(f"{e.size} bilateral pleural effusions", PE=1),
            _st(f"bilateral {e.size} pleural effusions are present", PE=1),
        ))
    if e.uncertain:
        return pk.one((
            _st(f"blunting of the {e.side} costophrenic angle may represent a small effusion",
                PE=-1),
            _st(f"possible trace {e.side} pleural effusion", PE=-1),
            _st(f"trace {e.side} pleural effusion cannot be excluded", PE=-1),
        ))
    options = [
        _st(f"there is a {e.size} {e.side} pleural effusion", PE=1),
        _st(f"{e.size} {e.side} pleural effusion", PE=1),
        _st(f"a {e.size} {e.side} pleural effusion is present", PE=1),
    ]
    if e.size == "small":
        options.append(_st(f"blunting of the {e.side} costophrenic angle, consistent with a "
                           "small pleural effusion", PE=1))
    else:
        options.append(_st(f"{e.size} {e.side} pleural effusion with a meniscus along the "
                           "lateral chest wall", PE=1))
    return pk.one(options)


def _devices(d: Devices, pk: _Pick) -> list[Statement]:
    out = []
    if d.ett_cm is not None:
        cm = d.ett_cm
        out.append(pk.one((
            _st(f"an endotracheal tube terminates {cm} cm above the carina", SD=1),
            _st(f"the endotracheal tube tip is {cm} cm above the carina", SD=1),
            _st(f"endotracheal tube in standard position, {cm} cm above the carina", SD=1),
            _st(f"endotracheal tube with tip {cm} cm above the carina", SD=1),
        )))
    if d.line == "ij":
        out.append(pk.one((
            _st("a right internal jugular central venous catheter terminates in the superior "
                "vena cava", SD=1),
            _st("right internal jugular central line with tip in the SVC", SD=1),
            _st("right IJ catheter tip projects over the superior vena cava", SD=1),
        )))
    elif d.line == "picc":
        s = d.line_side
        out.append(pk.one((
            _st(f"a {s} PICC terminates in the superior vena cava", SD=1),
            _st(f"{s} upper extremity PICC line with tip in the SVC", SD=1),
            _st(f"the {s}-sided PICC tip projects over the superior vena cava", SD=1),
        )))
    return out


# --- negations of absent findings --------------------------------------------------------------
_NEG_TERMS = {
    CO: ("focal consolidation", "focal airspace consolidation", "consolidation"),
    LO: ("focal airspace opacity", "focal infiltrate"),
    ED: ("pulmonary edema", "edema"),
    LL: ("pulmonary nodules", "nodules"),
    PE: ("pleural effusion", "effusion"),
    PX: ("pneumothorax",),
}


def _negation(codes: list[str], pk: _Pick) -> Statement:
    terms = [pk.one(_NEG_TERMS[c]) for c in codes]
    if terms[-1] == "effusion" and len(terms) == 1:
        terms[-1] = "pleural effusion"
    # plural terms first, so the verb agrees with the last (singular) term where there is one
    order = sorted(range(len(terms)), key=lambda i: not terms[i].endswith("s"))
    terms, codes = [terms[i] for i in order], [codes[i] for i in order]
    listed = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " or " + terms[-1]
    verb = "are" if terms[-1].endswith("s") else "is"
    pattern = pk.one(("no {}", f"there {verb} no {{}}", "no evidence of {}",
                      "no {} " + verb + " seen"))
    mentions = tuple((c, 0) for c in codes)
    return Statement(_st(pattern.format(listed)).text, mentions)


def _lung_negations(f: StudyFindings, pk: _Pick) -> tuple[list[Statement], list[str]]:
    """'Lungs are clear' style sentences, and the lung codes left to negate in a list."""
    out: list[Statement] = []
    parenchyma = (f.opacity, f.atelectasis, f.edema, f.nodule, f.pneumothorax)
    small_effusion = f.effusion is None or f.effusion.size == "small"
    codes: list[str] = []
    if all(x is None for x in parenchyma) and small_effusion and pk.chance(0.75):
        out.append(pk.one((
            _st("the lungs are clear"), _st("the lungs are clear bilaterally"),
            _st("both lungs are clear"), _st("the lungs are well expanded and clear"),
            _st("the lungs are free of focal airspace disease", LO=0),
            _st("the lungs are clear without focal consolidation", CO=0),
        )))
        if out[-1].mentions:
            return out, codes
    if f.opacity is None:
        if pk.chance(0.12):
            out.append(_st("no focal consolidation to suggest pneumonia", CO=0, PN=0))
        elif pk.chance(0.5):
            codes.append(pk.one((CO, CO, LO)))
    if f.edema is None and pk.chance(0.2):
        if pk.chance(0.4):
            out.append(pk.one((_st("pulmonary vascularity is within normal limits"),
                               _st("no pulmonary vascular congestion", ED=0))))
        else:
            codes.append(ED)
    if f.nodule is None and pk.chance(0.1):
        codes.append(LL)
    return out, codes


def _bones(f: StudyFindings, pk: _Pick) -> list[Statement]:
    if f.fracture is not None:
        return [_fracture(f.fracture, pk)]
    if not pk.chance(0.55):
        return []
    return [pk.one((
        _st("no acute bony abnormality"), _st("the osseous structures are intact"),
        _st("visualized osseous structures are unremarkable"),
        _st("no displaced rib fractures", FR=0), _st("no acute osseous abnormality"),
        _st("mild degenerative changes of the thoracic spine"),
    ))]


# --- the report ---------------------------------------------------------------------------------
def plan_report(f: StudyFindings, rng: np.random.Generator,
                style: str = "varied") -> list[Statement]:
    """The sentence plan of one report (text and mentions per sentence); ``style`` "varied"
    (paraphrases and orders drawn from ``rng``) or "structured" (one template)."""
    pk = REPORT_STYLES[style](rng)
    heart = _heart(f, pk)

    lung_pos: list[list[Statement]] = []
    if f.opacity is not None:
        lung_pos.append(_opacity(f.opacity, pk))
    if f.nodule is not None:
        lung_pos.append([_nodule(f.nodule, pk)])
    if f.atelectasis is not None:
        lung_pos.append([_atelectasis(f.atelectasis, pk)])
    if f.edema is not None:
        lung_pos.append([_edema(f.edema, pk)])
    lung = [s for group in pk.shuffle(lung_pos) for s in group]
    lung_neg, lung_codes = _lung_negations(f, pk)

    pleural = [_effusion(f.effusion, pk)] if f.effusion is not None else []
    if f.pneumothorax is not None:
        pleural.append(_pneumothorax(f.pneumothorax, pk))
    if f.pleural_thickening is not None:
        pleural.append(_thickening(f.pleural_thickening, pk))
    pleural = pk.shuffle(pleural)
    pleural_codes = []
    if f.effusion is None and pk.chance(0.85):
        pleural_codes.append(PE)
    if f.pneumothorax is None and pk.chance(0.85):
        pleural_codes.append(PX)
    if pleural_codes and pk.chance(0.5):
        pleural_codes = pk.shuffle(pleural_codes)

    negations: list[Statement] = []
    if lung_codes and pleural_codes and pk.chance(0.4):
        negations.append(_negation(lung_codes + pleural_codes, pk))
        lung_codes, pleural_codes = [], []
    lung = lung + lung_neg + ([_negation(lung_codes, pk)] if lung_codes else [])
    pleural = pleural + ([_negation(pleural_codes, pk)] if pleural_codes else [])
    chest = lung + pleural if pk.chance(0.75) else pleural + lung
    chest = negations + chest if pk.chance(0.5) else chest + negations

    body = heart + chest if pk.chance(0.8) else chest + heart
    devices = _devices(f.devices, pk)
    body = devices + body if pk.chance(0.5) else body + devices
    body += _bones(f, pk)
    if not f.has_pathology and pk.chance(0.35):
        body.append(pk.one((_st("no acute cardiopulmonary abnormality"),
                            _st("no acute cardiopulmonary disease"),
                            _st("no acute cardiopulmonary process"))))
    if not body:
        body.append(_st("no acute cardiopulmonary abnormality"))
    return body


def report_text(plan: Sequence[Statement]) -> str:
    return " ".join(s.text for s in plan)
