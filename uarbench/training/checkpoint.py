"""Checkpoints: written atomically, read with ``weights_only=True``, and they store their config."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_bytes


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue(), fault=f"checkpoint_write:{Path(path).name}")


def load_checkpoint(path: str | Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:
        raise UarbenchError(f"cannot read checkpoint: {e}.", file=path,
                            fix="delete it to start the run again.") from None
