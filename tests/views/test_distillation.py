"""Tests for course_lib.views.distillation: the callbacks behind chapter 05's temperature and alpha widgets."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.kd.losses import entropy_bits
from course_lib.views.distillation import _loss_mix, show_loss_mix, show_soft_targets, show_softmax_temperature

TEACHER = torch.tensor([1.0, -2.0, 9.0, 0.5, -1.0, 0.0, -3.0, 4.0, 1.5, -0.5])
STUDENT = torch.tensor([0.2, 0.1, 2.0, 0.0, -0.3, 0.4, -1.0, 1.0, 0.3, 0.0])


def test_entropy_bits_bounds():
    assert entropy_bits(torch.tensor([1.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.0)
    assert entropy_bits(torch.full((8,), 1 / 8)).item() == pytest.approx(3.0)


def test_show_soft_targets_titles_the_current_temperature_and_marks_it():
    figure = show_soft_targets(TEACHER, temperature=4.0, label=2)
    bars_ax, entropy_ax = figure.axes
    heights = [bar.get_height() for bar in bars_ax.patches]
    assert sum(heights) == pytest.approx(1.0)
    assert np.argmax(heights) == 2
    assert "T = 4" in bars_ax.get_title()
    marker = entropy_ax.lines[-1]
    assert marker.get_xdata()[0] == 4.0
    plt.close(figure)


def test_higher_temperature_flattens_the_distribution():
    cold = entropy_bits(torch.softmax(TEACHER / 1, -1)).item()
    hot = entropy_bits(torch.softmax(TEACHER / 20, -1)).item()
    assert cold < hot < math.log2(10)


def test_loss_mix_weights_and_gradients():
    only_hard = _loss_mix(STUDENT, TEACHER, label=2, temperature=3.0, alpha=1.0)
    assert only_hard["soft"] == 0.0 and not np.any(only_hard["soft_grad"])
    expected = torch.softmax(STUDENT.double(), -1).numpy()
    expected[2] -= 1  # d CE / d z = p - onehot
    assert np.allclose(only_hard["hard_grad"], expected)
    mixed = _loss_mix(STUDENT, TEACHER, label=2, temperature=3.0, alpha=0.25)
    assert np.allclose(mixed["total_grad"], mixed["hard_grad"] + mixed["soft_grad"])
    assert mixed["hard"] == pytest.approx(0.25 * only_hard["hard"])
    assert abs(sum(mixed["soft_grad"])) < 1e-12, "softmax gradients sum to zero over the classes"


def test_loss_mix_rejects_bad_input():
    with pytest.raises(ValueError, match="label must be a class index"):
        _loss_mix(STUDENT, TEACHER, label=10, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha must be"):
        _loss_mix(STUDENT, TEACHER, label=1, temperature=2.0, alpha=1.5)
    with pytest.raises(ValueError, match="temperature must be"):
        show_soft_targets(TEACHER, temperature=0)
    with pytest.raises(ValueError, match="1-D tensor"):
        show_soft_targets(TEACHER[None], temperature=1)
    with pytest.raises(ValueError, match="student has 9 classes"):
        _loss_mix(STUDENT[:9], TEACHER, label=1, temperature=2.0, alpha=0.5)


def test_show_loss_mix_draws_both_panels():
    figure = show_loss_mix(STUDENT, TEACHER, label=2, temperature=4.0, alpha=0.5)
    terms_ax, grad_ax = figure.axes
    assert len(terms_ax.patches) == 2 and len(grad_ax.patches) == 30
    assert "alpha = 0.5" in grad_ax.get_title()
    plt.close(figure)


def test_widget_callback_draws_bars():
    ax = show_softmax_temperature([3.0, 1.0, 0.2], 2.0, labels=["cat", "dog", "car"])
    assert len(ax.patches) == 3 and "T = 2" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "car"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="3 labels for 2 logits"):
        show_softmax_temperature([1.0, 2.0], 1.0, labels=["a", "b", "c"])
