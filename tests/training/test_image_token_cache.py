"""The image-token cache and the tokenizer fit's device (uarbench/training/image_tokens.py):
cached ids are the ids direct encoding gives, a hit does not encode, keys separate what could
change an id, evaluation through cached tokens decodes the same text, and the fit's key is
unchanged for a CPU fit of every training image."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.models.uar import UARConfig, UARModel
from uarbench.models.tokenizers import LearnedVQTokenizer
from uarbench.models.uar.config import VQConfig
from uarbench.training import image_tokens
from uarbench.training.config import TrainConfig
from uarbench.training.data import eval_batches, split_tensors, to_unit
from uarbench.training.decoding import DecodeConfig
from uarbench.training.image_tokens import (prepare_image_tokenizer, resize_to_crop,
                                            tokenizer_cache_key, tokenizer_path,
                                            tokens_cache_key, torch_threads,
                                            with_cached_tokens)
from uarbench.training.trainer import Trainer

MODEL = UARConfig.cpu_small(d_model=32, n_heads=2, cra_heads=2, d_ff=64, n_layers=1,
                            basis_size=64, codebook_size=32,
                            vq=VQConfig(hidden=8, embed_dim=8, steps=4, restart_every=2))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = generate_synth(tmp_path_factory.mktemp("synth") / "s",
                          SynthConfig(n_train=10, n_val=7, n_test=3, size=64, seed=5),
                          progress=False)
    dataset = load_dataset("synth-cxr", root)
    cfg = MODEL.replace(vocab_size=len(dataset.tokenizer),
                        max_seq_length=dataset.tokenizer.max_seq_length, n_views=2)
    return dataset, cfg


def _tokenizer(dataset, cfg, cache):
    train = split_tensors(dataset, "train", dataset.tokenizer, cfg.image_size, cache_dir=cache)
    return prepare_image_tokenizer(cfg, resize_to_crop(train.images, cfg.crop_size),
                                   dataset.content_hash, cache, seed=0)


def test_cached_tokens_equal_direct_encoding_and_a_hit_does_not_encode(tiny, tmp_path,
                                                                      monkeypatch):
    dataset, cfg = tiny
    tok = _tokenizer(dataset, cfg, tmp_path)
    val = split_tensors(dataset, "val", dataset.tokenizer, cfg.crop_size, cache_dir=tmp_path)
    direct = torch.cat([tok.encode(to_unit(val.images[i:i + 3])) for i in range(0, 7, 3)])
    cached = with_cached_tokens(val, tok, "cpu", 3, tmp_path)
    assert cached.images.dtype == torch.int16 and torch.equal(cached.images.long(), direct)
    assert cached.ids == val.ids and torch.equal(cached.tokens, val.tokens)
    files = list((tmp_path / "image_tokens").glob("*.npy"))
    assert len(files) == 1 and np.load(files[0]).dtype == np.int16

    def no_encoding(*a, **k):
        raise AssertionError("a cache hit encoded")
    monkeypatch.setattr(image_tokens, "encode_split", no_encoding)
    again = with_cached_tokens(val, tok, "cpu", 3, tmp_path)
    assert torch.equal(again.images, cached.images)
    # evaluation batches of a cached split are long ids, ready for the model
    (_, first), *_ = eval_batches(cached, 4)
    assert first.dtype == torch.long and torch.equal(first, direct[:4])
    assert torch.equal(to_unit(cached.images[[5, 0]]), direct[[5, 0]])


def test_token_cache_key_separates_what_can_change_an_id():
    base = tokens_cache_key("t" * 64, "img", "cpu", 32)
    assert base == tokens_cache_key("t" * 64, "img", torch.device("cpu"), 32)
    others = {tokens_cache_key("u" * 64, "img", "cpu", 32), tokens_cache_key("t" * 64, "im2", "cpu", 32),
              tokens_cache_key("t" * 64, "img", "cuda", 32), tokens_cache_key("t" * 64, "img", "cpu", 16)}
    assert base not in others and len(others) == 4
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(before + 1)
        assert tokens_cache_key("t" * 64, "img", "cpu", 32) != base
    finally:
        torch.set_num_threads(before)


def test_a_split_not_from_the_image_cache_is_left_alone(tiny, tmp_path):
    dataset, cfg = tiny
    tok = _tokenizer(dataset, cfg, tmp_path)
    val = split_tensors(dataset, "val", dataset.tokenizer, cfg.crop_size, cache_dir=tmp_path)
    bare = val.__class__(val.ids, val.images, val.tokens, val.references)
    assert with_cached_tokens(bare, tok, "cpu", 4, tmp_path) is bare


def test_decoding_and_the_probe_read_the_same_ids_from_the_cache(tiny, tmp_path):
    """What run.py wires: evaluation through cached ids gives the text and the probe's numbers
    that encoding every batch gives."""
    dataset, cfg = tiny
    tok = _tokenizer(dataset, cfg, tmp_path)
    val = split_tensors(dataset, "val", dataset.tokenizer, cfg.crop_size, cache_dir=tmp_path)
    torch.manual_seed(0)
    model = UARModel(cfg)
    train_cfg = TrainConfig.cpu_small(device="cpu", eval_batch_size=3, threads=1)
    dcfg = DecodeConfig(beam_size=2, max_len=8)

    def image_input(x):
        return {"image_tokens": tok.encode(x) if x.is_floating_point() else x}
    trainer = Trainer(model, train_cfg, dataset.tokenizer, image_input, tmp_path / "run")
    cached = with_cached_tokens(val, tok, "cpu", train_cfg.eval_batch_size, tmp_path)
    assert trainer.predict(cached, dcfg) == trainer.predict(val, dcfg)
    assert trainer.image_use(cached) == trainer.image_use(val)


def test_resize_to_crop_is_the_whole_split_interpolation_it_replaces():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(11, 2, 40, 40, generator=g) * 255).byte()
    whole = F.interpolate(images.float(), size=32, mode="bilinear", antialias=True,
                          align_corners=False).round().clamp(0, 255).byte()
    assert torch.equal(resize_to_crop(images, 32, chunk=4), whole)
    assert torch.equal(resize_to_crop(images, 40), images)


def test_a_cpu_fit_of_every_image_keeps_its_key_other_fits_get_their_own(tmp_path):
    cfg = MODEL
    key = tokenizer_cache_key(cfg, "d" * 64, 0)
    before = json.dumps({"format": LearnedVQTokenizer.FORMAT, "dataset": "d" * 64,   # the key
                         "codebook": cfg.codebook_size, "vq": asdict(cfg.vq),          # before
                         "size": cfg.crop_size, "seed": 0, "fit_threads": 1}, sort_keys=True)
    assert key == hashlib.sha256(before.encode()).hexdigest()[:16]
    assert key == tokenizer_cache_key(cfg, "d" * 64, 0, device="cpu")
    assert key == tokenizer_cache_key(cfg, "d" * 64, 0, device=torch.device("cpu"), fit_subsample=None)
    assert len({key, tokenizer_cache_key(cfg, "d" * 64, 0, device="cuda"),
                tokenizer_cache_key(cfg, "d" * 64, 0, fit_subsample=5)}) == 3
    assert tokenizer_path(cfg, "d" * 64, 0, tmp_path).name == f"vq-{key}.pt"


def test_the_fit_gives_the_bytes_it_gave_before(tmp_path):
    """The fit before a device, lazy images and batches made one at a time, written out."""
    cfg = MODEL
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(13, 2, cfg.crop_size, cfg.crop_size, generator=g) * 255).byte()
    old = LearnedVQTokenizer(cfg.codebook_size, cfg.vq)
    views = to_unit(images).flatten(0, 1)
    order = torch.randperm(len(views), generator=torch.Generator().manual_seed(0))
    with torch_threads(1):
        old.fit([views[order[i:i + 8]] for i in range(0, len(views), 8)], seed=0)
    want = old.save(tmp_path / "old.pt")
    got = prepare_image_tokenizer(cfg, images, "d" * 64, tmp_path, seed=0, batch_views=8)
    assert got.checkpoint_hash == want


def test_fit_on_a_device_subsample_and_lazy_images(tmp_path):
    cfg = MODEL
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(12, 2, cfg.crop_size, cfg.crop_size, generator=g) * 255).byte()
    calls = []

    def lazy():
        calls.append(1)
        return images
    a = prepare_image_tokenizer(cfg, lazy, "d" * 64, tmp_path, seed=0)
    b = prepare_image_tokenizer(cfg, images, "d" * 64, tmp_path / "other", seed=0, device="cpu")
    assert a.checkpoint_hash == b.checkpoint_hash and calls == [1]
    prepare_image_tokenizer(cfg, lazy, "d" * 64, tmp_path, seed=0)    # cached: images not read
    assert calls == [1]
    sub = prepare_image_tokenizer(cfg, images, "d" * 64, tmp_path, seed=0, fit_subsample=4)
    assert sub.checkpoint_hash != a.checkpoint_hash
    assert len(list((tmp_path / "image_tokenizers").glob("*.pt"))) == 2
    if torch.cuda.is_available():   # a GPU fit: its own entry, deterministic, saved from the CPU
        gpu = prepare_image_tokenizer(cfg, images, "d" * 64, tmp_path, seed=0, device="cuda")
        again = prepare_image_tokenizer(cfg, images, "d" * 64, tmp_path / "g2", seed=0,
                                        device="cuda")
        assert gpu.checkpoint_hash == again.checkpoint_hash != a.checkpoint_hash
