"""What every case shares: a table of roles, recipes per mode, a teacher before its students, a measured table (chapter 06).

A case (MNIST, NER, news, poetry) is data, recipes and models. Its roles — the teacher and the
students, each with a title and a distillation method — are one :data:`_Roles` table; its recipes
come from a teacher's shape and budget per mode and a student's shape
(:func:`role_recipe`); :func:`teacher_then_students` trains the teacher first and hands it to every
student; :func:`cpu_latency` times every model the same way on one CPU thread; :func:`rounded`
writes the measured rows into a results file; :func:`seeds_by_role` gives each student its seeds and
:func:`seed_verdict` says what scores over several seeds allow one to claim; :class:`GoalCheck`
sets a measurement beside a course goal.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from course_lib import checks
from course_lib.context import check_mode
from course_lib.data import CharVocab
from course_lib.files import sha256_json
from course_lib.train.fit import Trained
from course_lib.train.latency import interleaved_latency

R = TypeVar("R")


@dataclass
class GoalCheck:
    """One course goal: what it asks, what was measured, and whether it was met (chapter 07)."""

    goal: str
    target: float
    measured: float
    met: bool


@dataclass(frozen=True)
class Role:
    """One model of a case: its name, its title in tables, and the distillation method it learns by (chapter 06)."""

    name: str
    title: str
    method: str = "labels"


_Roles = dict[str, Role]


def roles(*table: Role) -> _Roles:
    """The roles of a case in table order, keyed by name; the first is the teacher (chapter 06)."""
    return {role.name: role for role in table}


def check_role(role: object, table: _Roles, *, students_only: bool = False) -> Role:
    """The :class:`Role` named ``role`` in ``table``, or a ValueError listing the names it may take (chapter 06)."""
    names = list(table)[1:] if students_only else list(table)
    if role not in names:
        what = "the students " if students_only else ""
        raise ValueError(f"role must be one of {what}{tuple(names)}, got {role!r}")
    return table[role]  # type: ignore[index]


def role_recipe(recipe_class: Callable[..., R], table: _Roles, role: str, mode: str,
                teacher: Mapping[str, Mapping[str, Any]], student: Mapping[str, Mapping[str, Any]],
                shared: tuple[str, ...], **fixed: Any) -> R:
    """The recipe of ``role`` in ``mode``: the teacher's shape and budget, or a student's shape on the teacher's budget (chapter 06).

    ``teacher[mode]`` and ``student[mode]`` hold the fields of each; every student takes the fields
    named in ``shared`` (data, epochs …) from the teacher, and its table's method; ``fixed``
    applies to all (chapter 06).
    """
    check_mode(mode)
    method = check_role(role, table).method
    teacher_fields = dict(teacher[mode])
    if role == next(iter(table)):
        return recipe_class(**teacher_fields, **fixed)
    budget = {key: teacher_fields[key] for key in shared if key in teacher_fields}
    return recipe_class(**{**student[mode], **budget, **fixed}, method=method)


def case_recipes(table: _Roles, recipes: Mapping[str, R] | None, course_recipe: Callable[[str], R],
                 same: str | tuple[str, ...]) -> dict[str, R]:
    """``recipes``, else the course's recipe of every role; every role present and sharing the teacher's ``same`` fields (chapter 06).

    The students learn from the teacher's data, so the fields that name it (``max_len``,
    ``train_poems`` …; one name or a tuple) must be the teacher's in every recipe.
    """
    chosen = dict(recipes) if recipes else {role: course_recipe(role) for role in table}
    missing = [role for role in table if role not in chosen]
    if missing:
        raise ValueError(f"recipes needs every role {tuple(table)}; missing {missing}")
    teacher = next(iter(table))
    for name in (same,) if isinstance(same, str) else same:
        if any(getattr(chosen[role], name) != getattr(chosen[teacher], name) for role in table):
            raise ValueError(f"every student must learn from the teacher's data: give all recipes the same {name}")
    return chosen


def teacher_then_students(table: _Roles, train: Callable[[str, Trained | None], Trained]) -> dict[str, Trained]:
    """``train(role, teacher)`` for every role of ``table``: the teacher first (with None), then each student (chapter 06)."""
    names = list(table)
    trained = {names[0]: train(names[0], None)}
    for name in names[1:]:
        trained[name] = train(name, trained[names[0]])
    return trained


def model_dependencies(method: str, teacher: Trained | None, data_sha256: str, *, vocab: CharVocab,
                       made_by: str) -> dict[str, Path | str]:
    """What a case's cached model depends on besides its recipe: its data, its characters and, for a student, its teacher's checkpoint (chapter 09).

    A student (``method`` other than "labels") needs ``teacher`` as ``made_by`` returns it: cached,
    with its path, so that a retrained teacher retrains its students.
    """
    learns_from_teacher = method != "labels"
    if learns_from_teacher and (teacher is None or teacher.path is None):
        raise ValueError(f"method {method!r} learns from a teacher: pass the teacher's Trained, as {made_by} returns it "
                         "(cached, with its path)")
    depends_on: dict[str, Path | str] = {"data": data_sha256,
                                         "vocab": sha256_json(vocab.tokens())}
    if learns_from_teacher:
        depends_on["teacher"] = teacher.path
    return depends_on


def cpu_latency(models: Mapping[str, nn.Module], call: Callable[[nn.Module], Any], rounds: int,
                seconds_per_round: float = 0.05) -> dict[str, float]:
    """Milliseconds per call of ``call(model)`` for each model, timed in turn on one CPU thread (chapter 06).

    A call on one input measures the latency of serving at batch 1; a call on many, the cost per input
    of serving in batches. Every model is copied to the CPU first (a GPU-trained model is served on a
    CPU too); each keeps the median of its quietest round (:func:`~course_lib.train.latency.interleaved_latency`).
    """
    on_cpu = {name: copy.deepcopy(model).cpu().eval() for name, model in models.items()}
    timed = interleaved_latency({name: ((lambda m=model: call(m)), 1) for name, model in on_cpu.items()},
                                rounds=rounds, seconds_per_round=seconds_per_round, threads=1)
    return {name: stats.p50_ms for name, stats in timed.items()}


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` as plain JSON data with every float rounded to ``digits`` decimals (dataclasses become dicts) (chapter 06)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, Mapping):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


def seed_spread(values: Sequence[float]) -> float:
    """The sample standard deviation of one score over seeds (0 for a single seed) (chapter 06)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def seeds_by_role(seeds: Sequence[int] | Mapping[str, Sequence[int]],
                  students: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Each student role's seeds, checked: one sequence for every role, or a mapping naming each role (chapter 06).

    Every role needs at least one seed, none repeated, each an integer >= 0.
    """
    if isinstance(seeds, Mapping):
        missing = [role for role in students if role not in seeds]
        unknown = [role for role in seeds if role not in students]
        if missing or unknown:
            raise ValueError(f"seeds must name every student role {list(students)}; "
                             f"missing {missing}, unknown {unknown}")
        by_role = {role: tuple(seeds[role]) for role in students}
    else:
        by_role = {role: tuple(seeds) for role in students}
    for role, role_seeds in by_role.items():
        if not role_seeds or len(set(role_seeds)) != len(role_seeds):
            raise ValueError(f"seeds must be distinct seeds, at least one, got {role_seeds!r} for {role!r}")
        for seed in role_seeds:
            checks.int_at_least("seed", seed, 0)
    return by_role


def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    """One score over seeds as ``{"per_seed", "mean", "sd"}``, rounded to 4 places, for a results file (chapter 06)."""
    return {"per_seed": [round(v, 4) for v in values], "mean": round(statistics.mean(values), 4),
            "sd": round(seed_spread(values), 4)}


def seed_verdict(first: Sequence[float], second: Sequence[float], *, names: tuple[str, str], unit: str,
                 scale: float = 1.0, lower_is_better: bool = False) -> str:
    """What per-seed scores of two models allow one to say about the first against the second (chapter 06).

    With one seed on either side nothing can be said; with more on both, "beats" or "loses to" only when the gap
    of the means is larger than twice the larger seed-to-seed standard deviation, and "no
    measurable difference" otherwise. ``scale`` turns scores into ``unit`` (100 for F1 in
    points); ``lower_is_better`` is for error counts.
    """
    if max(len(first), len(second)) < 2:
        return "one seed each: too few to tell a gap from seed-to-seed noise"
    if min(len(first), len(second)) < 2:
        return f"one seed of {names[0] if len(first) < 2 else names[1]}: too few to tell a gap from seed-to-seed noise"
    gap = scale * (statistics.mean(first) - statistics.mean(second))
    noise = 2 * scale * max(seed_spread(first), seed_spread(second))
    if abs(gap) <= noise:
        return f"no measurable difference ({gap:+.1f} {unit}, within twice the seed spread)"
    better = gap < 0 if lower_is_better else gap > 0
    return f"{names[0]} {'beats' if better else 'loses to'} {names[1]} by {abs(gap):.1f} {unit}"
