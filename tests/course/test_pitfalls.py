"""Tests for course_lib.course.pitfalls: every guard names a real test, the registry covers the course's list, the runner works."""

from __future__ import annotations

import ast

import pytest

from course_lib.course.pitfalls import PITFALLS, guard_test_ids, run_guard_tests
from course_lib.context import REPO_ROOT


def test_every_guard_is_a_test_function_that_exists():
    for test in guard_test_ids():
        path, name = test.split("::")
        tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in names, f"{test} is not a test function of {path}"


def test_the_registry_covers_the_pitfalls_of_the_course_design():
    names = " | ".join(p.name for p in PITFALLS)
    for needle in ("T²", "'mean'", "train mode", "gradients reaching", "swapped", "batch order", "padding",
                   "does not depend on the teacher"):
        assert needle in names, needle
    assert all(p.tests and p.what_goes_wrong and p.guard for p in PITFALLS)
    measured = [p.measured for p in PITFALLS if p.measured]
    assert all(chapter == "05_knowledge_distillation" for chapter, _ in measured) and len(measured) == 3


def test_the_runner_reports_each_guard_and_refuses_a_name_pytest_cannot_find():
    parametrised = "tests/kd/test_losses.py::test_what_sits_in_padded_positions_never_reaches_the_loss_or_its_gradient"
    chosen = [*guard_test_ids()[:2], parametrised]
    assert parametrised in guard_test_ids(), "a parametrised guard counts once, passed only if every case passed"
    assert run_guard_tests(chosen) == {test: "passed" for test in chosen}
    with pytest.raises(ValueError, match="pytest"):
        run_guard_tests(["tests/kd/test_losses.py::test_that_was_renamed"])
    with pytest.raises(ValueError, match="do not exist"):
        run_guard_tests(["tests/test_gone.py::test_x"])
