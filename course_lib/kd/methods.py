"""How a student learns from its teacher, by name: the registry every case picks its loss from (chapter 05).

A :class:`DistillRecipe` is a training recipe plus ``method``, ``temperature`` and ``alpha``. Each
method is registered here once with :func:`_register_method`; :func:`setup_method` turns a recipe,
a student and its teacher into the ``loss_fn`` the training loop calls and whatever else the
optimiser needs. The names:

==================  ==========================================================================
``labels``          the case's own loss on the labels; no teacher
``logits``          Hinton's loss: α·CE + (1 − α)·T²·KL to the teacher's softened outputs
                    (word-level distillation, Kim & Rush 2016, for a language model)
``layers``          ``logits`` plus TinyBERT's hidden-state and attention-map terms along a
                    uniform layer map
``teacher_init``    DistilBERT's start: teacher blocks copied into the student (token embeddings
                    reduced to a narrower student's width), then ``logits``
``cascade``         the source document's design: a head trained on the frozen teacher's states
``transfer``        ``logits`` on labelled batches, the soft targets alone on unlabelled ones
``sequence_kd``     the case's own loss on text the teacher wrote (Kim & Rush 2016)
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from course_lib import checks
from course_lib.kd.cascade import cascade_loss
from course_lib.kd.distiller import Distiller, IntermediateDistiller
from course_lib.kd.layers import LayerMap, init_from_teacher
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.train.loop import LossFn
from course_lib.train.recipe import Recipe


@dataclass
class _MethodSetup:
    """What a method gives the training loop: the ``loss_fn``, parameters it brings, and facts to record."""

    loss_fn: LossFn
    extra_parameters: list[nn.Parameter] = field(default_factory=list)
    param_groups: list[dict[str, Any]] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


_Builder = Callable[..., _MethodSetup]
METHODS: dict[str, _Builder] = {}


def _register_method(name: str) -> Callable[[_Builder], _Builder]:
    """Register ``builder(recipe, student, teacher, task_loss, cache) -> _MethodSetup`` under ``name`` (chapter 05)."""

    def register(builder: _Builder) -> _Builder:
        if name in METHODS:
            raise ValueError(f"a distillation method named {name!r} is already registered")
        METHODS[name] = builder
        return builder

    return register


@dataclass(frozen=True)
class DistillRecipe(Recipe):
    """A training recipe plus how the model learns from a teacher (chapter 07).

    ``method`` names a registered method (see the module docstring); ``temperature`` and ``alpha``
    (the weight of the hard labels) are Hinton's; ``hidden_weight`` and ``attention_weight`` weigh
    the layer terms of the ``layers`` method.
    """

    method: str = "labels"
    temperature: float = 2.0
    alpha: float = 0.5
    hidden_weight: float = 1.0
    attention_weight: float = 1.0

    def check(self) -> None:
        checks.one_of("method", self.method, tuple(METHODS))
        checks.temperature(self.temperature)
        checks.alpha(self.alpha)
        checks.non_negative_number("hidden_weight", self.hidden_weight)
        checks.non_negative_number("attention_weight", self.attention_weight)


def setup_method(recipe: DistillRecipe, *, student: nn.Module, teacher: nn.Module | None, task_loss: LossFn,
                 cache: TeacherLogitCache | None = None) -> _MethodSetup:
    """The :class:`_MethodSetup` of ``recipe.method`` for ``student`` and ``teacher`` (chapter 07).

    ``task_loss(model, batch)`` is the case's loss on its labels; ``cache`` holds the teacher's
    logits when the inputs look the same every epoch.
    """
    if recipe.method != "labels" and recipe.method != "sequence_kd" and teacher is None:
        raise ValueError(f"method {recipe.method!r} learns from a teacher: pass the trained teacher")
    return METHODS[recipe.method](recipe, student=student, teacher=teacher, task_loss=task_loss, cache=cache)


@_register_method("labels")
def _labels(recipe: DistillRecipe, *, task_loss: LossFn, **_: Any) -> _MethodSetup:
    return _MethodSetup(task_loss)


@_register_method("sequence_kd")
def _sequence_kd(recipe: DistillRecipe, *, task_loss: LossFn, **_: Any) -> _MethodSetup:
    return _MethodSetup(task_loss)


@_register_method("logits")
def _logits(recipe: DistillRecipe, *, teacher: nn.Module, cache: TeacherLogitCache | None, **_: Any) -> _MethodSetup:
    return _MethodSetup(Distiller(teacher, recipe.temperature, recipe.alpha, cache=cache))


@_register_method("layers")
def _layers(recipe: DistillRecipe, *, student: nn.Module, teacher: nn.Module, **_: Any) -> _MethodSetup:
    distiller = IntermediateDistiller(
        teacher, student, LayerMap.uniform(student.config.num_layers, teacher.config.num_layers),
        temperature=recipe.temperature, alpha=recipe.alpha, hidden_weight=recipe.hidden_weight,
        attention_weight=recipe.attention_weight,
    )
    return _MethodSetup(distiller, extra_parameters=list(distiller.parameters()))


@_register_method("teacher_init")
def _teacher_init(recipe: DistillRecipe, *, student: nn.Module, teacher: nn.Module, cache: TeacherLogitCache | None,
                  **_: Any) -> _MethodSetup:
    report = init_from_teacher(student, teacher, LayerMap.uniform(student.config.num_layers, teacher.config.num_layers))
    return _MethodSetup(Distiller(teacher, recipe.temperature, recipe.alpha, cache=cache),
                       facts={"copied_tensors": len(report.copied), "reduced_tensors": len(report.reduced),
                              "skipped_tensors": len(report.skipped)})


@_register_method("cascade")
def _cascade(recipe: DistillRecipe, *, student: nn.Module, **_: Any) -> _MethodSetup:
    return _MethodSetup(cascade_loss, param_groups=[{"params": student.trainable_parameters()}])


@_register_method("transfer")
def _transfer(recipe: DistillRecipe, *, teacher: nn.Module, cache: TeacherLogitCache | None, **_: Any) -> _MethodSetup:
    labelled = Distiller(teacher, recipe.temperature, recipe.alpha, cache=cache)
    soft_only = Distiller(teacher, recipe.temperature, 0.0, cache=cache)

    def loss(student: nn.Module, batch: dict) -> Any:
        return labelled(student, batch) if "labels" in batch else soft_only(student, batch)

    return _MethodSetup(loss)
