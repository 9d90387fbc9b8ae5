"""Tests for course_lib.cases.mnist.distil: distilling MNIST students, the transfer set without 3s, the bias repair."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.cases.mnist.distil import (
    _teacher_logit_cache,
    choose_bias_shift,
    distil_student,
    errors_by_digit,
    gap_closed,
    held_out_digits,
    with_bias_shift,
)
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp, transfer_set
from course_lib.data import JitteredBatches, load_mnist, mnist_tensors
from course_lib.nn.mlp import count_errors

STUDENT = MnistRecipe(hidden=(24,), train_size=2_000, epochs=2, batch_size=100)


@pytest.fixture(scope="module")
def data():
    return load_mnist()


@pytest.fixture(scope="module")
def teacher(data):
    return fit_mnist_mlp(data, MnistRecipe(hidden=(64,), train_size=3_000, epochs=2), progress=False).model


class CountingTeacher(torch.nn.Module):
    """Wraps a teacher and counts its forward passes and the modes it ran in."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0
        self.modes: set[bool] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.add(self.training)
        return self.inner(x)


def test_without_jitter_the_teacher_runs_once_over_the_transfer_set(data, teacher):
    counting = CountingTeacher(teacher)
    fit = distil_student(counting, data, STUDENT, temperature=4.0, alpha=0.5, progress=False)
    assert counting.calls == 2, "2,000 digits in cache batches of 1,000; no teacher pass per training step"
    assert counting.modes == {False}
    assert len(fit.history.step_losses) == 2 * 20 and fit.metrics["test_errors"] < 9_000


def test_with_jitter_the_teacher_sees_every_jittered_batch_frozen_and_in_eval_mode(data, teacher):
    counting = CountingTeacher(teacher)
    before = [p.detach().clone() for p in teacher.parameters()]
    counting.train()
    recipe = MnistRecipe(hidden=(24,), train_size=2_000, epochs=1, batch_size=100, max_shift=2)
    distil_student(counting, data, recipe, temperature=4.0, alpha=0.0, progress=False)
    assert counting.calls == 20 and counting.modes == {False}
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))


def test_a_long_jittered_schedule_runs_the_teacher_once_on_every_version_of_every_digit(data, teacher):
    recipe = MnistRecipe(hidden=(24,), train_size=300, epochs=26, batch_size=100, max_shift=2)
    assert _teacher_logit_cache(teacher, data, dataclasses.replace(recipe, epochs=25)) is None, "25 versions: live"
    cache = _teacher_logit_cache(teacher, data, recipe)
    images, labels = transfer_set(data, recipe)
    assert len(cache) == 25 * len(labels)
    served = JitteredBatches(images, labels, 100, max_shift=2, seed=3, with_views=True)
    for batch_images, _, views in served:
        with torch.no_grad():
            torch.testing.assert_close(cache.lookup(views), teacher(batch_images), rtol=1e-4, atol=1e-4)
    counting = CountingTeacher(teacher)
    distil_student(counting, data, recipe, temperature=4.0, alpha=0.0, progress=False)
    assert counting.calls == 25 * 1, "one pass per version (300 digits in one batch of 1,000), none while training"


def test_the_teacher_logit_cache_rows_are_the_teachers_outputs_in_transfer_set_order(data, teacher):
    recipe = MnistRecipe(hidden=(24,), train_size=1_500, exclude_digits=(3,))
    cache = _teacher_logit_cache(teacher, data, recipe)
    images, labels = transfer_set(data, recipe)
    assert len(cache) == len(labels) and 3 not in labels.tolist()
    with torch.no_grad():
        torch.testing.assert_close(cache.lookup(torch.tensor([0, 7, len(labels) - 1])), teacher(images[[0, 7, -1]]))


