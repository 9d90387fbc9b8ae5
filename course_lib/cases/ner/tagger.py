"""One recipe and one training path for every MSRA tagger of the course: demo taggers, the teacher, its students.

:class:`TaggerRecipe` is the shape of a character-level Transformer tagger, the sentences it
learns from and, for a student, how it learns from its teacher. :func:`fit_tagger` trains any
model that tags ``collate_ner`` batches — a :class:`~course_lib.nn.transformer.TokenTagger`, a
BiLSTM, a cascade, a student under a distillation loss — with the recipe's budget, keeping the
epoch with the best dev F1. Sentences of similar length share a batch (``bucketed_ner_loader``),
so little time goes into padding. The caller owns the vocabulary: students read text exactly as
their teacher does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib import checks
from course_lib.data import (
    LABELS,
    CharVocab,
    NerCorpus,
    Sentence,
    TransferBatches,
    bucketed_ner_loader,
    load_msra,
    ner_loader,
)
from course_lib.data.msra import MSRA_SOURCE
from course_lib.kd.cascade import CascadeTagger
from course_lib.kd.methods import DistillRecipe
from course_lib.nn.positional import POSITIONAL_KINDS
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from course_lib.nn.transformer import TokenTagger, TransformerShape
from course_lib.train.fit import Trained, fit
from course_lib.train.loop import LossFn
from course_lib.train.tagging import evaluate_tagger, tagger_loss

TAGGER_KEY = {"msra": MSRA_SOURCE.sha256, "dev_scoring": "seqeval conlleval mode, Viterbi BIO decoding"}
"""What a cached tagger is keyed by besides its recipe: the sha256 of the MSRA file it was trained on, and
how its dev F1 — which picks the epoch kept — is scored."""


@dataclass(frozen=True)
class TaggerRecipe(DistillRecipe, TransformerShape):
    """A tagger's shape, data and optimisation, and (for a student) how it learns (chapter 02).

    ``architecture`` is ``"transformer"`` (a :class:`~course_lib.nn.transformer.TokenTagger` of the
    shape fields) or ``"bilstm"`` (a :class:`~course_lib.nn.rnn.BiLSTMTagger` with ``d_model``-wide
    embeddings, ``lstm_hidden`` units per direction and ``num_layers`` layers; the bigram fields
    apply to both). ``train_sentences`` counts sentences from the start of the MSRA training split
    (``None``: all of them); dev F1 is always measured on the whole dev split. ``vocab_min_freq``
    is how often a character must occur in the training sentences to get its own id.
    """

    epochs: int = 1
    lr: float = 5e-3
    warmup_fraction: float = 0.1
    dropout: float = 0.0
    train_sentences: int | None = 24_000
    vocab_min_freq: int = 1
    architecture: str = "transformer"
    lstm_hidden: int = 128

    def check(self) -> None:
        super().check()
        checks.one_of("positional", self.positional, POSITIONAL_KINDS)
        checks.one_of("architecture", self.architecture, ARCHITECTURES)
        checks.optional_positive_int("train_sentences", self.train_sentences)
        checks.positive_int("vocab_min_freq", self.vocab_min_freq)
        checks.positive_int("lstm_hidden", self.lstm_hidden)
        self.model_config(2)


ARCHITECTURES = ("transformer", "bilstm")
DROPOUT = {"fast": 0.0, "full": 0.1}
"""Dropout of chapter 07's taggers by mode. Fast mode trains for two epochs, too few for dropout to
pay: without it the students train faster and score no lower at that budget (drawing dropout's
random masks is a large share of a small model's training step on a CPU)."""


def build_tagger(recipe: TaggerRecipe, vocab_size: int) -> nn.Module:
    """A freshly initialised tagger of ``recipe``'s architecture over ``vocab_size`` characters, seeded (chapter 02)."""
    torch.manual_seed(recipe.seed)
    if recipe.architecture == "bilstm":
        config = BiLSTMConfig(vocab_size=vocab_size, d_embed=recipe.d_model, hidden=recipe.lstm_hidden,
                              num_layers=recipe.num_layers, dropout=recipe.dropout,
                              bigram_buckets=recipe.bigram_buckets, bigram_dim=recipe.bigram_dim)
        return BiLSTMTagger(config, num_labels=len(LABELS))
    return TokenTagger(recipe.model_config(vocab_size), num_labels=len(LABELS))


def build_student(recipe: TaggerRecipe, vocab_size: int, teacher: nn.Module | None = None) -> nn.Module:
    """A freshly initialised, seeded model for ``recipe`` (chapter 07).

    A tagger of the recipe's architecture, or for the ``cascade`` method a head on ``teacher``.
    """
    if recipe.method != "cascade":
        return build_tagger(recipe, vocab_size)
    if teacher is None:
        raise ValueError("a cascade is built on its teacher: pass the trained teacher")
    torch.manual_seed(recipe.seed)
    return CascadeTagger(teacher, d_model=recipe.d_model, num_heads=recipe.num_heads, num_layers=recipe.num_layers,
                         d_ff=recipe.d_ff, dropout=recipe.dropout)


def training_sentences(corpus: NerCorpus, recipe: TaggerRecipe) -> list[Sentence]:
    """The training sentences of ``recipe``: the first ``train_sentences`` of the train split (None: all) (chapter 07)."""
    if recipe.train_sentences is None:
        return list(corpus.train)
    if recipe.train_sentences > len(corpus.train):
        raise ValueError(f"recipe.train_sentences={recipe.train_sentences} exceeds the {len(corpus.train):,} training "
                         "sentences; use a smaller number or None for all of them")
    return list(corpus.train[: recipe.train_sentences])


def lazy_msra(corpus: NerCorpus | None) -> Callable[[], NerCorpus]:
    """A function that returns ``corpus``, or loads MSRA the first time it is called (chapter 02).

    A model found in the cache needs no corpus, so it is loaded only when a model must be trained.
    """
    if corpus is not None and not isinstance(corpus, NerCorpus):
        raise TypeError(f"corpus must be a NerCorpus (from load_msra()) or None, got {type(corpus).__name__}")
    return functools.cache(lambda: corpus or load_msra())


def tagger_vocab(corpus: NerCorpus, recipe: TaggerRecipe) -> CharVocab:
    """The character vocabulary of ``recipe``'s training sentences (chapter 02)."""
    return CharVocab.build(training_sentences(corpus, recipe), min_freq=recipe.vocab_min_freq)


def unlabelled_sentences(texts: Sequence[str]) -> list[Sentence]:
    """``texts`` as sentences for a loader of characters only: their tags are placeholders, never labels (chapter 07).

    :func:`fit_tagger` drops the labels of every batch built from them.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of sentences (str), not one str")
    return [Sentence(list(text), ["O"] * len(text)) for text in texts]


def scoring_loader(sentences: Sequence[Sentence], vocab: CharVocab, max_len: int | None = None) -> DataLoader:
    """Batches of 128 sentences in order of length, for scoring: entity F1 does not depend on the order (chapter 04).

    Sentences of similar length share a batch, so almost no attention is spent on padding.
    """
    return ner_loader(sorted(sentences, key=len), vocab, batch_size=128, shuffle=False, max_len=max_len)


def fit_tagger(
    model: nn.Module,
    recipe: TaggerRecipe,
    train_sentences: Sequence[Sentence],
    dev_sentences: Sequence[Sentence],
    vocab: CharVocab,
    *,
    loss_fn: LossFn = tagger_loss,
    param_groups: list[dict[str, Any]] | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
    unlabelled: Sequence[str] = (),
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "tagger",
) -> Trained:
    """Train ``model`` on ``train_sentences`` with ``recipe``; keep the epoch with the best dev F1 (chapter 02).

    ``metrics`` holds ``dev_f1`` (the best) and ``dev_curve`` (after each epoch). ``param_groups``
    and ``extra_parameters`` go to the optimiser (:func:`course_lib.train.fit.build_optimizer`).
    The caller seeds ``torch`` before building the model; the batches are shuffled with ``recipe.seed``.
    ``unlabelled`` texts (a transfer set, chapter 07) come as batches of their own, without labels,
    between the labelled ones (:class:`~course_lib.data.TransferBatches`); their dataset indices
    follow the training sentences'.
    """
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab must be a CharVocab, got {type(vocab).__name__}")
    if not train_sentences or not dev_sentences:
        raise ValueError(f"need training and dev sentences, got {len(train_sentences)} and {len(dev_sentences)}")
    train_loader = bucketed_ner_loader(train_sentences, vocab, recipe.batch_size, seed=recipe.seed,
                                       max_len=recipe.max_len)
    if unlabelled:
        train_loader = TransferBatches(train_loader, bucketed_ner_loader(unlabelled_sentences(unlabelled), vocab,
                                                                         recipe.batch_size, seed=recipe.seed,
                                                                         max_len=recipe.max_len),
                                       index_offset=len(train_sentences), seed=recipe.seed)
    dev_loader = scoring_loader(dev_sentences, vocab, recipe.max_len)
    trained = fit(model, train_loader, recipe, loss_fn=loss_fn, dev_loader=dev_loader, evaluate_fn=evaluate_tagger,
                  monitor="f1", param_groups=param_groups, extra_parameters=extra_parameters, device=device,
                  progress=progress, desc=desc)
    trained.metrics = {"dev_f1": float(trained.history.best_score),
                       "dev_curve": [float(record.dev["f1"]) for record in trained.history.epochs]}
    trained.vocab = vocab
    return trained
