"""Transformer building blocks shared by UAR and the baselines (Vaswani et al. 2017).

The one addition to the textbook blocks is an optional additive bias on the attention logits,
added *before* the 1/sqrt(d_head) scaling, which is how UAR's Text-to-Image Refiner writes its
Eq. 11: A = (Q K^T + k * sigmoid(M)) / sqrt(d). Boolean masks follow one convention throughout:
True = this position may be attended to (the batch's ``mask`` uses the same sense).

Attention runs through ``F.scaled_dot_product_attention`` (fused kernels: flash / memory-efficient
on CUDA, the flash CPU kernel on CPU) wherever it applies, including Eq. 11's bias, which becomes
SDPA's additive ``attn_mask = bias / sqrt(d_head)`` (its gradient flows to TIR's masks). The
explicit softmax(Q K^T ...) V of :meth:`MultiHeadAttention._explicit` is kept as the reference:
``attention="explicit"`` selects it (:func:`use_attention`), and tests/models/test_sdpa.py checks
that both give the same outputs and gradients to 1e-5 in fp32.
"""
from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.models.config import AttentionKind


def _neg_inf(x: Tensor) -> float:
    # the most negative finite value: a fully masked row then gives a uniform softmax, not NaN
    return torch.finfo(x.dtype).min




def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    """a (B, H, T, x) @ b (B or 1, H, x, S) -> (B, H, T, S). A b shared by the batch (CRA's basis
    K and V) is multiplied once per head with the batch folded into the rows, instead of being
    broadcast: ``a @ b`` would copy b B times (measured: 57% of a beam search's time, B = 192
    hypotheses x 256 basis rows, before this)."""
    if b.shape[0] != 1 or a.shape[0] == 1:
        return a @ b
    B, H, T, x = a.shape
    out = a.transpose(0, 1).reshape(H, B * T, x) @ b[0]  # (H, B*T, S)
    return out.view(H, B, T, -1).transpose(0, 1)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over ``n_heads`` heads with an optional logit bias."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        assert d_model % n_heads == 0, "d_model must divide by n_heads"
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.sdpa = True  # False: the explicit reference path (see use_attention)

    def _heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, hd)

    def attention_logits(self, q: Tensor, k: Tensor, logit_bias: Tensor | None = None) -> Tensor:
        """Logits (B, H, T, S) before masking: (Q K^T + bias) / sqrt(d_head) (Eq. 11 with a bias,
        the plain scaled dot product without). ``logit_bias`` broadcasts to (B, H, T, S): a (T, S)
        bias is shared by every head and batch item. K may be shared by the batch (1, H, S, hd)."""
        scores = _batched_matmul(q, k.transpose(-2, -1))  # (B, H, T, S)
        if logit_bias is not None:
            scores = scores + logit_bias
        return scores / math.sqrt(self.d_head)

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """key/value (B, S, d) -> per-head K, V (B, H, S, hd): what an incremental decoder caches."""
        return self._heads(self.k_proj(key)), self._heads(self.v_proj(value))

    def attend(self, query: Tensor, k: Tensor, v: Tensor, *, key_mask: Tensor | None = None,
               causal: bool = False, logit_bias: Tensor | None = None, group: int = 1) -> Tensor:
        """query (B, T, d) over projected K, V (B, H, S, hd) -> (B, T, d).

        ``group`` g > 1 (a beam search's g hypotheses of one input, T = 1): query (B*g, 1, d)
        attends to K, V of B rows, hypotheses b*g .. b*g+g-1 to row b, computed as g query
        positions of that row; K, V are never copied per hypothesis."""
        if group > 1:
            if causal or query.shape[1] != 1 or query.shape[0] != k.shape[0] * group:
                raise ValueError(f"group {group} needs one non-causal position per hypothesis and "
                                 f"{k.shape[0]} x {group} hypotheses, got query {tuple(query.shape)}")
            rows = query.reshape(k.shape[0], group, query.shape[-1])  # (B, g, d)
            y = self.attend(rows, k, v, key_mask=key_mask, logit_bias=logit_bias)
            return y.reshape(query.shape)
        q = self._heads(self.q_proj(query))  # (B, H, T, hd)
        attend = self._sdpa if self.sdpa else self._explicit
        y = attend(q, k, v, key_mask, causal, logit_bias)  # (B, H, T, hd)
        return self.out_proj(y.transpose(1, 2).reshape(query.shape))  # (B, T, H*hd) -> (B, T, d)

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool,
                  logit_bias: Tensor | None) -> Tensor:
        """The reference: softmax((Q K^T + bias) / sqrt(d) masked) V, written out."""
        att = self.attention_logits(q, k, logit_bias)  # (B, H, T, S)
        T, S = att.shape[-2:]
        if causal:
            future = torch.ones(T, S, dtype=torch.bool, device=att.device).triu(S - T + 1)
            att = att.masked_fill(future, _neg_inf(att))
        if key_mask is not None:
            att = att.masked_fill(~key_mask[:, None, None, :], _neg_inf(att))  # (B, 1, 1, S)
        att = self.dropout(att.softmax(dim=-1))
        return _batched_matmul(att, v)

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal: bool,
              logit_bias: Tensor | None) -> Tensor:
        """The same attention through ``F.scaled_dot_product_attention``. Masks become one
        additive float mask (bias / sqrt(d), a large negative number where a key is masked; a
        row with every key masked then stays finite, as in the reference); a plain causal mask
        over a square T x T uses ``is_causal``; K, V shared by the batch (CRA's basis) are read
        once with the batch folded into the query rows."""
        B, H, T, hd = q.shape
        S = k.shape[2]
        p = self.dropout.p if self.training else 0.0
        plain = key_mask is None and logit_bias is None
        if plain and k.shape[0] == 1 and B > 1 and not causal:
            rows = q.transpose(0, 1).reshape(1, H, B * T, hd)
            y = F.scaled_dot_product_attention(rows, k, v, dropout_p=p)  # (1, H, B*T, hd)
            return y.view(H, B, T, hd).transpose(0, 1)
        if plain and (not causal or T == S):
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        mask = q.new_zeros(())
        if logit_bias is not None:
            mask = mask + logit_bias / math.sqrt(hd)
        blocked = None
        if causal:
            blocked = torch.ones(T, S, dtype=torch.bool, device=q.device).triu(S - T + 1)
        if key_mask is not None:
            keys = ~key_mask[:, None, None, :]  # (B, 1, 1, S)
            blocked = keys if blocked is None else blocked | keys
        if blocked is not None:
            mask = mask.masked_fill(blocked, _neg_inf(q) / 2)  # finite after adding a score
        if k.shape[0] != B:
            k, v = k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=p)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, *,
                key_mask: Tensor | None = None, causal: bool = False,
                logit_bias: Tensor | None = None) -> Tensor:
        """query (B, T, d), key/value (B, S, d); key_mask (B, S) bool, True = attend."""
        return self.attend(query, *self.project_kv(key, value), key_mask=key_mask, causal=causal,
                           logit_bias=logit_bias)


