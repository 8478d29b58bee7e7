"""CheXbert (Smit et al., EMNLP 2020) as a :class:`~uarbench.labeling.base.Labeler`, from a
checkpoint file the user supplies.

Hand-written adapter, not a wrapper of ``f1chexbert``: that package has no checkpoint-path
argument (it reads ``$XDG_CACHE_HOME/chexbert/chexbert.pth`` and downloads ``bert-base-uncased``
from the hub), and importing it silences all warnings process-wide. The architecture is the
published one, rebuilt here from ``transformers``' ``BertModel``:

- a BERT-base encoder; the [CLS] vector of its last layer feeds 14 linear heads;
- heads 0-12 (the 13 conditions of :data:`CHEXBERT_CONDITIONS`) have 4 classes, in CheXbert's
  order 0 blank, 1 positive, 2 negative, 3 uncertain; head 13 (No Finding) has 2 classes,
  0 blank, 1 positive (CheXbert ``src/label.py``; f1chexbert 0.0.2 ``get_label``);
- reports are cleaned as CheXbert does (strip, line breaks to spaces, runs of whitespace to one
  space), WordPiece-tokenised, wrapped in [CLS] ... [SEP] and truncated to 512 ids
  (``ids[:511] + [SEP]``); an empty report is ``[CLS] [SEP]``.

Checkpoint format (CheXbert / f1chexbert): ``{"model_state_dict": {"module.bert.<...>": tensor,
"module.linear_heads.<i>.weight|bias": tensor}}``; the ``module.`` prefix (DataParallel) is
stripped. Heads map to :data:`~uarbench.data.chexpert.OBSERVATIONS` columns by name. Nothing is
ever downloaded: the tokenizer and the encoder config come from ``bert_dir`` with
``local_files_only=True`` and the encoder weights from the checkpoint.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from uarbench.data.chexpert import OBSERVATIONS
from uarbench.errors import UarbenchError
from uarbench.labeling.base import LABELERS, Labeler
from uarbench.metrics.base import MetricUnavailable
from uarbench.provenance import file_sha256

# CheXbert's head order (its training CSV columns), not the CheXpert labeler's column order
CHEXBERT_CONDITIONS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices", "No Finding",
)
# class index -> contract value (NaN blank, 1 positive, 0 negative, -1 uncertain)
FOUR_CLASS_VALUES = (np.nan, 1.0, 0.0, -1.0)
NO_FINDING_VALUES = (np.nan, 1.0)
MAX_IDS = 512                      # BERT's position limit; CheXbert truncates to it
PREFIX = "module."                 # DataParallel prefix of the original checkpoints
# parameters a checkpoint may lack or carry without changing any output
OPTIONAL_PREFIXES = ("bert.pooler.",)                 # the pooler is never used (CLS of last layer)
IGNORED_KEYS = ("bert.embeddings.position_ids",)      # a buffer older transformers saved


class CheXbertModel(nn.Module):
    """BERT encoder + 13 four-class heads + one two-class head (No Finding), as in CheXbert."""

    def __init__(self, bert: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(0.1)  # kept for the architecture; inactive in eval()
        heads = [nn.Linear(hidden_size, 4) for _ in range(13)] + [nn.Linear(hidden_size, 2)]
        self.linear_heads = nn.ModuleList(heads)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        hidden = self.bert(input_ids, attention_mask=attention_mask)[0]  # (B, T, H)
        cls = self.dropout(hidden[:, 0, :])                              # (B, H)
        return [head(cls) for head in self.linear_heads]                 # 13 x (B, 4), (B, 2)


@dataclass(frozen=True)
class CheXbertConfig:
    checkpoint: Path | None
    bert_dir: Path | None
    batch_size: int = 16
    device: str = "cpu"


def clean_report(text: str) -> str:
    """CheXbert's report normalisation: strip, line breaks to spaces, whitespace runs to one."""
    return " ".join(text.split())


def encode(tokenizer, report: str) -> list[int]:
    """[CLS] wordpieces [SEP], truncated to 512 ids the way CheXbert truncates."""
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(clean_report(report)))
    return [tokenizer.cls_token_id, *ids[: MAX_IDS - 2], tokenizer.sep_token_id]


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k[len(PREFIX):] if k.startswith(PREFIX) else k): v for k, v in state.items()}


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The ``model_state_dict`` of a CheXbert checkpoint with ``module.`` prefixes removed."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise UarbenchError(f"cannot read the CheXbert checkpoint ({err}).", file=path,
                            fix="pass the chexbert.pth file of CheXbert / f1chexbert.") from err
    state = blob.get("model_state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise UarbenchError("not a CheXbert checkpoint: expected a dict with 'model_state_dict'.",
                            file=path, fix="pass the chexbert.pth file of CheXbert / f1chexbert.")
    return {k: v for k, v in strip_prefix(state).items() if k not in IGNORED_KEYS}


def check_keys(path: Path, expected: set[str], found: set[str]) -> None:
    """One UarbenchError naming the first missing and unexpected parameter names."""
    missing = sorted(k for k in expected - found if not k.startswith(OPTIONAL_PREFIXES))
    unexpected = sorted(found - expected)
    if missing or unexpected:
        parts = [f"{len(missing)} missing (first: {', '.join(missing[:5])})" if missing else "",
                 f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:5])})"
                 if unexpected else ""]
        raise UarbenchError("checkpoint parameters do not match the CheXbert architecture (BERT "
                            "encoder 'bert.*' + 14 'linear_heads.<i>'): "
                            + "; ".join(p for p in parts if p) + ".", file=path,
                            fix="pass a CheXbert checkpoint and the bert_dir of the BERT it was "
                                "trained from (bert-base-uncased).")


