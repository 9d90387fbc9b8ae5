"""Tests for course_lib.checks: each check passes good values through and names what was wrong."""

from __future__ import annotations

import math

import pytest

from course_lib import checks


def test_good_values_pass_through_as_plain_numbers():
    assert checks.positive_int("n", 3) == 3 and checks.int_at_least("n", 0, 0) == 0
    assert checks.optional_positive_int("n", None) is None and checks.optional_positive_int("n", 2) == 2
    assert checks.number_in("p", 0, 0, 1, high_open=True) == 0.0 and checks.number_in("p", 1, 0, 1) == 1.0
    assert checks.positive_number("lr", 1e-3) == 1e-3 and checks.non_negative_number("wd", 0) == 0.0
    assert checks.one_of("mode", "fast", ("fast", "full")) == "fast"
    assert checks.temperature(2) == 2.0 and checks.alpha(0) == 0.0 and checks.alpha(1) == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: checks.positive_int("batch_size", 0), "batch_size must be a positive int, got 0"),
    (lambda: checks.positive_int("batch_size", True), "batch_size must be a positive int, got True"),
    (lambda: checks.positive_int("batch_size", 2.0), "batch_size must be a positive int, got 2.0"),
    (lambda: checks.int_at_least("warmup", -1, 0), "warmup must be an int >= 0, got -1"),
    (lambda: checks.optional_positive_int("patience", 0), "patience must be a positive int or None, got 0"),
    (lambda: checks.number_in("dropout", 1.0, 0, 1, high_open=True), r"dropout must be a number in \[0, 1\), got 1.0"),
    (lambda: checks.number_in("p", math.nan, 0, 1), r"p must be a number in \[0, 1\], got nan"),
    (lambda: checks.positive_number("lr", 0), "lr must be a number > 0, got 0"),
    (lambda: checks.positive_number("lr", math.inf), "lr must be a number > 0, got inf"),
    (lambda: checks.non_negative_number("weight_decay", -1), "weight_decay must be a number >= 0, got -1"),
    (lambda: checks.one_of("mode", "medium", ("fast", "full")), r"mode must be one of \('fast', 'full'\), got 'medium'"),
    (lambda: checks.temperature(0), "temperature must be a number > 0, got 0; T = 1 is the plain softmax"),
    (lambda: checks.temperature("2"), "temperature must be a number > 0, got '2'"),
    (lambda: checks.alpha(1.5), r"alpha must be in \[0, 1\] \(the weight of the hard-label loss\), got 1.5"),
    (lambda: checks.alpha(True), r"alpha must be in \[0, 1\]"),
])
def test_bad_values_raise_a_message_that_names_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_config_from_dict_rebuilds_a_dataclass_and_names_bad_keys():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Shape:
        width: int
        depth: int = 2

    assert checks.config_from_dict(Shape, {"width": 3}, required=("width",)) == Shape(3)
    with pytest.raises(TypeError, match="data must be a dict, got list"):
        checks.config_from_dict(Shape, [3])
    with pytest.raises(ValueError, match=r"unknown Shape keys \['height'\]; known keys: \['depth', 'width'\]"):
        checks.config_from_dict(Shape, {"width": 3, "height": 1})
    with pytest.raises(ValueError, match="data must contain 'width'"):
        checks.config_from_dict(Shape, {"depth": 1}, required=("width",))
