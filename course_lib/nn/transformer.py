"""A small Transformer encoder with token-tagging and sequence-classification heads (chapter 04).

One readable file in the spirit of nanoGPT's ``model.py``: a config dataclass, the
feed-forward network, the encoder block (pre-norm or the 2017 post-norm arrangement),
the encoder and two heads. With ``causal=True`` the same encoder is a GPT-style decoder:
each position attends only to itself and the positions before it
(:class:`course_lib.nn.char_lm.CharLM` puts a language-model head on it). Every model returns a :class:`ModelOutput` whose ``hidden``,
``attention`` and ``mask`` fields let a distillation loss pair any teacher layer with any
student layer.

Padding: ``mask`` (B, L) is True on real tokens. It is applied as a key padding mask in
every layer, so padded positions never change the outputs at real positions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.nn.attention import MultiHeadAttention, causal_mask
from course_lib.nn.bigrams import HashedBigrams
from course_lib.nn.positional import POSITIONAL_KINDS, RelativePositionBias, build_positional_encoding


POOLING_KINDS: tuple[str, ...] = ("mean", "first")


@dataclass
class TransformerConfig:
    """Sizes and switches of a :class:`TransformerEncoder` (chapter 01).

    ``norm_first=True`` is the pre-norm arrangement (LayerNorm before each sublayer, plus a
    final LayerNorm), which trains stably without warm-up; ``False`` is the post-norm
    arrangement of the 2017 paper (LayerNorm after each residual addition).
    ``positional`` is "sinusoidal", "learned", "relative" (a learned score per head and distance
    in every attention layer) or "none". ``causal=True`` adds the causal mask of a decoder-only
    language model to the padding mask in every layer. ``bigram_buckets > 0`` adds hashed
    character-bigram features of width ``bigram_dim`` to the embeddings
    (:class:`~course_lib.nn.bigrams.HashedBigrams`).
    """

    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 512
    max_len: int = 128
    dropout: float = 0.1
    norm_first: bool = True
    positional: str = "sinusoidal"
    pad_id: int = 0
    causal: bool = False
    bigram_buckets: int = 0
    bigram_dim: int = 64

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "max_len"):
            checks.positive_int(name, getattr(self, name))
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})"
            )
        checks.number_in("dropout", self.dropout, 0.0, 1.0, high_open=True)
        for name in ("norm_first", "causal"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(
                f"positional must be one of {POSITIONAL_KINDS}, got {self.positional!r}"
            )
        if self.bigram_buckets != 0:
            checks.int_at_least("bigram_buckets (0: no bigram features)", self.bigram_buckets, 2)
        checks.positive_int("bigram_dim", self.bigram_dim)
        if self.positional == "sinusoidal" and self.d_model % 2 != 0:
            raise ValueError(
                f"d_model must be even for the sinusoidal positional encoding, got {self.d_model}"
            )
        if (
            isinstance(self.pad_id, bool)
            or not isinstance(self.pad_id, int)
            or not 0 <= self.pad_id < self.vocab_size
        ):
            raise ValueError(
                f"pad_id must be an int in [0, vocab_size={self.vocab_size}), got {self.pad_id!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain dict (JSON-serialisable), e.g. for a checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise ValueError."""
        return checks.config_from_dict(cls, data, required=("vocab_size",))


@dataclass(frozen=True)
class TransformerShape:
    """The shape of an encoder, as a recipe names it before the vocabulary is known (chapter 04).

    A case's recipe takes these fields and :meth:`model_config` turns them, with the vocabulary
    size (and any other :class:`TransformerConfig` field, such as ``causal``), into a config.
    """

    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    max_len: int = 128
    positional: str = "sinusoidal"
    bigram_buckets: int = 0
    bigram_dim: int = 64

    def model_config(self, vocab_size: int, **extra: Any) -> TransformerConfig:
        """The :class:`TransformerConfig` of this shape over ``vocab_size`` tokens."""
        return TransformerConfig(vocab_size=vocab_size, d_model=self.d_model, num_heads=self.num_heads,
                                 num_layers=self.num_layers, d_ff=self.d_ff, max_len=self.max_len,
                                 dropout=self.dropout, positional=self.positional,
                                 bigram_buckets=self.bigram_buckets, bigram_dim=self.bigram_dim, **extra)


