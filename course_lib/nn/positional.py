"""Positional encodings (chapter 03).

Self-attention is blind to order: permuting the tokens permutes its outputs in the same
way. A positional encoding adds a position-dependent vector to every token embedding.

* Sinusoidal (Vaswani et al. 2017, section 3.5):
  PE[p, 2i] = sin(p / 10000^(2i / d)),  PE[p, 2i + 1] = cos(p / 10000^(2i / d)).
  For every offset k there is a fixed matrix M_k with PE[p + k] = PE[p] @ M_k.T for all p
  (see :func:`offset_matrix`), so a relative offset is a linear map of the encoding.
* Learned: one trainable vector per position (as in BERT and GPT).
* Relative (Shaw et al. 2018; the bias form of T5): nothing is added to the embeddings;
  instead every attention layer adds a learned score b[h, clip(j - i)] to query i's score for
  key j, one per head and signed distance up to ±:data:`RELATIVE_DISTANCE` (farther keys share
  the last one). Direction and distance are what a tagger needs (TENER, Yan et al. 2019);
  absolute positions are not.
* None: no position information, for the ablation that shows why it is needed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib import checks


POSITIONAL_KINDS: tuple[str, ...] = ("sinusoidal", "learned", "relative", "none")
RELATIVE_DISTANCE = 16


def _check_even_d_model(d_model: object) -> int:
    d_model = checks.positive_int("d_model", d_model)
    if d_model % 2 != 0:
        raise ValueError(
            f"d_model must be even for the sinusoidal encoding (sin/cos pairs), got {d_model}"
        )
    return d_model


def _frequencies(d_model: int) -> Tensor:
    """Angular frequencies w_i = 1 / 10000^(2i / d_model), i = 0 .. d_model/2 - 1 (float64)."""
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    return torch.exp(-math.log(10000.0) * two_i / d_model)


def sinusoidal_encoding(
    max_len: int, d_model: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Return the (max_len, d_model) sinusoidal table of Vaswani et al. 2017 (chapter 03).

    Even columns hold sin(p * w_i), odd columns cos(p * w_i) with w_i = 10000^(-2i / d_model).
    The table is computed in float64 and returned as ``dtype``.
    """
    max_len = checks.positive_int("max_len", max_len)
    d_model = _check_even_d_model(d_model)
    positions = torch.arange(max_len, dtype=torch.float64)[:, None]
    angles = positions * _frequencies(d_model)[None, :]  # (max_len, d_model / 2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.to(dtype)


def offset_matrix(offset: int, d_model: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Return the (d_model, d_model) matrix M_k with PE[p + k] = PE[p] @ M_k.T for every p (chapter 03).

    M_k is block diagonal; the block for the pair (sin(p w), cos(p w)) is the rotation
    [[cos(k w), sin(k w)], [-sin(k w), cos(k w)]], by the angle-addition formulas. It depends
    on the offset k only, not on the position p. Computed in float64, returned as ``dtype``.
    """
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int, got {type(offset).__name__}")
    d_model = _check_even_d_model(d_model)
    angles = offset * _frequencies(d_model)
    cos, sin = torch.cos(angles), torch.sin(angles)
    matrix = torch.zeros(d_model, d_model, dtype=torch.float64)
    even = torch.arange(0, d_model, 2)
    matrix[even, even] = cos
    matrix[even, even + 1] = sin
    matrix[even + 1, even] = -sin
    matrix[even + 1, even + 1] = cos
    return matrix.to(dtype)


class _PositionalEncoding(nn.Module):
    """Shared input checks: x must be (B, L, d_model) with L <= max_len."""

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.max_len = checks.positive_int("max_len", max_len)

    def _check_input(self, x: Tensor, start: int) -> int:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (batch, length, d_model={self.d_model}), "
                f"got shape {tuple(x.shape)}"
            )
        checks.int_at_least("start", start, 0)
        length = x.shape[1]
        if start + length > self.max_len:
            after = f" from position {start}" if start else ""
            raise ValueError(
                f"sequence length {length}{after} exceeds max_len {self.max_len} of this positional "
                "encoding; truncate the input or build the model with a larger max_len"
            )
        return length

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """Add the fixed sinusoidal table: forward(x (B, L, D), start=0) -> x + PE[start : start + L] (chapter 03).

    ``start`` places x after ``start`` earlier positions, as a decoder that computes one new
    position at a time needs.

    The table is a non-persistent buffer: it moves with ``.to(device)`` but is not stored
    in checkpoints, since it is rebuilt from (max_len, d_model).
    """

    def __init__(self, d_model: int, max_len: int):
        super().__init__(d_model, max_len)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Return x + PE[start : start + L] for x of shape (B, L, d_model)."""
        length = self._check_input(x, start)
        return x + self.pe[start : start + length].to(x.dtype)


class LearnedPositionalEncoding(_PositionalEncoding):
    """Add a trainable vector per position: forward(x (B, L, D), start=0) -> x + weight[start : start + L] (chapter 03).

    ``weight`` (max_len, d_model) starts from N(0, 0.02^2), as in BERT and GPT-2.
    """

    def __init__(self, d_model: int, max_len: int):
        super().__init__(d_model, max_len)
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Return x + weight[start : start + L] for x of shape (B, L, d_model)."""
        length = self._check_input(x, start)
        return x + self.weight[start : start + length]


class _NoPositionalEncoding(_PositionalEncoding):
    """Identity (same checks as the other encodings), for the no-position ablation."""

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Return x unchanged after checking its shape and that positions start..start + L - 1 exist."""
        self._check_input(x, start)
        return x


class RelativePositionBias(nn.Module):
    """A learned attention score per head and signed distance: forward(Lq, Lk) -> (1, H, Lq, Lk) (chapter 03).

    Entry (h, i, j) is ``table[h, clip(j - i, -D, D) + D]`` with D = ``max_distance``. The table
    starts at zero, so an untrained layer attends as if there were no positions at all.
    """

    def __init__(self, num_heads: int, max_distance: int = RELATIVE_DISTANCE):
        super().__init__()
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.max_distance = checks.positive_int("max_distance", max_distance)
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """The (1, num_heads, q_len, k_len) bias to add to the attention scores."""
        device = self.table.device
        distance = torch.arange(k_len, device=device)[None, :] - torch.arange(q_len, device=device)[:, None]
        index = distance.clamp(-self.max_distance, self.max_distance) + self.max_distance
        return self.table[:, index].unsqueeze(0)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, max_distance={self.max_distance}"


def build_positional_encoding(kind: str, d_model: int, max_len: int) -> nn.Module:
    """Build what ``kind`` adds to the embeddings: "sinusoidal", "learned", or nothing for "relative" and "none" (chapter 03).

    A "relative" model's positions live in its attention layers (:class:`RelativePositionBias`).
    """
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model, max_len)
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_len)
    if kind in ("relative", "none"):
        return _NoPositionalEncoding(d_model, max_len)
    raise ValueError(f"kind must be one of {POSITIONAL_KINDS}, got {kind!r}")
