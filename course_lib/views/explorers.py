"""Figures for chapters 02 and 03: attention heatmaps, positional encodings, softmax saturation.

Each drawing function is a plain function (a test can call it) that returns the matplotlib
Figure it drew; chapters wire them to sliders with :func:`course_lib.views.widgets.explorer`.

Heatmaps of Chinese text draw their labels with :func:`course_lib.data.fonts.cjk_font_family`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn

from course_lib import checks
from course_lib.data import CharVocab
from course_lib.data.fonts import cjk_font_family
from course_lib.nn.positional import sinusoidal_encoding
from course_lib.train.tagging import run_on_text
from course_lib.views.plots import axes_or_new


def attention_for(model: nn.Module, vocab: CharVocab, text: str) -> list[Tensor]:
    """Attention weights of ``model`` on ``text``: one (heads, L, L) CPU tensor per layer (chapter 02).

    Row i of a head's matrix is the distribution of query character i over the key characters
    (each row sums to 1). The model runs in eval mode without gradients and is left in the
    mode it was in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab must be a CharVocab, got {type(vocab).__name__}")
    output, _ = run_on_text(model, vocab, text)
    attention = getattr(output, "attention", None)
    if not attention:
        raise TypeError(
            "model must return a ModelOutput with an 'attention' list (one tensor per layer), "
            f"got {type(output).__name__}"
        )
    return [weights[0].detach().cpu() for weights in attention]


def _check_index(value: object, name: str, count: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value < count:
        raise ValueError(
            f"{name} must be between 0 and {count - 1} (the model has {count} {what}), got {value}"
        )
    return int(value)


def show_attention(
    model: nn.Module, vocab: CharVocab, text: str, layer: int, head: int, ax: Axes | None = None
) -> Figure:
    """Heatmap of one head's attention on ``text``: queries down the side, keys along the top (chapter 02).

    ``layer`` and ``head`` count from 0. Both axes carry the characters of ``text``; cell
    (i, j) is how much character i attends to character j. Returns the Figure.
    """
    attention = attention_for(model, vocab, text)
    layer = _check_index(layer, "layer", len(attention), "layers")
    head = _check_index(head, "head", attention[layer].shape[0], "heads per layer")
    weights = attention[layer][head].numpy()
    chars = list(text)
    size = max(3.5, 0.32 * len(chars) + 1.5)
    ax = axes_or_new(ax, (size + 1.0, size))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=float(weights.max()))
    family = cjk_font_family()
    positions = np.arange(len(chars))
    ax.set_xticks(positions)
    ax.set_xticklabels(chars, fontfamily=family)
    ax.set_yticks(positions)
    ax.set_yticklabels(chars, fontfamily=family)
    ax.xaxis.tick_top()
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(f"layer {layer}, head {head}", pad=20)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return ax.figure


