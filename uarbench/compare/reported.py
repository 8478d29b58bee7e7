"""Numbers reported in the literature, as data: optional "reported" rows of a comparison table.

Source of every number: the UAR paper (Li et al., "Unify, Align and Refine: Multi-Level Semantic
Alignment for Radiology Report Generation", ICCV 2023) as transcribed in
docs/spec.md §8 — Table 1 (main results, IU-Xray and MIMIC-CXR test), Table 2 (ablation,
IU-Xray: BLEU-1 / BLEU-4 / CIDEr only), Tables 3 and 4 (basis and fusion: BLEU-4 only). The
basis and fusion tables are on IU-Xray: their default settings (orthogonal basis, dual gate)
report the same BLEU-4 (0.200) as UAR on IU-Xray. R2GenCMN's MIMIC-CXR BLEU-4 is from its own
paper (Chen et al., ACL 2021), as §8 notes.

Reported rows are shown, marked "reported", beside the measured rows; they are never part of a
significance test and carry their source instead of a metric signature (the paper's numbers come
from other data preprocessing, scorers and checkpoints: they are not comparable numbers).
Rows exist only for the datasets the paper used (iu_xray, mimic_cxr); for any other dataset
(synth-cxr) the table says that the paper has no numbers for it. Sets are registered by name
(``--reference-rows paper``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from uarbench.registry import Registry

UAR_PAPER = "Li et al. ICCV 2023"
DATASET_LABELS = {"iu_xray": "IU-Xray", "mimic_cxr": "MIMIC-CXR"}


@dataclass(frozen=True)
class ReportedRow:
    label: str                              # "UAR"
    row: str | None                         # the suite row it corresponds to, if any
    values: tuple[tuple[str, float], ...]   # (metric name as uarbench names it, value)
    source: str                             # "reported in Li et al. ICCV 2023 (IU-Xray test)"

    def value(self, metric: str) -> float | None:
        return dict(self.values).get(metric)


@dataclass(frozen=True)
class ReferenceRows:
    rows: tuple[ReportedRow, ...]
    note: str | None = None                 # why there are none / what was left out


def _source(dataset: str, paper: str = UAR_PAPER) -> str:
    return f"reported in {paper} ({DATASET_LABELS[dataset]} test)"


def _row(label: str, row: str | None, dataset: str, names: tuple[str, ...],
         values: tuple[float, ...], paper: str = UAR_PAPER) -> ReportedRow:
    return ReportedRow(label, row, tuple(zip(names, values)), _source(dataset, paper))


NLG7 = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
ABLATION = ("BLEU-1", "BLEU-4", "CIDEr")
B4 = ("BLEU-4",)

# (dataset, suite) -> reported rows; docs/spec.md §8
PAPER_ROWS: dict[tuple[str, str], tuple[ReportedRow, ...]] = {
    ("iu_xray", "main"): (
        _row("UAR", "uar", "iu_xray", NLG7, (0.530, 0.365, 0.263, 0.200, 0.218, 0.405, 0.501)),
        _row("R2Gen", "r2gen", "iu_xray", B4, (0.165,)),
        _row("R2GenCMN", "r2gencmn", "iu_xray", B4, (0.170,)),
        _row("CMM+RL", None, "iu_xray", B4, (0.181,)),
    ),
    ("mimic_cxr", "main"): (
        _row("UAR", "uar", "mimic_cxr", NLG7[:6], (0.363, 0.229, 0.158, 0.107, 0.157, 0.289)),
        _row("R2Gen", "r2gen", "mimic_cxr", B4, (0.103,)),
        _row("R2GenCMN", "r2gencmn", "mimic_cxr", B4, (0.106,), paper="Chen et al. ACL 2021"),
        _row("CMM+RL", None, "mimic_cxr", B4, (0.109,)),
    ),
    ("iu_xray", "ablations"): tuple(
        _row(label, row, "iu_xray", ABLATION, values) for label, row, values in (
            ("Base", "base", (0.424, 0.144, 0.271)),
            ("(a) +LSU", "a_lsu", (0.475, 0.177, 0.295)),
            ("(b) +CRA integration", "b_cra_integration", (0.446, 0.141, 0.330)),
            ("(c) +L_Global", "c_global_loss", (0.426, 0.143, 0.409)),
            ("(d) integration+L_Global", "d_integration_global", (0.471, 0.158, 0.393)),
            ("(e) LSU+CRA", "e_lsu_cra", (0.538, 0.193, 0.410)),
            ("(f) +TIR", "f_tir", (0.505, 0.182, 0.460)),
            ("UAR (two-stage)", "uar", (0.530, 0.200, 0.501)))),
    ("iu_xray", "basis"): tuple(
        _row(label, row, "iu_xray", B4, (v,)) for label, row, v in (
            ("orthogonal", "orthogonal", 0.200), ("uniform", "uniform", 0.158),
            ("normal", "normal", 0.155))),
    ("iu_xray", "fusion"): tuple(
        _row(label, row, "iu_xray", B4, (v,)) for label, row, v in (
            ("dual gate", "dual_gate", 0.200), ("none", "none", 0.155), ("add", "add", 0.167))),
}
# R2Gen's MIMIC-CXR clinical efficacy (P/R/F1 0.333/0.273/0.276) is not placed in a column: its
# labeler / averaging convention is not stated with it, so no uarbench CE column matches it.
PAPER_NOTES = {("mimic_cxr", "main"): "R2Gen's reported MIMIC-CXR CE P/R/F1 0.333/0.273/0.276 "
                                      "is left out: its CE convention matches no column here."}

REFERENCE_SETS: Registry[Callable[[str, str], ReferenceRows]] = Registry("reference row set")


@REFERENCE_SETS.register("paper")
def paper_rows(dataset: str, suite: str) -> ReferenceRows:
    """The UAR paper's reported rows for ``suite`` on ``dataset`` (none, with a note, else)."""
    if dataset not in DATASET_LABELS:
        return ReferenceRows((), f"the paper reports no numbers for dataset {dataset!r} "
                                 f"(only {', '.join(DATASET_LABELS)}): no reference rows.")
    rows = PAPER_ROWS.get((dataset, suite), ())
    if not rows:
        have = sorted(s for d, s in PAPER_ROWS if d == dataset)
        return ReferenceRows((), f"the paper reports no numbers for suite {suite!r} on "
                                 f"{DATASET_LABELS[dataset]} (it does for: {', '.join(have)}).")
    return ReferenceRows(rows, PAPER_NOTES.get((dataset, suite)))
