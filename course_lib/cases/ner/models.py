"""Chapter 07's MSRA taggers: one teacher and the students it teaches, trained once and cached.

Six roles share the teacher's character vocabulary, training sentences and budget:

- ``teacher``: a wide, deeper Transformer tagger (chapter 04's recipe scaled up);
- ``scratch``: the tiny student on the hard labels only;
- ``logit_kd``: the tiny student on the labels and the teacher's per-character soft targets
  (padding masked), Hinton's loss from chapter 05;
- ``layer_kd``: ``logit_kd`` plus TinyBERT's hidden-state terms (through learned projections)
  and attention-map terms, with a uniform student-to-teacher layer map;
- ``teacher_init``: DistilBERT's recipe — a student of the teacher's width with half its blocks,
  initialised from every other teacher block and trained with the logit loss. The tiny student
  cannot take any teacher tensor (every shape differs), which is why this student is wider;
- ``cascade``: the source document's design, a small head that reads the teacher's last hidden
  states (:class:`~course_lib.kd.cascade.CascadeTagger`).

Every model is cached by :func:`course_lib.train.cache.load_or_train`; a student is keyed by its
recipe and the sha256 of the very teacher file it learned from, so retraining the teacher
retrains its students.
"""

from __future__ import annotations

from torch import nn

from course_lib.cases.common import Role, check_role, roles
from course_lib.cases.ner.tagger import (
    DROPOUT,
    TAGGER_KEY,
    TaggerRecipe,
    build_student,
    fit_tagger,
    lazy_msra,
    tagger_vocab,
    training_sentences,
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import CharVocab, NerCorpus
from course_lib.kd.methods import setup_method
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained
from course_lib.train.recipe import cap_epochs
from course_lib.train.tagging import tagger_loss

NER_ROLES = roles(
    Role("teacher", "teacher"),
    Role("scratch", "(a) student, labels only"),
    Role("logit_kd", "(b) student, logit KD", "logits"),
    Role("layer_kd", "(c) student, logit + hidden + attention KD", "layers"),
    Role("teacher_init", "(d) teacher-initialised, half depth", "teacher_init"),
    Role("cascade", "cascade head on the teacher", "cascade"),
)
# Shapes and budgets per mode. Fast mode fits a CPU notebook; full mode trains on every
# training sentence for up to 10 epochs, stopping when dev F1 has not improved for 2.
_TEACHER = {
    "fast": dict(d_model=128, num_heads=4, num_layers=2, d_ff=512, train_sentences=12_000, epochs=2, lr=2e-3),
    "full": dict(d_model=192, num_heads=4, num_layers=4, d_ff=768, train_sentences=None, epochs=10, lr=1e-3),
}
_PATIENCE = {"fast": None, "full": 2}
_TINY = {
    "fast": dict(d_model=16, num_heads=2, num_layers=2, d_ff=64, lr=5e-3),
    "full": dict(d_model=48, num_heads=4, num_layers=2, d_ff=128, lr=3e-3),
}


def ner_recipe(role: str, mode: str) -> TaggerRecipe:
    """The course's recipe for ``role`` in ``mode``: every student gets the teacher's data and epochs (chapter 07)."""
    method = check_role(role, NER_ROLES).method
    teacher = _TEACHER[check_mode(mode)]
    shared = dict(dropout=DROPOUT[mode], train_sentences=teacher["train_sentences"], epochs=teacher["epochs"],
                  batch_size=32, patience=_PATIENCE[mode], vocab_min_freq=2, threads=2, method=method)
    if role == "teacher":
        return TaggerRecipe(**{**teacher, **shared})
    if role == "teacher_init":
        shape = {key: teacher[key] for key in ("d_model", "num_heads", "d_ff", "lr")}
        return TaggerRecipe(**shape, num_layers=max(1, teacher["num_layers"] // 2), **shared)
    return TaggerRecipe(**_TINY[mode], **shared)


def capped_recipes(mode: str, epochs_cap: int | None, student_epochs_cap: int | None = None) -> dict[str, TaggerRecipe]:
    """Every role's course recipe for ``mode``, the epochs capped (None: no cap) (chapter 07)."""
    return cap_epochs({role: ner_recipe(role, mode) for role in NER_ROLES}, epochs_cap, student_epochs_cap)


def _check_recipe(recipe: object) -> None:
    if recipe is not None and not isinstance(recipe, TaggerRecipe):
        raise TypeError(f"recipe must be a TaggerRecipe or None, got {type(recipe).__name__}")


def ner_teacher(
    context: CourseContext,
    *,
    recipe: TaggerRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached chapter-07 teacher for ``context.mode``, or train and cache it (chapter 07)."""
    mode, device = context_mode_and_device(context)
    _check_recipe(recipe)
    recipe = recipe or ner_recipe("teacher", mode)
    if recipe.method != "labels":
        raise ValueError(f"the teacher learns from the labels: recipe.method must be 'labels', got {recipe.method!r}")
    msra = lazy_msra(corpus)

    def train(model: nn.Module, vocab: CharVocab) -> Trained:
        return fit_tagger(model, recipe, training_sentences(msra(), recipe), msra().dev, vocab, device=device,
                          progress=progress, desc="teacher")

    return load_or_train(model_path("ner_teacher", mode), recipe, build=lambda vocab: build_student(recipe, len(vocab)),
                         train=train, vocab=lambda: tagger_vocab(msra(), recipe), depends_on=TAGGER_KEY,
                         device=device)


def ner_student(
    context: CourseContext,
    role: str,
    teacher: Trained,
    *,
    recipe: TaggerRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached student of ``role`` taught by ``teacher``, or train and cache it (chapter 07).

    The student reads the teacher's vocabulary and trains on the teacher's sentences for the
    teacher's number of epochs; ``recipe`` replaces the course recipe of ``role``.
    """
    mode, device = context_mode_and_device(context)
    check_role(role, NER_ROLES, students_only=True)
    if not isinstance(teacher, Trained) or teacher.path is None or teacher.vocab is None:
        raise TypeError("teacher must be the Trained teacher returned by ner_teacher()")
    if not teacher.path.is_file():
        raise FileNotFoundError(f"the teacher's checkpoint {teacher.path} is gone; call ner_teacher() again")
    _check_recipe(recipe)
    recipe = recipe or ner_recipe(role, mode)
    if recipe.train_sentences != teacher.recipe.train_sentences:
        raise ValueError(f"the student must train on the teacher's sentences: train_sentences={recipe.train_sentences} "
                         f"but the teacher used {teacher.recipe.train_sentences}")
    teacher_model = teacher.model.to(device).eval()
    msra = lazy_msra(corpus)

    def train(model: nn.Module, vocab: CharVocab) -> Trained:
        setup = setup_method(recipe, student=model, teacher=teacher_model, task_loss=tagger_loss)
        trained = fit_tagger(model, recipe, training_sentences(msra(), recipe), msra().dev, vocab,
                             loss_fn=setup.loss_fn, param_groups=setup.param_groups,
                             extra_parameters=setup.extra_parameters, device=device, progress=progress,
                             desc=NER_ROLES[role].title)
        trained.metrics.update(setup.facts)
        return trained

    return load_or_train(model_path(f"ner_{role}", mode), recipe,
                         build=lambda vocab: build_student(recipe, len(vocab), teacher_model), train=train,
                         vocab=lambda: teacher.vocab, depends_on={**TAGGER_KEY, "teacher": teacher.path},
                         device=device)
