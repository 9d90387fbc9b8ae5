"""An encoder–decoder Transformer for translation, built from the course's own blocks (chapter 09).

The encoder is the course's :class:`~course_lib.nn.transformer.TransformerEncoder`. The decoder stacks
:class:`DecoderBlock` s: causal self-attention over the target prefix, cross-attention from every target
position to the encoder output (the "memory"), and the feed-forward network, each sublayer with a residual
connection and the same norm placement as the encoder (pre-norm or post-norm). With
``tie_embeddings`` one (vocab, d_model) table embeds the source, embeds the target and, transposed, projects
the decoder output to the logits (Press & Wolf 2017; Vaswani et al. 2017, section 3.4), which needs the
shared source/target vocabulary of :mod:`course_lib.data.subwords`.

Training uses teacher forcing: the decoder reads the gold target shifted right by one
(:func:`~course_lib.train.teacher_forcing.shift_right`: ``<bos> y1 ... yn`` to predict ``y1 ... yn <eos>``),
and the causal mask keeps position t from seeing targets after t. Generation (:mod:`course_lib.train.generation`) calls
:meth:`Seq2SeqTransformer.encode` once and :meth:`Seq2SeqTransformer.decode_step` once per new token;
:class:`CachedDecoder` gives the same logits while computing only the new position at each step.

Masks follow the course convention: (B, L) booleans, True on real tokens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import checks
from course_lib.data.subwords import BOS_ID, EOS_ID, PAD_ID
from course_lib.nn.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from course_lib.nn.positional import build_positional_encoding
from course_lib.nn.transformer import FeedForward, TransformerConfig, TransformerEncoder

SEQ2SEQ_POSITIONAL: tuple[str, ...] = ("sinusoidal", "learned")


@dataclass
class Seq2SeqConfig:
    """Sizes and switches of a :class:`Seq2SeqTransformer` (chapter 09).

    ``max_len`` bounds both the source length and the decoder input length. ``tie_embeddings=True`` shares
    one table between the source embedding, the target embedding and the output projection; ``False`` gives
    each its own. ``norm_first`` and ``positional`` mean what they mean in
    :class:`~course_lib.nn.transformer.TransformerConfig` (only "sinusoidal" and "learned" positions here).
    """

    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    max_len: int = 128
    tie_embeddings: bool = True
    norm_first: bool = True
    positional: str = "sinusoidal"
    pad_id: int = PAD_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_heads", "encoder_layers", "decoder_layers", "d_ff", "max_len"):
            checks.positive_int(name, getattr(self, name))
        if self.d_model % self.num_heads != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        checks.number_in("dropout", self.dropout, 0.0, 1.0, high_open=True)
        for name in ("tie_embeddings", "norm_first"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        checks.one_of("positional", self.positional, SEQ2SEQ_POSITIONAL)
        if self.positional == "sinusoidal" and self.d_model % 2 != 0:
            raise ValueError(f"d_model must be even for the sinusoidal positional encoding, got {self.d_model}")
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"{name} must be an int in [0, vocab_size={self.vocab_size}), got {value!r}")
        if len({self.pad_id, self.bos_id, self.eos_id}) != 3:
            raise ValueError(f"pad_id, bos_id and eos_id must differ, got {self.pad_id}, {self.bos_id}, {self.eos_id}")

    def encoder_config(self) -> TransformerConfig:
        """The :class:`TransformerConfig` of the encoder half (``encoder_layers`` layers, not causal)."""
        return TransformerConfig(vocab_size=self.vocab_size, d_model=self.d_model, num_heads=self.num_heads,
                                 num_layers=self.encoder_layers, d_ff=self.d_ff, max_len=self.max_len,
                                 dropout=self.dropout, norm_first=self.norm_first, positional=self.positional,
                                 pad_id=self.pad_id)

    def parameter_count(self) -> int:
        """The number of parameters of the model this config builds, from the formula (shared table counted once).

        Per attention layer 4 (d² + d); per feed-forward 2 d d_ff + d_ff + d; per LayerNorm 2 d. An encoder
        block has 1 attention, 1 feed-forward, 2 norms; a decoder block 2, 1, 3; pre-norm adds one final norm
        to each stack. Embeddings: V d once if tied, else three times (the projection has no bias); learned
        positions add max_len d to each stack.
        """
        d, d_ff = self.d_model, self.d_ff
        attention, feed_forward, norm = 4 * (d * d + d), 2 * d * d_ff + d_ff + d, 2 * d
        encoder_block = attention + feed_forward + 2 * norm
        decoder_block = 2 * attention + feed_forward + 3 * norm
        total = self.encoder_layers * encoder_block + self.decoder_layers * decoder_block
        total += self.vocab_size * d * (1 if self.tie_embeddings else 3)
        total += 2 * self.max_len * d if self.positional == "learned" else 0
        total += 2 * norm if self.norm_first else 0
        return total

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise ValueError."""
        return checks.config_from_dict(cls, data, required=("vocab_size",))


