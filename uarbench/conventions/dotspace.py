"""``dotspace`` and ``dotspace-lower``: the convention of the CvT2DistilGPT2 line of repositories.

Recent report-generation papers (CvT2DistilGPT2, MLRG, PriorRG, SEI, EVOKE) score their released
outputs by running pycocoevalcap's Bleu / Meteor / Rouge / Cider directly on
``re.sub(' +', ' ', text.replace('.', ' .'))`` of both sides: a space before every period,
runs of spaces collapsed, case kept, no PTB tokenizer, nothing else changed (commas stay
attached to words, newlines and tabs stay). ``dotspace`` is exactly that; ``dotspace-lower``
lowercases afterwards. With the references those papers release (already lowercased, cleaned
and cut by their data pipeline), pycocoevalcap under ``dotspace`` gives the numbers they report.
Signature: ``conv:dotspace`` / ``conv:dotspace-lower``.
"""
from __future__ import annotations

import re
from typing import Sequence

from uarbench.conventions.base import CONVENTIONS, Convention

_SPACES = re.compile(" +")


def dotspace(text: str) -> str:
    """``re.sub(' +', ' ', text.replace('.', ' .'))``."""
    return _SPACES.sub(" ", text.replace(".", " ."))


class DotSpace(Convention):
    def __init__(self, lower: bool) -> None:
        self.lower = lower
        self.name = "dotspace-lower" if lower else "dotspace"
        self.summary = ("period spacing and space collapse on both sides, "
                        + ("lowercased" if lower else "case kept")
                        + ", no other change (the CvT2DistilGPT2 / MLRG line's scoring)")

    def prepare(self, texts: Sequence[str]) -> list[str]:
        out = [dotspace(t) for t in texts]
        return [t.lower() for t in out] if self.lower else out


@CONVENTIONS.register("dotspace")
def dotspace_convention(*, dataset=None, cleaning: str | None = None) -> Convention:
    return DotSpace(lower=False)


@CONVENTIONS.register("dotspace-lower")
def dotspace_lower_convention(*, dataset=None, cleaning: str | None = None) -> Convention:
    return DotSpace(lower=True)
