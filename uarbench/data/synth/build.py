"""Writing a synth-cxr build in the R2Gen layout, atomically, and a cache of builds keyed by config.

Layout of a build folder::

    annotation.json     {"train": [...], "val": [...], "test": [...]}; each item has id, report,
                        image_path (relative to images/), split, labels (14 CheXpert
                        observations -> 1 / 0 / -1 / null) and findings (structured truth)
    images/<id>/0.png   frontal (PA) view; the patient's right is on the image left
    images/<id>/1.png   lateral view; anterior on the image left
                        (0.jpg / 1.jpg, quality 95, when image_format is "jpeg")
    labels.csv          id, split and the 14 labels (empty cell = not mentioned)
    synth_config.json   the config, its cache key and the conventions above

Ids number the studies train first, then val, then test (``synth_000000`` ...). Each study is
generated from its own random streams keyed by (seed, split, index within the split), so a
study's content does not depend on the sizes of the splits, only its id does. The same config
gives byte-identical files. A build is written into a temporary folder beside the target and
renamed into place when complete, so an interrupted build never looks complete.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.data.synth.config import JPEG_QUALITY, SPLITS, SynthConfig
from uarbench.data.synth.findings import StudyFindings, label_vector, sample_findings
from uarbench.data.synth.grammar import plan_report, report_text
from uarbench.data.synth.render import render_study, sample_anatomy
from uarbench.data.synth.seeding import ANATOMY, FINDINGS, GRAMMAR, StudyKey
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json, atomic_write_text, default_cache_dir

DATASET = "synth-cxr"
ID_PREFIX = "synth_"


@dataclass(frozen=True)
class SynthStudy:
    """One generated study: its record fields and both images."""

    id: str
    split: str
    report: str
    labels: dict[str, int | None]
    findings: StudyFindings
    frontal: np.ndarray
    lateral: np.ndarray

    def record(self, suffix: str = ".png") -> dict:
        return {"id": self.id, "report": self.report,
                "image_path": [f"{self.id}/0{suffix}", f"{self.id}/1{suffix}"], "split": self.split,
                "labels": self.labels, "findings": self.findings.describe()}


def study_slots(config: SynthConfig) -> Iterator[tuple[str, int, str]]:
    """(split, index within the split, id) for every study of a build, in id order."""
    n = 0
    for split in SPLITS:
        for i in range(config.count(split)):
            yield split, i, f"{ID_PREFIX}{n:06d}"
            n += 1


def make_study(config: SynthConfig, split: str, index: int, study_id: str) -> SynthStudy:
    key = StudyKey(config.seed, split, index)
    findings = sample_findings(key.rng(FINDINGS))
    plan = plan_report(findings, key.rng(GRAMMAR), config.report_style)
    frontal, lateral = render_study(findings, sample_anatomy(key.rng(ANATOMY)), config.size)
    return SynthStudy(study_id, split, report_text(plan), label_vector(plan), findings,
                      frontal, lateral)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def image_bytes(image: np.ndarray, image_format: str = "png") -> bytes:
    """One view encoded as the build's image format (PNG, or JPEG at JPEG_QUALITY)."""
    if image_format == "png":
        return png_bytes(image)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _labels_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "split", *OBSERVATIONS])
    for r in records:
        writer.writerow([r["id"], r["split"],
                         *("" if r["labels"][o] is None else r["labels"][o] for o in OBSERVATIONS)])
    return buf.getvalue()


def _meta(config: SynthConfig) -> dict:
    return {
        "dataset": DATASET, "version": config.version, "config": config.to_dict(),
        "cache_key": config.cache_key(),
        "counts": {s: config.count(s) for s in SPLITS},
        "annotation": "annotation.json", "image_root": "images", "labels_csv": "labels.csv",
        "views": [f"0{config.image_suffix}: frontal (PA)", f"1{config.image_suffix}: lateral"],
        "orientation": "frontal: radiological convention, patient's right on the image left; "
                       "lateral: anterior on the image left",
        "labels": "CheXpert 14 observations; 1 positive, 0 negated in the report, -1 uncertain, "
                  "null not mentioned; derived from the report's sentence plan",
        "seeding": "each study from its own streams keyed by (seed, split, index in split); "
                   "ids number train, then val, then test",
    }


