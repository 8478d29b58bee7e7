"""The UAR model (Li et al., ICCV 2023, §3; Eqs. 1-5 and 13), built from one UARConfig.

    E(I), E(R) = LSU(I, R)            # token embeddings (or CNN patches on the Base path)
    F(I), F(R) = CRA(E(I), E(R))      # one CRA for both modalities (F = E without integration)
    h_t = Decoder_TIR(Encoder(F(I)), F(R)_<t)
    p(r_t | R_<t, I) = softmax(Linear(h_t))
    L = l1 * CE + l2 * L_Global + l3 * L_Mask

Training and decoding are separate: :meth:`UARModel.forward` computes the losses with teacher
forcing; :meth:`encode` and :meth:`start_decoding` / :meth:`decode_next` (incremental) are what a
beam search calls; :meth:`decode_step` (recomputes the prefix) and :meth:`greedy` are the simple
reference decoders. The image tokenizer runs outside (frozen).

Batch contract (a dict):
    image_tokens (B, V, h, w) long   -- with cfg.lsu (ids from an ImageTokenizer)
    images       (B, V, 1, H, W) float in [0, 1]  -- with cfg.lsu False (Base path)
    ids          (B, T) long, [bos] + words + [eos] + pad (pad 0, bos 1, eos 2), T <= max_seq_length
    mask         (B, T) bool, True = real token (optional: defaults to ids != pad)
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from uarbench.errors import UarbenchError
from uarbench.models import register_model
from uarbench.models.base import ConfigCheckpoint, TrainableModel
from uarbench.models.layers import (DecoderCache, TransformerDecoder, TransformerEncoder,
                                     use_attention)
from uarbench.models.resnet import CNNPatchEncoder
from uarbench.models.uar.config import UARConfig
from uarbench.models.uar.cra import CRA, global_alignment_loss, identical_rows
from uarbench.models.uar.lsu import LSUEmbedding
from uarbench.models.uar.tir import TIR


@register_model("uar")
class UARModel(ConfigCheckpoint, TrainableModel):
    config_class = UARConfig

    @staticmethod
    def uses_image_tokens(cfg: UARConfig) -> bool:
        """LSU reads frozen image-tokenizer ids; the Base path reads pixels."""
        return cfg.lsu

    def __init__(self, cfg: UARConfig) -> None:
        super().__init__()
        if cfg.vocab_size <= max(cfg.pad_id, cfg.bos_id, cfg.eos_id):
            raise UarbenchError(f"UARConfig.vocab_size is {cfg.vocab_size} (unset).",
                                fix="pass vocab_size=len(word_tokenizer), specials included.")
        self.cfg = cfg
        self.lsu = LSUEmbedding(cfg)  # text table always; image table only with cfg.lsu
        self.cnn = (None if cfg.lsu else
                    CNNPatchEncoder(cfg.cnn_arch, cfg.d_model, cfg.n_views, cfg.dropout, cfg.cnn_weights,
                                     cfg.cnn_width))
        self.cra = CRA(cfg) if cfg.cra_integration else None
        layer_args = (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.norm_first)
        self.encoder = TransformerEncoder(*layer_args)
        self.decoder = TransformerDecoder(*layer_args)
        self.tir = (TIR(cfg.n_layers, cfg.max_seq_length, cfg.n_visual_tokens, cfg.tir_k)
                    if cfg.tir else None)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.stage = 1
        self._init_weights()
        use_attention(self, cfg.attention)

    def _init_weights(self) -> None:
        # small normal init (GPT-2 / nanoGPT), token tables N(0, embed_std^2) (R2Gen's lineage
        # uses N(0, 1): a config field, measured worse on synth-cxr cpu-small); the ResNet keeps
        # its own init or loaded weights
        for name, m in self.named_modules():
            if name.startswith("cnn.resnet"):
                continue
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=self.cfg.embed_std)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # --- two-stage training (§3.5) ---
    stage1_unused = ("tir.",)  # the TIR masks: unused in stage 1, they stay at 0

    @staticmethod
    def stage1_config(cfg: UARConfig) -> UARConfig:
        """The one-stage config whose whole training is this config's stage 1: with two stages
        the masks are absent from stage 1, so TIR and its settings drop out (row (e) for the
        full UAR). Row (f) (masks from the start) is its own stage 1."""
        if cfg.tir and not cfg.two_stage:
            return cfg
        default = UARConfig()
        return cfg.replace(tir=False, two_stage=False, tir_k=default.tir_k, l3=default.l3)

    def training_stages(self) -> tuple[int, ...]:
        """§3.5: two stages when TIR is on and two_stage is set; else one (rows a-f, Base)."""
        return (1, 2) if self.cfg.two_stage and self.tir is not None else (1,)

    def set_stage(self, stage: int) -> None:
        """Stage 1: no TIR mask (l3 has nothing to weigh); stage 2: masks in use and in L_Mask.
        With two_stage False (ablation row f) the masks are in use whatever the stage."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.stage = stage

    def loss_weights(self) -> tuple[float, float, float]:
        """Eq. 13's (l1, l2, l3) for (CE, L_Global, L_Mask)."""
        return (self.cfg.l1, self.cfg.l2, self.cfg.l3)

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """L_Mask's raw sum has a large gradient: the masks are clipped apart from everything
        else, so they do not shrink the CE gradients through one shared norm."""
        masks = [] if self.tir is None else list(self.tir.parameters())
        ids = {id(p) for p in masks}
        return [[p for p in self.parameters() if id(p) not in ids]] + ([masks] if masks else [])

    @property
    def tir_active(self) -> bool:
        return self.tir is not None and (self.stage == 2 or not self.cfg.two_stage)

    def _cross_biases(self, T: int, L: int) -> list[Tensor] | None:
        return self.tir.biases(T, L) if self.tir_active else None

    # --- the shared path ---
    def embed_image(self, x: Tensor) -> Tensor:
        """E(I) (B, L, d) from token ids (B, V, h, w) (lsu) or images (B, V, 1, H, W) (Base)."""
        if self.cfg.lsu:
            if x.dim() != 4 or x.is_floating_point():
                raise ValueError(f"lsu=True takes image token ids (B, V, h, w) long, got "
                                 f"{tuple(x.shape)} {x.dtype}")
            return self.lsu.image(x)
        if x.dim() != 5 or not x.is_floating_point():
            raise ValueError(f"lsu=False takes images (B, V, 1, H, W) float, got "
                             f"{tuple(x.shape)} {x.dtype}")
        return self.cnn(x)

    def basis_kv(self) -> tuple[Tensor, Tensor] | None:
        """CRA's basis K, V for :meth:`align` (None without CRA integration)."""
        return None if self.cra is None else self.cra.basis_kv()

    def align(self, e: Tensor, basis_kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """F = CRA(E) with integration, else F = E (ablation rows without CRA integration).
        ``basis_kv`` from :meth:`basis_kv`, computed once for several calls (else here)."""
        return e if self.cra is None else self.cra(e, basis_kv)

    def encode(self, images_or_tokens: Tensor) -> Tensor:
        """-> memory (B, L, d): the Transformer encoder over F(I)."""
        return self.encoder(self.align(self.embed_image(images_or_tokens)))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Teacher forcing: input ids[:, :-1], target ids[:, 1:]. Returns the weighted total
        ``loss`` (Eq. 13), its terms ``ce``, ``global_``, ``mask`` (0 where switched off or not in
        this stage), and ``logits`` (B, T-1, vocab)."""
        cfg, ids = self.cfg, batch["ids"]
        mask = batch["mask"] if batch.get("mask") is not None else ids != cfg.pad_id
        key = "image_tokens" if cfg.lsu else "images"
        if key not in batch:
            raise KeyError(f"UAR with lsu={cfg.lsu} needs batch[{key!r}]")
        kv = self.basis_kv()  # once for both modalities
        f_img = self.align(self.embed_image(batch[key]), kv)  # (B, L, d)
        # F(R) of the whole ground-truth report: positions and CRA are per token, so the decoder
        # input F(R)_<t is its prefix, and L_Global sees every word including the last
        f_txt = self.align(self.lsu.text(ids), kv)  # (B, T, d)
        T, L = ids.shape[1] - 1, f_img.shape[1]
        h = self.decoder(f_txt[:, :-1], self.encoder(f_img), self_mask=mask[:, :-1],
                         cross_biases=self._cross_biases(T, L))  # (B, T-1, d)
        logits = self.head(h)  # (B, T-1, vocab)
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)  # pad positions carry no loss
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        zero = ce.new_zeros(())
        global_ = (global_alignment_loss(f_img, f_txt, None, mask, cfg.triplet_margin,
                                         identical_rows(ids), cfg.triplet_negatives)
                   if cfg.cra_global_loss else zero)
        mask_loss = self.tir.mask_loss() if self.tir_active else zero
        loss = cfg.l1 * ce + cfg.l2 * global_ + cfg.l3 * mask_loss
        return {"loss": loss, "ce": ce, "global_": global_, "mask": mask_loss, "logits": logits}

    # --- decoding ---
    def decode_step(self, memory: Tensor, memory_mask: Tensor | None, prefix_ids: Tensor) -> Tensor:
        """memory (B, L, d) from :meth:`encode` (repeat it per beam), memory_mask (B, L) bool or
        None (every visual token is real), prefix_ids (B, t) unpadded, starting with bos, t <=
        max_seq_length -> log-probabilities (B, vocab) of token t+1. Recomputes the whole prefix:
        the reference that :meth:`decode_next` (what the searches use) is tested against."""
        f_txt = self.align(self.lsu.text(prefix_ids))  # (B, t, d)
        h = self.decoder(f_txt, memory, memory_mask=memory_mask,
                         cross_biases=self._cross_biases(prefix_ids.shape[1], memory.shape[1]))
        return F.log_softmax(self.head(h[:, -1]), dim=-1)  # (B, vocab)

    # --- incremental decoding (what decode() uses; equal to decode_step up to float rounding) ---
    def start_decoding(self, memory: Tensor, memory_mask: Tensor | None,
                       group: int = 1) -> DecoderCache:
        """A cache of the memory's cross-attention K, V for :meth:`decode_next`, with ``group``
        prefixes (beams) per memory row."""
        cache = self.decoder.start_cache(memory, memory_mask, group)
        cache.shared["basis_kv"] = self.basis_kv()  # once per decoding, not per token
        return cache

    def decode_next(self, cache: DecoderCache, prefix_ids: Tensor) -> Tensor:
        """As :meth:`decode_step`, feeding only the newest token prefix_ids[:, -1] (its earlier
        tokens are in ``cache``, which this extends) -> log-probabilities (B, vocab)."""
        t = prefix_ids.shape[1]
        if cache.length != t - 1:
            raise ValueError(f"the cache holds {cache.length} positions; the prefix has {t}")
        e = self.lsu.text.at(prefix_ids[:, -1:], t - 1)  # (B, 1, d)
        biases = self._cross_biases(t, cache.n_memory)
        biases = None if biases is None else [b[-1:] for b in biases]  # (1, L): row t-1 of Eq. 11
        h = self.decoder.step(self.align(e, cache.shared.get("basis_kv")), cache,
                              cross_biases=biases)
        return F.log_softmax(self.head(h[:, -1]), dim=-1)  # (B, vocab)

    @torch.no_grad()
    def greedy(self, images_or_tokens: Tensor, max_len: int | None = None) -> Tensor:
        """Reference decoder -> (B, n <= max_len) ids after bos, eos included, pad after eos.
        Call ``model.eval()`` first: dropout is the caller's mode to set."""
        cfg = self.cfg
        max_len = cfg.max_seq_length - 1 if max_len is None else max_len
        memory = self.encode(images_or_tokens)
        ids = torch.full((memory.shape[0], 1), cfg.bos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(memory.shape[0], dtype=torch.bool, device=memory.device)
        for _ in range(max_len):
            nxt = self.decode_step(memory, None, ids).argmax(dim=-1).masked_fill(done, cfg.pad_id)
            ids = torch.cat([ids, nxt[:, None]], dim=1)  # (B, t+1)
            done |= nxt == cfg.eos_id
            if done.all():
                break
        return ids[:, 1:]

    # --- optimiser groups and checkpoints ---
    def image_side_parameters(self) -> list[nn.Parameter]:
        """W_I, its positions and view embedding, or the CNN encoder: the spec trains these at a
        lower learning rate (5e-5 vs 1e-4)."""
        side = self.lsu.image if self.cnn is None else self.cnn
        return list(side.parameters())

