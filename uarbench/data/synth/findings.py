"""What a synth-cxr study shows: findings sampled per study, and the 14-label vector of its report.

:func:`sample_findings` draws a :class:`StudyFindings` (about 30% of studies have no pathology;
each main finding appears in roughly 15-35% of studies). The label vector is *not* derived from
the findings directly: the report grammar decides which absent findings the report negates and
which findings it words as uncertain, and emits a sentence plan of :class:`Statement` objects,
each carrying the CheXpert observations it mentions. :func:`label_vector` merges those mentions
(1 positive > -1 uncertain > 0 negated; ``None`` = not mentioned), so labels always agree with
the report text. "No Finding" is 1 when no pathology is positive or uncertain (support devices
do not count, as in CheXpert), else ``None``.

Sides are the patient's sides ("right" is drawn on the image's left in the frontal view).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np

from uarbench.data.chexpert import OBSERVATIONS

SIDES = ("right", "left")
# cardiothoracic ratio bands: normal, borderline (reported as uncertain), enlarged
CTR_NORMAL = (0.40, 0.48)
CTR_BORDERLINE = (0.50, 0.54)
CTR_ENLARGED = (0.55, 0.68)
PATHOLOGIES = tuple(o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices"))


@dataclass(frozen=True)
class Effusion:
    side: str                 # right | left | bilateral
    size: str                 # small (blunted costophrenic angle) | moderate | large (meniscus)
    uncertain: bool = False   # a trace of fluid reported as "may represent a small effusion"


@dataclass(frozen=True)
class Opacity:
    kind: str                 # consolidation (dense) | opacity (faint, patchy)
    side: str
    lobe: str                 # upper | middle (right middle lobe, lingula on the left) | lower
    pneumonia: str = "absent"  # present | possible | absent


@dataclass(frozen=True)
class Atelectasis:
    side: str                 # right | left | bilateral (always basilar)
    form: str                 # linear | plate-like
    uncertain: bool = False


@dataclass(frozen=True)
class Pneumothorax:
    side: str
    size: str                 # small | moderate | large (apical lucency, visible pleural line)


@dataclass(frozen=True)
class Edema:
    severity: str             # mild | moderate (bilateral perihilar haze, interstitial lines)
    uncertain: bool = False


@dataclass(frozen=True)
class Nodule:
    side: str
    zone: str                 # upper | mid | lower
    size_mm: int


@dataclass(frozen=True)
class Fracture:
    side: str
    ribs: tuple[int, ...]     # consecutive posterior rib numbers, e.g. (6, 7)


@dataclass(frozen=True)
class PleuralThickening:
    side: str
    site: str                 # apical | lateral


@dataclass(frozen=True)
class Devices:
    ett_cm: int | None = None         # endotracheal tube, tip this many cm above the carina
    line: str | None = None           # "ij" (internal jugular central venous catheter) | "picc"
    line_side: str | None = None

    @property
    def any(self) -> bool:
        return self.ett_cm is not None or self.line is not None


@dataclass(frozen=True)
class StudyFindings:
    """Everything the images show and the report describes. Defaults: a normal study."""

    ctr: float = 0.44
    enlarged_mediastinum: bool = False
    effusion: Effusion | None = None
    opacity: Opacity | None = None
    atelectasis: Atelectasis | None = None
    pneumothorax: Pneumothorax | None = None
    edema: Edema | None = None
    nodule: Nodule | None = None
    fracture: Fracture | None = None
    pleural_thickening: PleuralThickening | None = None
    devices: Devices = Devices()

    @property
    def heart(self) -> str:
        """normal | borderline | enlarged, from the cardiothoracic ratio."""
        if self.ctr >= CTR_ENLARGED[0]:
            return "enlarged"
        if self.ctr >= CTR_BORDERLINE[0]:
            return "borderline"
        return "normal"

    @property
    def has_pathology(self) -> bool:
        return self.heart != "normal" or self.enlarged_mediastinum or any(
            getattr(self, n) is not None for n in ("effusion", "opacity", "atelectasis",
                                                   "pneumothorax", "edema", "nodule", "fracture",
                                                   "pleural_thickening"))

    def describe(self) -> dict:
        """JSON-ready structured description (the ``findings`` field of annotation.json)."""
        out = asdict(self)
        out["heart"] = self.heart
        out["devices"] = {k: v for k, v in out["devices"].items() if v is not None}
        if self.fracture is not None:
            out["fracture"]["ribs"] = list(self.fracture.ribs)
        return out


@dataclass(frozen=True)
class Statement:
    """One report sentence and the observations it mentions (1 / 0 / -1 each)."""

    text: str
    mentions: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for name, value in self.mentions:
            if name not in OBSERVATIONS or value not in (1, 0, -1):
                raise ValueError(f"bad mention {name!r}={value!r} in {self.text!r}")


_RANK = {1: 3, -1: 2, 0: 1}


def label_vector(statements: Iterable[Statement]) -> dict[str, int | None]:
    """The 14 CheXpert labels of a report, from its sentence plan (see module docstring)."""
    labels: dict[str, int | None] = {o: None for o in OBSERVATIONS}
    for st in statements:
        for name, value in st.mentions:
            old = labels[name]
            if old is None or _RANK[value] > _RANK[old]:
                labels[name] = value
    if not any(labels[o] in (1, -1) for o in PATHOLOGIES):
        labels["No Finding"] = 1
    return labels


# --- sampling ---------------------------------------------------------------------------------
P_NORMAL = 0.30
# probabilities among studies with pathology (rejection ensures at least one)
P_ABNORMAL: Mapping[str, float] = {
    "cardiomegaly": 0.30, "borderline": 0.06, "effusion": 0.30, "opacity": 0.32,
    "atelectasis": 0.24, "edema": 0.20, "pneumothorax": 0.11, "nodule": 0.12, "fracture": 0.10,
    "pleural_thickening": 0.06,
}


def _choice(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _sample_ctr(rng: np.random.Generator, band: tuple[float, float]) -> float:
    return round(float(rng.uniform(*band)), 3)


def sample_findings(rng: np.random.Generator) -> StudyFindings:
    """Draw one study's findings. Uses a fixed number of draws per decision branch only."""
    normal = rng.random() < P_NORMAL
    devices = _sample_devices(rng, p=0.10 if normal else 0.30)
    if normal:
        return StudyFindings(ctr=_sample_ctr(rng, CTR_NORMAL), devices=devices)
    while True:
        f = _sample_abnormal(rng, devices)
        if f.has_pathology:
            return f


