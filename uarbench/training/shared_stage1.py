"""Stage 1 trained once (UAR §3.5): the first stage of a two-stage UAR run trains exactly what a
one-stage run of its *stage-1 configuration* trains (the TIR masks unused, so ``tir`` and
``two_stage`` drop out). In the ablation suite that is row (e) for the full UAR; in the `stages`
suite, `stage1_only` for `two_stage`. The first run to finish that stage publishes it here, under
a key of everything that decides its bytes, and any later run with the same key takes it instead
of training it again: the selected stage-1 weights, the stage's train-log rows, its selection
record, the selected model's validation predictions and the RNG state at its end. Nothing about the result changes (on CPU a run that takes
stage 1 ends byte-identical to one that trains it: tests/training/test_shared_stage1.py); only
the time does, and the run's summary says where its stage 1 came from.

The key holds the stage-1 model config (``model_cls.stage1_config``), the training config
without what only later stages or the test use (``epochs_stage2``, ``decode``), the dataset,
word- and image-tokenizer hashes, the device type, torch's intra-op thread count and version,
and a hash of this package's source, so a code change never reuses an older stage. Entries live
under ``$UARBENCH_CACHE/stage1/``. Off for data-parallel runs (one process writes, others would
race) and with ``share_stage1=False`` (``--no-shared-stage1``).
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import torch

from uarbench.training.checkpoint import load_checkpoint, save_checkpoint
from uarbench.training.config import TrainConfig
from uarbench.training.decoding import DecodeConfig

FORMAT = 2


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 of every .py file of the uarbench package (paths and bytes), computed once."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def stage1_training(train_cfg: TrainConfig) -> TrainConfig:
    """The training settings stage 1 depends on: without what only later stages or the test
    decoding use (``epochs_stage2``, ``decode``)."""
    return train_cfg.replace(epochs_stage2=0, decode=DecodeConfig())


def stage1_key(model_cls, model_cfg, train_cfg: TrainConfig, *, dataset_hash: str,
               words_hash: str, image_tokenizer_hash: str | None, device: torch.device) -> str:
    train = stage1_training(train_cfg).replace(device="cpu")   # the device type is its own field
    blob = json.dumps({
        "format": FORMAT, "model_class": f"{model_cls.__module__}.{model_cls.__qualname__}",
        "model": model_cls.stage1_config(model_cfg).to_dict(), "train": train.to_dict(),
        "dataset": dataset_hash, "words": words_hash, "image_tokenizer": image_tokenizer_hash,
        "device": device.type, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "source": source_hash()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class SharedStage1:
    """One run's view of the store: ``take()`` the entry of its key, or ``publish()`` its own.

    ``unused``: name prefixes of the state-dict entries that stage 1 never trains (UAR: the TIR
    masks). They may be absent from an entry, or extra in it; everything else must match."""

    def __init__(self, cache_dir: str | Path, key: str, unused: tuple[str, ...] = ()) -> None:
        self.key, self.unused = key, unused
        self.path = Path(cache_dir) / "stage1" / f"{key}.pt"

    def take(self, model: torch.nn.Module) -> dict | None:
        """The published stage 1 with its weights merged into ``model``'s state dict (entries
        stage 1 never trains keep this model's own initial values), or None."""
        if not self.path.is_file():
            return None
        entry = load_checkpoint(self.path)
        own = model.state_dict()
        theirs = entry["model"]
        odd = sorted(k for k in set(own) ^ set(theirs) if not k.startswith(self.unused))
        if odd or entry.get("format") != FORMAT:
            return None  # another layout under this key: never guess, train it instead
        merged = {k: theirs.get(k, v) for k, v in own.items()}
        return {**entry, "model": merged}

    def publish(self, *, best_stage1: Path, log_rows: list[dict], best: dict,
                stage_best: dict, step: int, val_predictions: list[str] | None) -> None:
        """Write the entry (atomically; a concurrent writer of the same key writes the same
        bytes). The RNG state is the caller's at the end of stage 1."""
        if self.path.is_file():
            return
        save_checkpoint(self.path, {
            "format": FORMAT, "model": load_checkpoint(best_stage1)["model"],
            "log": json.dumps(log_rows), "best": best, "stage_best": stage_best, "step": step,
            "val_predictions": val_predictions, "rng": torch.get_rng_state()})
