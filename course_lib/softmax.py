"""Softmax with a temperature: the dial at the heart of knowledge distillation."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch


def softmax_with_temperature(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """``softmax(logits / T)``: T > 1 softens the distribution, T < 1 sharpens it."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    return torch.softmax(logits / temperature, dim=dim)


def entropy_bits(probabilities: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy in bits along ``dim``."""
    p = probabilities.clamp_min(1e-12)
    return -(probabilities * torch.log2(p)).sum(dim=dim)


def show_softmax_temperature(
    logits: Sequence[float], temperature: float, labels: Sequence[str] | None = None, ax: plt.Axes | None = None
) -> plt.Axes:
    """Bar chart of ``softmax(logits / T)`` with its entropy: the callback of chapter 00's slider."""
    values = torch.tensor(list(logits), dtype=torch.float64)
    if values.ndim != 1 or values.numel() < 2:
        raise ValueError(f"logits must be a flat list of at least 2 numbers, got {len(values)}")
    labels = list(labels) if labels is not None else [str(i) for i in range(len(values))]
    if len(labels) != len(values):
        raise ValueError(f"got {len(labels)} labels for {len(values)} logits")
    probs = softmax_with_temperature(values, temperature)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.bar(labels, probs.tolist(), color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"T = {temperature:g}: entropy {entropy_bits(probs).item():.2f} bits")
    return ax
