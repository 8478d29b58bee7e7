"""Word tokenizer over cleaned reports, built from the training split only (R2Gen convention).

Differences from R2Gen, on purpose: pad, bos, eos and unk have distinct ids (R2Gen uses 0 for
pad, bos and eos alike), and the vocabulary is stored with its content hash. Like R2Gen, words
with count >= threshold are kept (3 for IU-Xray, 10 for MIMIC-CXR), sorted, and an encoded
report is ``[bos] + ids + [eos]`` truncated to ``max_seq_length`` positions (so at most
``max_seq_length - 1`` words after bos, and the eos is cut from over-long reports).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


@dataclass(frozen=True)
class WordTokenizer:
    words: tuple[str, ...]          # the kept vocabulary, sorted; ids start after the specials
    threshold: int
    max_seq_length: int
    # the specials take the first ids, in SPECIALS order (UARConfig's pad 0 / bos 1 / eos 2)
    pad_id: ClassVar[int] = SPECIALS.index(PAD)
    bos_id: ClassVar[int] = SPECIALS.index(BOS)
    eos_id: ClassVar[int] = SPECIALS.index(EOS)
    unk_id: ClassVar[int] = SPECIALS.index(UNK)

    @classmethod
    def build(cls, cleaned_reports: Iterable[str], *, threshold: int,
              max_seq_length: int) -> "WordTokenizer":
        counts = Counter(w for r in cleaned_reports for w in r.split())
        return cls(tuple(sorted(w for w, c in counts.items() if c >= threshold)),
                   threshold, max_seq_length)

    def __post_init__(self) -> None:
        ids = {tok: i for i, tok in enumerate(SPECIALS + self.words)}
        object.__setattr__(self, "_ids", ids)

    def __len__(self) -> int:
        """Size of the id space, specials included (the embedding table's row count)."""
        return len(SPECIALS) + len(self.words)

    def token_id(self, word: str) -> int:
        return self._ids.get(word, self.unk_id)  # type: ignore[attr-defined]

    def encode(self, cleaned_report: str) -> list[int]:
        ids = [self.bos_id, *(self.token_id(w) for w in cleaned_report.split()), self.eos_id]
        return ids[: self.max_seq_length]

    def decode(self, ids: Sequence[int]) -> str:
        """Words up to the first eos; bos and pad are skipped, unknown ids become <unk>."""
        vocab = SPECIALS + self.words
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(vocab[i] if 0 <= i < len(vocab) else UNK)
        return " ".join(out)

    def to_dict(self) -> dict:
        return {"words": list(self.words), "threshold": self.threshold,
                "max_seq_length": self.max_seq_length, "specials": list(SPECIALS)}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        return cls(tuple(d["words"]), int(d["threshold"]), int(d["max_seq_length"]))

    def content_hash(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
