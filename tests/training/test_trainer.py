"""The trainer on a tiny synth-cxr: both stages run, outputs are written, an interrupted run
resumes to the same result, a NaN loss stops with the step and the term named."""
import json

import pytest
import torch

from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.errors import UarbenchError
from uarbench.models.base import TrainableModel
from uarbench.models.uar import UARConfig
from uarbench.models.uar.config import VQConfig
from uarbench.training.config import TrainConfig
from uarbench.training.decoding import DecodeConfig
from uarbench.store import SUMMARY_FILE as SUMMARY
from uarbench.training.run import train_uar
from uarbench.training.trainer import Trainer, TrainingDiverged


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    root = generate_synth(tmp_path_factory.mktemp("synth") / "s",
                          SynthConfig(n_train=24, n_val=6, n_test=6, size=64, seed=3), progress=False)
    return load_dataset("synth-cxr", root)


MODEL = UARConfig.cpu_small(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=1, basis_size=64,
                            codebook_size=32, vq=VQConfig(hidden=8, embed_dim=8, steps=5))
TRAIN = TrainConfig.cpu_small(epochs_stage1=2, epochs_stage2=1, batch_size=8, threads=1,
                              decode=DecodeConfig(beam_size=2, max_len=12),
                              select_decode=DecodeConfig(method="greedy", max_len=12))