@dataclass
class ModelOutput:
    """What every course model returns (chapter 04).

    * ``logits``: (B, L, C) for token tagging, (B, C) for sequence classification, None
      for the bare encoder.
    * ``hidden``: the embedding output (after positional encoding), then each layer's
      output, each (B, L, D); ``num_layers + 1`` tensors. With pre-norm the last entry has
      the final LayerNorm applied, so ``hidden[-1]`` is always what the heads read.
    * ``attention``: one (B, H, L, L) weight tensor per layer.
    * ``mask``: (B, L) bool, True on real tokens, or None.
    """

    logits: Tensor | None = None
    hidden: list[Tensor] = field(default_factory=list)
    attention: list[Tensor] = field(default_factory=list)
    mask: Tensor | None = None


class FeedForward(nn.Module):
    """Position-wise feed-forward network: Linear -> ReLU -> Dropout -> Linear (chapter 04).

    FFN(x) = max(0, x W1 + b1) W2 + b2 as in Vaswani et al. 2017 (section 3.3), with ReLU
    like the paper (BERT and GPT use GELU instead).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        """(..., d_model) -> (..., d_model)."""
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class EncoderBlock(nn.Module):
    """Self-attention and feed-forward sublayers, each with a residual connection (chapter 04).

    Pre-norm (``config.norm_first``):  x = x + Dropout(Sublayer(LayerNorm(x)))
    Post-norm (2017 paper):            x = LayerNorm(x + Dropout(Sublayer(x)))
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm_first = config.norm_first
        self.self_attn = MultiHeadAttention(config.d_model, config.num_heads, config.dropout)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.feed_forward = FeedForward(config.d_model, config.d_ff, config.dropout)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.dropout2 = nn.Dropout(config.dropout)
        self.position_bias = RelativePositionBias(config.num_heads) if config.positional == "relative" else None

    def _attend(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        bias = self.position_bias(x.shape[1], x.shape[1]) if self.position_bias is not None else None
        out, weights = self.self_attn(x, x, x, mask=mask, score_bias=bias)
        return self.dropout1(out), weights

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(x (B, L, D), attention weights (B, H, L, L))``.

        ``mask`` is a (B, L) padding mask (True on real tokens) or anything else
        :class:`~course_lib.nn.attention.MultiHeadAttention` accepts.
        """
        if self.norm_first:
            attended, weights = self._attend(self.norm1(x), mask)
            x = x + attended
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            attended, weights = self._attend(x, mask)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x, weights


class TransformerEncoder(nn.Module):
    """Token embedding * sqrt(d_model) (+ bigram features) + positional encoding -> dropout -> blocks -> (LayerNorm) (chapter 03).

    The embedding starts from N(0, 1 / d_model), so after the sqrt(d_model) scaling of
    section 3.4 of the paper token vectors have unit scale, like the positional encodings.
    ``forward`` returns a :class:`ModelOutput` with ``logits=None``; heads add logits.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)
        self.bigrams = (HashedBigrams(config.bigram_buckets, config.bigram_dim, config.d_model)
                        if config.bigram_buckets else None)
        self.positional = build_positional_encoding(
            config.positional, config.d_model, config.max_len
        )
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()

    def _check_input_ids(self, input_ids: Tensor) -> None:
        if not isinstance(input_ids, Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dim() != 2:
            raise ValueError(
                f"input_ids must be 2-D (batch, length), got shape {tuple(input_ids.shape)}"
            )
        if input_ids.dtype == torch.bool or input_ids.is_floating_point() or input_ids.is_complex():
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        length = input_ids.shape[1]
        if length > self.config.max_len:
            raise ValueError(
                f"input_ids has length {length}, which exceeds max_len={self.config.max_len} "
                "of this model; truncate the input or use a config with a larger max_len"
            )
        # The value check reads the data, which an exported (ONNX) graph cannot do; the
        # deployment predictors check the ids before they reach an exported model.
        if input_ids.numel() and not torch.compiler.is_exporting():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(
                    f"input_ids must lie in [0, vocab_size={self.config.vocab_size}), "
                    f"got values from {low} to {high}"
                )

    def _resolve_mask(self, input_ids: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            return input_ids != self.config.pad_id
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a boolean tensor (True on real tokens), got {got}")
        if mask.shape != input_ids.shape:
            raise ValueError(
                f"mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(mask.shape)}"
            )
        return mask

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Encode ``input_ids`` (B, L) integer; ``mask`` (B, L) bool, True on real tokens.

        Without ``mask``, positions equal to ``config.pad_id`` are treated as padding. With
        ``config.causal`` every position also attends only to itself and earlier positions.
        """
        self._check_input_ids(input_ids)
        mask = self._resolve_mask(input_ids, mask)
        attend = mask
        if self.config.causal:
            attend = mask[:, None, :] & causal_mask(input_ids.shape[1], device=input_ids.device)[None]
        x = self.embed(input_ids) * math.sqrt(self.config.d_model)
        if self.bigrams is not None:
            x = x + self.bigrams(input_ids, mask)
        x = self.dropout(self.positional(x))
        hidden = [x]
        attention = []
        for index, block in enumerate(self.blocks):
            x, weights = block(x, attend)
            if index == len(self.blocks) - 1:
                x = self.final_norm(x)
            hidden.append(x)
            attention.append(weights)
        return ModelOutput(logits=None, hidden=hidden, attention=attention, mask=mask)


class TokenTagger(nn.Module):
    """Encoder + dropout + Linear: one label per token, logits (B, L, num_labels) (chapter 01)."""

    def __init__(self, config: TransformerConfig, num_labels: int):
        super().__init__()
        checks.positive_int("num_labels", num_labels)
        self.config = config
        self.num_labels = num_labels
        self.encoder = TransformerEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, num_labels)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Return the encoder's :class:`ModelOutput` with per-token ``logits`` added."""
        output = self.encoder(input_ids, mask)
        output.logits = self.classifier(self.dropout(output.hidden[-1]))
        return output


class SequenceClassifier(nn.Module):
    """Encoder + pooling + dropout + Linear: one label per sequence, logits (B, num_classes) (chapter 04).

    ``pooling="mean"`` averages the final hidden states over real tokens only (padding is
    left out); ``pooling="first"`` takes the first position.
    """

    def __init__(self, config: TransformerConfig, num_classes: int, pooling: str = "mean"):
        super().__init__()
        checks.positive_int("num_classes", num_classes)
        if pooling not in POOLING_KINDS:
            raise ValueError(f"pooling must be one of {POOLING_KINDS}, got {pooling!r}")
        self.config = config
        self.num_classes = num_classes
        self.pooling = pooling
        self.encoder = TransformerEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, num_classes)

    def pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Pool (B, L, D) hidden states into (B, D) using the (B, L) real-token mask."""
        if self.pooling == "first":
            return hidden[:, 0]
        weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Return the encoder's :class:`ModelOutput` with per-sequence ``logits`` added."""
        output = self.encoder(input_ids, mask)
        pooled = self.pool(output.hidden[-1], output.mask)
        output.logits = self.classifier(self.dropout(pooled))
        return output


_FREE_TO_DIFFER = ("vocab_size", "max_len", "dropout")


@torch.no_grad()
def load_encoder_weights(target: TransformerEncoder, source: TransformerEncoder) -> int:
    """Copy a trained encoder's weights into ``target``, which may read more tokens; returns the new rows (chapter 09).

    This is how a pretrained encoder starts a model for another task (BERT-MRC starts from BERT).
    Both encoders must have the same shape apart from ``vocab_size``, ``max_len`` and ``dropout``;
    ``target``'s token ids must extend ``source``'s (the same id for every token ``source`` knows),
    and the token rows past ``source``'s vocabulary (e.g. ``[CLS]`` and ``[SEP]``) keep their
    initialisation.
    """
    for name, encoder in (("target", target), ("source", source)):
        if not isinstance(encoder, TransformerEncoder):
            raise TypeError(f"{name} must be a TransformerEncoder (a model's .encoder), got {type(encoder).__name__}")
    names = [item.name for item in dataclasses.fields(TransformerConfig) if item.name not in _FREE_TO_DIFFER]
    differ = [f"{name} {getattr(target.config, name)!r} vs {getattr(source.config, name)!r}"
              for name in names if getattr(target.config, name) != getattr(source.config, name)]
    if differ:
        raise ValueError("target and source encoders differ in shape (" + "; ".join(differ)
                         + "): build the target with the source's config, changing only vocab_size")
    new_rows = target.config.vocab_size - source.config.vocab_size
    if new_rows < 0:
        raise ValueError(f"target reads {target.config.vocab_size} tokens, fewer than the source's "
                         f"{source.config.vocab_size}: extend the source's vocabulary, do not cut it")
    state = source.state_dict()
    own = target.state_dict()
    own["embed.weight"][: source.config.vocab_size] = state.pop("embed.weight")
    for name, tensor in state.items():
        own[name].copy_(tensor)
    return new_rows


def count_parameters(model: nn.Module) -> int:
    """Return the number of parameters of ``model`` (shared parameters counted once) (chapter 01)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters())
