"""The argument checks every layer shares, each with one clear message (chapter 00).

A wrong argument fails where it enters the package, with a message that names the argument, says
what it must be and shows what was given: ``batch_size must be a positive int, got 0``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Collection
from typing import Any, TypeVar

T = TypeVar("T")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int if it is an int >= ``minimum``, else ValueError (chapter 00)."""
    if not _is_int(value) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is an int >= 1, else ValueError (chapter 00)."""
    return int_at_least(name, value, 1)


def optional_positive_int(name: str, value: Any) -> int | None:
    """None, or ``value`` as a positive int; else ValueError (chapter 00)."""
    if value is not None and (not _is_int(value) or value < 1):
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return value


def number_in(name: str, value: Any, low: float, high: float, *, high_open: bool = False) -> float:
    """``value`` as a float if it lies in [low, high] (or [low, high) with ``high_open``), else ValueError (chapter 00)."""
    inside = _is_number(value) and low <= value and (value < high if high_open else value <= high)
    if not inside:
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def positive_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else ValueError (chapter 00)."""
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def non_negative_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0, else ValueError (chapter 00)."""
    if not _is_number(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def one_of(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ValueError listing them (chapter 00)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def temperature(value: Any) -> float:
    """A distillation temperature: a finite number > 0 (chapter 00)."""
    if not _is_number(value) or value <= 0:
        raise ValueError(
            f"temperature must be a number > 0, got {value!r}; T = 1 is the plain softmax, larger T softens it"
        )
    return float(value)


def alpha(value: Any) -> float:
    """The weight of the hard-label loss: a number in [0, 1] (chapter 00)."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the weight of the hard-label loss), got {value!r}")
    return float(value)


def config_from_dict(cls: type[T], data: object, required: tuple[str, ...] = ()) -> T:
    """Rebuild the dataclass ``cls`` from a ``to_dict`` dict; a non-dict, unknown or missing keys raise (chapter 02)."""
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"data has unknown {cls.__name__} keys {unknown}; known keys: {sorted(known)}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"data must contain {', '.join(repr(key) for key in missing)}")
    return cls(**data)