def _sample_devices(rng: np.random.Generator, p: float) -> Devices:
    if rng.random() >= p:
        return Devices()
    kind = _choice(rng, ("ett", "line", "both"), p=(0.3, 0.4, 0.3))
    ett = int(rng.integers(3, 7)) if kind in ("ett", "both") else None
    line = side = None
    if kind in ("line", "both"):
        line = _choice(rng, ("ij", "picc"))
        side = "right" if line == "ij" else _choice(rng, SIDES)
    return Devices(ett_cm=ett, line=line, line_side=side)


def _sample_abnormal(rng: np.random.Generator, devices: Devices) -> StudyFindings:
    p = P_ABNORMAL
    u = rng.random()
    if u < p["cardiomegaly"]:
        ctr = _sample_ctr(rng, CTR_ENLARGED)
    elif u < p["cardiomegaly"] + p["borderline"]:
        ctr = _sample_ctr(rng, CTR_BORDERLINE)
    else:
        ctr = _sample_ctr(rng, CTR_NORMAL)
    big_heart = ctr >= CTR_ENLARGED[0]
    mediastinum = bool(rng.random() < (0.30 if big_heart else 0.03))
    chf = 1.3 if big_heart else 1.0   # heart failure: effusions and edema go with a big heart

    effusion = None
    if rng.random() < p["effusion"] * chf:
        size = _choice(rng, ("small", "moderate", "large"), p=(0.45, 0.40, 0.15))
        side = _choice(rng, ("right", "left", "bilateral"), p=(0.35, 0.30, 0.35))
        effusion = Effusion(side, size, uncertain=bool(size == "small" and rng.random() < 0.2))

    opacity = None
    if rng.random() < p["opacity"]:
        kind = _choice(rng, ("consolidation", "opacity"), p=(0.65, 0.35))
        side = _choice(rng, SIDES)
        lobe = _choice(rng, ("upper", "middle", "lower"), p=(0.30, 0.20, 0.50))
        if kind == "consolidation":
            pneumonia = _choice(rng, ("present", "possible", "absent"), p=(0.35, 0.25, 0.40))
        else:
            pneumonia = _choice(rng, ("possible", "absent"))
        opacity = Opacity(kind, side, lobe, pneumonia)

    atelectasis = None
    if rng.random() < p["atelectasis"]:
        atelectasis = Atelectasis(_choice(rng, ("right", "left", "bilateral"), p=(0.3, 0.3, 0.4)),
                                  _choice(rng, ("linear", "plate-like")),
                                  uncertain=bool(rng.random() < 0.15))

    pneumothorax = None
    if rng.random() < p["pneumothorax"]:
        side = _choice(rng, SIDES)
        size = _choice(rng, ("small", "moderate", "large"), p=(0.5, 0.35, 0.15))
        pneumothorax = Pneumothorax(side, size)

    edema = None
    if rng.random() < p["edema"] * chf:
        severity = _choice(rng, ("mild", "moderate"), p=(0.6, 0.4))
        edema = Edema(severity, uncertain=bool(severity == "mild" and rng.random() < 0.25))

    nodule = None
    if rng.random() < p["nodule"]:
        nodule = Nodule(_choice(rng, SIDES), _choice(rng, ("upper", "mid", "lower")),
                        int(rng.integers(8, 26)))

    fracture = None
    if rng.random() < p["fracture"]:
        first = int(rng.integers(4, 9))
        fracture = Fracture(_choice(rng, SIDES),
                            tuple(range(first, first + int(rng.integers(1, 4)))))

    thickening = None
    if rng.random() < p["pleural_thickening"]:
        thickening = PleuralThickening(_choice(rng, SIDES), _choice(rng, ("apical", "lateral")))

    return StudyFindings(ctr=ctr, enlarged_mediastinum=mediastinum, effusion=effusion,
                         opacity=opacity, atelectasis=atelectasis, pneumothorax=pneumothorax,
                         edema=edema, nodule=nodule, fracture=fracture,
                         pleural_thickening=thickening, devices=devices)
