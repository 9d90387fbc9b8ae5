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
  states (:class:`~course_lib.cascade.CascadeTagger`).

Each model is cached in ``<cache_dir()>/models/ner_<role>_<mode>.safetensors`` with its recipe, dev
F1 per epoch and training seconds; the vocabulary goes beside the teacher. A student is reused
only if it was trained with the same recipe from the very same teacher file (its SHA-256 is
stored with the student), so retraining the teacher retrains its students.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from course_lib.cascade import CascadeTagger, cascade_loss
from course_lib.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from course_lib.data import LABELS, CharVocab, NerCorpus, cache_dir, load_msra
from course_lib.distill import Distiller
from course_lib.files import write_bytes_atomic
from course_lib.layer_distill import IntermediateDistiller, LayerMap, init_from_teacher
from course_lib.ner import tagger_loss
from course_lib.notebook import MODES, context_mode_and_device
from course_lib.pretrained import DemoRecipe
from course_lib.results import cap_epochs
from course_lib.tagger_fit import fit_tagger
from course_lib.training import TrainingHistory
from course_lib.transformer import TokenTagger, TransformerConfig

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

__all__ = [
    "NER_CPU_THREADS",
    "NER_ROLES",
    "ROLE_TITLES",
    "NerRecipe",
    "TrainedTagger",
    "capped_recipes",
    "ner_model_path",
    "ner_recipe",
    "ner_student",
    "ner_teacher",
    "teacher_sentences",
]

NER_ROLES = ("teacher", "scratch", "logit_kd", "layer_kd", "teacher_init", "cascade")
ROLE_TITLES = {
    "teacher": "teacher",
    "scratch": "(a) student, labels only",
    "logit_kd": "(b) student, logit KD",
    "layer_kd": "(c) student, logit + hidden + attention KD",
    "teacher_init": "(d) teacher-initialised, half depth",
    "cascade": "cascade head on the teacher",
}
METHODS = ("labels", "logits", "layers", "teacher_init", "cascade")
ROLE_METHODS = {
    "teacher": "labels",
    "scratch": "labels",
    "logit_kd": "logits",
    "layer_kd": "layers",
    "teacher_init": "teacher_init",
    "cascade": "cascade",
}
NER_CPU_THREADS = 2


