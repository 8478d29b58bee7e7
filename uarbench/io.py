"""Atomic file writes (temp file in the same folder, fsync, rename) and small readers.

A crash or an interrupt mid-write leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from uarbench import faults


def default_cache_dir() -> Path:
    """Where generated data and fitted tokenizers are cached: $UARBENCH_CACHE or ~/.cache/uarbench."""
    return Path(os.environ.get("UARBENCH_CACHE") or Path.home() / ".cache" / "uarbench")


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes, *, fault: str | None = None) -> Path:
    """``fault``: a :mod:`uarbench.faults` point reached between the write and the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if fault is not None:
            faults.checkpoint(fault)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_temp_files(*folders: str | Path) -> None:
    """Delete what :func:`atomic_write_bytes` leaves in ``folders`` when a kill interrupts it
    (``.NAME.XXXXXXXX.tmp``, possibly checkpoint-sized). Only while no write is in progress."""
    for folder in folders:
        for p in Path(folder).glob(".*.tmp"):
            p.unlink(missing_ok=True)


def parse_json(text: str, path: str | Path, *, fix: str) -> Any:
    """``json.loads`` whose failures are one :class:`UarbenchError` naming the file: invalid
    JSON (line, column) and JSON nested too deeply for the parser (a RecursionError otherwise).
    """
    from uarbench.errors import UarbenchError
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UarbenchError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}.",
                            file=path, fix=fix) from None
    except RecursionError:
        raise UarbenchError("JSON nested too deeply to read.", file=path, fix=fix) from None


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON-lines text: split on "\\n" only (a "\\r" before it is JSON
    whitespace). Not ``str.splitlines``: it also splits on U+2028, U+2029 and U+0085, which
    ``json.dumps(..., ensure_ascii=False)`` leaves unescaped inside strings, so a report holding
    one would be cut in two."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
