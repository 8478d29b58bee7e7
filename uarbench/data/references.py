"""Reference modes: what text a prediction is scored against.

``clean`` (default): the cleaned *full* report. ``r2gen_compat``: R2Gen's way, the report
encoded with the training vocabulary (unknown words -> <unk>) and cut to max_seq_length - 1
words, which inflates scores (R2Gen issues 3 and 10); its signature says so.
"""
from __future__ import annotations

from typing import Callable

from uarbench.data.datasets import Dataset
from uarbench.registry import Registry

REFERENCE_MODES: Registry[Callable[[Dataset, str], str]] = Registry("reference mode")


@REFERENCE_MODES.register("clean")
def clean_reference(dataset: Dataset, report: str) -> str:
    return dataset.clean(report)


@REFERENCE_MODES.register("r2gen_compat")
def r2gen_reference(dataset: Dataset, report: str) -> str:
    tok = dataset.tokenizer
    return tok.decode(tok.encode(dataset.clean(report))[1:])


def reference_signature(mode: str, dataset: Dataset | None) -> str:
    """The ``ref:`` part of a metric signature."""
    if mode == "r2gen_compat" and dataset is not None:
        t = dataset.tokenizer
        return f"r2gen-compat(trunc{t.max_seq_length - 1},unk@{t.threshold})"
    return mode


def dataset_references(dataset: Dataset, split: str, mode: str = "clean") -> dict[str, str]:
    fn = REFERENCE_MODES.get(mode)
    return {s.id: fn(dataset, s.report) for s in dataset.split(split)}
