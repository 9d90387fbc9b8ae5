"""Patient and consistent: a teacher the student cannot match alone, distilled on the same jittered digits (chapter 06).

Chapter 06's Hinton replica has a weakness the control exposes: the 800-800 student trained
alone on jittered digits does about as well as the dropout teacher, so the teacher has little
left to teach. Beyer et al. (2022) name the two conditions under which distillation pays: the
teacher must be better than anything the student can reach alone, and teacher and student must
see the same augmented input ("consistent") for a long schedule ("patient").

:func:`consistent_study` meets both: the teacher is the small convolutional network of role
``"teacher_cnn"``, and every student — the control trained on the labels alone and the
distilled one — is the 800-800 MLP trained on the same jittered digits with the same budget,
once per seed. The verdict compares the two over the seeds
(:func:`~course_lib.cases.common.seed_verdict`), and :data:`CONSISTENT_GOALS` sets Hinton et
al.'s 74 errors as the bar for the distilled student in full mode.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from course_lib import checks
from course_lib.cases.common import seed_spread, seed_verdict
from course_lib.cases.mnist.distil import PAPER_ERRORS, distil_student
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp, mnist_model, mnist_recipe
from course_lib.context import CourseContext, context_mode_and_device
from course_lib.data import MnistData

CONSISTENT_SEEDS = {"fast": (0,), "full": (0, 1, 2)}
CONSISTENT_GOALS = {"max_distilled_errors": PAPER_ERRORS["student_distilled"]}
"""Full mode: the distilled student makes at most Hinton et al.'s 74 errors (mean over the seeds) and beats the control."""


def consistent_student_recipe(mode: str, seed: int = 0) -> MnistRecipe:
    """The recipe every student of the study shares in ``mode``: the jittered student's (the chapter's budget), seeded (chapter 06)."""
    checks.int_at_least("seed", seed, 0)
    return dataclasses.replace(mnist_recipe("student_scratch_jitter", mode), seed=int(seed))


@dataclass
class ConsistentStudy:
    """Test errors of the CNN teacher and, per seed, of the control and the distilled student (chapter 06)."""

    teacher_errors: int
    teacher_seconds: float
    temperature: float
    alpha: float
    epochs: int
    seeds: list[int]
    control: list[int]
    distilled: list[int]
    seconds: dict[str, list[float]]

    @property
    def verdict(self) -> str:
        """What the seeds allow one to say about the distilled student against the control."""
        return seed_verdict(self.distilled, self.control, names=("the distilled student", "the control"),
                            unit="errors", lower_is_better=True)

    def goals(self) -> list[dict[str, Any]]:
        """The full-mode goals: at most 74 errors on average, and fewer than the control beyond the seed spread."""
        mean = statistics.mean(self.distilled)
        return [
            {"goal": "distilled student, mean test errors", "target": f"≤ {CONSISTENT_GOALS['max_distilled_errors']}",
             "measured": round(float(mean), 1), "met": mean <= CONSISTENT_GOALS["max_distilled_errors"]},
            {"goal": "distilled student against the control", "target": "beats it by more than twice the seed spread",
             "measured": self.verdict, "met": self.verdict.startswith("the distilled student beats")},
        ]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for a results file, with means, spreads, the verdict and the goals."""
        def summary(errors: list[int], seconds: list[float]) -> dict[str, Any]:
            return {"errors": errors, "mean_errors": round(float(statistics.mean(errors)), 1),
                    "std_errors": round(seed_spread(errors), 1), "train_seconds": round(statistics.mean(seconds), 1)}

        return {"teacher": {"errors": self.teacher_errors, "seconds": round(self.teacher_seconds, 1)},
                "temperature": self.temperature, "alpha": self.alpha, "epochs": self.epochs, "seeds": self.seeds,
                "control": summary(self.control, self.seconds["control"]),
                "distilled": summary(self.distilled, self.seconds["distilled"]),
                "verdict": self.verdict, "goals": self.goals()}


def consistent_study(
    context: CourseContext,
    data: MnistData,
    *,
    seeds: Sequence[int] | None = None,
    temperature: float = 20.0,
    alpha: float = 0.5,
    teacher_recipe: MnistRecipe | None = None,
    student_recipe: MnistRecipe | None = None,
    progress: bool = True,
) -> ConsistentStudy:
    """Train (or load) the CNN teacher, then per seed a control and a consistently distilled 800-800 student (chapter 06).

    Both students of a seed share :func:`consistent_student_recipe` (same digits, same jitter
    stream, same initial weights); the distilled one learns from the teacher's soft targets on
    the very jittered digit it sees, at ``temperature`` with ``alpha`` on the labels. ``seeds``
    defaults to :data:`CONSISTENT_SEEDS` of the context's mode; ``teacher_recipe`` and
    ``student_recipe`` replace the course's (the teacher is still cached as ``"teacher_cnn"``,
    the student recipe still takes each seed).
    """
    mode, device = context_mode_and_device(context)
    seeds = list(CONSISTENT_SEEDS[mode] if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed, e.g. [0, 1, 2]")
    temperature, alpha = checks.temperature(temperature), checks.alpha(alpha)
    if student_recipe is not None and not isinstance(student_recipe, MnistRecipe):
        raise TypeError(f"student_recipe must be a MnistRecipe or None, got {type(student_recipe).__name__}")
    teacher = mnist_model(context, "teacher_cnn", recipe=teacher_recipe, data=data, progress=progress)
    control, distilled, seconds = [], [], {"control": [], "distilled": []}
    for seed in seeds:
        recipe = (consistent_student_recipe(mode, seed) if student_recipe is None
                  else dataclasses.replace(student_recipe, seed=checks.int_at_least("seed", seed, 0)))
        alone = fit_mnist_mlp(data, recipe, device, progress=progress, desc=f"control, seed {seed}")
        taught = distil_student(teacher.model, data, recipe, temperature=temperature, alpha=alpha, device=device,
                                progress=progress, desc=f"distilled, seed {seed}")
        control.append(alone.metrics["test_errors"])
        distilled.append(taught.metrics["test_errors"])
        seconds["control"].append(alone.seconds)
        seconds["distilled"].append(taught.seconds)
    return ConsistentStudy(teacher_errors=teacher.metrics["test_errors"], teacher_seconds=teacher.seconds,
                           temperature=temperature, alpha=alpha, epochs=recipe.epochs, seeds=seeds,
                           control=control, distilled=distilled, seconds=seconds)
