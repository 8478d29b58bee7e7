"""The rule labeler's lexicon: versioned phrase files -> one table of phrases and their roles.

Every phrase the labeler reads lives in four JSON files under ``phrases/`` (mentions, negation,
uncertainty, scope); all carry one ``version`` and any change of a phrase bumps it, because a
phrase can move every clinical-efficacy number. :func:`load_phrases` checks them (one meaning per
phrase, known observations, same version) and :class:`PhraseMatcher` finds them in a sentence,
leftmost-longest. Words are lower-case ``[a-z0-9]+``: hyphens, slashes and commas count as
spaces, so raw report text and R2Gen-cleaned text (which has no commas) read alike, and the
IU-Xray de-identification token ``XXXX`` is the word ``xxxx`` (phrases may name it, e.g.
"costophrenic xxxx" for the masked "costophrenic angle").
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError

PHRASES_DIR = Path(__file__).with_name("phrases")
PHRASE_FILES = ("mentions", "negation", "uncertainty", "scope")

# phrase roles
FINDING, ATTRIBUTE, STATE, UNMENTION = "finding", "attribute", "state", "unmention"
NEG_PRE, NEG_POST, PSEUDO = "neg_pre", "neg_post", "pseudo"
UNC_PRE, UNC_EVIDENTIAL, UNC_POST, UNC_BOTH = "unc_pre", "unc_evidential", "unc_post", "unc_both"
BOUNDARY, BREAKER = "boundary", "breaker"
POSSIBLE = -2               # a finding raised only as a possibility (see uncertainty.json)
STATE_VALUE = {"abnormal": 1, "borderline": -1, "possible": POSSIBLE, "normal": 0}
OTHER = len(OBSERVATIONS)   # column of abnormal findings outside the 14 (blocks "No Finding")
OTHER_NAME = "Other abnormality"
HEDGE_TIERS = ("probable", "possible")      # the value of a hedge role (uncertainty.json)

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes dropped ("can't" -> "cant"), other marks are spaces."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


@dataclass(frozen=True)
class PhraseSet:
    """Every phrase with its roles (word tuple -> ((role, value), ...)) and the word classes that
    give a clause its structure (scope.json)."""

    version: int
    table: dict[tuple[str, ...], tuple[tuple[str, object], ...]]
    verbs: frozenset[str]           # finite verbs and auxiliaries: a new predicate
    predicates: frozenset[str]      # participles completing "is / are ..." ("seen", "identified")
    adverbs: frozenset[str]         # words that may sit inside a verb group ("again", "definitely")
    descriptors: frozenset[str]     # size / severity / course words that open a noun phrase
    list_continuers: frozenset[str]  # "or", "nor": the list of a negation goes on
    conjunctions: frozenset[str]    # words that join list items ("and", "or", ...)
    max_link_post: int              # words between two items of a list read backward


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


def _word_set(values: Iterable[str], where: Path, key: str) -> frozenset[str]:
    out = set()
    for v in values:
        toks = words(v)
        if len(toks) != 1:
            raise UarbenchError(f"{key}: {v!r} is not one word.", file=where,
                                fix="list single lower-case words here.")
        out.add(toks[0])
    return frozenset(out)


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

    try:
        mentions = data["mentions"]
        for obs, entry in mentions["observations"].items():
            if obs not in OBSERVATIONS or obs == "No Finding":
                raise UarbenchError(f"unknown observation {obs!r}.", file=folder / "mentions.json",
                                    fix=f"use one of {', '.join(OBSERVATIONS[1:])}.")
            col = OBSERVATIONS.index(obs)
            add(entry.get("findings", ()), FINDING, col, "mentions.json")
            add(entry.get("attributes", ()), ATTRIBUTE, col, "mentions.json")
            add(entry.get("unmentions", ()), UNMENTION, col, "mentions.json")
        add(mentions.get("other_abnormal", {}).get("findings", ()), FINDING, OTHER,
            "mentions.json")
        for kind, value in STATE_VALUE.items():
            add(mentions["states"][kind], STATE, value, "mentions.json")
        neg, unc, scope = data["negation"], data["uncertainty"], data["scope"]
        for role, phrases in ((NEG_PRE, neg["pre"]), (NEG_POST, neg["post"]),
                              (PSEUDO, neg["pseudo"]), (BOUNDARY, scope["clause_boundaries"]),
                              (BREAKER, scope["breakers"])):
            add(phrases, role, None, "phrase lists")
        for tier in HEDGE_TIERS:
            for role, key in ((UNC_PRE, "pre"), (UNC_EVIDENTIAL, "evidential"),
                              (UNC_POST, "post"), (UNC_BOTH, "both")):
                add(unc[tier].get(key, ()), role, tier, "uncertainty.json")
        sets = {k: _word_set(scope[k], folder / "scope.json", k)
                for k in ("verbs", "predicates", "adverbs", "descriptors", "list_continuers",
                          "conjunctions")}
        max_link_post = int(scope["max_link_post"])
    except KeyError as e:
        raise UarbenchError(f"missing key {e.args[0]!r}.", file=folder,
                            fix="compare the phrase files with uarbench/labeling/phrases/.") from None
    return PhraseSet(version=versions["mentions"], table={k: tuple(v) for k, v in table.items()},
                     max_link_post=max_link_post, **sets)


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
