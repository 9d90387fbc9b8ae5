"""The course's small trained model: a Transformer tagger for MSRA NER whose attention chapters explore.

Chapter 02 looks inside its attention heads; chapter 03 trains the same recipe with each kind of
positional encoding to measure what position information is worth. Training takes about half a
minute in fast mode on a laptop CPU, so the result is cached: the checkpoint
(``course_lib.checkpoint``) and the character vocabulary go to
``<cache_dir()>/models/demo_tagger_<mode>[_<positional>].{safetensors,vocab.json}``, and later
calls load them in about a second. A cached model is used only if it was trained with exactly
the requested :class:`DemoRecipe`; otherwise it is trained again and the cache is replaced.

Fast mode trains one epoch over 24,000 training sentences with length bucketing (sentences of
similar length share a batch, so little time goes into padding); full mode trains a wider model
on the whole training set for up to 10 epochs with early stopping on dev F1. On a CPU the
training runs on one thread: the matrices of a 64-wide model are too small for intra-op
parallelism to pay, and on a machine whose cores are busy with other work, extra PyTorch threads
wait on each other and can make training many times slower.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from course_lib.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from course_lib.data import LABELS, CharVocab, NerCorpus, cache_dir, load_msra
from course_lib.files import write_bytes_atomic
from course_lib.notebook import MODES, context_mode_and_device
from course_lib.positional import POSITIONAL_KINDS
from course_lib.tagger_fit import fit_tagger
from course_lib.training import TrainingHistory
from course_lib.transformer import TokenTagger, TransformerConfig

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

__all__ = [
    "DemoRecipe",
    "DemoTagger",
    "demo_recipe",
    "demo_tagger",
    "demo_tagger_path",
]


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that determines the demo tagger: model shape, data size and optimisation.

    ``train_sentences`` counts sentences from the start of the MSRA training split (``None``:
    all of them). The dev F1 is always measured on the whole dev split.
    """

    positional: str = "sinusoidal"
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.0
    max_len: int = 128
    train_sentences: int | None = 24_000
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-3
    warmup_fraction: float = 0.1
    patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {self.positional!r}")
        for name in ("d_model", "num_heads", "num_layers", "d_ff", "max_len", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.train_sentences is not None and (
            isinstance(self.train_sentences, bool)
            or not isinstance(self.train_sentences, int)
            or self.train_sentences < 1
        ):
            raise ValueError(
                f"train_sentences must be a positive int or None (all), got {self.train_sentences!r}"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain JSON-serialisable dict (stored in the checkpoint)."""
        return dataclasses.asdict(self)

    def model_config(self, vocab_size: int) -> TransformerConfig:
        """The :class:`TransformerConfig` of a tagger built from this recipe."""
        return TransformerConfig(
            vocab_size=vocab_size,
            d_model=self.d_model,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            d_ff=self.d_ff,
            max_len=self.max_len,
            dropout=self.dropout,
            positional=self.positional,
        )


def demo_recipe(mode: str, positional: str = "sinusoidal") -> DemoRecipe:
    """The course's recipe for ``mode`` ("fast" or "full") with the given positional encoding."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "fast":
        return DemoRecipe(positional=positional)
    return DemoRecipe(
        positional=positional,
        d_model=128,
        d_ff=512,
        dropout=0.1,
        train_sentences=None,
        epochs=10,
        batch_size=32,
        lr=1e-3,
        patience=3,
    )


@dataclass
class DemoTagger:
    """A trained demo tagger with what it needs and what was measured.

    ``model`` is in eval mode on the context's device; ``vocab`` encodes text for it;
    ``dev_f1`` is its entity-level F1 on the MSRA dev split; ``trained`` says whether this call
    trained it (False: loaded from ``path``); ``train_seconds`` is the wall time its training
    took; ``history`` is the training history when it was trained by this call.
    """

    model: TokenTagger
    vocab: CharVocab
    dev_f1: float
    recipe: DemoRecipe
    path: Path
    trained: bool
    train_seconds: float
    history: TrainingHistory | None = None


def demo_tagger_path(mode: str, positional: str = "sinusoidal") -> Path:
    """Where the demo tagger of ``mode`` and ``positional`` is cached (the ``.safetensors`` file)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if positional not in POSITIONAL_KINDS:
        raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {positional!r}")
    suffix = "" if positional == "sinusoidal" else f"_{positional}"
    return cache_dir() / "models" / f"demo_tagger_{mode}{suffix}.safetensors"


def _vocab_path(path: Path) -> Path:
    return path.with_suffix(".vocab.json")


def _load_cached(path: Path, recipe: DemoRecipe, device: torch.device) -> DemoTagger | None:
    """The cached tagger at ``path`` if it exists and was trained with ``recipe``, else None."""
    vocab_file = _vocab_path(path)
    if not (path.is_file() and vocab_file.is_file()):
        return None
    config = TransformerConfig.from_dict(read_checkpoint_config(path))
    model = TokenTagger(config, num_labels=len(LABELS))
    info = load_checkpoint(path, model)
    metadata = info["metadata"]
    if metadata.get("recipe") != recipe.to_dict():
        return None
    vocab = CharVocab(json.loads(vocab_file.read_text(encoding="utf-8"))["tokens"])
    if len(vocab) != config.vocab_size:
        return None
    return DemoTagger(
        model=model.to(device).eval(),
        vocab=vocab,
        dev_f1=float(metadata["dev_f1"]),
        recipe=recipe,
        path=path,
        trained=False,
        train_seconds=float(metadata["train_seconds"]),
    )


def _train(
    corpus: NerCorpus, recipe: DemoRecipe, device: torch.device, progress: bool
) -> tuple[TokenTagger, CharVocab, TrainingHistory, float, float]:
    """Train a tagger with ``recipe``; return model, vocab, history, dev F1 and wall seconds."""
    sentences = corpus.train if recipe.train_sentences is None else corpus.train[: recipe.train_sentences]
    vocab = CharVocab.build(sentences)
    torch.manual_seed(recipe.seed)
    model = TokenTagger(recipe.model_config(len(vocab)), num_labels=len(LABELS))
    fit = fit_tagger(
        model,
        recipe,
        sentences,
        corpus.dev,
        vocab,
        parameters=model.parameters(),
        device=device,
        progress=progress,
        desc=f"demo tagger ({recipe.positional})",
    )
    return model, vocab, fit.history, fit.dev_f1, fit.seconds


def demo_tagger(
    context: CourseContext,
    *,
    positional: str | None = None,
    recipe: DemoRecipe | None = None,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> DemoTagger:
    """Load the cached demo tagger for ``context.mode``, or train and cache it first.

    ``positional`` picks the positional encoding ("sinusoidal" by default, "learned" or
    "none") of the course recipe :func:`demo_recipe`; ``recipe`` replaces that recipe entirely
    (its own ``positional`` then applies). ``corpus`` is the MSRA corpus when already loaded (it is
    loaded otherwise). The returned model is in eval mode on ``context.device``.
    """
    mode, device = context_mode_and_device(context)
    if recipe is None:
        recipe = demo_recipe(mode, positional or "sinusoidal")
    elif not isinstance(recipe, DemoRecipe):
        raise TypeError(f"recipe must be a DemoRecipe or None, got {type(recipe).__name__}")
    elif positional is not None and positional != recipe.positional:
        raise ValueError(
            f"positional={positional!r} contradicts recipe.positional={recipe.positional!r}; "
            "pass only the recipe"
        )
    if corpus is not None and not isinstance(corpus, NerCorpus):
        raise TypeError(f"corpus must be a NerCorpus (from load_msra()) or None, got {type(corpus).__name__}")

    path = demo_tagger_path(mode, recipe.positional)
    cached = _load_cached(path, recipe, device)
    if cached is not None:
        return cached

    model, vocab, history, dev_f1, seconds = _train(corpus or load_msra(), recipe, device, progress)
    payload = json.dumps({"tokens": vocab.tokens()}, ensure_ascii=False).encode("utf-8")
    write_bytes_atomic(_vocab_path(path), payload)
    save_checkpoint(
        path,
        model,
        model.config,
        metadata={
            "recipe": recipe.to_dict(),
            "dev_f1": dev_f1,
            "train_seconds": seconds,
            "best_epoch": history.best_epoch,
        },
    )
    return DemoTagger(
        model=model.to(device).eval(),
        vocab=vocab,
        dev_f1=dev_f1,
        recipe=recipe,
        path=path,
        trained=True,
        train_seconds=seconds,
        history=history,
    )
