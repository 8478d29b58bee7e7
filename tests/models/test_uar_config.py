import dataclasses

import pytest

from uarbench.errors import UarbenchError
from uarbench.models.uar.config import UARConfig, VQConfig


def test_paper_preset_matches_the_spec():
    c = UARConfig.paper()
    assert (c.d_model, c.n_heads, c.d_ff, c.n_layers, c.dropout) == (512, 8, 512, 3, 0.1)
    assert (c.image_size, c.crop_size, c.basis_size, c.codebook_size) == (128, 112, 2048, 8192)
    assert (c.triplet_margin, c.tir_k, c.cra_heads) == (0.2, 1000.0, 8)
    assert (c.l1, c.l2, c.l3) == (1.0, 1.0, 1.0)
    assert c.lsu and c.cra_integration and c.cra_global_loss and c.tir and c.two_stage
    assert (c.basis, c.fusion, c.tokenizer) == ("orthogonal", "dual_gate", "learned")
    # 112 / 8 = 14 -> 196 tokens per view, 392 for IU-Xray's two views (paper §4.1)
    assert c.token_grid == 14 and c.n_visual_tokens == 392
    assert c.replace(lsu=False).n_visual_tokens == 2 * 4 * 4  # ResNet: 112 px -> 4 x 4


def test_cpu_small_preset_and_overrides():
    c = UARConfig.cpu_small(vocab_size=300, n_views=1)
    assert (c.d_model, c.n_heads, c.d_ff, c.n_layers, c.basis_size) == (128, 4, 256, 2, 256)
    assert c.basis_size > c.d_model  # B's columns stay orthonormal
    assert c.vocab_size == 300 and c.n_views == 1 and c.n_visual_tokens == 64


def test_dict_round_trip_including_nested_vq():
    c = UARConfig.cpu_small(vocab_size=77, fusion="add", cnn_weights="/x.pt")
    d = c.to_dict()
    assert isinstance(d["vq"], dict)
    assert UARConfig.from_dict(d) == c
    assert isinstance(UARConfig.from_dict(d).vq, VQConfig)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(UarbenchError, match="unknown UARConfig fields"):
        UARConfig.from_dict({**UARConfig().to_dict(), "nope": 1})


@pytest.mark.parametrize("bad", [dict(basis="random"), dict(fusion="concat"), dict(d_model=100),
                                 dict(crop_size=100), dict(crop_size=136)])
def test_invalid_values_fail_loudly(bad):
    with pytest.raises(UarbenchError):
        UARConfig(**bad)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        UARConfig().d_model = 3