def use_attention(model: nn.Module, kind: AttentionKind) -> nn.Module:
    """Select how every attention of ``model`` is computed: ``sdpa`` (fused kernels) or
    ``explicit`` (the written-out reference). The two compute the same function, so a
    checkpoint trained with one loads under the other."""
    if kind not in AttentionKind.__args__:
        raise ValueError(f"attention {kind!r} not in {AttentionKind.__args__}")
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.sdpa = kind == "sdpa"
    return model


class FeedForward(nn.Module):
    """Position-wise FFN: Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class Residual(nn.Module):
    """x + dropout(f(norm(x))) (pre-norm) or norm(x + dropout(f(x))) (post-norm)."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool) -> None:
        super().__init__()
        self.norm, self.dropout, self.norm_first = nn.LayerNorm(d_model), nn.Dropout(dropout), norm_first

    def forward(self, x: Tensor, sublayer) -> Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.res_attn = Residual(d_model, dropout, norm_first)
        self.res_ffn = Residual(d_model, dropout, norm_first)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.res_attn(x, lambda h: self.self_attn(h, h, h, key_mask=mask))
        return self.res_ffn(x, self.ffn)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the memory (optionally logit-biased), FFN."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.res_self = Residual(d_model, dropout, norm_first)
        self.res_cross = Residual(d_model, dropout, norm_first)
        self.res_ffn = Residual(d_model, dropout, norm_first)

    def forward(self, x: Tensor, memory: Tensor, *, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, cross_bias: Tensor | None = None) -> Tensor:
        x = self.res_self(x, lambda h: self.self_attn(h, h, h, key_mask=self_mask, causal=True))
        x = self.res_cross(x, lambda h: self.cross_attn(h, memory, memory, key_mask=memory_mask,
                                                        logit_bias=cross_bias))
        return self.res_ffn(x, self.ffn)

    def step(self, x: Tensor, cache: dict[str, Tensor], *, memory_mask: Tensor | None = None,
             cross_bias: Tensor | None = None, group: int = 1) -> Tensor:
        """The newest position only: x (B, 1, d); ``cache`` holds this layer's self-attention K, V
        of the earlier positions (extended here) and the projected memory (of B / ``group`` rows,
        see :meth:`MultiHeadAttention.attend`)."""
        def self_attn(h: Tensor) -> Tensor:
            k, v = self.self_attn.project_kv(h, h)  # (B, H, 1, hd)
            cache["k"], cache["v"] = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            return self.self_attn.attend(h, cache["k"], cache["v"])  # every earlier position

        x = self.res_self(x, self_attn)
        x = self.res_cross(x, lambda h: self.cross_attn.attend(
            h, cache["mem_k"], cache["mem_v"], key_mask=memory_mask, logit_bias=cross_bias,
            group=group))
        return self.res_ffn(x, self.ffn)


