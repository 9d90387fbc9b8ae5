"""Tests for course_lib.cases.common: roles, recipes per mode, a teacher before its students, latency and rounding."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from course_lib.cases.common import (
    Role,
    cpu_latency,
    check_role,
    role_recipe,
    roles,
    rounded,
    seed_spread,
    seed_verdict,
    seeds_by_role,
    teacher_then_students,
)
from course_lib.kd.methods import DistillRecipe
from course_lib.train.fit import Trained

TABLE = roles(Role("teacher", "the teacher"), Role("alone", "(a) alone"), Role("kd", "(b) distilled", "logits"))


@dataclass(frozen=True)
class SizedRecipe(DistillRecipe):
    width: int = 4
    data: int = 10


def test_roles_keep_their_order_and_unknown_roles_are_named():
    assert list(TABLE) == ["teacher", "alone", "kd"] and TABLE["kd"].method == "logits"
    assert check_role("alone", TABLE) is TABLE["alone"]
    with pytest.raises(ValueError, match=r"role must be one of the students \('alone', 'kd'\), got 'teacher'"):
        check_role("teacher", TABLE, students_only=True)


def test_students_take_the_teachers_budget_and_their_tables_method():
    teacher = {"fast": {"width": 32, "data": 100, "epochs": 3}, "full": {"width": 64, "data": 1000, "epochs": 9}}
    student = {"fast": {"width": 4}, "full": {"width": 8}}
    made = {role: role_recipe(SizedRecipe, TABLE, role, "full", teacher, student, ("data", "epochs"), seed=3)
            for role in TABLE}
    assert (made["teacher"].width, made["teacher"].data, made["teacher"].method) == (64, 1000, "labels")
    assert (made["kd"].width, made["kd"].data, made["kd"].epochs, made["kd"].method) == (8, 1000, 9, "logits")
    assert {recipe.seed for recipe in made.values()} == {3}
    with pytest.raises(ValueError, match="mode must be one of"):
        role_recipe(SizedRecipe, TABLE, "kd", "slow", teacher, student, ())


def test_the_teacher_is_trained_first_and_handed_to_every_student():
    calls = []

    def train(role: str, teacher: Trained | None) -> Trained:
        calls.append((role, None if teacher is None else teacher.metrics["role"]))
        return Trained(model=nn.Linear(1, 1), recipe=DistillRecipe(), metrics={"role": role})

    trained = teacher_then_students(TABLE, train)
    assert calls == [("teacher", None), ("alone", "teacher"), ("kd", "teacher")] and list(trained) == list(TABLE)


def test_cpu_latency_times_copies_on_the_cpu():
    model = nn.Linear(4, 2)
    latency = cpu_latency({"a": model, "b": nn.Linear(4, 64)}, lambda m: m(torch.zeros(1, 4)), rounds=2)
    assert set(latency) == {"a", "b"} and all(ms > 0 for ms in latency.values())


def test_rounded_turns_rows_into_plain_rounded_data():
    @dataclass
    class Row:
        score: float
        curve: list[float]
        name: str

    assert rounded(Row(0.123456, [1 / 3], "x")) == {"score": 0.1235, "curve": [0.3333], "name": "x"}
    assert rounded({"a": (0.55555, 2)}, digits=2) == {"a": [0.56, 2]}


def test_seed_verdict_claims_a_gap_only_beyond_twice_the_seed_spread():
    names = ("A", "B")
    assert seed_verdict([0.9], [0.5], names=names, unit="points", scale=100).startswith("one seed each")
    assert seed_verdict([0.9], [0.5, 0.6], names=names, unit="points").startswith("one seed of A:")
    assert seed_verdict([0.9, 0.8], [0.5], names=names, unit="points").startswith("one seed of B:")
    assert seed_verdict([0.80, 0.82, 0.81], [0.70, 0.71, 0.72], names=names, unit="points",
                        scale=100) == "A beats B by 10.0 points"
    assert seed_verdict([60, 61, 62], [70, 71, 72], names=names, unit="errors",
                        lower_is_better=True) == "A beats B by 10.0 errors"
    assert seed_verdict([70, 71, 72], [60, 61, 62], names=names, unit="errors",
                        lower_is_better=True) == "A loses to B by 10.0 errors"
    assert seed_verdict([70, 80, 90], [79, 80, 81], names=names, unit="errors").startswith(
        "no measurable difference (+0.0 errors")
    assert seed_spread([1.0]) == 0.0 and seed_spread([1.0, 3.0]) == pytest.approx(2 ** 0.5)


def test_seeds_by_role_gives_each_student_its_own_checked_seeds():
    students = ["alone", "kd"]
    assert seeds_by_role((0, 1), students) == {"alone": (0, 1), "kd": (0, 1)}
    assert seeds_by_role({"alone": [0, 1, 2], "kd": [0]}, students) == {"alone": (0, 1, 2), "kd": (0,)}
    with pytest.raises(ValueError, match=r"missing \['kd'\], unknown \['other'\]"):
        seeds_by_role({"alone": (0,), "other": (0,)}, students)
    with pytest.raises(ValueError, match="distinct seeds, at least one, got \\(\\) for 'kd'"):
        seeds_by_role({"alone": (0,), "kd": ()}, students)
    with pytest.raises(ValueError, match="distinct"):
        seeds_by_role((0, 0), students)
    with pytest.raises(ValueError, match="seed"):
        seeds_by_role((-1,), students)
