"""Distilling an MNIST student from a trained teacher: the experiments of chapter 06.

:func:`distil_student` trains a fresh student network with the distillation loss of chapter 05
(``course_lib.kd.losses``: α·CE on the labels + (1−α)·T²·KL to the teacher's softened outputs) on
the transfer set a :class:`~course_lib.cases.mnist.models.MnistRecipe` describes. Which teacher outputs
the student sees depends on the recipe's jitter:

- without jitter (``max_shift=0``, Hinton et al.'s protocol) every example looks the same in
  every epoch, so the teacher runs once over the transfer set and its logits are looked up by
  dataset index (:class:`~course_lib.kd.teacher.TeacherLogitCache`) — much cheaper than a teacher
  pass per step;
- with jitter the teacher must see the very digit the student sees (the "consistent teacher"
  of Beyer et al. 2022). A shift of up to 2 px makes only 25 versions of a digit, so when the
  schedule would show the teacher more digits than the transfer set has versions (more epochs
  than versions per digit) the teacher runs once on every version
  (:func:`~course_lib.data.augment.every_view`) and its logits are looked up by version;
  otherwise it runs on every jittered batch, frozen and in eval mode. Both give the student the
  teacher's output on the very digit it sees.

Hinton et al. also removed every 3 from the transfer set and repaired the student afterwards by
raising the output bias of the 3: :func:`errors_by_digit` counts the damage, and
:func:`choose_bias_shift` picks the bias increase on held-out training digits, never on the test
set, and :func:`with_bias_shift` applies it to a copy of the student.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp, mnist_model, mnist_recipe, transfer_set
from course_lib.context import CourseContext
from course_lib.data import JitteredBatches, MnistData, every_view, mnist_tensors, views_per_image
from course_lib.kd.distiller import Distiller
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.nn.mlp import MLP, NUM_CLASSES, count_errors
from course_lib.train.fit import Trained


def _teacher_logit_cache(
    teacher: nn.Module, data: MnistData, recipe: MnistRecipe, device: torch.device | str = "cpu"
) -> TeacherLogitCache | None:
    """The teacher's logits on the transfer set, by example (no jitter) or by jittered version; None when a live teacher is cheaper."""
    images, labels = transfer_set(data, recipe)
    device = torch.device(device)
    if recipe.max_shift == 0:
        batches = JitteredBatches(images.to(device), labels.to(device), 1000, shuffle=False, with_index=True)
        return TeacherLogitCache.build(teacher, batches, device=device)
    if recipe.epochs <= views_per_image(recipe.max_shift):
        return None
    return TeacherLogitCache.build(teacher, every_view(images.to(device), labels.to(device), recipe.max_shift),
                                   device=device)


def distil_student(
    teacher: nn.Module,
    data: MnistData,
    recipe: MnistRecipe,
    *,
    temperature: float,
    alpha: float,
    device: torch.device | str = "cpu",
    test_curve: bool = False,
    progress: bool = True,
    desc: str = "distil",
) -> Trained:
    """Train a fresh student as ``recipe`` says on ``teacher``'s soft targets at ``temperature`` (chapter 06).

    ``alpha`` weighs the hard-label cross-entropy and ``1 - alpha`` the T²-scaled soft term
    (the course convention of chapter 05). The teacher is frozen and kept in eval mode; its
    logits are cached by example index when the recipe has no jitter, by jittered version when
    the recipe has more epochs than a digit has versions, and computed on each jittered batch
    otherwise. ``test_curve`` records the test errors after every epoch.
    """
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a trained torch.nn.Module, got {type(teacher).__name__}")
    temperature, alpha = checks.temperature(temperature), checks.alpha(alpha)
    device = torch.device(device)
    teacher = teacher.to(device)
    cache = _teacher_logit_cache(teacher, data, recipe, device)
    distiller = Distiller(teacher, temperature, alpha, cache=cache)
    return fit_mnist_mlp(
        data,
        recipe,
        device,
        loss_fn=distiller,
        with_index=cache is not None and recipe.max_shift == 0,
        with_views=cache is not None and recipe.max_shift > 0,
        test_curve=test_curve,
        progress=progress,
        desc=desc,
    )