class TransformerEncoder(nn.Module):
    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int,
                 dropout: float = 0.1, norm_first: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first)
                                    for _ in range(n_layers))
        # pre-norm leaves the residual stream unnormalised: close it with one LayerNorm
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int,
                 dropout: float = 0.1, norm_first: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, dropout, norm_first)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x: Tensor, memory: Tensor, *, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None,
                cross_biases: list[Tensor | None] | None = None) -> Tensor:
        """x (B, T, d), memory (B, S, d); ``cross_biases`` holds one (T, S) bias per layer."""
        biases = cross_biases if cross_biases is not None else [None] * len(self.layers)
        for layer, bias in zip(self.layers, biases, strict=True):
            x = layer(x, memory, self_mask=self_mask, memory_mask=memory_mask, cross_bias=bias)
        return self.norm(x)

    def start_cache(self, memory: Tensor, memory_mask: Tensor | None = None,
                    group: int = 1) -> "DecoderCache":
        """An empty incremental-decoding cache for memory (B, S, d), memory_mask (B, S) bool, and
        ``group`` hypotheses per memory row (B * group prefixes; a beam search's beam size)."""
        layers = []
        for layer in self.layers:
            # contiguous once: every step's matmul would otherwise copy the per-head view
            mem_k, mem_v = (t.contiguous() for t in layer.cross_attn.project_kv(memory, memory))
            empty = mem_k[:, :, :0].repeat_interleave(group, dim=0)
            layers.append({"k": empty, "v": empty, "mem_k": mem_k, "mem_v": mem_v})
        return DecoderCache(layers, memory_mask, group)

    def step(self, x: Tensor, cache: "DecoderCache",
             cross_biases: list[Tensor | None] | None = None) -> Tensor:
        """x (B, 1, d) at the next position -> (B, 1, d), equal to the last row of
        :meth:`forward` over the whole prefix; ``cross_biases`` holds one (1, S) row per layer."""
        biases = cross_biases if cross_biases is not None else [None] * len(self.layers)
        for layer, layer_cache, bias in zip(self.layers, cache.layers, biases, strict=True):
            x = layer.step(x, layer_cache, memory_mask=cache.memory_mask, cross_bias=bias,
                           group=cache.group)
        cache.length += 1
        return self.norm(x)


