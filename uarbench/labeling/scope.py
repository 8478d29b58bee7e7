"""Negation and uncertainty scope over a clause's phrase structure (the rule labeler, rules-v2).

Why patterns and not a parser: a dependency parse would give the scope most directly (NegBio,
the CheXpert labeler's negation stage, matches patterns over one), but no English parser model
installs from the package registries here (spaCy's and stanza's models are downloads from
GitHub / Hugging Face, benepar's too), and the fastest of them parses ~10k words/s per core,
several times over the budget of 10,000 reports in 30 s. So the scope follows the shape of a
clause that chest-radiograph reports actually use, read from word classes (scope.json):

  clause     sentence split at . ; : ! ? and again at "but", "however", "although", "which",
             "otherwise" ... (clause boundaries): nothing reaches across.
  unit       one statement about one observation: a finding phrase ("pleural effusion"), or an
             attribute with its state word ("heart size ... normal", "enlarged cardiac
             silhouette").
  pre        a trigger before its units ("no", "without", "free of", "no evidence of",
             "negative for", "possible", "may represent", "suggestive of") reaches forward over
             the rest of the noun-phrase list, whatever its length and modifiers ("no focal
             consolidation, suspicious opacity, large pleural effusion, or pneumothorax"), and
             stops at: the clause end; a breaker ("with", "there", "also"); a pseudo-negation
             ("no change in"); another trigger, which takes over; a finite verb that opens a new
             predicate ("no effusion; the heart is enlarged"), unless the verb only completes the
             negated subject ("no pneumothorax *is seen* to suggest ...", a predicate word).
             A list without "or" / "nor" ends where an item opens with a size or course word
             ("no pneumothorax, small left effusion": the effusion is positive); with one later
             in the list, such items stay inside ("no X, large Y, or Z": all negative).
             An evidential trigger inside a running negation continues it ("no opacity to
             suggest pneumonia"); elsewhere it hedges ("opacity suggestive of pneumonia").
  post       a trigger after its units ("is not seen", "has resolved", "removed", "cannot be
             excluded", "is in the differential") reaches back over the nearest unit and the
             items joined to it by a conjunction, never over another predicate's verb. A normal
             state after a finding ("vascular engorgement appears within normal limits") works
             as a post negation, but only next to it (the verb group between).
  versus     hedges the nearest unit before it and the list after it.

A unit is uncertain if any trigger that reaches it hedges, else negative if one negates it, else
its own value. Triggers inside an attribute's span ("the heart is *not* enlarged") apply to that
attribute only, and a normal-state attribute takes only those ("heart size is not normal").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from uarbench.labeling.lexicon import (
    ATTRIBUTE, BREAKER, FINDING, NEG_POST, NEG_PRE, POSSIBLE, PSEUDO, STATE, UNC_BOTH,
    UNC_EVIDENTIAL,
    UNC_POST, UNC_PRE, Match, PhraseSet,
)

NEG, UNC, POSS = "neg", "unc", "poss"     # negated, probable hedge, possible hedge
_NEG_ROLES = (NEG_PRE, NEG_POST)
_HEDGE_ROLES = (UNC_PRE, UNC_EVIDENTIAL, UNC_POST, UNC_BOTH)
_PRE_ROLES = (NEG_PRE, UNC_PRE, UNC_EVIDENTIAL, UNC_BOTH)
_POST_ROLES = (NEG_POST, UNC_POST, UNC_BOTH)


@dataclass
class Unit:
    """One statement about one observation: a finding, or an attribute with its state word."""

    col: int
    base: int                   # 1 / -1 / 0 before triggers
    start: int
    end: int
    cue: Match                  # the finding or attribute phrase
    state: Match | None = None
    reached: set[str] = field(default_factory=set)  # "neg" / "unc" from triggers outside it
    inside: set[str] = field(default_factory=set)   # from triggers inside its span

    def label(self) -> int:
        """1 / 0 / -1, or POSSIBLE (-2) for a finding raised only as a possibility."""
        kinds = self.inside if self.base == 0 else self.reached | self.inside
        if UNC in kinds:
            return -1
        if POSS in kinds:
            return POSSIBLE
        if NEG in kinds:
            return 1 if self.base == 0 else 0
        return self.base

    @property
    def lead(self) -> tuple[int, int]:
        """Span of a state word that opens the unit ("enlarged heart"), else empty."""
        if self.state is not None and self.state.start < self.cue.start:
            return self.state.start, self.state.end
        return self.start, self.start


def _kind(m: Match, role: str) -> str:
    """neg / unc / poss of a trigger phrase in one of its roles."""
    if role in _NEG_ROLES:
        return NEG
    return UNC if m.value(role) == "probable" else POSS


def _role(m: Match) -> str | None:
    for role in (BREAKER, PSEUDO, *_PRE_ROLES, *_POST_ROLES):
        if m.has(role):
            return role
    return None


class ClauseReader:
    """Turns the phrase matches of one clause into labelled units."""

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
        units.sort(key=lambda u: (u.start, u.end))
        free: list[Match] = []          # matches outside every attribute's span
        for m in matches:
            owners = [u for u in units if u.state is not None and u.start <= m.start
                      and m.end <= u.end and m is not u.cue and m is not u.state]
            for u in owners:
                u.inside.update(_kind(m, r) for r, _ in m.roles if r in _NEG_ROLES + _HEDGE_ROLES)
            if not owners and not m.has(FINDING) and not m.has(ATTRIBUTE):
                free.append(m)
        starts = {m.start: m for m in free}
        covering = {i: m for m in free for i in range(m.start, m.end)}
        # a state that opens its attribute ("normal size of the heart") says nothing of what
        # comes before it; one after its attribute ("heart and X are normal") may
        leading = {id(u.state) for u in units if u.state is not None and u.state.start < u.cue.start}
        negated, absorbed = set(), set()       # word positions inside a negation / a hedge's scope
        for m in free:
            role = _role(m)
            if role in _PRE_ROLES and m.start not in absorbed and not (
                    role == UNC_EVIDENTIAL and m.start in negated):
                kind = _kind(m, role)
                covered = self._forward(toks, starts, units, m, kind)
                (negated if kind == NEG else absorbed).update(covered)
        for m in free:
            role = _role(m)
            if role in _POST_ROLES and m.start not in absorbed:
                self._backward(toks, covering, units, m, _kind(m, role),
                               nearest_only=role == UNC_BOTH, adjacent=False)
            elif m.has(STATE) and m.value(STATE) == 0 and id(m) not in leading:
                self._backward(toks, covering, units, m, NEG, nearest_only=False, adjacent=True)
        return units

    # --- attributes ---------------------------------------------------------------------------
    def _state_for(self, attr: Match, matches: Sequence[Match]) -> Match | None:
        """Adjacent state before the attribute, else the first after it, else the nearest before."""
        i = matches.index(attr)
        before = self._walk(reversed(matches[:i]))
        if before is not None and attr.start - before.end <= 3 and not any(
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

    # --- forward (pre triggers) -----------------------------------------------------------------
    def _forward(self, toks: Sequence[str], starts: dict[int, Match], units: list[Unit],
                 trigger: Match, kind: str) -> set[int]:
        """Mark the units a pre trigger reaches; returns the word positions its scope covers (an
        evidential trigger inside a negation continues it; a "versus" inside a hedge takes the
        hedge's tier: "possible infiltrate versus atelectasis" raises both as possibilities)."""
        stop, links = self._forward_stop(toks, starts, trigger.end, kind)
        inside = [u for u in units if trigger.end <= u.start and u.end <= stop and u.base != 0]
        prev_end, taken = trigger.end, 0
        for u in inside:
            if u.start < prev_end:
                continue
            if taken:
                lead0, lead1 = u.lead
                gap = list(toks[prev_end:u.start]) + list(toks[lead0:lead1])
                if not links.intersection(range(prev_end, u.start)) \
                        and not self.ph.list_continuers.intersection(gap) \
                        and self.ph.descriptors.intersection(gap) \
                        and not self.ph.list_continuers.intersection(toks[u.start:stop]):
                    stop = u.start
                    break
            u.reached.add(kind)
            prev_end, taken = u.end, taken + 1
        return set(range(trigger.end, stop))

    def _forward_stop(self, toks: Sequence[str], starts: dict[int, Match], i: int,
                      kind: str) -> tuple[int, set[int]]:
        """Where a pre trigger's scope ends, and the positions of the evidential phrases it reads
        through (they link what follows to the negated subject: no new list item starts there)."""
        n, links = len(toks), set()
        while i < n:
            m = starts.get(i)
            if m is not None:
                role = _role(m)
                if (role == UNC_EVIDENTIAL and kind == NEG) or (role == UNC_BOTH and kind != NEG):
                    links.update(range(m.start, m.end))
                    i = m.end                   # "no opacity to suggest pneumonia",
                    continue                    # "possible infiltrate versus atelectasis"
                if role is not None:
                    return i, links
                i = m.end
                continue
            if toks[i] in self.ph.verbs:
                j = i + 1
                while j < n and j not in starts and (toks[j] in self.ph.verbs
                                                     or toks[j] in self.ph.adverbs):
                    j += 1
                if j < n and j not in starts and toks[j] in self.ph.predicates:
                    i = j + 1                   # "no pneumothorax is (definitely) seen"
                    continue
                return i, links
            i += 1
        return n, links

    # --- backward (post triggers, normal states) ------------------------------------------------
    def _backward(self, toks: Sequence[str], covering: dict[int, Match], units: list[Unit],
                  trigger: Match, kind: str, *, nearest_only: bool, adjacent: bool) -> None:
        start = self._backward_start(toks, covering, trigger.start)
        anchor, first = trigger.start, True
        for u in reversed([u for u in units if start <= u.start and u.end <= trigger.start]):
            if u.base == 0:
                continue
            gap = toks[u.end:anchor]
            if first:
                if adjacent and any(w not in self.ph.verbs and w not in self.ph.adverbs
                                    for w in gap):
                    return
            elif gap and not (len(gap) <= self.ph.max_link_post
                              and self.ph.conjunctions.intersection(gap)):
                return
            u.reached.add(kind)
            anchor, first = u.start, False
            if nearest_only:
                return

    def _backward_start(self, toks: Sequence[str], covering: dict[int, Match], end: int) -> int:
        """First word a post trigger at ``end`` may reach: after the last stop before it."""
        own_verbs = True                # the verb group right before the trigger is its own
        i = end - 1
        while i >= 0:
            m = covering.get(i)
            if m is not None:
                if _role(m) is not None:
                    return m.end
                own_verbs, i = False, m.start - 1
                continue
            w = toks[i]
            if w in self.ph.verbs and not own_verbs:
                return i + 1
            own_verbs = own_verbs and w in self.ph.verbs | self.ph.adverbs
            i -= 1
        return 0
