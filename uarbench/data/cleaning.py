"""R2Gen-compatible report cleaning (Chen et al., EMNLP 2020), IU-Xray and MIMIC-CXR variants.

Behaviour reproduced from the R2Gen tokenizer (written here from its documented behaviour, not
copied): collapse repeated periods, strip list numbering ("1. ", " 2. " ...), lowercase, split
into sentences on ". ", drop quotes / slashes / backslashes / apostrophes and the punctuation
class ``[.,?;*!%^&_+():-\\[\\]{}]`` (whose ``:-\\[`` is a *range*, so ``<=>?@`` go too), then join the
sentences with " . " and end with " .". R2Gen keeps empty sentences (its emptiness test compares
a string with a list and is always true); so do we, for compatibility.

One deliberate difference, needed for exact scoring: runs of whitespace are collapsed to one
space. R2Gen's word tokenizer splits on any whitespace so it never sees them, but
pycocoevalcap's ROUGE-L splits on single spaces and would count empty tokens. With the
collapse, cleaning is idempotent (cleaning a cleaned report returns it unchanged), so the same
function can be applied to references and to predictions. An empty or blank input stays "".
"""
from __future__ import annotations

import re
from typing import Callable

from uarbench.registry import Registry

CLEANERS: Registry[Callable[[str], str]] = Registry("report cleaning")

_PUNCT = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")
_NUMBERING = (("1. ", ""), (". 2. ", ". "), (". 3. ", ". "), (". 4. ", ". "), (". 5. ", ". "),
              (" 2. ", ". "), (" 3. ", ". "), (" 4. ", ". "), (" 5. ", ". "))
_IU_PRE = (("..", "."),) * 3 + _NUMBERING
_MIMIC_PRE = ((("\n", " "),) + (("__", "_"),) * 7 + (("  ", " "),) * 6 + (("..", "."),) * 8
              + _NUMBERING)


def _replace_all(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def _clean_sentence(sentence: str) -> str:
    for ch in ('"', "/", "\\", "'"):
        sentence = sentence.replace(ch, "")
    return _PUNCT.sub("", sentence.strip().lower())


def _clean(report: str, pre: tuple[tuple[str, str], ...]) -> str:
    if not report.strip():
        return ""
    sentences = _replace_all(report, pre).strip().lower().split(". ")
    joined = " . ".join(_clean_sentence(s) for s in sentences) + " ."
    return " ".join(joined.split())


@CLEANERS.register("r2gen-iu")
def clean_report_iu_xray(report: str) -> str:
    """R2Gen's IU-Xray cleaning (plus whitespace collapse, see module docstring)."""
    return _clean(report, _IU_PRE)


@CLEANERS.register("r2gen-mimic")
def clean_report_mimic_cxr(report: str) -> str:
    """R2Gen's MIMIC-CXR cleaning: also newlines, repeated underscores and spaces."""
    return _clean(report, _MIMIC_PRE)
