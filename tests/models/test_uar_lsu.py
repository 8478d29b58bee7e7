import hashlib

import pytest
import torch

from uarbench.errors import UarbenchError
from uarbench.models.uar.config import VQConfig
from uarbench.models.tokenizers.dalle_encoder import DalleEncoder
from uarbench.models.tokenizers import (DalleTokenizer, ImageTokenizer, LearnedVQTokenizer,
                                        build_tokenizer)
from uarbench.models.uar.lsu import LSUEmbedding
from uar_helpers import make_cfg  # noqa: F401 (pytest fixtures)


def test_dalle_encoder_default_sizes_and_names():
    with torch.device("meta"):
        sd = DalleEncoder().state_dict()
    assert sd["blocks.input.w"].shape == (256, 3, 7, 7)
    assert sd["blocks.group_1.block_1.res_path.conv_1.w"].shape == (64, 256, 3, 3)
    assert sd["blocks.group_2.block_1.id_path.w"].shape == (512, 256, 1, 1)
    assert sd["blocks.group_4.block_2.res_path.conv_4.b"].shape == (2048,)
    assert sd["blocks.output.conv.w"].shape == (8192, 2048, 1, 1)
    assert "blocks.group_1.block_1.id_path.w" not in sd  # n_in == n_out: identity
    assert not any(k.endswith(("weight", "bias")) for k in sd)  # dall_e's Conv2d uses w / b
    assert len(sd) == 2 + 4 * 2 * 8 + 3 * 2 + 2  # input, 8 blocks x 4 convs, 3 id paths, output


def test_dalle_round_trip_gives_identical_tokens(tmp_path):
    torch.manual_seed(0)
    enc = DalleEncoder(n_hid=4, vocab_size=32)  # the real layout, small sizes for speed
    path = tmp_path / "dalle_encoder.pt"
    torch.save(enc.state_dict(), path)
    tok = DalleTokenizer(path)
    assert isinstance(tok, ImageTokenizer) and tok.codebook_size == 32
    assert tok.checkpoint_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    images = torch.rand(2, 2, 1, 16, 16)
    ids = tok.encode(images)
    assert ids.shape == (2, 2, 2, 2) and ids.dtype == torch.long
    x = (0.8 * images.flatten(0, 1) + 0.1).repeat(1, 3, 1, 1)  # map_pixels, grey to RGB
    torch.testing.assert_close(ids.flatten(0, 1), enc(x).argmax(1))
    assert not any(p.requires_grad for p in tok.parameters())


def test_dalle_without_weights_says_how_to_fix():
    with pytest.raises(UarbenchError, match=r"unavailable: DALL-E dVAE encoder weights not given "
                                            r"\(pass --dalle-encoder PATH\)"):
        DalleTokenizer(None)


def test_dalle_rejects_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(UarbenchError, match="not a DALL-E encoder state dict"):
        DalleTokenizer(path)
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole module, like the released encoder.pkl
    with pytest.raises(UarbenchError, match="convert it once"):
        DalleTokenizer(pickled)