def _rows(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_two_stages_run_and_every_output_is_written(tiny_synth, tmp_path):
    summary = train_uar(dataset=tiny_synth, model_cfg=MODEL, train_cfg=TRAIN, out_dir=tmp_path / "r",
                        cache_dir=tmp_path / "cache")
    run = tmp_path / "r"
    for rel in ("config.json", "train_log.jsonl", "checkpoints/model.pt", "checkpoints/best.pt",
                "checkpoints/last.pt", "predictions.jsonl", "metrics.json", "per_report_stats.csv",
                "val/predictions.jsonl", "val/metrics.json", SUMMARY):
        assert (run / rel).is_file(), rel
    steps = [r for r in _rows(run / "train_log.jsonl") if "ce" in r]
    assert {r["stage"] for r in steps} == {1, 2}
    assert all(r["mask"] == 0 for r in steps if r["stage"] == 1)    # stage 1: no TIR mask
    assert all(r["mask"] > 0 for r in steps if r["stage"] == 2)     # stage 2: L_Mask in use
    assert len([r for r in _rows(run / "train_log.jsonl") if "val_bleu4" in r]) == 3
    preds = _rows(run / "predictions.jsonl")
    assert [p["id"] for p in preds] == [s.id for s in tiny_synth.split("test")]
    assert set(summary["metrics"]["test"]) >= {"BLEU-4", "ROUGE-L", "CIDEr"}
    use = summary["image_use_val"]
    assert use["gap"] == pytest.approx(use["ce_shuffled_images"] - use["ce"]) and use["ce"] > 0
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["sha256"] == tiny_synth.content_hash and config["image_tokenizer"]
    ckpt = torch.load(run / "checkpoints" / "model.pt", weights_only=True)
    assert ckpt["config"]["d_model"] == 32 and ckpt["config"]["vocab_size"] == len(tiny_synth.tokenizer)


def test_interrupted_run_resumes_to_the_same_result(tiny_synth, tmp_path, monkeypatch):
    # stage 1 trained in each run (not taken from the first): the interruption falls in it
    kw = dict(dataset=tiny_synth, model_cfg=MODEL, train_cfg=TRAIN, cache_dir=tmp_path / "cache",
              share_stage1=False)
    train_uar(out_dir=tmp_path / "full", **kw)
    calls = {"n": 0}
    original = Trainer.validate

    def interrupted(self, val):
        calls["n"] += 1
        if calls["n"] == 2:   # die during the second epoch's validation, after its steps
            raise KeyboardInterrupt
        return original(self, val)
    monkeypatch.setattr(Trainer, "validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_uar(out_dir=tmp_path / "resumed", **kw)
    assert not (tmp_path / "resumed" / SUMMARY).exists()   # not complete
    monkeypatch.setattr(Trainer, "validate", original)
    train_uar(out_dir=tmp_path / "resumed", **kw)
    assert (tmp_path / "full" / "predictions.jsonl").read_text() == \
        (tmp_path / "resumed" / "predictions.jsonl").read_text()
    full, resumed = _rows(tmp_path / "full" / "train_log.jsonl"), _rows(tmp_path / "resumed" / "train_log.jsonl")
    drop = ("samples_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in full] == \
        [{k: v for k, v in r.items() if k not in drop} for r in resumed]


def test_nan_loss_names_the_step_and_term(tiny_synth, tmp_path, monkeypatch):
    from uarbench.models.uar import UARModel
    original = UARModel.forward

    def poisoned(self, batch):
        out = original(self, batch)
        out["global_"] = out["global_"] * float("nan")
        return out
    monkeypatch.setattr(UARModel, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"'global_' is nan at step 1"):
        train_uar(dataset=tiny_synth, model_cfg=MODEL, train_cfg=TRAIN, out_dir=tmp_path / "n",
                  cache_dir=tmp_path / "cache")


def test_a_folder_with_another_configuration_is_refused(tiny_synth, tmp_path):
    from uarbench.errors import UarbenchError
    kw = dict(dataset=tiny_synth, model_cfg=MODEL, cache_dir=tmp_path / "cache", out_dir=tmp_path / "x")
    train_uar(train_cfg=TRAIN, **kw)
    with pytest.raises(UarbenchError, match="different configuration"):
        train_uar(train_cfg=TRAIN.replace(seed=1), **kw)


class _StubReader(TrainableModel):
    """CE = squared difference between a study's mean pixel and its second word id: zero only
    with the study's own images (or always zero when ``blind``)."""

    cfg = None

    def __init__(self, blind: bool) -> None:
        super().__init__()
        self.blind = blind
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        seen = batch["images"].mean(dim=(1, 2, 3, 4)) * 255
        if self.blind:
            seen = torch.full_like(seen, 7.0)
        return {"ce": ((seen - batch["ids"][:, 1].float()) ** 2).mean() + 0 * self.w}


def test_image_use_probe_separates_a_reader_from_a_blind_model(tmp_path):
    from uarbench.data.tokenizer import WordTokenizer
    from uarbench.training.data import SplitTensors
    words = torch.tensor([3, 9, 20, 41, 60, 90])
    data = SplitTensors(ids=[f"s{i}" for i in range(6)],
                        images=words[:, None, None, None].expand(6, 2, 4, 4).to(torch.uint8).clone(),
                        tokens=torch.stack([torch.tensor([1, int(w), 2]) for w in words]),
                        references=["x"] * 6)
    tok = WordTokenizer(("x",), 1, 10)
    cfg = TRAIN.replace(device="cpu", eval_batch_size=4)
    reader = Trainer(_StubReader(blind=False), cfg, tok, lambda x: {"images": x}, tmp_path / "a")
    blind = Trainer(_StubReader(blind=True), cfg, tok, lambda x: {"images": x}, tmp_path / "b")
    used = reader.image_use(data)
    assert used["ce"] == pytest.approx(0.0, abs=1e-6) and used["gap"] > 100
    assert blind.image_use(data)["gap"] == pytest.approx(0.0, abs=1e-9)


def test_visual_token_table_and_cnn_get_their_own_learning_rates(tmp_path):
    from uarbench.data.tokenizer import WordTokenizer
    from uarbench.models.uar import UARModel
    tok = WordTokenizer(("x",), 1, 10)
    cfg = TrainConfig.cpu_small(lr=1e-3, lr_image=5e-4, lr_image_tokens=1e-2, device="cpu")
    for lsu, expected in ((True, 1e-2), (False, 5e-4)):
        model = UARModel(MODEL.replace(vocab_size=len(tok), lsu=lsu, cnn_arch="resnet18", cnn_width=8))
        opt, _ = Trainer(model, cfg, tok, lambda x: {}, tmp_path / str(lsu))._optimiser()
        image_side = {id(p) for p in model.image_side_parameters()}
        (rest,), (image,) = ([g for g in opt.param_groups if (id(g["params"][0]) in image_side) == s]
                             for s in (False, True))
        assert rest["lr"] == 1e-3 and image["lr"] == expected
        assert {id(p) for p in image["params"]} == image_side
    # without lr_image_tokens the table falls back to lr_image (the paper preset: 5e-5)
    model = UARModel(MODEL.replace(vocab_size=len(tok)))
    opt, _ = Trainer(model, TrainConfig.paper(device="cpu"), tok, lambda x: {}, tmp_path / "p")._optimiser()
    assert sorted(g["lr"] for g in opt.param_groups) == [5e-5, 1e-4]
    with pytest.raises(UarbenchError, match="lr_image_tokens must be > 0"):
        TrainConfig(lr_image_tokens=0.0)


def test_final_validation_reuses_the_selected_epochs_decoding(tiny_synth, tmp_path, monkeypatch):
    """When model selection decodes as the final validation does, the selected epoch's
    predictions are written instead of decoding again, and they are exactly a fresh decode's."""
    train = TRAIN.replace(select_decode=TRAIN.decode)
    kw = dict(dataset=tiny_synth, model_cfg=MODEL, train_cfg=train, share_stage1=False,
              cache_dir=tmp_path / "cache")
    reused = train_uar(out_dir=tmp_path / "reused", **kw)
    assert "decode_val" not in reused["phases_s"]
    fit = Trainer.fit

    def fit_forgetting(self, *a, **k):
        best = fit(self, *a, **k)
        self.val_predictions = None
        return best
    monkeypatch.setattr(Trainer, "fit", fit_forgetting)
    fresh = train_uar(out_dir=tmp_path / "fresh", **kw)
    assert "decode_val" in fresh["phases_s"]
    for rel in ("val/predictions.jsonl", "val/metrics.json", "predictions.jsonl"):
        assert (tmp_path / "reused" / rel).read_bytes() == (tmp_path / "fresh" / rel).read_bytes()
