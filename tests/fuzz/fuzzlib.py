"""Shared pieces of the fuzz tests (tests/fuzz): hypothesis settings, the property every
generated input is checked against, and small byte-level damage helpers.

The property (:func:`check`): calling a library entry point on a generated input either
succeeds, and then only when the input was not known to be malformed, or raises
:class:`UarbenchError` whose message names the damaged file; any other exception fails the
test with the input that caused it, and after a failure none of the output files exists.
"""
from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from hypothesis import HealthCheck, settings

from uarbench.errors import UarbenchError

# reproducible in CI: a fixed seed, no example database written into the checkout, no
# per-example deadline (a shared 2-core runner is noisy); the inputs are files on disk
FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much, HealthCheck.large_base_example,
                                   HealthCheck.function_scoped_fixture])
MIN_CASES = 100          # issue 14: at least 100 generated malformed inputs per kind

MUST_FAIL, EITHER, MUST_PASS = "must fail", "either", "must pass"


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=n, **FUZZ)


@contextmanager
def scratch() -> Iterable[Path]:
    """A fresh temporary folder per generated example (pytest's tmp_path is per test)."""
    d = Path(tempfile.mkdtemp(prefix="uarbench-fuzz-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Tally:
    """Counts generated cases by mutation and by outcome (reported by the tests)."""

    def __init__(self) -> None:
        self.mutations: Counter = Counter()
        self.outcomes: Counter = Counter()

    @property
    def cases(self) -> int:
        return sum(self.outcomes.values())

    @property
    def malformed(self) -> int:
        """Cases known to be malformed (expected to fail) that did fail with UarbenchError."""
        return self.outcomes["refused (malformed)"]

    def summary(self, kind: str) -> str:
        """One line for the test log (``pytest -s``) and for a failing count."""
        return (f"{kind}: {self.cases} cases; outcomes {dict(self.outcomes)}; "
                f"mutations {dict(sorted(self.mutations.items()))}")


def check(call: Callable[[], object], *, expect: str, names: Iterable[str],
          outputs: Iterable[Path] = (), tally: Tally | None = None, what: str = "") -> object:
    """Run ``call`` and assert the property of the module docstring.

    ``expect``: MUST_FAIL (the input is malformed), EITHER (a mutation that may be harmless)
    or MUST_PASS (a valid input). ``names``: file names, one of which the error must name.
    ``outputs``: files that must not exist after a failure."""
    names = [str(n) for n in names]
    outputs = list(outputs)
    try:
        result = call()
    except UarbenchError as e:
        text = str(e)
        assert expect != MUST_PASS, f"{what}: a valid input was refused: {text}"
        assert any(n in text for n in names), \
            f"{what}: the error does not name the file ({' or '.join(names)}): {text}"
        assert "Traceback" not in text
        left = [str(p) for p in outputs if os.path.lexists(p)]
        assert not left, f"{what}: failed ({text}) but left output files behind: {left}"
        if tally is not None:
            tally.outcomes["refused (malformed)" if expect == MUST_FAIL
                           else "refused (questionable)"] += 1
        return e
    assert expect != MUST_FAIL, f"{what}: a malformed input was accepted"
    if tally is not None:
        tally.outcomes["accepted"] += 1
    return result


# --- byte-level damage -------------------------------------------------------------------------

def cut(data: bytes, at: int) -> bytes:
    """``data`` cut short at ``at`` (0 <= at < len(data))."""
    return data[: max(0, min(at, len(data) - 1))]


def insert(data: bytes, at: int, piece: bytes) -> bytes:
    at = max(0, min(at, len(data)))
    return data[:at] + piece + data[at:]


# --- images ------------------------------------------------------------------------------------

def _png(size: int = 16) -> bytes:
    import random

    from PIL import Image
    rng = random.Random(0)
    im = Image.frombytes("L", (size, size), bytes(rng.randrange(256) for _ in range(size * size)))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 90, 90)).save(buf, format="JPEG")
    return buf.getvalue()


PNG, JPEG = _png(), _jpeg()
# a cut inside the last bytes (zlib checksum, IDAT CRC, IEND) keeps every pixel: PIL decodes it
PNG_TRAILER = 20


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header (with a correct CRC) claims ``width`` x ``height`` and has no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")
