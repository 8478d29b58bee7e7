"""sacrebleu-style signatures: every reported number carries a string of what produced it.

Example: ``BLEU-4|conv:r2gen|clean:r2gen-iu|ref:dataset|n:590|impl:uarbench-fast=pycocoevalcap-1.2|version:uarbench-0.1.0``.
Two numbers with different signatures are never comparable and never share a table column.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Signature:
    metric: str
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def with_fields(self, **kv: object) -> "Signature":
        """A copy with extra ``key:value`` parts appended (keys already present are replaced)."""
        merged = dict(self.fields)
        merged.update({k: str(v) for k, v in kv.items()})
        return Signature(self.metric, tuple(merged.items()))

    def __str__(self) -> str:
        return "|".join([self.metric, *(f"{k}:{v}" for k, v in self.fields)])

    @classmethod
    def parse(cls, text: str) -> "Signature":
        metric, *parts = text.split("|")
        return cls(metric, tuple(tuple(p.split(":", 1)) for p in parts))  # type: ignore[misc]
