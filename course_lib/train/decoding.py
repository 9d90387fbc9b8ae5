"""From per-token tag scores to a BIO tag sequence: plain argmax, or Viterbi over the valid transitions (chapter 04).

Argmax picks each token's tag alone, so it can write ``O I-PER`` or ``B-LOC I-ORG`` — sequences
that no annotator could have written. Viterbi decoding finds the tag sequence with the highest
total log-probability among those where every ``I-X`` follows a ``B-X`` or an ``I-X`` (and no
sentence starts with ``I-X``). It needs no training and no extra parameters: the constraint is
a transition matrix of 0 (allowed) and −∞ (forbidden), the same matrix a CRF layer would learn
to approach.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DECODERS = ("viterbi", "argmax")


def _entity_type(label: str) -> tuple[str, str]:
    """``("B", "PER")`` for ``B-PER``; ``("O", "")`` for ``O``."""
    if label == "O":
        return "O", ""
    prefix, _, kind = label.partition("-")
    if prefix not in ("B", "I") or not kind:
        raise ValueError(f"label {label!r} is not a BIO label: expected 'O', 'B-<type>' or 'I-<type>'")
    return prefix, kind


def bio_transitions(labels: Sequence[str]) -> tuple[Tensor, Tensor]:
    """The BIO constraint as (start, transition) scores: 0 where allowed, −∞ where forbidden (chapter 04).

    ``start[j]`` scores tag ``j`` on the first token (no ``I-X``); ``transition[i, j]`` scores tag
    ``j`` right after tag ``i`` (``I-X`` only after ``B-X`` or ``I-X``).
    """
    parsed = [_entity_type(label) for label in labels]
    start = torch.tensor([float("-inf") if prefix == "I" else 0.0 for prefix, _ in parsed])
    transition = torch.zeros(len(labels), len(labels))
    for j, (prefix, kind) in enumerate(parsed):
        if prefix == "I":
            for i, (_, previous_kind) in enumerate(parsed):
                if previous_kind != kind:
                    transition[i, j] = float("-inf")
    return start, transition


def viterbi_decode(logits: Tensor, mask: Tensor, labels: Sequence[str]) -> list[list[int]]:
    """The valid BIO tag ids of highest total log-probability, one list per sentence, padding dropped (chapter 04).

    ``logits`` is (batch, length, num_labels); ``mask`` (batch, length) is True on real tokens,
    which come first in each row (right padding).
    """
    _check(logits, mask, labels)
    emissions = torch.log_softmax(logits.detach().float().cpu(), dim=-1)
    mask = mask.cpu()
    start, transition = bio_transitions(labels)
    batch, length, num_labels = emissions.shape
    score = start + emissions[:, 0]
    keep = torch.arange(num_labels).expand(batch, num_labels)
    backpointers = []
    for t in range(1, length):
        best, previous = (score.unsqueeze(2) + transition).max(dim=1)
        real = mask[:, t].unsqueeze(1)
        score = torch.where(real, best + emissions[:, t], score)
        backpointers.append(torch.where(real, previous, keep))
    last = score.argmax(dim=1)
    path = [last]
    for pointers in reversed(backpointers):
        last = pointers.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    tags = torch.stack(path[::-1], dim=1)
    return [row[:n].tolist() for row, n in zip(tags, mask.sum(dim=1).tolist())]


def argmax_decode(logits: Tensor, mask: Tensor, labels: Sequence[str]) -> list[list[int]]:
    """Each real token's most likely tag id on its own, one list per sentence, padding dropped (chapter 04)."""
    _check(logits, mask, labels)
    predicted = logits.detach().argmax(dim=-1).cpu()
    return [row[keep].tolist() for row, keep in zip(predicted, mask.cpu())]


def decode_tags(logits: Tensor, mask: Tensor, labels: Sequence[str], decoder: str = "viterbi") -> list[list[str]]:
    """Tag strings per sentence with ``decoder`` (``"viterbi"`` or ``"argmax"``) (chapter 04)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    decode = viterbi_decode if decoder == "viterbi" else argmax_decode
    return [[labels[i] for i in row] for row in decode(logits, mask, labels)]


def _check(logits: Tensor, mask: Tensor, labels: Sequence[str]) -> None:
    if not isinstance(logits, Tensor) or not isinstance(mask, Tensor):
        raise TypeError(f"logits and mask must be tensors, got {type(logits).__name__} and {type(mask).__name__}")
    if logits.dim() != 3 or mask.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (batch, length, num_labels) and mask (batch, length), got "
                         f"{tuple(logits.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True on real tokens), got {mask.dtype}")
    if logits.shape[-1] != len(labels):
        raise ValueError(f"logits score {logits.shape[-1]} tags but {len(labels)} labels were given")
    lengths = mask.sum(dim=1, keepdim=True)
    if bool((mask != (torch.arange(mask.shape[1], device=mask.device) < lengths)).any()):
        raise ValueError("mask must be True on a prefix of each row (real tokens first, padding after)")