def blob_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Bright rectangles on a dark background: structure a VQ-VAE can learn quickly."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, size, size), 0.1)
    for i in range(n):
        r, c = torch.randint(0, size // 2, (2,), generator=g).tolist()
        x[i, :, r:r + size // 2, c:c + size // 2] = 0.9
    return x


def test_learned_vq_fit_reduces_loss_and_encodes_in_range():
    tok = LearnedVQTokenizer(16, VQConfig(hidden=8, embed_dim=8, restart_every=10))
    batches = [blob_images(16, seed=s) for s in range(4)]
    history = tok.fit(batches, steps=60, lr=3e-3, seed=0)
    assert len(history) == 60
    # the loss is on standardised pixels (mean view removed), so it starts near 1
    assert sum(history[-5:]) / 5 < 0.9 * sum(history[:5]) / 5
    ids = tok.encode(blob_images(6).view(3, 2, 1, 16, 16))
    assert ids.shape == (3, 2, 2, 2) and ids.dtype == torch.long
    assert ids.unique().numel() > 2 and (ids != ids[:1]).any()   # no collapse to one image's codes
    assert ids.min() >= 0 and ids.max() < 16
    assert not any(p.requires_grad for p in tok.parameters()) and not tok.training


def test_learned_vq_fit_is_seeded_and_save_load_round_trips(tmp_path):
    batches = [blob_images(8, seed=s) for s in range(2)]
    a = LearnedVQTokenizer(8, VQConfig(hidden=4, embed_dim=4))
    b = LearnedVQTokenizer(8, VQConfig(hidden=4, embed_dim=4))
    assert a.fit(batches, steps=5, lr=1e-3, seed=1) == b.fit(batches, steps=5, lr=1e-3, seed=1)
    with pytest.raises(UarbenchError, match="no checkpoint hash"):
        a.checkpoint_hash
    digest = a.save(tmp_path / "vq.pt")
    assert digest == hashlib.sha256((tmp_path / "vq.pt").read_bytes()).hexdigest()
    loaded = LearnedVQTokenizer.load(tmp_path / "vq.pt")
    assert loaded.checkpoint_hash == digest and loaded.vq == a.vq and loaded.codebook_size == 8
    x = blob_images(4).view(2, 2, 1, 16, 16)
    assert torch.equal(loaded.encode(x), a.encode(x))


def test_learned_vq_tokens_ignore_a_views_exposure_but_not_its_content():
    # each view is normalised on its own before the VQ-VAE: brightness / contrast of a whole view
    # (exposure, which differs between studies) must not change its tokens; content must
    tok = LearnedVQTokenizer(16, VQConfig(hidden=8, embed_dim=8, restart_every=10))
    tok.fit([blob_images(16, seed=s) for s in range(4)], steps=40, lr=3e-3, seed=0)
    x = blob_images(6, seed=9).view(3, 2, 1, 16, 16)
    gain = torch.tensor([0.6, 1.0, 1.3]).view(3, 1, 1, 1, 1)
    offset = torch.tensor([0.05, -0.02, 0.0]).view(3, 1, 1, 1, 1)
    assert torch.equal(tok.encode(x), tok.encode(gain * x + offset))
    assert not torch.equal(tok.encode(x), tok.encode(x.flip(-1)))


def test_fit_takes_a_generator_once_and_fails_loudly_on_no_images():
    tok = LearnedVQTokenizer(8, VQConfig(hidden=4, embed_dim=4))
    assert len(tok.fit((x for x in [blob_images(4)]), steps=3, lr=1e-3)) == 3
    with pytest.raises(UarbenchError, match="no training images"):
        tok.fit(iter(()), steps=3, lr=1e-3)


def test_encode_checks_the_image_layout():
    tok = LearnedVQTokenizer(8, VQConfig(hidden=4, embed_dim=4))
    with pytest.raises(ValueError, match=r"\(B, V, 1, H, W\)"):
        tok.encode(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="multiple of 8"):
        tok.encode(torch.rand(1, 1, 1, 12, 16))


def test_build_tokenizer_picks_the_backend(make_cfg, tmp_path):
    assert isinstance(build_tokenizer(make_cfg()), LearnedVQTokenizer)
    with pytest.raises(UarbenchError, match="unavailable"):
        build_tokenizer(make_cfg(tokenizer="dalle"))
    path = tmp_path / "enc.pt"
    torch.save(DalleEncoder(n_hid=4, vocab_size=32).state_dict(), path)
    assert build_tokenizer(make_cfg(tokenizer="dalle", dalle_encoder=str(path))).codebook_size == 32
    with pytest.raises(UarbenchError, match="set codebook_size = 32"):
        build_tokenizer(make_cfg(tokenizer="dalle", dalle_encoder=str(path), codebook_size=64))


def test_lsu_embedding_shapes_and_layout(make_cfg):
    cfg = make_cfg()
    lsu = LSUEmbedding(cfg)
    tokens = torch.randint(0, cfg.codebook_size, (3, 2, 2, 2))
    ids = torch.randint(0, cfg.vocab_size, (3, 7))
    e_img, e_txt = lsu(tokens, ids)
    assert e_img.shape == (3, 8, 32) and e_txt.shape == (3, 7, 32)
    # L is view-major, then row-major: position 4 is view 1, row 0, column 0
    expected = (lsu.image.tokens.weight[tokens[0, 1, 0, 0]] + lsu.image.pos[0, 0] + lsu.image.view.weight[1])
    torch.testing.assert_close(e_img[0, 4], expected)
    assert LSUEmbedding(make_cfg(lsu=False)).image is None
