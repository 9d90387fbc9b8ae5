"""Views of the temperature softmax, of soft targets and of the distillation loss, drawn by the widgets of chapters 00 and 05.

Each view is a plain function of tensors and settings that returns a matplotlib Figure, so the
temperature and alpha sliders (``course_lib.views.widgets.explorer``), the tests and the slides all
call the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from course_lib import checks
from course_lib.kd.losses import distillation_terms, entropy_bits, softmax_with_temperature


def _check_row(logits: Tensor, name: str) -> Tensor:
    if not isinstance(logits, Tensor) or logits.dim() != 1 or logits.numel() < 2:
        raise ValueError(f"{name} must be a 1-D tensor of class logits (one example), got {getattr(logits, 'shape', logits)!r}")
    return logits.detach().double().cpu()


def show_soft_targets(
    logits: Tensor,
    temperature: float,
    label: int | None = None,
    temperatures: Sequence[float] = tuple(np.geomspace(0.5, 50, 60)),
) -> Figure:
    """The softened distribution of one example at ``temperature``, and its entropy across temperatures (chapter 05).

    Left: the class probabilities ``softmax(logits / T)``, the arg-max in dark blue and ``label``
    (when given) outlined. Right: the entropy in bits against T, with the current T marked.
    """
    logits = _check_row(logits, "logits")
    temperature = checks.temperature(temperature)
    probabilities = softmax_with_temperature(logits, temperature)
    classes = np.arange(logits.numel())
    figure, (bars_ax, entropy_ax) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
    colours = ["#1f4e79" if c == int(logits.argmax()) else "#8fb3d9" for c in classes]
    bars = bars_ax.bar(classes, probabilities.numpy(), color=colours)
    if label is not None:
        bars[label].set_edgecolor("#c0392b")
        bars[label].set_linewidth(2)
    bars_ax.set_xticks(classes)
    bars_ax.set_ylim(0, 1)
    bars_ax.set_xlabel("class")
    bars_ax.set_ylabel(f"softmax(z / {temperature:g})")
    bars_ax.set_title(f"T = {temperature:g}: largest {probabilities.max():.3f}, entropy {entropy_bits(probabilities):.2f} bits")
    grid = torch.tensor([checks.temperature(t) for t in temperatures], dtype=torch.float64)
    curve = entropy_bits(torch.softmax(logits[None, :] / grid[:, None], dim=-1))
    entropy_ax.plot(grid.numpy(), curve.numpy(), color="#1f4e79")
    entropy_ax.axhline(np.log2(logits.numel()), color="grey", linestyle="--", linewidth=1, label="uniform")
    entropy_ax.plot([temperature], [float(entropy_bits(probabilities))], "o", color="#c0392b")
    entropy_ax.set_xscale("log")
    entropy_ax.set_xlabel("temperature T")
    entropy_ax.set_ylabel("entropy (bits)")
    entropy_ax.legend(loc="lower right")
    figure.tight_layout()
    return figure


def _loss_mix(
    student_logits: Tensor, teacher_logits: Tensor, label: int, temperature: float, alpha: float
) -> dict[str, np.ndarray | float]:
    """The weighted hard and soft loss terms of one example and their gradients on the student's logits."""
    student = _check_row(student_logits, "student_logits").clone().requires_grad_(True)
    teacher = _check_row(teacher_logits, "teacher_logits")
    if student.shape != teacher.shape:
        raise ValueError(f"student has {student.numel()} classes but teacher has {teacher.numel()}")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < student.numel():
        raise ValueError(f"label must be a class index in [0, {student.numel() - 1}], got {label!r}")
    alpha = checks.alpha(alpha)
    terms = distillation_terms(student[None], teacher[None], torch.tensor([label]), temperature)
    hard, soft = alpha * terms["hard"], (1 - alpha) * terms["soft"]
    (hard_grad,) = torch.autograd.grad(hard, student, retain_graph=True)
    (soft_grad,) = torch.autograd.grad(soft, student)
    return {
        "hard": hard.item(),
        "soft": soft.item(),
        "hard_grad": hard_grad.numpy(),
        "soft_grad": soft_grad.numpy(),
        "total_grad": (hard_grad + soft_grad).numpy(),
    }


def show_loss_mix(
    student_logits: Tensor, teacher_logits: Tensor, label: int, temperature: float, alpha: float
) -> Figure:
    """How ``alpha`` mixes the two terms for one example: their values and their gradients per class (chapter 05)."""
    mix = _loss_mix(student_logits, teacher_logits, label, temperature, alpha)
    classes = np.arange(len(mix["total_grad"]))
    figure, (terms_ax, grad_ax) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [0.6, 1.4]})
    terms_ax.bar(["alpha * CE", "(1-alpha) * T² KL"], [mix["hard"], mix["soft"]], color=["#c0392b", "#1f4e79"])
    terms_ax.set_title(f"loss = {mix['hard'] + mix['soft']:.3f}")
    terms_ax.tick_params(axis="x", labelsize=8)
    width = 0.28
    grad_ax.bar(classes - width, mix["hard_grad"], width, color="#c0392b", label="hard term")
    grad_ax.bar(classes, mix["soft_grad"], width, color="#1f4e79", label="soft term")
    grad_ax.bar(classes + width, mix["total_grad"], width, color="#7f8c8d", label="total")
    grad_ax.axhline(0, color="black", linewidth=0.8)
    grad_ax.set_xticks(classes)
    grad_ax.set_xlabel(f"class (true label {label})")
    grad_ax.set_ylabel("d loss / d student logit")
    grad_ax.set_title(f"gradients at T = {checks.temperature(temperature):g}, alpha = {alpha:g}")
    grad_ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def show_softmax_temperature(
    logits: Sequence[float], temperature: float, labels: Sequence[str] | None = None, ax: plt.Axes | None = None
) -> plt.Axes:
    """Bar chart of ``softmax(logits / T)`` with its entropy: the callback of chapter 00's slider (chapter 00)."""
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
