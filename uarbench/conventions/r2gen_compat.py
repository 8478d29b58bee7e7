"""``r2gen_compat``: R2Gen's own evaluation, with truncated, ``<unk>``-mapped references.

Predictions are cleaned as under ``r2gen``. Each reference is cleaned, encoded with the
training split's vocabulary (words under the count threshold become ``<unk>``) and cut to
``max_seq_length - 1`` words, as R2Gen's data loader hands it to its scorer. This inflates the
scores (R2Gen issues 3 and 10) and is here to reproduce R2Gen-line numbers. It needs the
dataset (its vocabulary), so not a references file. Signature:
``conv:r2gen_compat|clean:<cleaner>|vocab:trunc<L>,unk@<threshold>``.
"""
from __future__ import annotations

from typing import Sequence

from uarbench.conventions.base import CONVENTIONS, Convention
from uarbench.conventions.r2gen import R2GenCleaning, cleaner_name
from uarbench.errors import UarbenchError


class R2GenCompat(R2GenCleaning):
    name = "r2gen_compat"
    summary = ("as r2gen, but references encoded with the training vocabulary (<unk>) and cut "
               "to max_seq_length - 1 words, as R2Gen scores (needs --dataset)")

    def __init__(self, cleaning: str, dataset) -> None:
        super().__init__(cleaning)
        self.tokenizer = dataset.tokenizer

    def prepare_references(self, texts: Sequence[str]) -> list[str]:
        tok = self.tokenizer
        return [tok.decode(tok.encode(c)[1:]) for c in self.prepare(texts)]

    def parameters(self) -> tuple[tuple[str, str], ...]:
        t = self.tokenizer
        return (*super().parameters(), ("vocab", f"trunc{t.max_seq_length - 1},unk@{t.threshold}"))


@CONVENTIONS.register("r2gen_compat")
def r2gen_compat(*, dataset=None, cleaning: str | None = None) -> Convention:
    if dataset is None:
        raise UarbenchError("the r2gen_compat convention needs the dataset's training "
                            "vocabulary.", fix="score against --dataset NAME [--data-root R], "
                            "not a references file.")
    return R2GenCompat(cleaner_name(dataset, cleaning), dataset)
