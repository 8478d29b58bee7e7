"""CheXbert adapter on a tiny random BERT with CheXbert's real head layout: labels, batching,
name alignment of the heads, the unavailable path and the bad-checkpoint error."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from uarbench.data.chexpert import OBSERVATIONS  # noqa: E402
from uarbench.errors import UarbenchError  # noqa: E402
from uarbench.labeling.base import LABELERS  # noqa: E402
from uarbench.labeling.chexbert import CHEXBERT_CONDITIONS, CheXbertLabeler, CheXbertModel  # noqa: E402
from uarbench.metrics.base import MetricUnavailable  # noqa: E402

WORDS = ("the heart is normal lungs are clear no pleural effusion mild cardiomegaly edema "
         "pneumothorax there . , tube").split()
REPORTS = ["The heart is normal. The lungs are clear.",
           "Mild cardiomegaly.\nNo pleural effusion.",
           "",
           "there is mild edema , no pneumothorax .",
           "tube " * 700]  # longer than BERT's 512 positions: must be truncated, not crash


def tiny_model() -> CheXbertModel:
    """Random weights scaled up (BERT's 0.02 init gives every report the same labels), so that
    the labels differ between reports and the batching test can fail."""
    config = transformers.BertConfig(vocab_size=5 + len(WORDS), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=512,
                                     initializer_range=0.5)
    torch.manual_seed(0)
    model = CheXbertModel(transformers.BertModel(config), 32)
    with torch.no_grad():
        for head in model.linear_heads:
            head.weight.normal_(0.0, 2.0)
            head.bias.zero_()
    return model


def save(model: CheXbertModel, tmp_path: Path, *, state: dict | None = None) -> tuple[Path, Path]:
    bert_dir = tmp_path / "bert"
    bert_dir.mkdir(exist_ok=True)
    model.bert.config.save_pretrained(bert_dir)
    (bert_dir / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                   *WORDS]) + "\n")
    if state is None:  # the original checkpoints were saved from nn.DataParallel
        state = {f"module.{k}": v for k, v in model.state_dict().items()}
    ckpt = tmp_path / "chexbert.pth"
    torch.save({"model_state_dict": state}, ckpt)
    return ckpt, bert_dir


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    return save(tiny_model(), tmp_path_factory.mktemp("chexbert"))


def test_registered():
    assert LABELERS.get("chexbert") is CheXbertLabeler


def test_labels_shape_values_and_version(random_checkpoint):
    ckpt, bert_dir = random_checkpoint
    labeler = CheXbertLabeler(ckpt, bert_dir, batch_size=2)
    assert labeler.unavailable_reason() is None
    labels = labeler.label(REPORTS)
    assert labels.shape == (len(REPORTS), len(OBSERVATIONS)) and labels.dtype == float
    assert set(np.unique(labels[~np.isnan(labels)])) <= {-1.0, 0.0, 1.0}
    no_finding = labels[:, OBSERVATIONS.index("No Finding")]
    assert set(no_finding[~np.isnan(no_finding)]) <= {1.0}  # a 2-class head: blank or positive
    assert labeler.version == "chexbert-" + hashlib.sha256(ckpt.read_bytes()).hexdigest()[:12]
    assert labeler.label([]).shape == (0, len(OBSERVATIONS))


def test_batching_does_not_change_labels(random_checkpoint):
    ckpt, bert_dir = random_checkpoint
    one = CheXbertLabeler(ckpt, bert_dir, batch_size=1).label(REPORTS)
    three = CheXbertLabeler(ckpt, bert_dir, batch_size=3).label(REPORTS)
    assert len({tuple(np.nan_to_num(row, nan=9)) for row in one}) > 2  # the reports differ
    np.testing.assert_array_equal(one, three)  # NaN == NaN for assert_array_equal


def test_heads_land_in_the_named_columns(tmp_path):
    model = tiny_model()
    forced = {"Edema": (1, 1.0), "Pleural Effusion": (3, -1.0), "Support Devices": (2, 0.0),
              "No Finding": (1, 1.0), "Enlarged Cardiomediastinum": (1, 1.0)}
    with torch.no_grad():
        for i, head in enumerate(model.linear_heads):
            head.weight.zero_()
            head.bias.zero_()
            cls = forced.get(CHEXBERT_CONDITIONS[i], (0, None))[0]
            head.bias[cls] = 5.0  # argmax is this class whatever the report says
    labels = CheXbertLabeler(*save(model, tmp_path)).label(["no edema", "mild cardiomegaly ."])
    for name, column in zip(OBSERVATIONS, labels.T):
        expected = forced[name][1] if name in forced else np.nan
        np.testing.assert_array_equal(column, [expected, expected], err_msg=name)


def test_unavailable_without_checkpoint_or_bert_dir(random_checkpoint, tmp_path):
    ckpt, bert_dir = random_checkpoint
    for labeler, words in ((CheXbertLabeler(None, bert_dir), "--chexbert-checkpoint"),
                           (CheXbertLabeler(ckpt, None), "BERT folder"),
                           (CheXbertLabeler(tmp_path / "missing.pth", bert_dir), "not found")):
        reason = labeler.unavailable_reason()
        assert reason is not None and reason.startswith("unavailable: ") and words in reason
        assert "\n" not in reason
        with pytest.raises(MetricUnavailable, match=words):
            labeler.label(["the heart is normal"])
        assert labeler.version == "chexbert-unavailable"


def test_mismatched_keys_name_the_file_and_keys(tmp_path):
    model = tiny_model()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    del state["module.linear_heads.13.bias"]
    state["module.classifier.weight"] = torch.zeros(2, 32)
    ckpt, bert_dir = save(model, tmp_path, state=state)
    with pytest.raises(UarbenchError) as err:
        CheXbertLabeler(ckpt, bert_dir).label(["the heart is normal"])
    text = str(err.value)
    assert str(ckpt) in text and "linear_heads.13.bias" in text and "classifier.weight" in text


def test_checkpoint_without_prefix_or_pooler_loads(tmp_path):
    """Unprefixed keys and a missing (unused) pooler give the same labels as the full file."""
    model = tiny_model()
    (tmp_path / "full").mkdir()
    (tmp_path / "bare").mkdir()
    full = CheXbertLabeler(*save(model, tmp_path / "full")).label(REPORTS)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("bert.pooler.")}
    bare = CheXbertLabeler(*save(model, tmp_path / "bare", state=state)).label(REPORTS)
    np.testing.assert_array_equal(full, bare)