def test_the_test_curve_has_one_count_per_epoch_ending_at_the_final_errors(data, teacher):
    fit = distil_student(teacher, data, STUDENT, temperature=2.0, alpha=0.3, test_curve=True, progress=False)
    assert len(fit.metrics["errors_per_epoch"]) == STUDENT.epochs
    assert fit.metrics["errors_per_epoch"][-1] == fit.metrics["test_errors"]


def test_distillation_moves_the_student_towards_its_teacher(data, teacher):
    """With alpha=0 only the teacher teaches: a student distilled from a permuted-class teacher learns the permutation."""

    class Permuted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = teacher

        def forward(self, x):
            return self.inner(x).roll(1, dims=-1)  # digit d's evidence now votes for d + 1

    recipe = MnistRecipe(hidden=(24,), train_size=2_000, epochs=3, batch_size=100)
    fit = distil_student(Permuted(), data, recipe, temperature=1.0, alpha=0.0, progress=False)
    images, labels = mnist_tensors(data, "test")
    assert count_errors(fit.model, images[:1000], (labels[:1000] + 1) % 10) < 400


def test_gap_closed_reproduces_the_papers_figure_and_refuses_a_weak_teacher():
    assert gap_closed(146, 74, 67) == pytest.approx(0.911, abs=1e-3)
    assert gap_closed(146, 146, 67) == 0 and gap_closed(146, 67, 67) == 1
    assert gap_closed(146, 160, 67) < 0
    with pytest.raises(ValueError, match="must beat the scratch student"):
        gap_closed(150, 120, 160)


def test_gap_closed_also_reads_scores_where_higher_is_better():
    assert gap_closed(0.34, 0.43, 0.64, lower_is_better=False) == pytest.approx(0.3)
    assert gap_closed(0.34, 0.30, 0.64, lower_is_better=False) < 0
    with pytest.raises(ValueError, match="must beat the scratch student"):
        gap_closed(0.64, 0.5, 0.34, lower_is_better=False)


def test_errors_by_digit_adds_up_to_the_error_count(data, teacher):
    images, labels = mnist_tensors(data, "test")
    per_digit = errors_by_digit(teacher, images, labels)
    assert len(per_digit) == 10 and sum(per_digit) == count_errors(teacher, images, labels)
    with pytest.raises(ValueError, match="must match"):
        errors_by_digit(teacher, images, labels[:5])


def test_bias_shift_changes_one_bias_of_a_copy(teacher):
    shifted = with_bias_shift(teacher, 3, 2.5)
    assert shifted is not teacher
    difference = shifted.output.bias - teacher.output.bias
    assert difference[3].item() == pytest.approx(2.5) and torch.count_nonzero(difference) == 1
    with pytest.raises(ValueError, match="digit must be an int from 0 to 9"):
        with_bias_shift(teacher, 10, 1.0)


def test_choose_bias_shift_picks_the_fewest_held_out_errors(data, teacher):
    images, labels = held_out_digits(data, 59_000)
    assert len(labels) == 1_000
    choice = choose_bias_shift(teacher, images, labels, 3, [0.0, 1.0, 100.0])
    assert choice.errors[100.0] == int((labels != 3).sum()), "a huge bias makes every digit a 3"
    assert choice.shift == min(choice.errors, key=lambda s: (choice.errors[s], s))
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_bias_shift(teacher, images, labels, 3, [])
    with pytest.raises(ValueError, match="first must be between"):
        held_out_digits(data, 60_000)


def test_bad_distillation_arguments_are_rejected(data, teacher):
    with pytest.raises(ValueError, match="temperature"):
        distil_student(teacher, data, STUDENT, temperature=0.0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        distil_student(teacher, data, STUDENT, temperature=2.0, alpha=1.5)
    with pytest.raises(TypeError, match="teacher must be a trained torch.nn.Module"):
        distil_student("teacher", data, STUDENT, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="exclude_digits must be a tuple of digits 0-9"):
        MnistRecipe(exclude_digits=(3, 11))
    with pytest.raises(ValueError, match="cannot drop all ten digits"):
        MnistRecipe(exclude_digits=tuple(range(10)))
