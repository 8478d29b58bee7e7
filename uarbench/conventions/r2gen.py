"""``r2gen``: R2Gen's report cleaning on both sides (uarbench's default).

Both the prediction and the reference go through the dataset's R2Gen cleaner
(:mod:`uarbench.data.cleaning`: lowercase, punctuation dropped, " . " between sentences), or the
cleaner given with ``--cleaning``; ``r2gen-iu`` when neither names one. The reference is the full
report. Signature: ``conv:r2gen|clean:<cleaner>``.
"""
from __future__ import annotations

from typing import Sequence

from uarbench.conventions.base import CONVENTIONS, Convention
from uarbench.data.cleaning import CLEANERS


def cleaner_name(dataset, cleaning: str | None) -> str:
    """The cleaner a job uses: ``--cleaning``, else the dataset's, else R2Gen's IU-Xray one."""
    name = cleaning or (dataset.spec.cleaning if dataset is not None else "r2gen-iu")
    CLEANERS.get(name)        # an unknown name is one clear error here
    return name


class R2GenCleaning(Convention):
    name = "r2gen"
    summary = ("R2Gen's cleaning of both sides (lowercase, punctuation dropped, ' . ' between "
               "sentences), full references; uarbench's default")

    def __init__(self, cleaning: str) -> None:
        self.cleaning = cleaning
        self._clean = CLEANERS.get(cleaning)

    def prepare(self, texts: Sequence[str]) -> list[str]:
        return [self._clean(t) for t in texts]

    def parameters(self) -> tuple[tuple[str, str], ...]:
        return (("clean", self.cleaning),)


@CONVENTIONS.register("r2gen")
def r2gen(*, dataset=None, cleaning: str | None = None) -> Convention:
    return R2GenCleaning(cleaner_name(dataset, cleaning))