def _write_study(task: tuple[Path, SynthConfig, str, int, str]) -> dict:
    """Generate one study and write its images; returns its annotation record."""
    images, config, split, index, study_id = task
    study = make_study(config, split, index, study_id)
    (images / study_id).mkdir(parents=True)
    suffix = config.image_suffix
    (images / study_id / f"0{suffix}").write_bytes(image_bytes(study.frontal, config.image_format))
    (images / study_id / f"1{suffix}").write_bytes(image_bytes(study.lateral, config.image_format))
    return study.record(suffix)


def _write_build(folder: Path, config: SynthConfig, progress: bool | None,
                 workers: int = 1) -> None:
    images = folder / "images"
    records: dict[str, list[dict]] = {s: [] for s in SPLITS}
    tasks = [(images, config, split, index, study_id)
             for split, index, study_id in study_slots(config)]
    disable = None if progress is None else not progress     # None: only on a terminal
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(tasks) > 1:
            # every study has its own random streams, so the files do not depend on `workers`
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            done = pool.imap(_write_study, tasks, chunksize=16)
        else:
            done = map(_write_study, tasks)
        for (_, _, split, _, _), record in tqdm(zip(tasks, done), total=len(tasks),
                                                desc=f"{DATASET} {config.cache_key()}",
                                                unit="study", disable=disable, leave=False):
            records[split].append(record)
    atomic_write_text(folder / "labels.csv", _labels_csv([r for s in SPLITS for r in records[s]]))
    atomic_write_json(folder / "annotation.json", records)
    atomic_write_json(folder / "synth_config.json", _meta(config))  # written last


def _build(out_dir: Path, config: SynthConfig, *, overwrite: bool, progress: bool | None,
           workers: int = 1) -> Path:
    """Build in a temp folder beside ``out_dir`` and rename it into place.

    Raises FileExistsError when ``out_dir`` exists and ``overwrite`` is false (also when another
    process published it first).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        _write_build(tmp, config, progress, workers)
        if out_dir.exists() and overwrite:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "build")
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, out_dir)
            except OSError:
                if out_dir.exists():
                    raise FileExistsError(out_dir) from None
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def generate_synth(out_dir: str | Path, config: SynthConfig | None = None, *,
                   overwrite: bool = False, progress: bool | None = None,
                   workers: int = 1) -> Path:
    """Write a synth-cxr build to ``out_dir`` (R2Gen layout, see module docstring); return it.

    ``progress``: show a tqdm bar (None: only on a terminal). ``workers``: processes generating
    studies (0: every core); the files are the same for any number.
    """
    config = SynthConfig() if config is None else config
    out_dir = Path(out_dir)
    if workers == 0:
        from uarbench.data.image_cache import default_workers
        workers = default_workers()
    try:
        return _build(out_dir, config, overwrite=overwrite, progress=progress, workers=workers)
    except FileExistsError:
        raise UarbenchError("output folder already exists.", file=out_dir,
                            fix="choose a new folder, delete this one, or pass "
                                "overwrite=True.") from None


def cache_path(config: SynthConfig, cache_dir: str | Path | None = None) -> Path:
    base = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return base / DATASET / config.cache_key()


def _is_complete(root: Path, config: SynthConfig) -> bool:
    try:
        meta = json.loads((root / "synth_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("config") == config.to_dict() and (root / "annotation.json").is_file()


def ensure_synth(config: SynthConfig | None = None, cache_dir: str | Path | None = None, *,
                 progress: bool | None = None) -> Path:
    """The cached build for ``config`` under ``cache_dir``/synth-cxr/<cache_key>, made if absent.

    ``cache_dir`` defaults to ``$UARBENCH_CACHE`` or ``~/.cache/uarbench``. Safe to call from
    several processes at once: the first build to finish is kept.
    """
    config = SynthConfig() if config is None else config
    root = cache_path(config, cache_dir)
    if _is_complete(root, config):
        return root
    try:
        return _build(root, config, overwrite=root.exists(), progress=progress)
    except FileExistsError:
        if _is_complete(root, config):
            return root
        raise UarbenchError("the synth-cxr cache folder exists but is not a complete build.",
                            file=root, fix="delete the folder; it is rebuilt on the next run.") \
            from None
    except OSError as e:
        raise UarbenchError(f"cannot write the synth-cxr cache: {e.strerror or e}.", file=root,
                            fix="set UARBENCH_CACHE to a writable folder.") from None
