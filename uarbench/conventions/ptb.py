"""``ptb``: pycocoevalcap's PTBTokenizer on both sides, the COCO-caption default.

Both sides go through ``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer`` (Stanford CoreNLP
3.4.1's PTB tokenizer, lowercased, its punctuation tokens removed), called once per side as
COCO's evaluation does. Needs Java and a writable pycocoevalcap folder (the tokenizer writes its
input file beside its jar); without them the convention is "unavailable: <reason>".

One guard: the tokenizer reads one caption per line and only replaces ``\\n`` inside a caption,
so a carriage return (or another character Java reads as a line end) would shift every later
caption onto the wrong study. Those characters become spaces first (this changes no token), and
the number of lines that come back is checked. The JVM's progress line on stderr is kept out
of the user's output (and put into the error message if the call fails). Signature:
``conv:ptb|tok:corenlp-3.4.1``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from uarbench.conventions.base import CONVENTIONS, Convention
from uarbench.metrics.base import MetricUnavailable

_LINE_ENDS = str.maketrans({c: " " for c in "\r\x0b\x0c\x85\u2028\u2029"})


class PTBTokenization(Convention):
    name = "ptb"
    summary = ("pycocoevalcap's PTBTokenizer on both sides (lowercase, punctuation tokens "
               "removed), the COCO-caption default; needs Java")

    def unavailable_reason(self) -> str | None:
        if shutil.which("java") is None:
            return "unavailable: the ptb convention needs Java (PTBTokenizer); none on PATH"
        try:
            from pycocoevalcap.tokenizer import ptbtokenizer
        except ImportError as e:
            return f"unavailable: pycocoevalcap is not installed ({e})"
        folder = Path(ptbtokenizer.__file__).parent
        if not (folder / ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR).is_file():
            return f"unavailable: {ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR} missing in {folder}"
        if not os.access(folder, os.W_OK):
            return f"unavailable: PTBTokenizer writes its input beside its jar; {folder} is read-only"
        return None

    def prepare(self, texts: Sequence[str]) -> list[str]:
        reason = self.unavailable_reason()
        if reason is not None:
            raise MetricUnavailable(reason.removeprefix("unavailable: "))
        if not texts:
            return []
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
        keys = [str(i) for i in range(len(texts))]
        captions = {k: [{"caption": t.translate(_LINE_ENDS)}] for k, t in zip(keys, texts)}
        with _stderr_captured() as err:
            try:
                out = PTBTokenizer().tokenize(captions)
            except (OSError, ValueError) as e:
                raise MetricUnavailable(f"PTBTokenizer failed: {e} {err.read()}") from None
        if len(out) != len(keys) or any(len(out.get(k, ())) != 1 for k in keys):
            raise MetricUnavailable(f"PTBTokenizer returned {len(out)} captions for "
                                    f"{len(keys)} texts")
        return [out[k][0] for k in keys]

    def parameters(self) -> tuple[tuple[str, str], ...]:
        return (("tok", "corenlp-3.4.1"),)


class _Captured:
    def __init__(self, f) -> None:
        self._f = f

    def read(self) -> str:
        self._f.seek(0)
        return self._f.read().decode(errors="replace").strip()


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Captured]:
    """The JVM's stderr (a "PTBTokenizer tokenized N tokens" line per call) into a temporary
    file instead of the user's terminal; its text is kept for an error message."""
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            yield _Captured(f)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@CONVENTIONS.register("ptb")
def ptb(*, dataset=None, cleaning: str | None = None) -> Convention:
    return PTBTokenization()