@dataclass
class DecoderOutput:
    """What the decoder returns: logits and, per layer, hidden states and both kinds of attention (chapter 09).

    * ``logits``: (B, T, V), or None from the bare :class:`TransformerDecoder`;
    * ``hidden``: the embedding output, then each layer's output, each (B, T, D); with pre-norm the last has
      the final LayerNorm applied;
    * ``self_attention``: one (B, H, T, T) tensor per layer, zero above the diagonal;
    * ``cross_attention``: one (B, H, T, S) tensor per layer, each row summing to 1 over the real source tokens.
    """

    logits: Tensor | None = None
    hidden: list[Tensor] = field(default_factory=list)
    self_attention: list[Tensor] = field(default_factory=list)
    cross_attention: list[Tensor] = field(default_factory=list)


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to the encoder output, feed-forward; each with a residual (chapter 09).

    Pre-norm (``config.norm_first``):  x = x + Dropout(Sublayer(LayerNorm(x))) for the three sublayers
    Post-norm (2017 paper):            x = LayerNorm(x + Dropout(Sublayer(x)))
    as in :class:`~course_lib.nn.transformer.EncoderBlock`. Cross-attention takes its queries from the
    target stream and its keys and values from ``memory``.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.norm_first = config.norm_first
        self.self_attn = MultiHeadAttention(config.d_model, config.num_heads, config.dropout)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.cross_attn = MultiHeadAttention(config.d_model, config.num_heads, config.dropout)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.dropout2 = nn.Dropout(config.dropout)
        self.feed_forward = FeedForward(config.d_model, config.d_ff, config.dropout)
        self.norm3 = nn.LayerNorm(config.d_model)
        self.dropout3 = nn.Dropout(config.dropout)

    def _self_attend(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out, weights = self.self_attn(x, x, x, mask=mask)
        return self.dropout1(out), weights

    def _cross_attend(self, x: Tensor, memory: Tensor, memory_mask: Tensor) -> tuple[Tensor, Tensor]:
        out, weights = self.cross_attn(x, memory, memory, mask=memory_mask)
        return self.dropout2(out), weights

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor,
                memory_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(x (B, T, D), self-attention (B, H, T, T), cross-attention (B, H, T, S))``.

        ``self_mask`` is anything :class:`MultiHeadAttention` accepts, normally (B, T, T) causal-and-padding;
        ``memory_mask`` is the (B, S) source padding mask, True on real source tokens.
        """
        if self.norm_first:
            attended, self_weights = self._self_attend(self.norm1(x), self_mask)
            x = x + attended
            attended, cross_weights = self._cross_attend(self.norm2(x), memory, memory_mask)
            x = x + attended
            x = x + self.dropout3(self.feed_forward(self.norm3(x)))
        else:
            attended, self_weights = self._self_attend(x, self_mask)
            x = self.norm1(x + attended)
            attended, cross_weights = self._cross_attend(x, memory, memory_mask)
            x = self.norm2(x + attended)
            x = self.norm3(x + self.dropout3(self.feed_forward(x)))
        return x, self_weights, cross_weights


def _check_ids(name: str, ids: object, config: Seq2SeqConfig) -> Tensor:
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, length), got shape {tuple(ids.shape)}")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"{name} must be an integer tensor, got dtype {ids.dtype}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one position, got shape {tuple(ids.shape)}")
    if ids.shape[1] > config.max_len:
        raise ValueError(f"{name} has length {ids.shape[1]}, which exceeds max_len={config.max_len}; "
                         "truncate it or build the model with a larger max_len")
    if ids.numel() and not torch.compiler.is_exporting():  # an exported graph cannot read the data
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= config.vocab_size:
            raise ValueError(f"{name} must lie in [0, vocab_size={config.vocab_size}), got values from {low} to {high}")
    return ids


def _resolve_mask(name: str, mask: Tensor | None, ids: Tensor, pad_id: int) -> Tensor:
    """``mask`` after checks, or ``ids != pad_id`` when it is None."""
    if mask is None:
        return ids != pad_id
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a boolean tensor (True on real tokens), got {got}")
    if mask.shape != ids.shape:
        raise ValueError(f"{name} must have the shape of its ids {tuple(ids.shape)}, got {tuple(mask.shape)}")
    return mask


def _check_memory(memory: object, src_mask: object, batch: int, d_model: int) -> None:
    if not isinstance(memory, Tensor) or memory.dim() != 3 or memory.shape[-1] != d_model:
        shape = tuple(memory.shape) if isinstance(memory, Tensor) else type(memory).__name__
        raise ValueError(f"memory must be the encoder output (batch, source_length, d_model={d_model}), got {shape}")
    if not isinstance(src_mask, Tensor) or src_mask.dtype != torch.bool or src_mask.shape != memory.shape[:2]:
        got = (tuple(src_mask.shape), src_mask.dtype) if isinstance(src_mask, Tensor) else type(src_mask).__name__
        raise ValueError(f"src_mask must be a boolean (batch, source_length) = {tuple(memory.shape[:2])} mask, "
                         f"True on real source tokens, got {got}")
    if memory.shape[0] != batch:
        raise ValueError(f"the source batch ({memory.shape[0]}) and the target batch ({batch}) must have the same size")


class TransformerDecoder(nn.Module):
    """Target embedding * sqrt(d_model) + positions -> dropout -> decoder blocks -> (LayerNorm) (chapter 09).

    ``forward(tgt_in_ids, tgt_mask, memory, src_mask)`` returns a :class:`DecoderOutput` with ``logits=None``;
    :class:`Seq2SeqTransformer` adds the output projection.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)
        self.positional = build_positional_encoding(config.positional, config.d_model, config.max_len)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(config) for _ in range(config.decoder_layers))
        self.final_norm = nn.LayerNorm(config.d_model) if config.norm_first else nn.Identity()

    def forward(self, tgt_in_ids: Tensor, tgt_mask: Tensor | None, memory: Tensor, src_mask: Tensor) -> DecoderOutput:
        """Decode all target positions at once; position t sees target positions <= t and every real source token."""
        tgt_in_ids = _check_ids("tgt_in_ids", tgt_in_ids, self.config)
        tgt_mask = _resolve_mask("tgt_mask", tgt_mask, tgt_in_ids, self.config.pad_id)
        _check_memory(memory, src_mask, tgt_in_ids.shape[0], self.config.d_model)
        length = tgt_in_ids.shape[1]
        self_mask = tgt_mask[:, None, :] & causal_mask(length, device=tgt_in_ids.device)[None]
        x = self.embed(tgt_in_ids) * math.sqrt(self.config.d_model)
        x = self.dropout(self.positional(x))
        output = DecoderOutput(hidden=[x])
        for index, block in enumerate(self.blocks):
            x, self_weights, cross_weights = block(x, memory, self_mask, src_mask)
            if index == len(self.blocks) - 1:
                x = self.final_norm(x)
            output.hidden.append(x)
            output.self_attention.append(self_weights)
            output.cross_attention.append(cross_weights)
        return output


