"""One training path for the course's MSRA taggers: the demo tagger, chapter 07's teacher and its students.

:func:`fit_tagger` trains any model that tags ``collate_ner`` batches — a
:class:`~course_lib.transformer.TokenTagger`, a cascade, a student under a distillation loss —
with the recipe's batch size, learning rate, warm-up, epochs and early stopping on dev F1. The
caller owns the vocabulary (students must read text exactly as their teacher does) and the
loss; extra trainable parameters (e.g. the projections of a hidden-state loss) join the
optimiser. Sentences of similar length share a batch (``bucketed_ner_loader``), so little time
goes into padding.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.data import CharVocab, Sentence, bucketed_ner_loader, ner_loader
from course_lib.ner import evaluate_tagger, tagger_loss
from course_lib.training import TrainingHistory, fit_adamw

__all__ = ["TaggerFit", "fit_tagger"]


@dataclass
class TaggerFit:
    """What :func:`fit_tagger` measured: the history, the best dev F1, its per-epoch curve and the wall seconds."""

    history: TrainingHistory
    dev_f1: float
    dev_curve: list[float]
    seconds: float


def fit_tagger(
    model: nn.Module,
    recipe: Any,
    train_sentences: Sequence[Sentence],
    dev_sentences: Sequence[Sentence],
    vocab: CharVocab,
    *,
    loss_fn: Callable[[nn.Module, dict[str, Tensor]], Tensor] = tagger_loss,
    parameters: Iterable[nn.Parameter] | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
    device: torch.device | str = "cpu",
    threads: int = 1,
    progress: bool = True,
    desc: str = "tagger",
) -> TaggerFit:
    """Train ``model`` on ``train_sentences`` with ``recipe``; keep the epoch with the best dev F1.

    ``recipe`` supplies ``batch_size``, ``lr``, ``epochs``, ``warmup_fraction``, ``patience``,
    ``seed`` and ``max_len`` (a :class:`course_lib.pretrained.DemoRecipe` or a subclass).
    ``parameters`` are the model's parameters to optimise (default: all of them, with no weight
    decay on biases and norms); ``extra_parameters`` are optimised too, without weight decay
    (:func:`course_lib.training.fit_adamw`). On a CPU training runs on ``threads`` threads. The caller seeds ``torch`` before building
    the model; the batches are shuffled with ``recipe.seed``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab must be a CharVocab, got {type(vocab).__name__}")
    if not train_sentences or not dev_sentences:
        raise ValueError(
            f"need training and dev sentences, got {len(train_sentences)} and {len(dev_sentences)}"
        )
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    train_loader = bucketed_ner_loader(
        train_sentences, vocab, recipe.batch_size, seed=recipe.seed, max_len=recipe.max_len
    )
    dev_loader = ner_loader(dev_sentences, vocab, batch_size=128, shuffle=False, max_len=recipe.max_len)
    fit = fit_adamw(
        model,
        train_loader,
        loss_fn=loss_fn,
        lr=recipe.lr,
        epochs=recipe.epochs,
        warmup_fraction=recipe.warmup_fraction,
        dev_loader=dev_loader,
        evaluate_fn=evaluate_tagger,
        monitor="f1",
        patience=recipe.patience,
        parameters=parameters,
        extra_parameters=extra_parameters,
        device=device,
        threads=threads,
        progress=progress,
        desc=desc,
    )
    curve = [float(record.dev["f1"]) for record in fit.history.epochs]
    return TaggerFit(history=fit.history, dev_f1=float(fit.history.best_score), dev_curve=curve, seconds=fit.seconds)
