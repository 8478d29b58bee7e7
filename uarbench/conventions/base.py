"""A scoring convention: how report text becomes the strings that pycocoevalcap scores.

The field's NLG numbers depend on what is done to both sides before BLEU / METEOR / ROUGE-L /
CIDEr see them (EVALUATION.md): R2Gen's cleaning, R2Gen's truncated ``<unk>`` references, the
period-spacing of the CvT2DistilGPT2 line of repositories, COCO's PTB tokenizer. A convention
names one such choice. It is part of every NLG and CE signature (``conv:NAME`` plus its
parameters), so numbers scored under different conventions never share a table column.

A convention is built for one scoring job by its registered factory,
``CONVENTIONS.get(name)(dataset=..., cleaning=...)``: ``dataset`` is the loaded dataset when the
references come from one (``r2gen_compat`` needs its training vocabulary), ``cleaning`` a
:data:`uarbench.data.cleaning.CLEANERS` name chosen by the user. Both sides go through
:meth:`Convention.prepare` (references through :meth:`Convention.prepare_references`, which
differs only for ``r2gen_compat``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, Sequence

from uarbench.registry import Registry

if TYPE_CHECKING:
    from uarbench.data.datasets import Dataset

DEFAULT_CONVENTION = "r2gen"


class Convention(ABC):
    """One way of preparing predictions and references for scoring."""

    name: str = ""
    summary: str = ""          # one line, shown by --help and the README

    def unavailable_reason(self) -> str | None:
        """None when the convention can run here, else a one-line reason."""
        return None

    @abstractmethod
    def prepare(self, texts: Sequence[str]) -> list[str]:
        """The strings scored for these (prediction) texts, in order."""

    def prepare_references(self, texts: Sequence[str]) -> list[str]:
        """The strings scored for these reference texts (default: as predictions)."""
        return self.prepare(texts)

    def parameters(self) -> tuple[tuple[str, str], ...]:
        """Signature fields after ``conv:NAME`` (what else fixes the strings)."""
        return ()

    def signature_fields(self) -> tuple[tuple[str, str], ...]:
        return (("conv", self.name), *self.parameters())


# name -> factory(dataset=..., cleaning=...) -> Convention; the built-ins, one module each,
# imported when first asked for (uarbench.registry)
CONVENTIONS: Registry[Callable[..., Convention]] = Registry("scoring convention", lazy={
    "r2gen": "uarbench.conventions.r2gen:r2gen",
    "r2gen_compat": "uarbench.conventions.r2gen_compat:r2gen_compat",
    "dotspace": "uarbench.conventions.dotspace:dotspace_convention",
    "dotspace-lower": "uarbench.conventions.dotspace:dotspace_lower_convention",
    "ptb": "uarbench.conventions.ptb:ptb",
})


def make_convention(name: str, *, dataset: "Dataset | None" = None,
                    cleaning: str | None = None) -> Convention:
    """The convention ``name`` for one scoring job (see the module docstring)."""
    return CONVENTIONS.get(name)(dataset=dataset, cleaning=cleaning)
