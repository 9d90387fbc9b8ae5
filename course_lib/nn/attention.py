"""Scaled dot-product attention, attention masks and multi-head attention (chapter 02).

Follows Vaswani et al. 2017, "Attention Is All You Need", section 3.2:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Mask convention for the whole course: a boolean mask is True where attention is ALLOWED
(the same meaning as the boolean ``attn_mask`` of
``torch.nn.functional.scaled_dot_product_attention``). Padding masks of shape (B, L) are
True on real tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import checks


def _require_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_bool_mask(mask: object, name: str) -> Tensor:
    mask = _require_tensor(mask, name)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
            f"convert it with {name}.bool() or build it with padding_mask()/causal_mask()"
        )
    return mask


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Return ``(output, weights)`` of softmax(Q K^T / sqrt(d_k) + bias) V (chapter 02).

    Shapes: query (..., Lq, d_k), key (..., Lk, d_k), value (..., Lk, d_v); the leading
    dimensions broadcast. ``mask`` is boolean, broadcastable to (..., Lq, Lk), True where a
    query may attend to a key. A query row whose keys are all masked gets zero weights and a
    zero output instead of NaN. Dropout (probability ``dropout_p``) is applied to the weights
    only when ``training`` is True; the returned ``weights`` are the attention distribution
    before dropout, shape (..., Lq, Lk). ``bias`` (broadcastable to (..., Lq, Lk)) is added to
    the scores before the mask, e.g. a relative-position score.
    """
    query = _require_tensor(query, "query")
    key = _require_tensor(key, "key")
    value = _require_tensor(value, "value")
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if tensor.dim() < 2:
            raise ValueError(
                f"{name} must have at least 2 dimensions (..., length, features), "
                f"got shape {tuple(tensor.shape)}"
            )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            "query and key must have the same last dimension d_k, got "
            f"query {tuple(query.shape)} and key {tuple(key.shape)}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            "key and value must have the same length Lk (dimension -2), got "
            f"key {tuple(key.shape)} and value {tuple(value.shape)}"
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")

    d_k = query.shape[-1]
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., Lq, Lk)
    if bias is not None:
        scores = scores + bias

    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        mask = _check_bool_mask(mask, "mask")
        try:
            broadcast = torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != scores.shape:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the attention "
                f"scores shape {tuple(scores.shape)} (..., Lq, Lk)"
            )
        scores = scores.masked_fill(~mask, float("-inf"))
        # A fully masked row is all -inf and softmax gives NaN there; every entry of such a
        # row is masked, so zeroing masked entries also removes the NaN.
        weights = torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)

    attended = F.dropout(weights, p=dropout_p, training=training)
    return attended @ value, weights


