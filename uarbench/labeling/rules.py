"""The offline rule-based CheXpert labeler (``rules``): mentions, scope, aggregation per report.

Follows the three stages of the CheXpert labeler (Irvin et al., AAAI 2019, section "Labeler"):
mention extraction with phrase lists (:mod:`~uarbench.labeling.lexicon`, versioned JSON under
``phrases/``), classification of each mention as negated, uncertain or positive by the scope of
the triggers around it (:mod:`~uarbench.labeling.scope`: the module docstring says why patterns
over the clause's phrase structure and not a parser), and aggregation over the report.
Hand-written because no usable library exists here: the original labeler needs Python 3.6 and a
syntax parser (NegBio + Bllip), and medspacy's ConText marks "cannot exclude X" as negated and
lets negation leak across R2Gen's lower-case " . " sentences (docs/PACKAGES.md).

rules-v2 (this version) replaced v1's word windows with structural scope after v1 failed on real
IU-Xray reports ("no X, Y, large Z, or W" left Z and W positive); its accuracy on the IU-Xray
coders' manual MeSH annotations is in the labeler card (``uarbench label --card``).

Aggregation over a report (CheXpert's rules, as written in its paper and code): per observation,
positive (1) over uncertain (-1) over negative (0); not mentioned -> NaN (blank). "No Finding" is
1 when no observation other than Support Devices is positive or uncertain, otherwise blank; it is
never 0 (CheXpert never sets it negative). Phrases that CheXpert counts under an observation but
this labeler does not (mentions.json "other_abnormal", e.g. vascular congestion) still keep a
report from being "No Finding", as they would in CheXpert.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.labeling.lexicon import (
    BOUNDARY, OTHER, OTHER_NAME, PHRASE_FILES, PHRASES_DIR, Match, PhraseMatcher, load_phrases,
    words,
)
from uarbench.labeling.scope import POSSIBLE, ClauseReader, Unit

__all__ = ["PHRASE_FILES", "PHRASES_DIR", "RULES_VERSION", "Mention", "RuleLabeler",
           "load_phrases", "words"]

RULES_VERSION = "rules-v2"
NO_FINDING = OBSERVATIONS.index("No Finding")
# observations that make a report abnormal (Support Devices do not, as in CheXpert)
_PATHOLOGY_COLS = tuple(i for i, o in enumerate(OBSERVATIONS)
                        if o not in ("No Finding", "Support Devices")) + (OTHER,)
_NAMES = (*OBSERVATIONS, OTHER_NAME)
_RANK = {1: 4, -1: 3, POSSIBLE: 2, 0: 1}   # positive > probable > possible > negative
HEDGE_POLICIES = ("probable", "all")
_SENTENCE_END = re.compile(r"[.;:!?](?!\d)|\n\s*\n")


# --- the labeler --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mention:
    """One labelled statement, for explaining a label: observation, value and the words read."""

    observation: str
    label: int | None           # None: raised only as a possibility (hedge policy "probable")
    text: str
    sentence: str


@LABELERS.register("rules")
class RuleLabeler(Labeler):
    """CheXpert-style rule labeler; ``phrases_dir`` swaps in another (versioned) phrase set.

    ``hedges`` is the policy for a finding raised only as a possibility ("may represent
    pneumonia", "cannot be excluded"; uncertainty.json's "possible" tier): ``"probable"`` (the
    default) leaves it blank, like the MeSH coders who index what a report asserts, and only
    "probable" hedges ("likely", "X versus Y") give -1; ``"all"`` gives -1 for every hedge, as the
    CheXpert labeler does. Either way such a report is never "No Finding". The policy is part of
    :attr:`version`, so CE numbers under the two never share a column.

    Sentence labels are memoised (reports repeat sentences a lot); ``cache_size=0`` turns that
    off, e.g. to time the labeler on unseen text. The cache never changes a label.
    """

    name = "rules"

    def __init__(self, phrases_dir: str | Path | None = None, *, hedges: str = "probable",
                 cache_size: int = 200_000) -> None:
        if hedges not in HEDGE_POLICIES:
            raise UarbenchError(f"unknown hedge policy {hedges!r}.",
                                fix=f"use one of {', '.join(HEDGE_POLICIES)}.")
        self.hedges = hedges
        self._possible = np.nan if hedges == "probable" else -1.0   # what a possibility becomes
        self.phrases = load_phrases(PHRASES_DIR if phrases_dir is None else phrases_dir)
        self._matcher = PhraseMatcher(self.phrases.table)
        self._reader = ClauseReader(self.phrases)
        self._cache: dict[str, tuple[tuple[int, int], ...]] = {}
        self._cache_size = cache_size

    @property
    def version(self) -> str:
        return f"{RULES_VERSION}(phrases:{self.phrases.version},hedges:{self.hedges})"

    def label(self, reports: Sequence[str]) -> np.ndarray:
        out = np.full((len(reports), len(OBSERVATIONS)), np.nan)   # (n_reports, 14)
        for i, report in enumerate(reports):
            out[i] = self.label_report(report)
        return out

    def label_report(self, report: str) -> np.ndarray:
        """(14,) labels of one report: 1 / 0 / -1 / NaN in OBSERVATIONS order."""
        row = np.full(len(OBSERVATIONS) + 1, np.nan)    # + the OTHER column (not reported)
        for sentence in _SENTENCE_END.split(report):
            labels = self._cache.get(sentence)
            if labels is None:
                labels = tuple((u.col, u.label()) for u in self._units(words(sentence)))
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                if self._cache_size:
                    self._cache[sentence] = labels
            for col, value in labels:
                old = row[col]
                if np.isnan(old) or _RANK[value] > _RANK[int(old)]:
                    row[col] = value
        if not any(row[c] in (1, -1, POSSIBLE) for c in _PATHOLOGY_COLS):
            row[NO_FINDING] = 1
        row[row == POSSIBLE] = self._possible
        return row[:OTHER]

    def mentions(self, report: str) -> list[Mention]:
        """Every labelled statement of a report, in reading order (to see why a label is set)."""
        out = []
        for sentence in _SENTENCE_END.split(report):
            toks = words(sentence)
            for u in self._units(toks):
                label = u.label()
                if label == POSSIBLE:
                    label = None if np.isnan(self._possible) else int(self._possible)
                out.append(Mention(_NAMES[u.col], label,
                                   " ".join(toks[u.start:u.end]), sentence.strip()))
        return out

    def _units(self, toks: list[str]) -> list[Unit]:
        """Units of one sentence; each clause is read on its own words, so no scope crosses a
        clause boundary. Positions in the returned units are the sentence's."""
        units: list[Unit] = []
        clause: list[Match] = []
        c0 = 0
        for m in self._matcher.scan(toks) + [Match(len(toks), len(toks), ((BOUNDARY, None),))]:
            if not m.has(BOUNDARY):
                clause.append(m)
                continue
            local = [Match(x.start - c0, x.end - c0, x.roles) for x in clause]
            for u in self._reader.units(toks[c0:m.start], local):
                u.start, u.end = u.start + c0, u.end + c0
                units.append(u)
            clause, c0 = [], m.end
        return sorted(units, key=lambda u: (u.start, u.end))
