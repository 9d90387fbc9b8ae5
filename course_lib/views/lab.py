"""The live distillation lab of chapter 06: choose T and alpha, press Run, watch the student learn.

:class:`DistillationLab` trains a fresh MNIST student on a teacher's soft targets each time Run
is pressed and plots its test errors epoch by epoch beside a student trained on the labels
alone with the same recipe (the baseline) and the teacher's own error count. On a GPU the lab
uses all 60,000 training digits and a run takes seconds; on a CPU it uses the first 5,000 so a
run stays interactive. Its :meth:`~DistillationLab.run` is a plain method that a test or a
notebook cell can call without pressing anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from course_lib.data import MnistData
from course_lib.cases.mnist.distil import distil_student
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp, mnist_recipe
from course_lib.train.fit import Trained
from course_lib.views.widgets import png_output

RUNS_SHOWN = 4


def _lab_recipe(device: torch.device | str) -> MnistRecipe:
    """The student recipe of the lab: the full-mode student on all digits on a GPU, 5,000 digits and 8 epochs on a CPU."""
    device = torch.device(device)
    full = mnist_recipe("student_scratch", "full")
    if device.type == "cuda":
        return dataclasses.replace(full, epochs=10)
    return dataclasses.replace(full, train_size=5_000, epochs=8)


def _plot_learning_curves(
    baseline: list[int], runs: list[tuple[str, list[int]]], teacher_errors: int | None = None
) -> Figure:
    """Test errors per epoch: the labels-only baseline, the distilled runs (latest boldest), the teacher."""
    if not baseline:
        raise ValueError("baseline must hold the test errors of at least one epoch")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    epochs = range(1, len(baseline) + 1)
    ax.plot(epochs, baseline, color="0.35", linestyle="--", marker="o", markersize=3, label=f"labels only ({baseline[-1]})")
    shown = runs[-RUNS_SHOWN:]
    for rank, (label, curve) in enumerate(shown):
        latest = rank == len(shown) - 1
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, linewidth=2.2 if latest else 1.0,
                alpha=1.0 if latest else 0.45, label=f"{label} ({curve[-1]})")
    if teacher_errors is not None:
        ax.axhline(teacher_errors, color="tab:green", linewidth=1, label=f"teacher ({teacher_errors})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test errors of 10,000")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8)
    ax.set_title("student test errors while it learns")
    fig.tight_layout()
    return fig


class DistillationLab:
    """Sliders for T and alpha, a Run button, a progress bar and the learning curves (chapter 06).

    ``teacher`` is a trained MNIST network; ``recipe`` the student's (default
    :func:`_lab_recipe` for ``device``). Building the lab trains the labels-only baseline once.
    """

    def __init__(
        self,
        teacher: nn.Module,
        data: MnistData,
        device: torch.device | str,
        *,
        recipe: MnistRecipe | None = None,
        teacher_errors: int | None = None,
        progress: bool = True,
    ) -> None:
        self.teacher = teacher
        self.data = data
        self.device = torch.device(device)
        self.recipe = recipe or _lab_recipe(self.device)
        self.teacher_errors = teacher_errors
        self.progress = progress
        baseline = fit_mnist_mlp(data, self.recipe, self.device, test_curve=True, progress=progress, desc="labels only")
        self.baseline = baseline.metrics["errors_per_epoch"]
        self.runs: list[tuple[str, list[int]]] = []
        self.temperature = widgets.FloatLogSlider(value=20.0, base=10, min=0, max=1.7, step=0.05, description="T")
        self.alpha = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha")
        self.button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.status = widgets.HTML()
        self.log = widgets.Output()
        self.figure = widgets.Output()
        self.button.on_click(self._on_click)
        self._draw()
        where = "all 60,000" if self.recipe.train_size is None else f"the first {self.recipe.train_size:,}"
        self.status.value = (
            f"Each run distils a fresh {'-'.join(map(str, self.recipe.hidden))} student for "
            f"{self.recipe.epochs} epochs on {where} training digits ({self.device})."
        )
        self.widget = widgets.VBox(
            [widgets.HBox([self.temperature, self.alpha, self.button]), self.status, self.log, self.figure]
        )

    def _draw(self) -> None:
        self.figure.outputs = (png_output(_plot_learning_curves(self.baseline, self.runs, self.teacher_errors)),)

    def run(self, temperature: float, alpha: float) -> Trained:
        """Distil a fresh student at ``temperature`` and ``alpha``, add its curve to the plot and return it."""
        fit = distil_student(
            self.teacher,
            self.data,
            self.recipe,
            temperature=temperature,
            alpha=alpha,
            device=self.device,
            test_curve=True,
            progress=self.progress,
            desc=f"T={temperature:g} alpha={alpha:g}",
        )
        self.runs.append((f"T={temperature:.3g}, α={alpha:.2f}", fit.metrics["errors_per_epoch"]))
        self._draw()
        self.status.value = (
            f"T={temperature:.3g}, α={alpha:.2f}: {fit.metrics['test_errors']} test errors in {fit.seconds:.1f} s "
            f"(labels only: {self.baseline[-1]})."
        )
        return fit

    def _on_click(self, _button: Any) -> None:
        self.button.disabled = True
        try:
            self.log.clear_output()
            with self.log:
                self.run(self.temperature.value, self.alpha.value)
        finally:
            self.button.disabled = False