def show_positional_encoding(
    max_len: int,
    d_model: int,
    position: int,
    dims: Sequence[int],
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Three views of the sinusoidal table PE (max_len, d_model) (chapter 03).

    Left: the whole table as a heatmap, the chosen ``position`` (row) and ``dims`` (columns)
    marked. Middle: the vector PE[position] over all dimensions. Right: the chosen dimensions
    as curves over positions. ``axes`` is three Axes to draw on (default: a new figure).
    """
    table = sinusoidal_encoding(max_len, d_model).numpy()
    position = _check_index(position, "position", max_len, "positions (max_len)")
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims:
        raise ValueError(f"dims must be a non-empty sequence of dimension indices, got {dims!r}")
    dims = [_check_index(dim, "each of dims", d_model, "dimensions (d_model)") for dim in dims]
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    if len(axes) != 3 or not all(isinstance(a, Axes) for a in axes):
        raise TypeError(f"axes must be three matplotlib Axes or None, got {axes!r}")
    heat, vector, curves = axes

    image = heat.imshow(table, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    heat.axhline(position, color="black", linewidth=1.5)
    for dim in dims:
        heat.axvline(dim, color="black", linestyle=":", linewidth=1.2)
    heat.set_xlabel("dimension")
    heat.set_ylabel("position")
    heat.set_title(f"sinusoidal PE ({max_len} x {d_model})")
    heat.figure.colorbar(image, ax=heat, fraction=0.046, pad=0.04)

    vector.plot(np.arange(d_model), table[position], marker=".", color="tab:blue")
    vector.scatter(dims, table[position, dims], color="black", zorder=3)
    vector.set_ylim(-1.1, 1.1)
    vector.set_xlabel("dimension")
    vector.set_title(f"PE[{position}]: even dims sin, odd dims cos")
    vector.grid(alpha=0.3)

    positions = np.arange(max_len)
    for dim in dims:
        kind = "sin" if dim % 2 == 0 else "cos"
        wavelength = 2 * math.pi * 10000 ** ((dim - dim % 2) / d_model)
        curves.plot(positions, table[:, dim], label=f"dim {dim} ({kind}, wavelength {wavelength:.1f})")
    curves.axvline(position, color="black", linewidth=1.0)
    curves.set_ylim(-1.1, 1.1)
    curves.set_xlabel("position")
    curves.set_title("chosen dimensions over positions")
    curves.legend(loc="lower left", fontsize=8)
    curves.grid(alpha=0.3)
    return heat.figure


@dataclass(frozen=True)
class _SaturationCurve:
    """Softmax statistics of random attention scores, one entry per key dimension d_k.

    ``score_std``: standard deviation of the scores; ``max_weight``: mean of the largest
    attention weight; ``entropy``: mean entropy of the weights in nats (at most
    log(num_keys)); ``jacobian_norm``: mean Frobenius norm of the softmax Jacobian
    diag(p) - p p^T, which scales every gradient that flows back through the softmax.
    """

    scaled: bool
    num_keys: int
    d_k: list[int]
    score_std: list[float]
    max_weight: list[float]
    entropy: list[float]
    jacobian_norm: list[float]


def softmax_saturation(
    d_k_values: Sequence[int],
    scaled: bool,
    seed: int = 0,
    num_keys: int = 16,
    num_samples: int = 512,
) -> _SaturationCurve:
    """Measure how the softmax over q·k scores saturates as d_k grows, with or without 1/sqrt(d_k) (chapter 02).

    For each d_k, ``num_samples`` queries attend to ``num_keys`` keys; q and k have independent
    N(0, 1) entries, so q·k has variance d_k. ``scaled`` divides the scores by sqrt(d_k) as
    in scaled dot-product attention. Computed in float64 from a seeded generator.
    """
    if isinstance(d_k_values, (str, bytes)) or not isinstance(d_k_values, Sequence) or not d_k_values:
        raise ValueError(f"d_k_values must be a non-empty sequence of positive ints, got {d_k_values!r}")
    for d_k in d_k_values:
        checks.positive_int("every d_k", d_k)
    if not isinstance(scaled, bool):
        raise TypeError(f"scaled must be a bool, got {type(scaled).__name__}")
    checks.int_at_least("num_keys", num_keys, 2)
    checks.positive_int("num_samples", num_samples)

    generator = torch.Generator().manual_seed(seed)
    stats: dict[str, list[float]] = {"std": [], "max": [], "entropy": [], "jacobian": []}
    for d_k in d_k_values:
        query = torch.randn(num_samples, 1, d_k, generator=generator, dtype=torch.float64)
        keys = torch.randn(num_samples, num_keys, d_k, generator=generator, dtype=torch.float64)
        scores = (query @ keys.transpose(1, 2)).squeeze(1)  # (num_samples, num_keys)
        if scaled:
            scores = scores / math.sqrt(d_k)
        p = torch.softmax(scores, dim=-1)
        jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        stats["std"].append(float(scores.std()))
        stats["max"].append(float(p.max(dim=-1).values.mean()))
        stats["entropy"].append(float(-(p * torch.log(p.clamp_min(1e-300))).sum(-1).mean()))
        stats["jacobian"].append(float(torch.linalg.matrix_norm(jacobian).mean()))
    return _SaturationCurve(
        scaled=scaled,
        num_keys=num_keys,
        d_k=list(d_k_values),
        score_std=stats["std"],
        max_weight=stats["max"],
        entropy=stats["entropy"],
        jacobian_norm=stats["jacobian"],
    )


def plot_saturation(curves: Sequence[_SaturationCurve], axes: Sequence[Axes] | None = None) -> Figure:
    """Largest weight, entropy and Jacobian norm against d_k, one line per curve. Returns the Figure (chapter 02)."""
    if isinstance(curves, _SaturationCurve) or not curves:
        raise ValueError("curves must be a non-empty list of _SaturationCurve")
    for curve in curves:
        if not isinstance(curve, _SaturationCurve):
            raise TypeError(f"curves must hold _SaturationCurve objects, got {type(curve).__name__}")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    if len(axes) != 3 or not all(isinstance(a, Axes) for a in axes):
        raise TypeError(f"axes must be three matplotlib Axes or None, got {axes!r}")
    panels = (
        ("max_weight", "mean largest attention weight"),
        ("entropy", "mean entropy (nats)"),
        ("jacobian_norm", "mean softmax Jacobian norm"),
    )
    for ax, (field, ylabel) in zip(axes, panels):
        for curve in curves:
            label = "scaled: q·k / √d_k" if curve.scaled else "unscaled: q·k"
            ax.plot(curve.d_k, getattr(curve, field), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("d_k")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    num_keys = curves[0].num_keys
    axes[0].axhline(1 / num_keys, color="grey", linestyle=":", label=f"uniform (1/{num_keys})")
    axes[1].axhline(math.log(num_keys), color="grey", linestyle=":", label=f"uniform (log {num_keys})")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    axes[0].set_title("one key takes all the weight")
    axes[1].set_title("the distribution collapses")
    axes[2].set_title("gradients through softmax vanish")
    return axes[0].figure
