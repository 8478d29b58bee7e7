"""The labeler card: how good the offline rule labeler is, measured, with its version and date.

``card.json`` (next to this module) holds the last measurement of the default ``rules`` labeler
on the IU-Xray coders' manual MeSH annotations (:mod:`~uarbench.labeling.mesh_eval`): per-class
TP / FP / FN / F1, the micro-F1 over the five best-annotated observations, the labeler version,
the sha256 of the annotation file and the date. Only these counts are stored, never report text
(the annotations are CC BY-NC-ND). ``uarbench label --card`` prints it; with
``--dev-annotations FILE`` it measures again, prints both and says whether the stored card is
stale. :func:`write_card` rewrites it; a test fails when the stored card no longer matches a
fresh measurement (where the annotations are present), so the card cannot silently go stale.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json
from uarbench.labeling.mesh_eval import (
    CODER_NOTES, MICRO_CLASSES, MeshReport, evaluate_mesh, read_mesh,
)

CARD_PATH = Path(__file__).with_name("card.json")
CARD_SCHEMA = 1


def measure_card(annotations: str | Path, labeler=None) -> dict:
    """A fresh card: the default rule labeler (or ``labeler``) on a MeSH annotation CSV."""
    from uarbench.labeling.rules import RuleLabeler
    labeler = RuleLabeler() if labeler is None else labeler
    path = Path(annotations)
    report = evaluate_mesh(labeler, read_mesh(path))
    return card_from_report(report, labeler.version, hashlib.sha256(path.read_bytes()).hexdigest())


def card_from_report(report: MeshReport, version: str, annotations_sha256: str) -> dict:
    return {
        "schema": CARD_SCHEMA,
        "labeler": version,
        "date": _dt.date.today().isoformat(),
        "dev_set": {"name": "IU-Xray MeSH annotations, R2Gen train split (mesh_dev.csv)",
                    "n_reports": report.n, "sha256": annotations_sha256,
                    "truth": "coders' MeSH problems mapped to CheXpert (mesh_eval.MESH_TO_CHEXPERT)",
                    "present": "labeler positive or uncertain"},
        "classes": {c.observation: {"support": c.support, "tp": c.tp, "fp": c.fp, "fn": c.fn,
                                    "f1": round(c.f1, 4)} for c in report.classes},
        "micro_f1": {"classes": list(MICRO_CLASSES), "f1": round(report.micro_f1, 4)},
    }


def load_card(path: str | Path = CARD_PATH) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("labeler card not found.", file=path,
                            fix="measure it: uarbench label --card --dev-annotations mesh_dev.csv "
                                "--write-card.")
    return json.loads(path.read_text(encoding="utf-8"))


def write_card(card: dict, path: str | Path = CARD_PATH) -> Path:
    return atomic_write_json(path, card)


def same_measurement(a: dict, b: dict) -> bool:
    """Equal up to the date: same labeler, same annotations, same counts."""
    keys = ("labeler", "classes", "micro_f1")
    return all(a.get(k) == b.get(k) for k in keys) and \
        a.get("dev_set", {}).get("sha256") == b.get("dev_set", {}).get("sha256")


def format_card(card: dict) -> str:
    """Markdown: what was measured, then one row per observation."""
    ds = card["dev_set"]
    lines = [f"Labeler card: `{card['labeler']}`, measured {card['date']} on {ds['name']}, "
             f"{ds['n_reports']} reports (truth: {ds['truth']}; present = {ds['present']}).",
             "",
             "| observation | coders' positives | TP | FP | FN | F1 |",
             "|---|---:|---:|---:|---:|---:|"]
    for obs, c in card["classes"].items():
        lines.append(f"| {obs} | {c['support']} | {c['tp']} | {c['fp']} | {c['fn']} | "
                     f"{c['f1']:.3f} |")
    micro = card["micro_f1"]
    lines.append(f"| micro ({', '.join(micro['classes'])}) | | | | | {micro['f1']:.3f} |")
    lines += ["", *(f"- {note}" for note in CODER_NOTES)]
    return "\n".join(lines)
