"""Fit a registered model on a dataset and write its predictions for one split (JSONL with id,
prediction and the cleaned reference)."""
from __future__ import annotations

from pathlib import Path

from uarbench.data.datasets import Dataset
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_jsonl
from uarbench.models import MODELS


def predict(model: str, dataset: Dataset, split: str, out: str | Path, **params) -> Path:
    """Fit the floor ``model`` (built with ``params``) and write its predictions for ``split``."""
    from uarbench.training.run import trainable
    if trainable(model):
        raise UarbenchError(f"model {model!r} is trained, not fitted.",
                            fix=f"use `uarbench train --model {model}` or a suite "
                                "(`uarbench run`).")
    studies = dataset.split(split)
    preds = MODELS.get(model)(**params).fit(dataset).predict(studies)
    rows = ({"id": s.id, "prediction": preds[s.id], "reference": dataset.clean(s.report)}
            for s in studies)
    return atomic_write_jsonl(out, rows)
