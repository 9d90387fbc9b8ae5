"""How a model is trained, written down once: the recipe every case builds on (chapter 04).

A :class:`Recipe` holds the optimisation and budget of one training run; a case adds the shape of
its model and, for a student, how it learns from its teacher (:class:`course_lib.kd.methods.DistillRecipe`).
Each field is checked once, here, when the recipe is made, and :meth:`Recipe.fingerprint` names
the recipe in the model cache: a cached model is reused only for the very recipe that trained it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from course_lib import checks
from course_lib.files import sha256_text

OPTIMIZERS = ("adamw", "sgd")
R = TypeVar("R", bound="Recipe")


@dataclass(frozen=True)
class Recipe:
    """The optimisation and budget of one training run (chapter 04).

    ``optimizer`` is "adamw" (weight decay on matrices only) or "sgd" (with ``momentum``); the
    learning rate warms up linearly over ``warmup_fraction`` of the steps, then decays linearly
    to zero. ``clip_grad_norm`` bounds the gradient norm (None: no clipping); ``patience`` stops
    after that many epochs without a better dev score (None: run every epoch); ``threads`` is how
    many CPU threads training uses on a CPU.
    """

    epochs: int = 1
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.01
    warmup_fraction: float = 0.0
    clip_grad_norm: float | None = 1.0
    patience: int | None = None
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        checks.positive_int("epochs", self.epochs)
        checks.positive_int("batch_size", self.batch_size)
        checks.one_of("optimizer", self.optimizer, OPTIMIZERS)
        checks.positive_number("lr", self.lr)
        checks.number_in("momentum", self.momentum, 0.0, 1.0, high_open=True)
        checks.non_negative_number("weight_decay", self.weight_decay)
        checks.number_in("warmup_fraction", self.warmup_fraction, 0.0, 1.0, high_open=True)
        if self.clip_grad_norm is not None:
            checks.positive_number("clip_grad_norm", self.clip_grad_norm)
        checks.optional_positive_int("patience", self.patience)
        checks.int_at_least("seed", self.seed, 0)
        checks.positive_int("threads", self.threads)
        self.check()

    def check(self) -> None:
        """Check the fields a subclass adds (called once, when the recipe is made)."""

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain JSON-serialisable dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """The sha256 of the recipe's class name and fields: the same recipe, the same fingerprint."""
        return sha256_text(type(self).__name__ + json.dumps(self.to_dict(), sort_keys=True))


def cap_epochs(recipes: Mapping[str, R], epochs_cap: int | None, student_epochs_cap: int | None = None,
               teacher: str = "teacher") -> dict[str, R]:
    """``recipes`` with their epochs capped (None: no cap), e.g. for a CPU run of a full-size benchmark (chapter 04).

    ``epochs_cap`` applies to every model, ``student_epochs_cap`` (default: ``epochs_cap``) to every
    role but ``teacher``; all students keep the same budget.
    """
    if student_epochs_cap is None:
        student_epochs_cap = epochs_cap
    capped = {}
    for role, recipe in recipes.items():
        cap = epochs_cap if role == teacher else student_epochs_cap
        capped[role] = recipe if cap is None else dataclasses.replace(recipe, epochs=min(recipe.epochs, cap))
    return capped
