"""Tests for course_lib.cases.mnist.consistent: the CNN teacher distilled on the very jittered digits the student sees."""

from __future__ import annotations

import dataclasses

import pytest

from course_lib.cases.mnist.consistent import (
    CONSISTENT_SEEDS,
    ConsistentStudy,
    consistent_student_recipe,
    consistent_study,
)
from course_lib.cases.mnist.models import mnist_recipe
from course_lib.data import load_mnist

TINY_TEACHER = dataclasses.replace(mnist_recipe("teacher_cnn", "fast"), channels=(2, 4), hidden=(16,), epochs=1,
                                   train_size=600, batch_size=64)
TINY_STUDENT = dataclasses.replace(consistent_student_recipe("fast"), hidden=(16, 16), train_size=300, epochs=1,
                                   batch_size=64)


def _study(control, distilled):
    return ConsistentStudy(teacher_errors=60, teacher_seconds=1.0, temperature=20.0, alpha=0.5, epochs=30,
                           seeds=list(range(len(control))), control=control, distilled=distilled,
                           seconds={"control": [1.0] * len(control), "distilled": [2.0] * len(distilled)})


def test_every_student_shares_the_jittered_students_recipe_but_its_seed():
    for mode in ("fast", "full"):
        recipe = consistent_student_recipe(mode, seed=2)
        jitter = mnist_recipe("student_scratch_jitter", mode)
        assert recipe == dataclasses.replace(jitter, seed=2)
        assert recipe.max_shift == mnist_recipe("teacher_cnn", mode).max_shift
    assert len(CONSISTENT_SEEDS["full"]) >= 3, "a claim about the control needs three seeds"
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        consistent_student_recipe("fast", seed=-1)


def test_the_study_trains_a_control_and_a_distilled_student_per_seed(model_cache, context):
    study = consistent_study(context, load_mnist(), seeds=[0, 1], teacher_recipe=TINY_TEACHER,
                             student_recipe=TINY_STUDENT, progress=False)
    assert study.seeds == [0, 1] and len(study.control) == len(study.distilled) == 2
    assert all(0 <= e <= 10_000 for e in study.control + study.distilled)
    assert study.control[0] != study.control[1], "each seed starts from other weights and another jitter stream"
    assert study.epochs == TINY_STUDENT.epochs and study.teacher_errors <= 10_000
    table = study.to_dict()
    assert table["control"]["errors"] == study.control and table["verdict"] == study.verdict
    again = consistent_study(context, load_mnist(), seeds=[0], teacher_recipe=TINY_TEACHER,
                             student_recipe=TINY_STUDENT, progress=False)
    assert (again.control, again.distilled) == (study.control[:1], study.distilled[:1]), "one seed repeats exactly"


def test_the_verdict_and_goals_say_no_more_than_the_seeds_allow():
    assert _study([90], [70]).verdict.startswith("one seed each")
    clear = _study([80, 82, 81], [70, 71, 72])
    assert clear.verdict == "the distilled student beats the control by 10.0 errors"
    assert [goal["met"] for goal in clear.goals()] == [True, True]
    noisy = _study([80, 70, 90], [78, 79, 80])
    assert noisy.verdict.startswith("no measurable difference (-1.0 errors")
    assert [goal["met"] for goal in noisy.goals()] == [False, False]
    assert _study([60, 61, 62], [70, 71, 72]).verdict == "the distilled student loses to the control by 10.0 errors"
    table = clear.to_dict()
    assert table["distilled"]["mean_errors"] == 71.0 and table["distilled"]["std_errors"] == 1.0


def test_bad_arguments_say_what_to_do(context):
    with pytest.raises(ValueError, match="at least one seed"):
        consistent_study(context, load_mnist(), seeds=[])
    with pytest.raises(ValueError, match="temperature"):
        consistent_study(context, load_mnist(), temperature=0.0)
    with pytest.raises(TypeError, match="student_recipe must be a MnistRecipe"):
        consistent_study(context, load_mnist(), student_recipe={"epochs": 1})