def build_model(config: CheXbertConfig) -> tuple[CheXbertModel, object]:
    """Tokenizer and encoder config from ``bert_dir`` (local files only), weights from the
    checkpoint; returns (model in eval mode on ``device``, tokenizer)."""
    from transformers import BertConfig, BertModel, BertTokenizer
    assert config.checkpoint is not None and config.bert_dir is not None
    try:
        tokenizer = BertTokenizer.from_pretrained(str(config.bert_dir), local_files_only=True)
        bert_config = BertConfig.from_pretrained(str(config.bert_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise UarbenchError(f"cannot load the BERT tokenizer / config ({err}).",
                            file=config.bert_dir,
                            fix="pass a folder with vocab.txt and config.json of "
                                "bert-base-uncased (e.g. saved with save_pretrained).") from err
    state = read_checkpoint(config.checkpoint)
    has_pooler = any(k.startswith("bert.pooler.") for k in state)
    model = CheXbertModel(BertModel(bert_config, add_pooling_layer=has_pooler),
                          bert_config.hidden_size)
    check_keys(config.checkpoint, set(model.state_dict()), set(state))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shapes: bert_dir's config.json does not fit the checkpoint
        first = str(err).strip().splitlines()[-1].strip()
        raise UarbenchError(f"checkpoint tensors do not fit the BERT config in {config.bert_dir} "
                            f"({first}).", file=config.checkpoint,
                            fix="pass the bert_dir of the BERT the checkpoint was trained "
                                "from.") from err
    return model.to(config.device).eval(), tokenizer


def logits_to_labels(logits: list[torch.Tensor]) -> np.ndarray:
    """14 head outputs (CheXbert order) -> (B, 14) contract values in OBSERVATIONS order."""
    out = np.full((logits[0].shape[0], len(OBSERVATIONS)), np.nan)
    for head, name in enumerate(CHEXBERT_CONDITIONS):
        values = np.asarray(NO_FINDING_VALUES if name == "No Finding" else FOUR_CLASS_VALUES)
        out[:, OBSERVATIONS.index(name)] = values[logits[head].argmax(dim=1).cpu().numpy()]
    return out


@LABELERS.register("chexbert")
class CheXbertLabeler(Labeler):
    """CheXbert labels from a user-supplied checkpoint; unavailable (with the reason) without it."""

    name = "chexbert"

    def __init__(self, checkpoint: str | Path | None = None, bert_dir: str | Path | None = None,
                 *, batch_size: int = 16, device: str = "cpu") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = CheXbertConfig(None if checkpoint is None else Path(checkpoint),
                                     None if bert_dir is None else Path(bert_dir),
                                     batch_size, device)
        self._model: CheXbertModel | None = None
        self._tokenizer = None
        self._version: str | None = None

    def unavailable_reason(self) -> str | None:
        ckpt, bert_dir = self.config.checkpoint, self.config.bert_dir
        if ckpt is None:
            return "unavailable: no CheXbert checkpoint given (pass --chexbert-checkpoint PATH)"
        if not ckpt.is_file():
            return f"unavailable: CheXbert checkpoint {ckpt} not found"
        if bert_dir is None:
            return ("unavailable: no BERT folder given for CheXbert's tokenizer and config "
                    "(pass --chexbert-bert-dir DIR holding bert-base-uncased)")
        if not (bert_dir / "vocab.txt").is_file() or not (bert_dir / "config.json").is_file():
            return f"unavailable: {bert_dir} lacks vocab.txt or config.json of a BERT model"
        try:
            importlib.import_module("transformers")
        except ImportError as err:
            return f"unavailable: transformers not importable ({err}); pip install 'transformers<5'"
        return None

    @property
    def version(self) -> str:
        if self._version is None:
            if self.unavailable_reason() is not None:
                return "chexbert-unavailable"
            assert self.config.checkpoint is not None
            self._version = "chexbert-" + file_sha256(self.config.checkpoint)[:12]
        return self._version

    def _load(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise MetricUnavailable(reason)
        if self._model is None:
            self._model, self._tokenizer = build_model(self.config)

    @torch.no_grad()
    def label(self, reports: Sequence[str]) -> np.ndarray:
        if isinstance(reports, str):
            raise TypeError("reports must be a list of strings, one per report, not a string")
        self._load()
        assert self._model is not None
        ids = [encode(self._tokenizer, r) for r in reports]
        out = np.full((len(ids), len(OBSERVATIONS)), np.nan)
        pad = self._tokenizer.pad_token_id
        step = self.config.batch_size
        for start in range(0, len(ids), step):
            chunk = ids[start:start + step]
            width = max(len(x) for x in chunk)
            batch = torch.tensor([x + [pad] * (width - len(x)) for x in chunk])  # (B, T)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk])
            device = self.config.device
            logits = self._model(batch.to(device), mask.to(device))
            out[start:start + len(chunk)] = logits_to_labels(logits)
        return out
