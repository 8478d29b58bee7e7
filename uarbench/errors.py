"""One error type for bad input: it names the file, the record and the fix.

Every user-facing failure in uarbench (a missing file, a malformed record, an id that does not
match) raises :class:`UarbenchError`; the CLI prints its message and exits non-zero.
"""
from __future__ import annotations

from pathlib import Path


class UarbenchError(Exception):
    """A problem with the user's input, worded so the user can fix it."""

    def __init__(self, problem: str, *, file: str | Path | None = None,
                 record: str | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.record = record
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        where = [p for p in (self.file, None if self.record is None else f"record {self.record}") if p]
        text = (": ".join(where) + ": " if where else "") + self.problem
        if self.fix:
            text += f" Fix: {self.fix}"
        return text
