"""Tests for course_lib.views.lab: the live distillation lab of chapter 06, driven without a browser."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from course_lib.data import load_mnist
from course_lib.views.lab import DistillationLab, _lab_recipe, _plot_learning_curves
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp

TINY = MnistRecipe(hidden=(16,), train_size=1_000, epochs=2, batch_size=100)


@pytest.fixture(scope="module")
def data():
    return load_mnist()


@pytest.fixture(scope="module")
def lab(data):
    teacher = fit_mnist_mlp(data, MnistRecipe(hidden=(32,), train_size=2_000, epochs=1), progress=False).model
    return DistillationLab(teacher, data, "cpu", recipe=TINY, teacher_errors=1234, progress=False)


def test_lab_recipe_uses_every_digit_on_a_gpu_and_a_subset_on_a_cpu():
    assert _lab_recipe("cpu").train_size == 5_000
    assert _lab_recipe("cuda").train_size is None
    assert _lab_recipe("cpu").hidden == _lab_recipe("cuda").hidden == (800, 800)


def test_building_the_lab_trains_the_baseline_and_draws_it(lab):
    assert len(lab.baseline) == TINY.epochs and lab.runs == []
    assert "image/png" in lab.figure.outputs[0]["data"]
    assert "2 epochs on the first 1,000 training digits" in lab.status.value


def test_run_distils_a_student_and_adds_its_curve(lab):
    fit = lab.run(4.0, 0.3)
    assert lab.runs[-1] == ("T=4, α=0.30", fit.metrics["errors_per_epoch"]) and len(fit.metrics["errors_per_epoch"]) == 2
    assert f"{fit.metrics['test_errors']} test errors" in lab.status.value
    with pytest.raises(ValueError, match="temperature"):
        lab.run(0.0, 0.5)


def test_pressing_run_uses_the_sliders_and_re_enables_the_button(lab):
    before = len(lab.runs)
    lab.temperature.value, lab.alpha.value = 10.0, 0.0
    lab.button.click()
    assert len(lab.runs) == before + 1 and lab.runs[-1][0] == "T=10, α=0.00"
    assert not lab.button.disabled


def test_plot_learning_curves_shows_the_latest_runs_and_the_teacher():
    runs = [(f"run {i}", [300 - i, 200 - i]) for i in range(6)]
    fig = _plot_learning_curves([400, 350], runs, teacher_errors=150)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[0] == "labels only (350)" and "run 5 (195)" in labels and "run 1 (199)" not in labels
    assert labels[-1] == "teacher (150)"
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one epoch"):
        _plot_learning_curves([], runs)

