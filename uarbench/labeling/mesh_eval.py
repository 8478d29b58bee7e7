"""A labeler measured against manual MeSH annotations of real reports (Open-i / IU-Xray).

The NLM coders indexed every Open-i report with MeSH terms (Demner-Fushman et al., JAMIA 2016);
their head terms ("problems") map onto CheXpert observations (:data:`MESH_TO_CHEXPERT`, as in the
annotation file's SOURCE.md). The coders index what a report *asserts*, so a negated mention or a
"no large effusion" is absent from the annotation, and a hedged one is usually present: the
labeler's positive or uncertain counts as present (:func:`present`).

Input: a CSV with ``study_id``, ``findings``, ``impression`` and ``problems`` (``;``-separated
head terms, ``normal`` for a report without findings). The data are CC BY-NC-ND: uarbench reads
the file where the user keeps it and never copies it; only the counts below leave this module.

:func:`evaluate_mesh` labels findings + impression and returns per-class TP / FP / FN / F1, the
micro-F1 over the five observations with most annotations, No Finding against MeSH "normal", and
the sentences behind the disagreements, most frequent first, so the next person sees what fails.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError

MESH_TO_CHEXPERT: dict[str, str] = {
    "Cardiomegaly": "Cardiomegaly",
    "Pleural Effusion": "Pleural Effusion",
    "Pulmonary Atelectasis": "Atelectasis",
    "Pulmonary Edema": "Edema",
    "Pneumothorax": "Pneumothorax",
    "Fractures, Bone": "Fracture",
    "Pneumonia": "Pneumonia",
    "Catheters, Indwelling": "Support Devices",
    "Implanted Medical Device": "Support Devices",
    "Tube, Inserted": "Support Devices",
    "Medical Device": "Support Devices",
    "normal": "No Finding",
}
MICRO_CLASSES: tuple[str, ...] = ("Cardiomegaly", "Pleural Effusion", "Atelectasis",
                                  "Pneumothorax", "Fracture")
SCORED_CLASSES: tuple[str, ...] = MICRO_CLASSES + ("Edema", "Pneumonia", "Support Devices",
                                                   "No Finding")
CODER_NOTES: tuple[str, ...] = (
    "Where the labeler is judged right and the coders' mapping not: the coders index an "
    "enlarged cardiac silhouette / contour as 'Cardiac Shadow', not Cardiomegaly; the labeler "
    "says Cardiomegaly, as CheXpert does (these count as FP above). Likewise a "
    "hydropneumothorax is indexed as Hydropneumothorax only; it holds a pneumothorax, and the "
    "labeler says Pneumothorax (the one Pneumothorax FP).",
    "The coders index what a report asserts: a finding raised only as a possibility ('may "
    "represent', 'cannot be excluded', 'concerning for') is absent for them and blank for the "
    "default hedge policy; under --hedges all (CheXpert's reading) those count as FP here.",
    "No Finding is compared with MeSH 'normal', which also excludes incidental findings "
    "(granulomas, degenerative spine changes): shown, not a target.",
)
REQUIRED_COLUMNS = ("study_id", "findings", "impression", "problems")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n+")


@dataclass(frozen=True)
class MeshStudy:
    study_id: str
    text: str                  # findings + impression, as the labeler reads it
    present: frozenset[str]    # CheXpert observations the coders' problems map to


def read_mesh(path: str | Path) -> list[MeshStudy]:
    """Rows of a MeSH annotation CSV; a missing file or column is one error naming the fix."""
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("file not found.", file=path,
                            fix="pass the MeSH annotation CSV (study_id, findings, impression, "
                                "problems), e.g. ../shared/data/iu_xray/mesh_dev.csv.")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise UarbenchError(f"missing column(s) {', '.join(missing)}.", file=path,
                                fix=f"the header needs {', '.join(REQUIRED_COLUMNS)}.")
        out = []
        for row in reader:
            problems = {p.strip() for p in (row["problems"] or "").split(";") if p.strip()}
            text = " ".join(t.strip() for t in (row["findings"], row["impression"]) if t and t.strip())
            out.append(MeshStudy(row["study_id"], text,
                                 frozenset(MESH_TO_CHEXPERT[p] for p in problems
                                           if p in MESH_TO_CHEXPERT)))
    return out


def present(labels: np.ndarray) -> np.ndarray:
    """Positive or uncertain -> True; negative and blank -> False."""
    return (labels == 1) | (labels == -1)


@dataclass(frozen=True)
class ClassScore:
    observation: str
    tp: int
    fp: int
    fn: int

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 1.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass(frozen=True)
class Disagreement:
    observation: str
    kind: str                  # "FP" (labeler present, coders absent) or "FN"
    sentence: str              # the sentence that set the label ("(no mention)" for a miss)
    count: int
    study_ids: tuple[str, ...]


@dataclass(frozen=True)
class MeshReport:
    n: int
    classes: tuple[ClassScore, ...]
    disagreements: tuple[Disagreement, ...]   # most frequent first

    def score(self, observation: str) -> ClassScore:
        return next(c for c in self.classes if c.observation == observation)

    @property
    def micro_f1(self) -> float:
        """Micro-F1 over :data:`MICRO_CLASSES` (summed TP / FP / FN)."""
        cs = [self.score(o) for o in MICRO_CLASSES]
        tp, fp, fn = (sum(getattr(c, k) for c in cs) for k in ("tp", "fp", "fn"))
        return 2 * tp / (2 * tp + fp + fn)

    def table(self) -> str:
        from tabulate import tabulate
        rows = [(c.observation, c.support, c.tp, c.fp, c.fn, f"{c.f1:.3f}") for c in self.classes]
        rows.append((f"micro ({len(MICRO_CLASSES)})", "", "", "", "", f"{self.micro_f1:.3f}"))
        return tabulate(rows, headers=("observation", "coders", "TP", "FP", "FN", "F1"))

    def disagreement_table(self, top: int = 20) -> str:
        lines = [f"{'n':>3s}  {'class':18s} {'kind':4s} sentence"]
        for d in self.disagreements[:top]:
            lines.append(f"{d.count:3d}  {d.observation:18s} {d.kind:4s} {d.sentence}")
        return "\n".join(lines)


def evaluate_mesh(labeler, studies: Sequence[MeshStudy]) -> MeshReport:
    """Score ``labeler`` (any :class:`~uarbench.labeling.base.Labeler`) on annotated studies."""
    labels = labeler.label([s.text for s in studies])                     # (n, 14)
    got = present(labels)
    classes, found = [], Counter()
    examples: dict[tuple[str, str, str], list[str]] = {}
    for obs in SCORED_CLASSES:
        j = OBSERVATIONS.index(obs)
        truth = np.array([obs in s.present for s in studies])
        tp, fp, fn = (int((got[:, j] & truth).sum()), int((got[:, j] & ~truth).sum()),
                      int((~got[:, j] & truth).sum()))
        classes.append(ClassScore(obs, tp, fp, fn))
        if obs == "No Finding":
            continue
        for i in np.flatnonzero(got[:, j] != truth):
            kind = "FP" if got[i, j] else "FN"
            for sentence in _evidence(labeler, studies[i].text, obs, kind):
                key = (obs, kind, sentence)
                found[key] += 1
                examples.setdefault(key, []).append(studies[i].study_id)
    dis = tuple(Disagreement(o, k, s, c, tuple(examples[o, k, s]))
                for (o, k, s), c in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))
    return MeshReport(len(studies), tuple(classes), dis)


def _evidence(labeler, text: str, obs: str, kind: str) -> list[str]:
    """The sentences that explain a disagreement: for FP those that set the label present, for
    FN those whose mention came out negative; "(no mention)" when the labeler saw nothing."""
    mentions = getattr(labeler, "mentions", None)
    if mentions is None:
        return ["(labeler does not explain its labels)"]
    wanted = (1, -1) if kind == "FP" else (0,)
    out = [m.sentence for m in mentions(text) if m.observation == obs and m.label in wanted]
    return list(dict.fromkeys(out)) or ["(no mention)"]