class Seq2SeqTransformer(nn.Module):
    """Encoder–decoder Transformer: ``forward(src_ids, src_mask, tgt_in_ids, tgt_mask)`` -> logits (chapter 09).

    The logits are (B, T, V): position t scores the target token after ``tgt_in_ids[:, :t + 1]``.

    ``encode`` runs the encoder once; ``decode`` runs the decoder over a whole target prefix and returns a
    :class:`DecoderOutput`; ``decode_step`` returns the logits of the next token only, for generation;
    ``cross_attention`` returns one layer's cross-attention weights for a heatmap. A mask left as None is
    read from the ids (positions equal to ``config.pad_id`` are padding).
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = TransformerEncoder(config.encoder_config())
        self.decoder = TransformerDecoder(config)
        self.output = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.decoder.embed = self.encoder.embed
            self.output.weight = self.encoder.embed.weight
        else:
            nn.init.normal_(self.output.weight, std=config.d_model**-0.5)

    def _encode(self, src_ids: Tensor, src_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(memory (B, S, D), src_mask (B, S))``, the mask read from the ids when it is None."""
        src_ids = _check_ids("src_ids", src_ids, self.config)
        src_mask = _resolve_mask("src_mask", src_mask, src_ids, self.config.pad_id)
        return self.encoder(src_ids, src_mask).hidden[-1], src_mask

    def encode(self, src_ids: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """The encoder output ("memory") (B, S, D) of ``src_ids`` (B, S)."""
        return self._encode(src_ids, src_mask)[0]

    def decode(self, memory: Tensor, src_mask: Tensor, tgt_in_ids: Tensor,
               tgt_mask: Tensor | None = None) -> DecoderOutput:
        """Run the decoder over ``tgt_in_ids`` (B, T) against ``memory``; the output's ``logits`` are (B, T, V).

        ``src_mask`` (B, S) is required here: it must be the mask the memory was encoded with.
        """
        output = self.decoder(tgt_in_ids, tgt_mask, memory, src_mask)
        output.logits = self.output(output.hidden[-1])
        return output

    def decode_step(self, memory: Tensor, src_mask: Tensor, prefix: Tensor) -> Tensor:
        """The logits (B, V) of the token after ``prefix`` (B, t), which starts with ``<bos>`` and has no padding.

        The whole prefix is decoded again at every step (no key/value cache): simple, and quadratic in length.
        """
        prefix = _check_ids("prefix", prefix, self.config)
        real = torch.ones(prefix.shape, dtype=torch.bool, device=prefix.device)
        return self.decode(memory, src_mask, prefix, real).logits[:, -1]

    def forward(self, src_ids: Tensor, src_mask: Tensor | None, tgt_in_ids: Tensor, tgt_mask: Tensor | None) -> Tensor:
        """Teacher-forced logits (B, T, V): position t scores the target token after ``tgt_in_ids[:, :t + 1]``."""
        memory, src_mask = self._encode(src_ids, src_mask)
        return self.decode(memory, src_mask, tgt_in_ids, tgt_mask).logits

    def cross_attention(self, src_ids: Tensor, src_mask: Tensor | None, tgt_in_ids: Tensor, tgt_mask: Tensor | None,
                        layer: int = -1) -> Tensor:
        """The cross-attention weights (B, H, T, S) of decoder layer ``layer`` (negative counts from the top)."""
        layers = self.config.decoder_layers
        if isinstance(layer, bool) or not isinstance(layer, int) or not -layers <= layer < layers:
            raise ValueError(f"layer must be an int in [{-layers}, {layers}) for {layers} decoder layers, "
                             f"got {layer!r}")
        memory, src_mask = self._encode(src_ids, src_mask)
        output = self.decoder(tgt_in_ids, tgt_mask, memory, src_mask)
        return output.cross_attention[layer]


class CachedDecoder(nn.Module):
    """A model for :mod:`course_lib.train.generation` that keeps each decoder layer's keys and values (chapter 09).

    ``decode_step(memory, src_mask, prefix)`` is called with the whole prefix at every step; when
    the prefix extends the previous call's by one token (beam search may have reordered the rows
    of each input's ``beam_size`` rows), only the new position is computed, against the cached
    keys and values. Any other prefix is decoded again from its start. A step embeds only the new
    token and attends with PyTorch's fused ``scaled_dot_product_attention`` (the course's own
    function where a source has no real token, which it handles without NaN). The logits equal
    :meth:`Seq2SeqTransformer.decode_step`'s up to floating-point rounding.
    """

    def __init__(self, model: Seq2SeqTransformer, beam_size: int = 1) -> None:
        super().__init__()
        if not isinstance(model, Seq2SeqTransformer):
            raise TypeError(f"model must be a Seq2SeqTransformer, got {type(model).__name__}")
        self.model = model
        self.config = model.config
        self.beam_size = checks.positive_int("beam_size", beam_size)
        self._reset(None, None)

    def _reset(self, memory: Tensor | None, prefix: Tensor | None) -> None:
        self._memory, self._prefix = memory, prefix
        self._keys: list[Tensor] = []
        self._values: list[Tensor] = []
        self._cross: list[tuple[Tensor, Tensor]] = []
        self._source: Tensor | None = None
        self._fused = False

    def encode(self, src_ids: Tensor, src_mask: Tensor) -> Tensor:
        """The model's encoder output; a new input starts a new cache."""
        self._reset(None, None)
        return self.model.encode(src_ids, src_mask)

    def _parents(self, prefix: Tensor) -> Tensor | slice | None:
        """For each row of ``prefix``, the row of the previous call it extends (within its input's rows), or None.

        Rows that extend the previous call's rows in their order give ``slice(None)``: the cache is kept as it is.
        """
        old, new = self._prefix, prefix[:, :-1]
        if old is None or old.shape != new.shape:
            return None
        if torch.equal(old, new):
            return slice(None)
        beams = self.beam_size if len(new) % self.beam_size == 0 else 1
        groups, length = len(new) // beams, new.shape[1]
        same = (new.view(groups, beams, 1, length) == old.view(groups, 1, beams, length)).all(dim=-1)
        if not bool(same.any(dim=-1).all()):
            return None
        offsets = torch.arange(groups, device=new.device)[:, None] * beams
        return (same.int().argmax(dim=-1) + offsets).reshape(-1)

    def decode_step(self, memory: Tensor, src_mask: Tensor, prefix: Tensor) -> Tensor:
        """The logits (B, V) of the token after ``prefix`` (B, t), as the model's ``decode_step`` gives them."""
        parents = self._parents(prefix) if memory is self._memory else None
        if parents is None:
            self._reset(memory, None)
            self._cross = [self._project(block.cross_attn, memory) for block in self.model.decoder.blocks]
            self._source, self._fused = src_mask[:, None, None, :], bool(src_mask.any(dim=-1).all())
            for position in range(prefix.shape[1] - 1):
                self._advance(prefix[:, : position + 1])
        else:
            self._keys = [keys[parents] for keys in self._keys]
            self._values = [values[parents] for values in self._values]
        self._prefix = prefix
        return self._advance(prefix)

    @staticmethod
    def _project(attention: nn.Module, states: Tensor) -> tuple[Tensor, Tensor]:
        return attention._split_heads(attention.k_proj(states)), attention._split_heads(attention.v_proj(states))

    def _attend(self, attention: nn.Module, query: Tensor, keys: Tensor, values: Tensor,
                mask: Tensor | None) -> Tensor:
        queries = attention._split_heads(attention.q_proj(query))
        if self._fused:
            heads = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
        else:
            heads, _ = scaled_dot_product_attention(queries, keys, values, mask)
        return attention.out_proj(heads.transpose(1, 2).reshape(query.shape[0], 1, attention.d_model))

    def _self_attend(self, layer: int, attention: nn.Module, x: Tensor) -> Tensor:
        keys, values = self._project(attention, x)
        if layer < len(self._keys):
            keys = torch.cat([self._keys[layer], keys], dim=2)
            values = torch.cat([self._values[layer], values], dim=2)
            self._keys[layer], self._values[layer] = keys, values
        else:
            self._keys.append(keys)
            self._values.append(values)
        return self._attend(attention, x, keys, values, None)

    def _advance(self, prefix: Tensor) -> Tensor:
        """Run the last position of ``prefix`` through the decoder, caching its keys and values; its logits (B, V)."""
        decoder = self.model.decoder
        x = decoder.embed(prefix[:, -1:]) * math.sqrt(self.config.d_model)
        x = decoder.positional(x, start=prefix.shape[1] - 1)
        for layer, block in enumerate(decoder.blocks):
            keys, values = self._cross[layer]
            if block.norm_first:
                x = x + self._self_attend(layer, block.self_attn, block.norm1(x))
                x = x + self._attend(block.cross_attn, block.norm2(x), keys, values, self._source)
                x = x + block.feed_forward(block.norm3(x))
            else:
                x = block.norm1(x + self._self_attend(layer, block.self_attn, x))
                x = block.norm2(x + self._attend(block.cross_attn, x, keys, values, self._source))
                x = block.norm3(x + block.feed_forward(x))
        return self.model.output(decoder.final_norm(x))[:, -1]