@dataclass(frozen=True)
class NerRecipe(DemoRecipe):
    """A :class:`~course_lib.pretrained.DemoRecipe` (shape, data, optimisation) plus how the model learns.

    ``method`` is "labels", "logits" (Hinton's loss at ``temperature``, ``alpha`` on the hard
    labels), "layers" (that plus ``hidden_weight`` × hidden-state MSE and ``attention_weight`` ×
    attention-map MSE), "teacher_init" (copied teacher blocks, then the logit loss) or
    "cascade" (a head on the frozen teacher's hidden states). ``vocab_min_freq`` is how often a
    character must occur in the teacher's training sentences to get its own id.
    """

    method: str = "labels"
    temperature: float = 2.0
    alpha: float = 0.5
    hidden_weight: float = 1.0
    attention_weight: float = 1.0
    vocab_min_freq: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        for name in ("hidden_weight", "attention_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.vocab_min_freq, bool) or not isinstance(self.vocab_min_freq, int) or self.vocab_min_freq < 1:
            raise ValueError(f"vocab_min_freq must be a positive int, got {self.vocab_min_freq!r}")


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


def _check_role_and_mode(role: object, mode: object) -> None:
    if role not in NER_ROLES:
        raise ValueError(f"role must be one of {NER_ROLES}, got {role!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def ner_recipe(role: str, mode: str) -> NerRecipe:
    """The course's recipe for ``role`` in ``mode``: every student gets the teacher's data and epochs."""
    _check_role_and_mode(role, mode)
    teacher = _TEACHER[mode]
    shared = dict(
        dropout=0.1,
        train_sentences=teacher["train_sentences"],
        epochs=teacher["epochs"],
        batch_size=32,
        patience=_PATIENCE[mode],
    )
    if role == "teacher":
        return NerRecipe(**{**teacher, **shared})
    if role == "teacher_init":
        half = max(1, teacher["num_layers"] // 2)
        shape = {key: teacher[key] for key in ("d_model", "num_heads", "d_ff", "lr")}
        return NerRecipe(**shape, num_layers=half, **shared, method="teacher_init")
    return NerRecipe(**_TINY[mode], **shared, method=ROLE_METHODS[role])


def capped_recipes(mode: str, epochs_cap: int | None, student_epochs_cap: int | None = None) -> dict[str, NerRecipe]:
    """Every role's course recipe for ``mode``, the epochs capped (None: no cap).

    ``epochs_cap`` applies to every model, ``student_epochs_cap`` (default: ``epochs_cap``) to the
    students alone; all students keep the same budget.
    """
    return cap_epochs({role: ner_recipe(role, mode) for role in NER_ROLES}, epochs_cap, student_epochs_cap)


def ner_model_path(role: str, mode: str) -> Path:
    """Where the model of ``role`` and ``mode`` is cached (a ``.safetensors`` file)."""
    _check_role_and_mode(role, mode)
    return cache_dir() / "models" / f"ner_{role}_{mode}.safetensors"


def _vocab_path(mode: str) -> Path:
    return ner_model_path("teacher", mode).with_suffix(".vocab.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TrainedTagger:
    """A trained chapter-07 model with what was measured while training it.

    ``model`` is in eval mode on the context's device; ``dev_f1`` is the best dev F1 and
    ``dev_curve`` the dev F1 after each epoch; ``trained`` says whether this call trained it
    (False: loaded from ``path``); ``train_seconds`` is the wall time its training took;
    ``extra`` holds role-specific facts (e.g. how many tensors the teacher initialised).
    """

    role: str
    model: nn.Module
    vocab: CharVocab
    recipe: NerRecipe
    dev_f1: float
    dev_curve: list[float]
    path: Path
    trained: bool
    train_seconds: float
    history: TrainingHistory | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def teacher_sentences(corpus: NerCorpus, recipe: NerRecipe) -> list:
    """The training sentences of ``recipe``: the first ``train_sentences`` of the train split (None: all)."""
    if recipe.train_sentences is None:
        return list(corpus.train)
    if recipe.train_sentences > len(corpus.train):
        raise ValueError(
            f"recipe.train_sentences={recipe.train_sentences} exceeds the {len(corpus.train):,} training "
            "sentences; use a smaller number or None for all of them"
        )
    return list(corpus.train[: recipe.train_sentences])


def _check_inputs(recipe: object, corpus: object) -> None:
    if recipe is not None and not isinstance(recipe, NerRecipe):
        raise TypeError(f"recipe must be a NerRecipe or None, got {type(recipe).__name__}")
    if corpus is not None and not isinstance(corpus, NerCorpus):
        raise TypeError(f"corpus must be a NerCorpus (from load_msra()) or None, got {type(corpus).__name__}")


def _build(recipe: NerRecipe, vocab_size: int, teacher: TokenTagger | None) -> nn.Module:
    """A freshly initialised model for ``recipe`` (a cascade needs its teacher)."""
    torch.manual_seed(recipe.seed)
    if recipe.method == "cascade":
        if teacher is None:
            raise ValueError("a cascade is built on a teacher: pass the trained teacher")
        return CascadeTagger(
            teacher,
            d_model=recipe.d_model,
            num_heads=recipe.num_heads,
            num_layers=recipe.num_layers,
            d_ff=recipe.d_ff,
            dropout=recipe.dropout,
        )
    return TokenTagger(recipe.model_config(vocab_size), num_labels=len(LABELS))


def _load(path: Path, recipe: NerRecipe, vocab: CharVocab, teacher: TokenTagger | None,
          device: torch.device, teacher_sha: str | None) -> tuple[nn.Module, dict[str, Any]] | None:
    """The cached model at ``path`` and its metadata if it matches ``recipe`` (and teacher), else None."""
    if not path.is_file():
        return None
    config = TransformerConfig.from_dict(read_checkpoint_config(path))
    if recipe.method != "cascade" and config != recipe.model_config(len(vocab)):
        return None
    model = _build(recipe, len(vocab), teacher)
    try:
        metadata = load_checkpoint(path, model)["metadata"]
    except (TypeError, ValueError):
        return None
    if metadata.get("recipe") != recipe.to_dict() or metadata.get("teacher_sha256") != teacher_sha:
        return None
    return model.to(device).eval(), metadata


def _trained(role: str, model: nn.Module, vocab: CharVocab, recipe: NerRecipe, path: Path,
             metadata: dict[str, Any], trained: bool, history: TrainingHistory | None = None) -> TrainedTagger:
    return TrainedTagger(
        role=role,
        model=model,
        vocab=vocab,
        recipe=recipe,
        dev_f1=float(metadata["dev_f1"]),
        dev_curve=[float(f) for f in metadata["dev_curve"]],
        path=path,
        trained=trained,
        train_seconds=float(metadata["train_seconds"]),
        history=history,
        extra=dict(metadata.get("extra", {})),
    )


def ner_teacher(
    context: CourseContext,
    *,
    recipe: NerRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> TrainedTagger:
    """Load the cached chapter-07 teacher for ``context.mode``, or train and cache it (and its vocabulary)."""
    mode, device = context_mode_and_device(context)
    _check_inputs(recipe, corpus)
    recipe = recipe or ner_recipe("teacher", mode)
    if recipe.method != "labels":
        raise ValueError(f"the teacher learns from the labels: recipe.method must be 'labels', got {recipe.method!r}")
    path, vocab_file = ner_model_path("teacher", mode), _vocab_path(mode)
    if vocab_file.is_file():
        vocab = CharVocab(json.loads(vocab_file.read_text(encoding="utf-8"))["tokens"])
        cached = _load(path, recipe, vocab, None, device, None)
        if cached is not None:
            model, metadata = cached
            return _trained("teacher", model, vocab, recipe, path, metadata, trained=False)

    corpus = corpus or load_msra()
    sentences = teacher_sentences(corpus, recipe)
    vocab = CharVocab.build(sentences, min_freq=recipe.vocab_min_freq)
    model = _build(recipe, len(vocab), None)
    fit = fit_tagger(model, recipe, sentences, corpus.dev, vocab, device=device, threads=NER_CPU_THREADS,
                     progress=progress, desc="teacher")
    metadata = {"recipe": recipe.to_dict(), "dev_f1": fit.dev_f1, "dev_curve": fit.dev_curve,
                "train_seconds": fit.seconds, "teacher_sha256": None}
    write_bytes_atomic(vocab_file, json.dumps({"tokens": vocab.tokens()}, ensure_ascii=False).encode("utf-8"))
    save_checkpoint(path, model, model.config, metadata=metadata)
    return _trained("teacher", model.to(device).eval(), vocab, recipe, path, metadata, True, fit.history)


def _student_loss(recipe: NerRecipe, student: nn.Module, teacher: TokenTagger) -> tuple[Any, list[nn.Parameter]]:
    """The loss function of ``recipe.method`` and any trainable parameters it brings (projections)."""
    if recipe.method == "labels":
        return tagger_loss, []
    if recipe.method in ("logits", "teacher_init"):
        return Distiller(teacher, temperature=recipe.temperature, alpha=recipe.alpha), []
    if recipe.method == "cascade":
        return cascade_loss, []
    layer_map = LayerMap.uniform(student.config.num_layers, teacher.config.num_layers)
    distiller = IntermediateDistiller(
        teacher,
        student,
        layer_map,
        temperature=recipe.temperature,
        alpha=recipe.alpha,
        hidden_weight=recipe.hidden_weight,
        attention_weight=recipe.attention_weight,
    )
    return distiller, list(distiller.parameters())


def ner_student(
    context: CourseContext,
    role: str,
    teacher: TrainedTagger,
    *,
    recipe: NerRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> TrainedTagger:
    """Load the cached student of ``role`` taught by ``teacher``, or train and cache it.

    The student reads the teacher's vocabulary and trains on the teacher's sentences for the
    teacher's number of epochs; ``recipe`` replaces the course recipe of ``role``.
    """
    mode, device = context_mode_and_device(context)
    if role not in NER_ROLES or role == "teacher":
        raise ValueError(f"role must be one of the students {NER_ROLES[1:]}, got {role!r}")
    if not isinstance(teacher, TrainedTagger) or teacher.role != "teacher":
        raise TypeError("teacher must be the TrainedTagger returned by ner_teacher()")
    if not teacher.path.is_file():
        raise FileNotFoundError(f"the teacher's checkpoint {teacher.path} is gone; call ner_teacher() again")
    _check_inputs(recipe, corpus)
    recipe = recipe or ner_recipe(role, mode)
    if recipe.train_sentences != teacher.recipe.train_sentences:
        raise ValueError(
            f"the student must train on the teacher's sentences: train_sentences={recipe.train_sentences} "
            f"but the teacher used {teacher.recipe.train_sentences}"
        )
    teacher_model = teacher.model.to(device).eval()
    teacher_sha = _sha256(teacher.path)
    path = ner_model_path(role, mode)
    cached = _load(path, recipe, teacher.vocab, teacher_model, device, teacher_sha)
    if cached is not None:
        model, metadata = cached
        return _trained(role, model, teacher.vocab, recipe, path, metadata, trained=False)

    corpus = corpus or load_msra()
    model = _build(recipe, len(teacher.vocab), teacher_model)
    extra: dict[str, Any] = {}
    if recipe.method == "teacher_init":
        report = init_from_teacher(model, teacher_model, LayerMap.uniform(model.config.num_layers,
                                                                            teacher_model.config.num_layers))
        extra = {"copied_tensors": len(report.copied), "skipped_tensors": len(report.skipped)}
    loss_fn, extra_parameters = _student_loss(recipe, model, teacher_model)
    parameters = model.trainable_parameters() if isinstance(model, CascadeTagger) else None
    fit = fit_tagger(model, recipe, teacher_sentences(corpus, recipe), corpus.dev, teacher.vocab,
                     loss_fn=loss_fn, parameters=parameters, extra_parameters=extra_parameters, device=device,
                     threads=NER_CPU_THREADS, progress=progress, desc=ROLE_TITLES[role])
    metadata = {"recipe": recipe.to_dict(), "dev_f1": fit.dev_f1, "dev_curve": fit.dev_curve,
                "train_seconds": fit.seconds, "teacher_sha256": teacher_sha, "extra": extra}
    save_checkpoint(path, model, model.config, metadata=metadata)
    return _trained(role, model.to(device).eval(), teacher.vocab, recipe, path, metadata, True, fit.history)