def padding_mask(mask_or_lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Turn a padding description into an attention mask of shape (B, 1, 1, L) (chapter 02).

    ``mask_or_lengths`` is either a boolean (B, L) mask, True on real tokens, or an integer
    (B,) tensor of sequence lengths (then ``max_len`` sets L, default: the longest length).
    The result broadcasts over heads and query positions: every query may attend to every
    real key.
    """
    mask_or_lengths = _require_tensor(mask_or_lengths, "mask_or_lengths")
    if mask_or_lengths.dtype == torch.bool:
        if mask_or_lengths.dim() != 2:
            raise ValueError(
                "mask_or_lengths as a boolean mask must have shape (batch, length), "
                f"got shape {tuple(mask_or_lengths.shape)}"
            )
        if max_len is not None and max_len != mask_or_lengths.shape[1]:
            raise ValueError(
                f"max_len={max_len} disagrees with the mask length {mask_or_lengths.shape[1]}; "
                "leave max_len out when passing a boolean mask"
            )
        real = mask_or_lengths
    elif not mask_or_lengths.is_floating_point() and not mask_or_lengths.is_complex():
        if mask_or_lengths.dim() != 1:
            raise ValueError(
                "mask_or_lengths as lengths must have shape (batch,), "
                f"got shape {tuple(mask_or_lengths.shape)}"
            )
        lengths = mask_or_lengths
        if lengths.numel() and int(lengths.min()) < 0:
            raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
        longest = int(lengths.max()) if lengths.numel() else 0
        length = longest if max_len is None else max_len
        if length < longest:
            raise ValueError(f"max_len={max_len} is shorter than the longest length {longest}")
        positions = torch.arange(length, device=lengths.device)
        real = positions[None, :] < lengths[:, None]
    else:
        raise TypeError(
            "mask_or_lengths must be a boolean (batch, length) mask or an integer (batch,) "
            f"tensor of lengths, got dtype {mask_or_lengths.dtype}"
        )
    return real[:, None, None, :]


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """Return the (length, length) boolean mask where position i may attend to j <= i (chapter 02)."""
    checks.positive_int("length", length)
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, section 3.2.2), batch first (chapter 02).

    Projects query, key and value with separate ``q_proj``, ``k_proj``, ``v_proj`` layers,
    splits ``d_model`` into ``num_heads`` heads of size ``d_model // num_heads``, runs
    :func:`scaled_dot_product_attention` in every head and merges the heads with
    ``out_proj``. ``dropout`` is applied to the attention weights during training.

    ``forward(query, key, value, mask)`` takes inputs (B, Lq, D), (B, Lk, D), (B, Lk, D)
    and returns ``(output (B, Lq, D), weights (B, H, Lq, Lk))``. The boolean ``mask``
    (True = may attend) is read by its number of dimensions:

    * 2-D (B, Lk): a padding mask, True on real key tokens (the course's padding convention);
    * 3-D (B or 1, Lq or 1, Lk or 1): the same for every head;
    * 4-D: broadcastable to (B, H, Lq, Lk).

    A square (L, L) mask such as ``causal_mask(L)`` is therefore passed as
    ``causal_mask(L)[None]`` (3-D) or ``causal_mask(L)[None, None]`` (4-D).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        for name, size in (("d_model", d_model), ("num_heads", num_heads)):
            checks.positive_int(name, size)
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}) so that "
                "every head gets d_model // num_heads features"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, H, L, D / H)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        for name, tensor in (("query", query), ("key", key), ("value", value)):
            _require_tensor(tensor, name)
            if tensor.dim() != 3:
                raise ValueError(
                    f"{name} must have shape (batch, length, d_model), "
                    f"got {tensor.dim()}-D shape {tuple(tensor.shape)}"
                )
            if tensor.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must have last dimension d_model={self.d_model}, "
                    f"got shape {tuple(tensor.shape)}"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                "query, key and value must have the same batch size, got "
                f"{query.shape[0]}, {key.shape[0]} and {value.shape[0]}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"key and value must have the same length, got {key.shape[1]} and {value.shape[1]}"
            )

    def _expand_mask(self, mask: Tensor, batch: int, q_len: int, k_len: int) -> Tensor:
        """Return ``mask`` as a 4-D tensor broadcastable to (B, H, Lq, Lk)."""
        mask = _check_bool_mask(mask, "mask")
        target = (batch, self.num_heads, q_len, k_len)
        if mask.dim() == 2:
            if tuple(mask.shape) != (batch, k_len):
                raise ValueError(
                    "a 2-D mask is a padding mask and must have shape (batch, key_length) = "
                    f"{(batch, k_len)}, got {tuple(mask.shape)}; pass a square (Lq, Lk) mask "
                    "such as causal_mask(L) as mask[None, None]"
                )
            mask = mask[:, None, None, :]
        elif mask.dim() == 3:
            mask = mask[:, None, :, :]
        elif mask.dim() != 4:
            raise ValueError(
                "mask must be 2-D (batch, key_length), 3-D (batch, Lq, Lk) or 4-D "
                f"(batch, heads, Lq, Lk), got {mask.dim()}-D shape {tuple(mask.shape)}"
            )
        try:
            broadcast = torch.broadcast_shapes(mask.shape, target)
        except RuntimeError:
            broadcast = None
        if broadcast != torch.Size(target):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to "
                f"(batch, heads, Lq, Lk) = {target}"
            )
        return mask

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
        score_bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return ``(output (B, Lq, D), weights (B, H, Lq, Lk))``; see the class docstring.

        ``score_bias`` (broadcastable to (B, H, Lq, Lk)) is added to the scores of the heads.
        """
        self._check_inputs(query, key, value)
        batch, q_len, _ = query.shape
        k_len = key.shape[1]
        if mask is not None:
            mask = self._expand_mask(mask, batch, q_len, k_len)

        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        heads, weights = scaled_dot_product_attention(
            q, k, v, mask=mask, dropout_p=self.dropout, training=self.training, bias=score_bias
        )
        merged = heads.transpose(1, 2).reshape(batch, q_len, self.d_model)
        return self.out_proj(merged), weights
