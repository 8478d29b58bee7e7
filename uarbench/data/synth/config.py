"""The parameters of one synth-cxr build, validated, with a short key that names its cache folder.

Bump :data:`VERSION` whenever a change to the generator changes any output byte: the version is
part of :meth:`SynthConfig.cache_key`, so a stale cached build is never reused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from uarbench.configs import FrozenConfig
from uarbench.errors import UarbenchError

# v2: "the lungs are free of focal airspace disease" is labelled Lung Opacity negative (it was
#     unlabelled; the CheXpert-style labeler reads it as a negation, as CheXpert does)
VERSION = "synth-cxr-v2"
SPLITS: tuple[str, ...] = ("train", "val", "test")
# image file formats a build can write; "png" (lossless) is the default, "jpeg" (quality
# JPEG_QUALITY) makes a MIMIC-CXR-JPG-shaped set for the data-path benchmarks
IMAGE_FORMATS = {"png": ".png", "jpeg": ".jpg"}
JPEG_QUALITY = 95


@dataclass(frozen=True)
class SynthConfig(FrozenConfig):
    """Split sizes, image size in pixels (square), master seed and generator version."""

    n_train: int = 600
    n_val: int = 100
    n_test: int = 200
    size: int = 128
    seed: int = 0
    # "structured": one template, fixed section order, so every word is explained by the image
    # (the default: a one-minute CPU model can learn it); "varied": paraphrases and shuffled
    # sentence order, closer to free-text reports and harder (see docs in uarbench.data.synth)
    report_style: str = "structured"
    version: str = VERSION
    # "png" or "jpeg". Left out of to_dict() (and so of cache_key()) when "png", so every build
    # made before this field existed keeps its key and its files
    image_format: str = "png"

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_train", "n_val", "n_test", "size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{name} must be an integer (got {value!r})")
        if not problems:
            for name in ("n_train", "n_val", "n_test"):
                if getattr(self, name) < 1:
                    problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
            if self.size < 64 or self.size % 8:
                problems.append(f"size must be at least 64 and a multiple of 8 (got {self.size})")
            if self.seed < 0:
                problems.append(f"seed must be non-negative (got {self.seed})")
        if self.report_style not in ("varied", "structured"):
            problems.append(f"report_style must be 'varied' or 'structured' "
                            f"(got {self.report_style!r})")
        if self.image_format not in IMAGE_FORMATS:
            problems.append(f"image_format must be one of {', '.join(map(repr, IMAGE_FORMATS))} "
                            f"(got {self.image_format!r})")
        if self.version != VERSION:
            problems.append(f"version {self.version!r} is not the one this generator makes "
                            f"({VERSION!r})")
        if problems:
            raise UarbenchError("invalid synth-cxr config: " + "; ".join(problems) + ".",
                                fix="e.g. SynthConfig(n_train=600, n_val=100, n_test=200, "
                                    "size=128, seed=0).")

    def to_dict(self) -> dict:
        data = super().to_dict()
        if data["image_format"] == "png":
            del data["image_format"]
        return data

    @property
    def image_suffix(self) -> str:
        """File suffix of the build's images (".png", ".jpg")."""
        return IMAGE_FORMATS[self.image_format]

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]

    @property
    def n_total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    def cache_key(self) -> str:
        """First 16 hex digits of the sha256 of the fields (canonical JSON)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
