import math

import pytest
import torch

from uarbench.models.layers import (LearnedPositions, MultiHeadAttention, SinusoidalPositions,
                                    TransformerDecoder, TransformerEncoder)


def manual_attention(mha: MultiHeadAttention, x, mem, bias=None, key_mask=None, causal=False):
    """Per head, by the textbook formula, one head and one batch item at a time."""
    B, T, d = x.shape
    S, H, hd = mem.shape[1], mha.n_heads, mha.d_head
    q, k, v = mha.q_proj(x), mha.k_proj(mem), mha.v_proj(mem)
    out = torch.zeros(B, T, d)
    for b in range(B):
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            logits = q[b, :, sl] @ k[b, :, sl].T
            if bias is not None:
                logits = logits + bias
            logits = logits / math.sqrt(hd)
            allowed = torch.ones(T, S, dtype=torch.bool)
            if causal:
                allowed &= torch.ones(T, S).tril().bool()
            if key_mask is not None:
                allowed &= key_mask[b][None, :]
            logits = logits.masked_fill(~allowed, -1e30)
            out[b, :, sl] = logits.softmax(-1) @ v[b, :, sl]
    return mha.out_proj(out)


@pytest.fixture
def mha():
    torch.manual_seed(0)
    return MultiHeadAttention(8, 2, dropout=0.0)


def test_attention_matches_the_textbook_formula(mha):
    x, mem = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    got = mha(x, mem, mem, key_mask=key_mask)
    torch.testing.assert_close(got, manual_attention(mha, x, mem, key_mask=key_mask))


def test_causal_self_attention(mha):
    x = torch.randn(2, 4, 8)
    torch.testing.assert_close(mha(x, x, x, causal=True), manual_attention(mha, x, x, causal=True))
    # changing a future token leaves earlier outputs alone
    y = x.clone()
    y[:, 3] += 1.0
    torch.testing.assert_close(mha(x, x, x, causal=True)[:, :3], mha(y, y, y, causal=True)[:, :3])


def test_logit_bias_is_added_before_scaling_eq11(mha):
    x, mem = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    bias = 1000 * torch.sigmoid(torch.randn(3, 5))
    q, k = mha._heads(mha.q_proj(x)), mha._heads(mha.k_proj(mem))  # (B, H, T, hd)
    plain = mha.attention_logits(q, k)
    biased = mha.attention_logits(q, k, bias)
    # A = (Q K^T + k sigmoid(M)) / sqrt(d): the bias arrives divided by sqrt(d_head), same for every head
    torch.testing.assert_close(biased - plain, (bias / math.sqrt(mha.d_head)).expand_as(plain),
                               atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(plain, q @ k.transpose(-2, -1) / math.sqrt(mha.d_head))
    torch.testing.assert_close(mha(x, mem, mem, logit_bias=bias), manual_attention(mha, x, mem, bias=bias),
                               atol=1e-5, rtol=1e-4)
    # a constant bias changes no softmax: sigmoid(0) = 0.5 everywhere is a no-op at init
    torch.testing.assert_close(mha(x, mem, mem, logit_bias=torch.full((3, 5), 500.0)), mha(x, mem, mem),
                               atol=1e-4, rtol=1e-4)


def test_fully_masked_row_gives_no_nan(mha):
    x = torch.randn(1, 2, 8)
    out = mha(x, x, x, key_mask=torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_decoder_shapes_and_per_layer_biases(norm_first):
    enc = TransformerEncoder(2, 16, 4, 32, 0.0, norm_first)
    dec = TransformerDecoder(2, 16, 4, 32, 0.0, norm_first)
    mem = enc(torch.randn(3, 7, 16))
    x = torch.randn(3, 5, 16)
    out = dec(x, mem, self_mask=torch.ones(3, 5, dtype=torch.bool), cross_biases=[None, torch.zeros(5, 7)])
    assert mem.shape == (3, 7, 16) and out.shape == (3, 5, 16)
    with pytest.raises(ValueError):
        dec(x, mem, cross_biases=[None])  # one bias per layer


def test_positions():
    x = torch.zeros(2, 5, 6)
    sin = SinusoidalPositions(10, 6)(x)
    assert torch.allclose(sin[0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    learned = LearnedPositions(5, 6)
    assert learned(x).shape == (2, 5, 6)
    with pytest.raises(ValueError, match="max_seq_length"):
        learned(torch.zeros(1, 6, 6))
