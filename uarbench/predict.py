"""Fit a registered model on a dataset and write its predictions for one split (JSONL with id,
prediction and the cleaned reference)."""
from __future__ import annotations

from pathlib import Path

from uarbench.data.datasets import Dataset
from uarbench.errors import UarbenchError
from uarbench.models import MODELS
from uarbench.store import write_predictions


def predict(model: str, dataset: Dataset, split: str, out: str | Path, **params) -> Path:
    """Fit the floor ``model`` (built with ``params``) and write its predictions for ``split``."""
    return fit_and_predict(model, dataset, split, out, **params)[1]


def fit_and_predict(model: str, dataset: Dataset, split: str, out: str | Path, **params):
    """(the fitted floor, the predictions file it wrote for ``split``)."""
    from uarbench.training.run import trainable
    if trainable(model):
        raise UarbenchError(f"model {model!r} is trained, not fitted.",
                            fix=f"use `uarbench train --model {model}` or a suite "
                                "(`uarbench run`).")
    studies = dataset.split(split)
    fitted = MODELS.get(model)(**params).fit(dataset)
    preds = fitted.predict(studies)
    return fitted, write_predictions(out, [s.id for s in studies], [preds[s.id] for s in studies],
                                     [dataset.clean(s.report) for s in studies])
