"""Teacher forcing for the encoder–decoder of chapter 09: the shifted decoder input and the label-smoothed loss.

During training the decoder reads the gold target shifted right by one (:func:`shift_right`), so at
every position it predicts the next gold token from the gold prefix; :func:`label_smoothed_cross_entropy`
scores those predictions against targets that keep a little probability for every other token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib import checks
from course_lib.data.subwords import BOS_ID, PAD_ID


def shift_right(target_ids: Tensor, bos_id: int = BOS_ID) -> Tensor:
    """The teacher-forcing decoder input: ``<bos>`` followed by ``target_ids[:, :-1]`` (chapter 09).

    ``target_ids`` (B, T) are the labels, ``y1 ... yn <eos>`` then padding. The input at position t is the
    label at t - 1, so the label mask ``target_ids != pad_id`` is also the decoder input mask.
    """
    if not isinstance(target_ids, Tensor) or target_ids.dim() != 2:
        shape = tuple(target_ids.shape) if isinstance(target_ids, Tensor) else type(target_ids).__name__
        raise ValueError(f"target_ids must be a 2-D (batch, length) id tensor, got {shape}")
    if target_ids.dtype == torch.bool or target_ids.is_floating_point() or target_ids.is_complex():
        raise TypeError(f"target_ids must be an integer tensor, got dtype {target_ids.dtype}")
    checks.int_at_least("bos_id", bos_id, 0)
    start = torch.full_like(target_ids[:, :1], bos_id)
    return torch.cat([start, target_ids[:, :-1]], dim=1)


def label_smoothed_cross_entropy(logits: Tensor, labels: Tensor, smoothing: float = 0.1,
                                 pad_id: int = PAD_ID) -> Tensor:
    """Mean cross-entropy over the non-padding labels, against targets smoothed by ``smoothing`` (chapter 09).

    The target puts 1 - ε on the label and ε / V on every token (Szegedy et al. 2016; ε = 0.1 in Vaswani et al.
    2017). ``logits`` (B, T, V), ``labels`` (B, T); positions whose label is ``pad_id`` count for nothing (a
    batch of padding only gives NaN).
    """
    if not isinstance(logits, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(f"logits and labels must be tensors, got {type(logits).__name__} and {type(labels).__name__}")
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (batch, length, vocab) and labels (batch, length), got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be an integer tensor of token ids, got dtype {labels.dtype}")
    smoothing = checks.number_in("smoothing", smoothing, 0.0, 1.0, high_open=True)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=pad_id, label_smoothing=smoothing)
