"""Provenance of a reported number: code version (git commit, dirty flag), package versions,
machine, time and content hashes of the inputs."""
from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import uarbench

PACKAGES = ("torch", "numpy", "pandas", "scipy", "pycocoevalcap")


def git_state(path: Path | None = None) -> dict:
    """Commit and dirty flag of the uarbench checkout (None when not a git checkout)."""
    where = path or Path(uarbench.__file__).resolve().parents[1]
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                               timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    dirty = None if commit is None else bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"uarbench": uarbench.__version__, "python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(*, time: bool = True) -> dict:
    """Code, package and machine; with ``time``, when. Files that must come out byte-identical
    on a rerun (metrics.json, predictions) take ``time=False``: run.json records when."""
    out = {"git": git_state(), "versions": package_versions(),
           "machine": {"platform": platform.platform(), "processor": platform.machine()}}
    if time:
        out["time_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out