def gap_closed(scratch_errors: float, distilled_errors: float, teacher_errors: float, *,
               lower_is_better: bool = True) -> float:
    """The share of the scratch-student-to-teacher gap that distillation closes (chapter 06).

    (scratch − distilled) / (scratch − teacher): 1 means the distilled student matches the
    teacher, 0 that distillation did nothing, below 0 that it hurt. Hinton et al.: (146 − 74) /
    (146 − 67) = 0.91. The formula holds for any score; ``lower_is_better=False`` is for scores
    such as F1 or accuracy, where the teacher's advantage is a higher value. Undefined, and a
    ValueError, when the teacher is no better than the scratch student.
    """
    gap = scratch_errors - teacher_errors
    if (gap <= 0) if lower_is_better else (gap >= 0):
        unit = " errors" if lower_is_better else ""
        raise ValueError(
            f"the teacher ({teacher_errors}{unit}) must beat the scratch student ({scratch_errors}{unit}) "
            "for a gap to be closed: train the teacher longer or compare against a weaker student"
        )
    return (scratch_errors - distilled_errors) / gap


@torch.no_grad()
def errors_by_digit(model: nn.Module, images: Tensor, labels: Tensor) -> list[int]:
    """Misclassified examples of each true digit 0-9 (a list of ten counts) (chapter 06)."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"got {images.shape[0]} images and {labels.shape[0]} labels; they must match")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        predicted = torch.cat([model(images[i : i + 1000].to(device)).argmax(-1).cpu() for i in range(0, len(images), 1000)])
    finally:
        model.train(was_training)
    wrong = labels[predicted != labels]
    return torch.bincount(wrong, minlength=NUM_CLASSES).tolist()


def _check_digit(digit: object) -> int:
    if isinstance(digit, bool) or not isinstance(digit, numbers.Integral) or not 0 <= digit < NUM_CLASSES:
        raise ValueError(f"digit must be an int from 0 to 9, got {digit!r}")
    return int(digit)


def with_bias_shift(model: MLP, digit: int, shift: float) -> MLP:
    """A copy of ``model`` whose output bias for ``digit`` is raised by ``shift`` (the original is untouched) (chapter 06)."""
    digit = _check_digit(digit)
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.output.bias[digit] += float(shift)
    return shifted


@dataclass(frozen=True)
class _BiasChoice:
    """The bias shift :func:`choose_bias_shift` picked and the held-out errors of every candidate."""

    shift: float
    errors: dict[float, int]


def choose_bias_shift(
    model: MLP, images: Tensor, labels: Tensor, digit: int, shifts: Sequence[float]
) -> _BiasChoice:
    """The shift of ``digit``'s output bias that makes the fewest errors on held-out ``images`` (chapter 06).

    Pass digits the student was not trained on (e.g. the last 10,000 training digits when the
    transfer set is the first 50,000), never the test set. Ties go to the smallest shift.
    """
    if not shifts:
        raise ValueError("shifts must list at least one candidate bias increase, e.g. [0, 1, 2, 3, 4]")
    errors = {float(s): count_errors(with_bias_shift(model, digit, s), images, labels) for s in shifts}
    best = min(errors, key=lambda s: (errors[s], s))
    return _BiasChoice(shift=best, errors=errors)


def held_out_digits(data: MnistData, first: int) -> tuple[Tensor, Tensor]:
    """Training digits from position ``first`` on: held out when the transfer set is the first ``first`` (chapter 06)."""
    images, labels = mnist_tensors(data, "train")
    if not 0 < first < len(labels):
        raise ValueError(f"first must be between 1 and {len(labels) - 1}, got {first!r}")
    return images[first:], labels[first:]


PAPER_ERRORS = {"teacher": 67, "student_scratch": 146, "student_distilled": 74}
"""Test errors of Hinton, Vinyals and Dean (2015, §3) for the three networks of the MNIST experiment."""


@dataclass
class _MnistComparison:
    """The chapter-06 table: every network's test errors and training seconds, and the gap closed.

    ``rows`` maps a row name to ``{"errors": int, "seconds": float}``; the rows are the
    teacher, ``student_scratch`` (labels only, no jitter), ``student_distilled`` (the same
    student on the teacher's soft targets, Hinton's protocol), ``student_scratch_jitter`` (the
    control: labels only, jittered digits) and ``student_distilled_jitter`` (soft targets of
    the teacher on the very jittered digits the student sees).
    """

    rows: dict[str, dict[str, float]]
    temperature: float
    alpha: float
    students: dict[str, Trained]

    @property
    def gap_closed(self) -> float:
        """Share of the scratch-to-teacher gap the distilled student closes (Hinton's protocol)."""
        return gap_closed(
            self.rows["student_scratch"]["errors"],
            self.rows["student_distilled"]["errors"],
            self.rows["teacher"]["errors"],
        )


def compare_students(
    context: CourseContext,
    data: MnistData,
    *,
    temperature: float = 20.0,
    alpha: float = 0.5,
    test_curve: bool = False,
    progress: bool = True,
) -> _MnistComparison:
    """Train (or load) the teacher and the scratch students, distil two students, and tabulate all five (chapter 06).

    The teacher and the two scratch students come from the :mod:`course_lib.cases.mnist.models` cache;
    both distilled students use the scratch student's recipe for ``context.mode`` (the jittered
    one the control's), so every student has the same transfer set and budget.
    """
    device = context.device
    teacher = mnist_model(context, "teacher", data=data, progress=progress)
    rows = {"teacher": {"errors": teacher.metrics["test_errors"], "seconds": teacher.seconds}}
    students: dict[str, Trained] = {}
    for scratch_role, distilled_role in (
        ("student_scratch", "student_distilled"),
        ("student_scratch_jitter", "student_distilled_jitter"),
    ):
        recipe = mnist_recipe(scratch_role, context.mode)
        scratch = mnist_model(context, scratch_role, data=data, progress=progress)
        rows[scratch_role] = {"errors": scratch.metrics["test_errors"], "seconds": scratch.seconds}
        fit = distil_student(
            teacher.model,
            data,
            recipe,
            temperature=temperature,
            alpha=alpha,
            device=device,
            test_curve=test_curve,
            progress=progress,
            desc=distilled_role.replace("_", " "),
        )
        rows[distilled_role] = {"errors": fit.metrics["test_errors"], "seconds": fit.seconds}
        students[distilled_role] = fit
    order = ("teacher", "student_scratch", "student_distilled", "student_scratch_jitter", "student_distilled_jitter")
    return _MnistComparison(
        rows={name: rows[name] for name in order}, temperature=temperature, alpha=alpha, students=students
    )


SIZE_SWEEP_PAPER = {
    "large_students": "students of 300 or more units per layer: every T above 8 gives about the same result",
    "small_students": "a student of 30 units per layer: T from 2.5 to 4 works much better than higher or lower T",
}
"""What Hinton, Vinyals and Dean (2015, §3) report about the temperature for students of different sizes."""


@dataclass
class _SizeSweep:
    """Test errors of students of several widths, trained on the labels and distilled at several temperatures.

    ``scratch[width]`` is the labels-only student; ``distilled[width][i]`` the student distilled
    at ``temperatures[i]``; ``parameters[width]`` its size. All share one recipe but the width.
    """

    widths: list[int]
    temperatures: list[float]
    alpha: float
    scratch: dict[int, int]
    distilled: dict[int, list[int]]
    parameters: dict[int, int]

    def best_temperature(self, width: int) -> float:
        """The temperature at which the student of ``width`` made the fewest test errors (the lower T on a tie)."""
        errors = self.distilled[width]
        return self.temperatures[errors.index(min(errors))]

    def to_dict(self) -> dict[str, object]:
        """A plain dict for a results file (widths as string keys)."""
        return {"widths": self.widths, "temperatures": self.temperatures, "alpha": self.alpha,
                "scratch": {str(w): e for w, e in self.scratch.items()},
                "distilled": {str(w): e for w, e in self.distilled.items()},
                "parameters": {str(w): p for w, p in self.parameters.items()},
                "best_temperature": {str(w): self.best_temperature(w) for w in self.widths}}


def size_temperature_sweep(
    teacher: nn.Module,
    data: MnistData,
    recipe: MnistRecipe,
    *,
    widths: Sequence[int],
    temperatures: Sequence[float],
    alpha: float = 0.5,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> _SizeSweep:
    """Train, for every width, a labels-only student and one distilled student per temperature (chapter 06).

    Every student is ``recipe`` with two hidden layers of ``width`` units; nothing else changes.
    """
    if not widths or not temperatures:
        raise ValueError("name at least one width and one temperature")
    for width in widths:
        checks.positive_int("every width", width)
    temperatures = [checks.temperature(t) for t in temperatures]
    scratch, distilled, parameters = {}, {}, {}
    for width in widths:
        sized = dataclasses.replace(recipe, hidden=(int(width), int(width)))
        alone = fit_mnist_mlp(data, sized, device, progress=progress, desc=f"{width}-{width} labels only")
        scratch[int(width)] = alone.metrics["test_errors"]
        parameters[int(width)] = sum(p.numel() for p in alone.model.parameters())
        distilled[int(width)] = [
            distil_student(teacher, data, sized, temperature=t, alpha=alpha, device=device, progress=progress,
                           desc=f"{width}-{width} T={t:g}").metrics["test_errors"]
            for t in temperatures
        ]
    return _SizeSweep(widths=[int(w) for w in widths], temperatures=temperatures, alpha=checks.alpha(alpha),
                     scratch=scratch, distilled=distilled, parameters=parameters)