class DecoderCache:
    """Per-layer K, V of the decoded prefix (one row per hypothesis) and of the memory (one row
    per input: ``group`` consecutive hypotheses share it), the memory's mask; ``length`` =
    prefix positions held; ``shared``: what a model computes once per decoding and every
    hypothesis reads (UAR: CRA's basis K, V), left alone by :meth:`select`."""

    MEMORY = ("mem_k", "mem_v")

    def __init__(self, layers: list[dict[str, Tensor]], memory_mask: Tensor | None,
                 group: int = 1) -> None:
        self.layers, self.memory_mask, self.length, self.group = layers, memory_mask, 0, group
        self.shared: dict[str, object] = {}

    @property
    def n_memory(self) -> int:
        return self.layers[0]["mem_k"].shape[2]

    def select(self, index: Tensor) -> None:
        """Keep / reorder / copy hypotheses: hypothesis i becomes old hypothesis index[i]. With
        ``group`` g > 1 each block of g new hypotheses must come from one old block, and blocks
        keep their inputs' order (a beam search reorders beams within an input and drops whole
        inputs); the memory follows the blocks and is copied only when inputs leave. No host
        sync: the contract is checked on the CPU, and asserted on the device elsewhere."""
        rows = index
        if self.group > 1:
            blocks = index.view(-1, self.group) // self.group  # (rows, g): old input of each
            rows = blocks[:, 0]
            _check(blocks == rows[:, None],
                   f"select() must keep blocks of {self.group} hypotheses together")
        same_rows = rows.numel() == self.layers[0]["mem_k"].shape[0]
        if same_rows:
            _check(rows == torch.arange(rows.numel(), device=rows.device),
                   "select() may drop inputs but not reorder them")
        for layer in self.layers:
            for key, value in layer.items():
                if key not in self.MEMORY:
                    layer[key] = value.index_select(0, index)
                elif not same_rows:
                    layer[key] = value.index_select(0, rows)
        if self.memory_mask is not None and not same_rows:
            self.memory_mask = self.memory_mask.index_select(0, rows)


def _check(ok: Tensor, message: str) -> None:
    """Raise ValueError(message) unless every entry of ``ok`` is True; on an accelerator the
    check is queued (``torch._assert_async``) instead of waiting for the values."""
    if ok.device.type == "cpu":
        if not bool(ok.all()):
            raise ValueError(message)
    else:
        torch._assert_async(ok.all(), message)


class _PositionTable(nn.Module):
    """Adds rows of ``self.table`` (max_len, d): to x (B, T, d) at positions 0..T-1, or to one
    decoding step x (B, 1, d) at a given position."""

    table: Tensor

    def _check(self, n: int) -> None:
        if n > self.table.shape[0]:
            raise ValueError(f"sequence of {n} positions exceeds the table's "
                             f"{self.table.shape[0]}: raise max_seq_length")

    def forward(self, x: Tensor) -> Tensor:
        self._check(x.shape[1])
        return x + self.table[: x.shape[1]]

    def at(self, x: Tensor, position: int) -> Tensor:
        self._check(position + 1)
        return x + self.table[position]


class SinusoidalPositions(_PositionTable):
    """Fixed sin/cos positions (Vaswani et al. 2017, §3.5)."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        pos = torch.arange(max_len).float()[:, None]  # (max_len, 1)
        freq = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("table", table, persistent=False)


class LearnedPositions(_PositionTable):
    """A trained (max_len, d) table."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
