"""Reading an R2Gen-format release: ``annotation.json`` plus an image root.

``annotation.json`` is ``{"train": [...], "val": [...], "test": [...]}``; each item has ``id``,
``report``, ``image_path`` (a list of paths relative to the image root) and ``split``. Every
problem is reported as one :class:`UarbenchError` naming the file, the record and the fix;
image problems are collected over the whole file and reported with their count and first ids.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from uarbench.errors import UarbenchError
from uarbench.io import parse_json

SPLITS = ("train", "val", "test")
REQUIRED_FIELDS = ("id", "report", "image_path")
ImageCheck = Literal["none", "exists", "open"]


@dataclass(frozen=True)
class Study:
    """One study: its raw report, image files (first ``views`` of them) and optional labels."""

    id: str
    report: str
    image_paths: tuple[Path, ...]
    split: str
    labels: dict | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Annotation:
    path: Path
    image_root: Path
    splits: dict[str, tuple[Study, ...]]
    sha256: str


def read_annotation(path: Path, image_root: Path, *, views: int,
                    image_check: ImageCheck = "exists") -> Annotation:
    """Parse and validate an annotation file; raise UarbenchError on the first kind of problem."""
    path = Path(path)
    if not path.is_file():
        raise UarbenchError("annotation file not found.", file=path,
                            fix="pass --data-root pointing at the folder holding annotation.json "
                                "(R2Gen layout: <root>/annotation.json, <root>/images/).")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UarbenchError(f"not UTF-8 (byte {e.start}).", file=path,
                            fix="re-save the annotation as UTF-8.") from None
    data = parse_json(text, path, fix="repair the JSON (R2Gen format).")
    if not isinstance(data, dict):
        raise UarbenchError("top level must be an object with keys train, val, test.", file=path,
                            fix="use the R2Gen annotation format.")
    splits = {}
    for split in SPLITS:
        if split not in data:
            keys = ", ".join(repr(k) for k in data)
            raise UarbenchError(f"split {split!r} is missing (keys present: {keys}).", file=path,
                                fix=f"add a {split!r} list (a key made of spaces is a known defect "
                                    "of some IU-Xray copies: rename it to 'test').")
        if not isinstance(data[split], list):
            raise UarbenchError(f"split {split!r} must be a list of studies.", file=path,
                                fix="use the R2Gen annotation format.")
        splits[split] = tuple(_study(item, i, split, path, image_root, views)
                              for i, item in enumerate(data[split]))
    _check_unique_ids(splits, path)
    if image_check != "none":
        _check_images(splits, path, image_root, open_files=image_check == "open")
    return Annotation(path, Path(image_root), splits, hashlib.sha256(raw).hexdigest())


def _study(item: object, index: int, split: str, path: Path, image_root: Path,
           views: int) -> Study:
    where = f"{split}[{index}]"
    if not isinstance(item, dict):
        raise UarbenchError("a study must be an object.", file=path, record=where,
                            fix="use the R2Gen annotation format.")
    sid = item.get("id")
    record = f"{sid} ({where})" if sid else where
    missing = [f for f in REQUIRED_FIELDS if f not in item]
    if missing:
        raise UarbenchError(f"missing field(s) {', '.join(missing)}.", file=path, record=record,
                            fix="every study needs id, report and image_path.")
    report, images = item["report"], item["image_path"]
    if not isinstance(report, str) or not report.strip():
        raise UarbenchError("empty report.", file=path, record=record,
                            fix="remove the study or restore its report text.")
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or len(images) < views:
        raise UarbenchError(f"image_path must list at least {views} image(s).", file=path,
                            record=record, fix="list the study's image files.")
    return Study(str(sid), report, tuple(Path(image_root) / p for p in images[:views]), split,
                 item.get("labels"))


def _check_unique_ids(splits: dict[str, tuple[Study, ...]], path: Path) -> None:
    seen: dict[str, str] = {}
    for split, studies in splits.items():
        for s in studies:
            if s.id in seen:
                raise UarbenchError(f"duplicate id (also in {seen[s.id]}).", file=path,
                                    record=f"{s.id} ({split})", fix="ids must be unique.")
            seen[s.id] = split


def _check_images(splits: dict[str, tuple[Study, ...]], path: Path, image_root: Path,
                  *, open_files: bool) -> None:
    bad: list[str] = []
    for studies in splits.values():
        for s in studies:
            if any(not _image_ok(p, open_files) for p in s.image_paths):
                bad.append(s.id)
    if bad:
        kind = "missing or unreadable" if open_files else "missing"
        raise UarbenchError(
            f"{len(bad)} stud{'y has' if len(bad) == 1 else 'ies have'} {kind} images under "
            f"{image_root} (first: {', '.join(bad[:5])}).", file=path,
            fix="point --data-root at the release folder with images/, or pass --no-images to "
                "use the reports only.")


def _image_ok(p: Path, open_file: bool) -> bool:
    if not p.is_file():
        return False
    if not open_file:
        return True
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(p) as im:
            im.load()          # a full decode: a cut-short or mislabelled file fails here
        return True
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False
