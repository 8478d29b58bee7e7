"""Reading an R2Gen-format release: ``annotation.json`` plus an image root.

``annotation.json`` is ``{"train": [...], "val": [...], "test": [...]}``; each item has ``id``,
``report``, ``image_path`` (a list of paths relative to the image root) and ``split``. Every
problem is reported as one :class:`UarbenchError` naming the file, the record and the fix;
image problems are collected over the whole file and reported with their count and first ids.
"""
from __future__ import annotations

import hashlib
import json
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
    if not _is_file(path):
        raise UarbenchError("annotation file not found.", file=path,
                            fix="pass --data-root pointing at the folder holding annotation.json "
                                "(R2Gen layout: <root>/annotation.json, <root>/images/).")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UarbenchError(f"cannot read the file ({e.strerror or e}).", file=path,
                            fix="check its permissions.") from None
    try:
        text = raw.decode("utf-8-sig")        # a BOM (some Windows editors write one) is fine
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
    record = f"{sid} ({where})" if isinstance(sid, (str, int)) and str(sid).strip() else where
    missing = [f for f in REQUIRED_FIELDS if f not in item]
    if missing:
        raise UarbenchError(f"missing field(s) {', '.join(missing)}.", file=path, record=record,
                            fix="every study needs id, report and image_path.")
    # an id is a non-blank string (or an integer): null, blank, true or a list would become a
    # study named "None", "", "True" or "['a']" that no predictions file can match
    if isinstance(sid, bool) or not isinstance(sid, (str, int)) or not str(sid).strip():
        raise UarbenchError(f"id must be a non-blank string or an integer, not {_shown(sid)}.",
                            file=path, record=record,
                            fix="give every study its id (e.g. \"CXR1_1_IM-0001\").")
    report, images = item["report"], item["image_path"]
    if not isinstance(report, str) or not report.strip():
        raise UarbenchError("empty report.", file=path, record=record,
                            fix="remove the study or restore its report text.")
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or len(images) < views:
        raise UarbenchError(f"image_path must list at least {views} image(s).", file=path,
                            record=record, fix="list the study's image files.")
    if not all(isinstance(p, str) for p in images):
        bad = next(p for p in images if not isinstance(p, str))
        raise UarbenchError(f"image_path entries must be file paths (strings), not "
                            f"{_shown(bad)}.", file=path, record=record,
                            fix="list the study's image files relative to images/.")
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


def _shown(value: object) -> str:
    """A JSON value as the user wrote it, shortened (null, true, [1], {"a": 1})."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_file(p: Path) -> bool:
    """``p.is_file()`` that is False, not an OSError, for a name too long or a path the OS
    refuses (pathlib raises on ENAMETOOLONG, EACCES)."""
    try:
        return p.is_file()
    except OSError:
        return False


def _image_ok(p: Path, open_file: bool) -> bool:
    if not _is_file(p):
        return False
    if not open_file:
        return True
    from PIL import Image
    try:
        with Image.open(p) as im:
            im.load()          # a full decode: a cut-short or mislabelled file fails here
        return True
    except Exception:  # noqa: BLE001 - PIL's decoders raise OSError, ValueError, SyntaxError,
        # struct.error, EOFError, DecompressionBombError ... on damaged bytes: all "unreadable"
        return False
