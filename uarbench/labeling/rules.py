"""The offline rule-based CheXpert labeler: phrase lists, negation / uncertainty scope, aggregation.

Follows the three stages of the CheXpert labeler (Irvin et al., AAAI 2019, section "Labeler"):
mention extraction with phrase lists, classification of each mention as negated, uncertain or
positive, and aggregation over the report. Hand-written because no usable library exists: the
original labeler needs Python 3.6 and a syntax parser (NegBio + Bllip), and medspacy's ConText
marks "cannot exclude X" as negated and lets negation leak across R2Gen's lower-case " . "
sentences (docs/PACKAGES.md). Instead of a parser, scope is decided on word windows inside a
clause. All phrases live in versioned JSON files under ``phrases/`` (read them for the
decisions: which words count as which observation, which are triggers).

How a sentence is read
  1. Split the report into sentences at . ; : ! ? (not a decimal point), then into clauses at
     "but", "however", ... (scope.json). Words are lower-case ``[a-z0-9]+``; hyphens, slashes and
     commas count as spaces, so raw and R2Gen-cleaned text are read alike.
  2. Find phrases left to right, longest first. A finding ("effusion", "cardiomegaly") is a unit
     by itself. An attribute ("heart size", "mediastinum", "costophrenic angle") becomes a unit
     only with a state word in its clause: abnormal ("enlarged", "widened") -> positive,
     borderline ("borderline", "upper limits of normal", "blunting") -> uncertain, normal
     ("normal", "within normal limits", "unremarkable") -> negative. So "heart size is normal" is
     a negative Cardiomegaly statement, not a positive mention. Unmentions ("pericardial
     effusion") hide the finding word they contain.
  3. A pre trigger ("no", "possible") reaches the next unit at most ``max_gap_pre`` words away
     and runs on along a list ("no effusion, consolidation or pneumothorax" negates all three)
     until a breaker ("with", "there"), a new trigger, or a new noun phrase that starts with a
     size / article word without "or" ("no pneumothorax, small left effusion": effusion
     positive). A post trigger ("is not seen", "cannot be excluded") reaches back over the unit
     just before it and the items joined to it by "or" / "and". "versus" works both ways.
     Triggers inside an attribute's span ("the heart is *not* enlarged", "the heart is
     *possibly* enlarged") apply to that attribute only. Pseudo-negations ("no interval change
     in the small effusion", "without change") end a running negation and negate nothing.
  4. A unit is uncertain (-1) if any trigger that reaches it hedges, else negative (0) if one
     negates it, else its own value. A normal-state attribute takes only triggers inside its
     span ("heart size is not normal" -> positive).

Aggregation over a report (CheXpert's rules, as written in its paper and code): per observation,
positive (1) over uncertain (-1) over negative (0); not mentioned -> NaN (blank). "No Finding" is
1 when no observation other than Support Devices is positive or uncertain, otherwise blank; it is
never 0 (CheXpert never sets it negative).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.labeling.base import LABELERS, Labeler

PHRASES_DIR = Path(__file__).with_name("phrases")
PHRASE_FILES = ("mentions", "negation", "uncertainty", "scope")
RULES_VERSION = "rules-v1"
NO_FINDING = OBSERVATIONS.index("No Finding")
# observations that make a report abnormal (Support Devices do not, as in CheXpert)
_PATHOLOGY_COLS = tuple(i for i, o in enumerate(OBSERVATIONS)
                        if o not in ("No Finding", "Support Devices"))
_RANK = {1: 3, -1: 2, 0: 1}            # positive > uncertain > negative

# phrase roles
FINDING, ATTRIBUTE, STATE, UNMENTION = "finding", "attribute", "state", "unmention"
NEG_PRE, NEG_POST, PSEUDO, CONTINUE = "neg_pre", "neg_post", "pseudo", "continue"
UNC_PRE, UNC_EVIDENTIAL, UNC_POST, UNC_BOTH = "unc_pre", "unc_evidential", "unc_post", "unc_both"
BOUNDARY, BREAKER = "boundary", "breaker"
_STATE_VALUE = {"abnormal": 1, "borderline": -1, "normal": 0}
_NEG, _UNC = "neg", "unc"

_SENTENCE_END = re.compile(r"[.;:!?](?!\d)|\n\s*\n")
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes dropped ("can't" -> "cant"), other marks are spaces."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


# --- the phrase set --------------------------------------------------------------------------
@dataclass(frozen=True)
class PhraseSet:
    """Every phrase with its roles (word tuple -> ((role, value), ...)) and the scope settings."""

    version: int
    table: dict[tuple[str, ...], tuple[tuple[str, object], ...]]
    descriptors: frozenset[str]
    conjunctions: frozenset[str]
    list_continuers: frozenset[str]
    max_gap_pre: int
    max_gap_post: int
    max_link_post: int
    max_gap_state: int


def _read(folder: Path, name: str) -> dict:
    path = folder / f"{name}.json"
    if not path.is_file():
        raise UarbenchError("phrase file not found.", file=path,
                            fix=f"use a phrases folder holding {', '.join(PHRASE_FILES)} (.json).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UarbenchError(f"invalid JSON at line {e.lineno}: {e.msg}.", file=path,
                            fix="repair the phrase file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise UarbenchError("needs an integer 'version' field.", file=path,
                            fix='add "version": <n> and bump it whenever a phrase changes.')
    return data


def load_phrases(folder: str | Path = PHRASES_DIR) -> PhraseSet:
    """Read and check the four phrase files; all must carry the same ``version``."""
    folder = Path(folder)
    data = {n: _read(folder, n) for n in PHRASE_FILES}
    versions = {n: d["version"] for n, d in data.items()}
    if len(set(versions.values())) != 1:
        raise UarbenchError(f"phrase files disagree on version: {versions}.", file=folder,
                            fix="the phrase set has one version: bump every file together.")
    table: dict[tuple[str, ...], list[tuple[str, object]]] = {}

    def add(phrases: Iterable[str], role: str, value: object, where: str) -> None:
        for phrase in phrases:
            key = tuple(words(phrase))
            if not key:
                raise UarbenchError(f"empty phrase {phrase!r}.", file=folder / where,
                                    fix="remove it.")
            roles = table.setdefault(key, [])
            clash = [r for r in roles if r[0] == role and r[1] != value]
            clash += [r for r in roles if {r[0], role} == {FINDING, ATTRIBUTE}]
            if clash:
                raise UarbenchError(f"phrase {phrase!r} is both {clash[0]} and {(role, value)}.",
                                    file=folder / where, fix="keep one meaning per phrase.")
            if (role, value) not in roles:
                roles.append((role, value))

    mentions = data["mentions"]
    for obs, entry in mentions["observations"].items():
        if obs not in OBSERVATIONS or obs == "No Finding":
            raise UarbenchError(f"unknown observation {obs!r}.", file=folder / "mentions.json",
                                fix=f"use one of {', '.join(OBSERVATIONS[1:])}.")
        col = OBSERVATIONS.index(obs)
        add(entry.get("findings", ()), FINDING, col, "mentions.json")
        add(entry.get("attributes", ()), ATTRIBUTE, col, "mentions.json")
        add(entry.get("unmentions", ()), UNMENTION, col, "mentions.json")
    for kind, value in _STATE_VALUE.items():
        add(mentions["states"][kind], STATE, value, "mentions.json")
    neg, unc, scope = data["negation"], data["uncertainty"], data["scope"]
    for role, phrases in ((NEG_PRE, neg["pre"]), (NEG_POST, neg["post"]), (PSEUDO, neg["pseudo"]),
                          (CONTINUE, neg["continue"]), (UNC_PRE, unc["pre"]),
                          (UNC_EVIDENTIAL, unc["evidential"]), (UNC_POST, unc["post"]),
                          (UNC_BOTH, unc["both"]), (BOUNDARY, scope["clause_boundaries"]),
                          (BREAKER, scope["breakers"])):
        add(phrases, role, None, "phrase lists")
    return PhraseSet(
        version=versions["mentions"], table={k: tuple(v) for k, v in table.items()},
        descriptors=frozenset(scope["descriptors"]), conjunctions=frozenset(scope["conjunctions"]),
        list_continuers=frozenset(scope["list_continuers"]), max_gap_pre=scope["max_gap_pre"],
        max_gap_post=scope["max_gap_post"], max_link_post=scope["max_link_post"],
        max_gap_state=scope["max_gap_state"])


# --- phrase matching ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    start: int                                  # word index of the first word
    end: int                                    # one past the last word
    roles: tuple[tuple[str, object], ...]

    def has(self, role: str) -> bool:
        return any(r == role for r, _ in self.roles)

    def value(self, role: str) -> object:
        return next(v for r, v in self.roles if r == role)


class PhraseMatcher:
    """Leftmost-longest phrase lookup over word lists: a dict from first word to candidates."""

    def __init__(self, table: dict[tuple[str, ...], tuple[tuple[str, object], ...]]) -> None:
        first: dict[str, list[tuple[tuple[str, ...], tuple]]] = {}
        for key, roles in table.items():
            first.setdefault(key[0], []).append((key, roles))
        self._first = {w: sorted(c, key=lambda kc: -len(kc[0])) for w, c in first.items()}

    def scan(self, toks: Sequence[str]) -> list[Match]:
        out, i, n = [], 0, len(toks)
        while i < n:
            for key, roles in self._first.get(toks[i], ()):
                k = len(key)
                if tuple(toks[i:i + k]) == key:
                    out.append(Match(i, i + k, roles))
                    i += k
                    break
            else:
                i += 1
        return out


# --- one clause ----------------------------------------------------------------------------------
@dataclass
class Unit:
    """One statement about one observation: a finding, or an attribute with its state word."""

    col: int
    base: int                   # 1 / -1 / 0 before triggers
    start: int
    end: int
    cue: Match                  # the finding or attribute phrase
    state: Match | None = None
    pre: str | None = None      # "neg" / "unc" from a trigger before it
    post: str | None = None     # from a trigger after it
    inside: set[str] = field(default_factory=set)  # from triggers inside its span

    def label(self) -> int:
        reached = self.inside if self.base == 0 else {self.pre, self.post} | self.inside
        if _UNC in reached:
            return -1
        if _NEG in reached:
            return 1 if self.base == 0 else 0
        return self.base


_PRE_KIND = {NEG_PRE: _NEG, UNC_PRE: _UNC, UNC_BOTH: _UNC}
_POST_KIND = {NEG_POST: _NEG, UNC_POST: _UNC, UNC_BOTH: _UNC}
_TRIGGER_KIND = {NEG_PRE: _NEG, NEG_POST: _NEG, UNC_PRE: _UNC, UNC_EVIDENTIAL: _UNC,
                 UNC_POST: _UNC, UNC_BOTH: _UNC}


class ClauseReader:
    """Turns the phrase matches of one clause into labelled units (steps 2-4 of the docstring)."""

    def __init__(self, ph: PhraseSet) -> None:
        self.ph = ph

    def units(self, toks: Sequence[str], matches: Sequence[Match]) -> list[Unit]:
        units = [Unit(m.value(FINDING), 1, m.start, m.end, m) for m in matches if m.has(FINDING)]
        for m in matches:
            if m.has(ATTRIBUTE):
                state = self._state_for(m, matches)
                if state is not None:
                    units.append(Unit(m.value(ATTRIBUTE), state.value(STATE),
                                      min(m.start, state.start), max(m.end, state.end), m, state))
        triggers = []
        for m in matches:
            owners = [u for u in units if u.state is not None and u.start <= m.start
                      and m.end <= u.end and m is not u.cue and m is not u.state]
            for u in owners:
                u.inside.update(_TRIGGER_KIND[r] for r, _ in m.roles if r in _TRIGGER_KIND)
            if not owners and not m.has(FINDING) and not m.has(ATTRIBUTE):
                triggers.append(m)
        events = sorted([(m.start, 0, m) for m in triggers] + [(u.start, 1, u) for u in units],
                        key=lambda e: (e[0], e[1]))
        self._forward(toks, [e[2] for e in events])
        self._backward(toks, [e[2] for e in reversed(events)])
        return units

    def _state_for(self, attr: Match, matches: Sequence[Match]) -> Match | None:
        """Adjacent state before the attribute, else the first after it, else the nearest before."""
        i = matches.index(attr)
        before = self._walk(reversed(matches[:i]))
        if before is not None and attr.start - before.end <= self.ph.max_gap_state and not any(
                m.has(ATTRIBUTE) for m in matches[matches.index(before) + 1:i]):
            return before
        return self._walk(matches[i + 1:]) or before

    @staticmethod
    def _walk(seq: Iterable[Match]) -> Match | None:
        for m in seq:
            if m.has(STATE):
                return m
            if m.has(FINDING) or m.has(BREAKER):
                return None
        return None

    def _forward(self, toks: Sequence[str], events: list) -> None:
        active, anchor, after_unit, linked = None, 0, False, False
        for ev in events:
            if isinstance(ev, Unit):
                if ev.base == 0 or active is None:
                    continue
                gap = toks[anchor:max(anchor, ev.start)]
                ok = len(gap) <= self.ph.max_gap_pre
                if ok and after_unit and not linked:
                    lead = list(gap) + (toks[ev.state.start:ev.state.end]
                                        if ev.state is not None and ev.state.start < ev.cue.start
                                        else [])
                    ok = not (self.ph.descriptors.intersection(lead)
                              and not self.ph.list_continuers.intersection(gap))
                if ok:
                    ev.pre, anchor, after_unit, linked = active, ev.end, True, False
                else:
                    active = None
            elif ev.has(BREAKER) or ev.has(PSEUDO):
                active = None
            elif ev.has(CONTINUE) or (ev.has(UNC_EVIDENTIAL) and active == _NEG and after_unit
                                      and ev.start - anchor <= 1):
                linked = linked or active is not None
            elif any(ev.has(r) for r in (*_PRE_KIND, UNC_EVIDENTIAL)):
                active = _UNC if not ev.has(NEG_PRE) else _NEG
                anchor, after_unit, linked = ev.end, False, False

    def _backward(self, toks: Sequence[str], events: list) -> None:
        active, anchor, after_unit = None, len(toks), False
        for ev in events:
            if isinstance(ev, Unit):
                if ev.base == 0 or active is None:
                    continue
                gap = toks[min(ev.end, anchor):anchor]
                if not after_unit:
                    ok = len(gap) <= self.ph.max_gap_post
                else:
                    ok = not gap or (len(gap) <= self.ph.max_link_post
                                     and bool(self.ph.conjunctions.intersection(gap)))
                if ok:
                    ev.post, anchor, after_unit = active, ev.start, True
                else:
                    active = None
            elif any(ev.has(r) for r in _POST_KIND):
                active = _NEG if ev.has(NEG_POST) else _UNC
                anchor, after_unit = ev.start, False
            elif ev.has(BREAKER) or ev.has(PSEUDO) or ev.has(NEG_PRE) or ev.has(UNC_PRE) \
                    or ev.has(UNC_EVIDENTIAL):
                active = None


# --- the labeler --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mention:
    """One labelled statement, for explaining a label: observation, value and the words read."""

    observation: str
    label: int
    text: str
    sentence: str


@LABELERS.register("rules")
class RuleLabeler(Labeler):
    """CheXpert-style rule labeler; ``phrases_dir`` swaps in another (versioned) phrase set.

    Sentence labels are memoised (reports repeat sentences a lot); ``cache_size=0`` turns that
    off, e.g. to time the labeler on unseen text. The cache never changes a label.
    """

    name = "rules"

    def __init__(self, phrases_dir: str | Path | None = None, *, cache_size: int = 200_000) -> None:
        self.phrases = load_phrases(PHRASES_DIR if phrases_dir is None else phrases_dir)
        self._matcher = PhraseMatcher(self.phrases.table)
        self._reader = ClauseReader(self.phrases)
        self._cache: dict[str, tuple[tuple[int, int], ...]] = {}
        self._cache_size = cache_size

    @property
    def version(self) -> str:
        return f"{RULES_VERSION}(phrases:{self.phrases.version})"

    def label(self, reports: Sequence[str]) -> np.ndarray:
        out = np.full((len(reports), len(OBSERVATIONS)), np.nan)   # (n_reports, 14)
        for i, report in enumerate(reports):
            out[i] = self.label_report(report)
        return out

    def label_report(self, report: str) -> np.ndarray:
        """(14,) labels of one report: 1 / 0 / -1 / NaN in OBSERVATIONS order."""
        row = np.full(len(OBSERVATIONS), np.nan)
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
        if not any(row[c] in (1, -1) for c in _PATHOLOGY_COLS):
            row[NO_FINDING] = 1
        return row

    def mentions(self, report: str) -> list[Mention]:
        """Every labelled statement of a report, in reading order (to see why a label is set)."""
        out = []
        for sentence in _SENTENCE_END.split(report):
            toks = words(sentence)
            for u in self._units(toks):
                out.append(Mention(OBSERVATIONS[u.col], u.label(),
                                   " ".join(toks[u.start:u.end]), sentence.strip()))
        return out

    def _units(self, toks: list[str]) -> list[Unit]:
        units: list[Unit] = []
        clause: list[Match] = []
        for m in self._matcher.scan(toks) + [Match(len(toks), len(toks), ((BOUNDARY, None),))]:
            if m.has(BOUNDARY):
                units += self._reader.units(toks, clause)
                clause = []
            else:
                clause.append(m)
        return sorted(units, key=lambda u: (u.start, u.end))
