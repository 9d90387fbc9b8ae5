"""The teachers and students chapter 08 deploys, saved as bundles (see :mod:`course_lib.serve.bundle`).

- NER: chapter 07's teacher and its student ``layer_kd`` (logit + hidden-state + attention
  distillation, the tiny architecture), loaded from the chapter-07 cache (trained first if the
  cache is empty).
- MNIST: chapter 06's teacher (from its cache) and a 784-800-800-10 student distilled from it
  on the scratch student's transfer set at T = 20, α = 0.5 (chapter 06's setting). The distilled
  student is not part of chapter 06's cache, so its bundle is the cache: it is reused only if
  its metadata names the same teacher file (SHA-256), recipe, temperature and α.

Bundles go to ``<cache_dir()>/deploy/<task>_<teacher|student>_<mode>`` unless another root is
given; :func:`course_lib.serve.predict.default_bundle_dir` points at the students.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from course_lib.context import CourseContext, context_mode_and_device
from course_lib.data import MnistData, NerCorpus, cache_dir, load_mnist
from course_lib.files import sha256_file
from course_lib.serve.bundle import CONFIG_FILE, BundleError, read_bundle_config, save_bundle
from course_lib.cases.mnist.distil import distil_student
from course_lib.cases.mnist.models import MnistRecipe, mnist_model, mnist_recipe
from course_lib.cases.ner.models import ner_student, ner_teacher
from course_lib.cases.ner.tagger import TaggerRecipe

DEPLOYED_NER_STUDENT = "layer_kd"
MNIST_TEMPERATURE = 20.0
MNIST_ALPHA = 0.5


@dataclass(frozen=True)
class BundlePair:
    """The bundle folders of a task's teacher and student, and the student's training seconds (chapter 08)."""

    task: str
    teacher: Path
    student: Path
    student_trained_now: bool
    student_train_seconds: float


def _bundle_dir(task: str, role: str, mode: str, root: Path | None = None) -> Path:
    """The folder of ``task``'s ``role`` ("teacher" or "student") bundle in ``mode``."""
    if role not in ("teacher", "student"):
        raise ValueError(f"role must be 'teacher' or 'student', got {role!r}")
    return Path(root or cache_dir() / "deploy") / f"{task}_{role}_{mode}"


def ner_bundles(
    context: CourseContext,
    *,
    recipes: dict[str, TaggerRecipe] | None = None,
    corpus: NerCorpus | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> BundlePair:
    """Save chapter 07's teacher and its ``layer_kd`` student as bundles; return their folders (chapter 08).

    ``recipes`` maps "teacher" and "layer_kd" to recipes other than the course's (e.g. with
    capped epochs, as ``benchmarks/ner_kd.py`` trains them).
    """
    mode, _ = context_mode_and_device(context)
    recipes = recipes or {}
    teacher = ner_teacher(context, recipe=recipes.get("teacher"), corpus=corpus, progress=progress)
    student = ner_student(context, DEPLOYED_NER_STUDENT, teacher, recipe=recipes.get(DEPLOYED_NER_STUDENT),
                          corpus=corpus, progress=progress)
    folders = {}
    for role, name, trained in (("teacher", "teacher", teacher), ("student", DEPLOYED_NER_STUDENT, student)):
        folders[role] = save_bundle(
            _bundle_dir("ner", role, mode, root),
            trained.model,
            vocab=trained.vocab,
            metadata={"role": name, "recipe": trained.recipe.to_dict(), "dev_f1": trained.metrics["dev_f1"],
                      "train_seconds": trained.seconds, "mode": mode},
        )
    return BundlePair("ner", folders["teacher"], folders["student"], student.trained, student.seconds)


def _reusable_student(folder: Path, wanted: dict) -> dict | None:
    """The metadata of the MNIST student bundle at ``folder`` if it was distilled as ``wanted`` says."""
    if not (folder / CONFIG_FILE).is_file():
        return None
    try:
        metadata = read_bundle_config(folder)["metadata"]
    except (BundleError, FileNotFoundError):
        return None
    return metadata if all(metadata.get(key) == value for key, value in wanted.items()) else None


def mnist_bundles(
    context: CourseContext,
    *,
    data: MnistData | None = None,
    recipes: dict[str, MnistRecipe] | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> BundlePair:
    """Save chapter 06's teacher and a student distilled from it as bundles; return their folders (chapter 08).

    ``recipes`` may replace the course recipes of the "teacher" and of the "student" (whose
    default is chapter 06's scratch-student recipe: same transfer set and budget).
    """
    mode, device = context_mode_and_device(context)
    data = data or load_mnist()
    recipes = recipes or {}
    teacher = mnist_model(context, "teacher", recipe=recipes.get("teacher"), data=data, progress=progress)
    recipe = recipes.get("student") or mnist_recipe("student_scratch", mode)
    teacher_folder = save_bundle(
        _bundle_dir("mnist", "teacher", mode, root),
        teacher.model,
        metadata={"role": "teacher", "recipe": teacher.recipe.to_dict(), "test_errors": teacher.metrics["test_errors"],
                  "train_seconds": teacher.seconds, "mode": mode},
    )
    student_folder = _bundle_dir("mnist", "student", mode, root)
    wanted = {"teacher_sha256": sha256_file(teacher.path), "recipe": recipe.to_dict(),
              "temperature": MNIST_TEMPERATURE, "alpha": MNIST_ALPHA}
    cached = _reusable_student(student_folder, wanted)
    if cached is not None:
        return BundlePair("mnist", teacher_folder, student_folder, False, float(cached["train_seconds"]))
    start = time.perf_counter()
    fit = distil_student(teacher.model, data, recipe, temperature=MNIST_TEMPERATURE, alpha=MNIST_ALPHA,
                         device=device, progress=progress, desc="MNIST student, distilled")
    seconds = time.perf_counter() - start
    save_bundle(student_folder, fit.model,
                metadata={**wanted, "role": "student_distilled", "test_errors": fit.metrics["test_errors"],
                          "train_seconds": round(seconds, 1), "mode": mode})
    return BundlePair("mnist", teacher_folder, student_folder, True, seconds)

