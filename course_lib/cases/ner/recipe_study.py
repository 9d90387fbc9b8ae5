"""What makes an MSRA tagger strong, measured one change at a time (chapter 07).

Chapter 04's first tagger reached a modest F1. Before building a teacher on it, this study
changes one thing at a time under one budget — the same sentences, epochs, batch size, warm-up
and learning rate for every variant — and records what each change is worth:

- **positions**: sinusoidal absolute positions against relative ones (a learned score per
  head and distance, :class:`~course_lib.nn.positional.RelativePositionBias`), the change
  TENER (Yan et al. 2019) argues for: a tagger needs to know "two characters to the left",
  not "position 17";
- **bigrams**: hashed character-bigram features (:mod:`course_lib.nn.bigrams`);
- **architecture**: a BiLSTM of about the same size, with and without bigrams — its built-in
  locality is what the Transformer has to learn;
- **decoding**: every variant is scored with Viterbi decoding under the BIO constraint and with
  plain argmax (:mod:`course_lib.train.decoding`);
- **schedule**: the dev F1 after every epoch shows how much a longer schedule adds.

Two facts need no training: the share of test characters the vocabulary reads as ``<unk>``,
and how the packaged corpus cut its sentences (:func:`~course_lib.data.msra.split_profile`).
Each variant is cached like every other model of the course.

:func:`architecture_study` then asks chapter 10's question fairly: a Transformer (with either
kind of positions) against a BiLSTM of about its size, each at its own learning rate (the best
dev F1 of a small grid), over several seeds, with the seed-to-seed spread deciding the verdict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import statistics
from typing import Any

from course_lib import checks
from course_lib.cases.common import seed_summary, seed_verdict
from course_lib.cases.ner.tagger import (
    TAGGER_KEY,
    TaggerRecipe,
    build_tagger,
    fit_tagger,
    lazy_msra,
    scoring_loader,
    tagger_vocab,
    training_sentences,
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import CharVocab, NerCorpus
from course_lib.data.msra import split_profile
from course_lib.nn.transformer import count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained
from course_lib.train.tagging import evaluate_tagger

BIGRAM_BUCKETS = 1 << 15
# name: (title, what the variant changes in the base recipe)
STUDY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sinusoidal": ("Transformer, sinusoidal positions (chapter 04)", {}),
    "relative": ("Transformer, relative positions", {"positional": "relative"}),
    "sinusoidal_bigrams": ("Transformer, sinusoidal positions + bigrams", {"bigram_buckets": BIGRAM_BUCKETS}),
    "relative_bigrams": ("Transformer, relative positions + bigrams",
                         {"positional": "relative", "bigram_buckets": BIGRAM_BUCKETS}),
    "bilstm": ("BiLSTM", {"architecture": "bilstm", "num_layers": 1}),
    "bilstm_bigrams": ("BiLSTM + bigrams", {"architecture": "bilstm", "num_layers": 1,
                                            "bigram_buckets": BIGRAM_BUCKETS}),
}
_BASE = {
    "fast": dict(d_model=32, num_heads=4, num_layers=2, d_ff=64, lstm_hidden=32, train_sentences=1_000, epochs=1,
                 bigram_dim=16),
    "full": dict(d_model=128, num_heads=4, num_layers=2, d_ff=512, lstm_hidden=128, train_sentences=None, epochs=3,
                 bigram_dim=32),
}


def study_recipe(variant: str, mode: str) -> TaggerRecipe:
    """The recipe of ``variant`` (one of :data:`STUDY_VARIANTS`) in ``mode``: the shared base plus its one change (chapter 07)."""
    if variant not in STUDY_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(STUDY_VARIANTS)}, got {variant!r}")
    base = dict(_BASE[check_mode(mode)], lr=2e-3, warmup_fraction=0.05, dropout=0.1, batch_size=64, vocab_min_freq=2,
                threads=2)
    return TaggerRecipe(**{**base, **STUDY_VARIANTS[variant][1]})


@dataclass
class StudyRow:
    """One variant: its size, dev F1 after each epoch, test F1 with both decoders, training seconds (chapter 07)."""

    variant: str
    title: str
    parameters: int
    dev_curve: list[float]
    test_f1: float
    test_f1_argmax: float
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain, rounded dict."""
        row = dataclasses.asdict(self)
        row.update(dev_curve=[round(f, 4) for f in self.dev_curve], test_f1=round(self.test_f1, 4),
                   test_f1_argmax=round(self.test_f1_argmax, 4), train_seconds=round(self.train_seconds, 1))
        return row


def unknown_rate(corpus: NerCorpus, vocab: CharVocab) -> float:
    """The share of test characters ``vocab`` reads as ``<unk>`` (chapter 07)."""
    ids = [i for sentence in corpus.test for i in vocab.encode(sentence.chars)]
    return sum(i == vocab.unk_id for i in ids) / len(ids)


def _variant(context: CourseContext, variant: str, msra: Any, progress: bool, lr: float | None = None,
             seed: int = 0) -> Trained:
    """The cached model of ``variant`` (at ``lr`` and ``seed`` when given), or train and cache it."""
    mode, device = context_mode_and_device(context)
    base = study_recipe(variant, mode)
    recipe = dataclasses.replace(base, lr=base.lr if lr is None else lr, seed=seed)
    name = f"ner_study_{variant}" if (recipe.lr, recipe.seed) == (base.lr, 0) else \
        f"ner_study_{variant}_lr{recipe.lr:.0e}_seed{seed}"

    def train(model: Any, vocab: CharVocab) -> Trained:
        return fit_tagger(model, recipe, training_sentences(msra(), recipe), msra().dev, vocab, device=device,
                          progress=progress, desc=variant)

    return load_or_train(model_path(name, mode), recipe,
                         build=lambda vocab: build_tagger(recipe, len(vocab)), train=train,
                         vocab=lambda: tagger_vocab(msra(), recipe), depends_on=TAGGER_KEY, device=device)


def recipe_study(
    context: CourseContext,
    *,
    variants: tuple[str, ...] = tuple(STUDY_VARIANTS),
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or load) every variant of ``variants`` and measure it; add the facts that need no training (chapter 07).

    Returns ``{"rows": {variant: row dict}, "unknown_rate": …, "split_profile": {"train": …, "test": …}}``.
    """
    unknown = sorted(set(variants) - set(STUDY_VARIANTS))
    if unknown or not variants:
        raise ValueError(f"variants must be a non-empty selection of {tuple(STUDY_VARIANTS)}, got {variants!r}")
    msra = lazy_msra(corpus)
    rows, vocab = {}, None
    for variant in variants:
        trained = _variant(context, variant, msra, progress)
        vocab = trained.vocab
        test = scoring_loader(msra().test, vocab, trained.recipe.max_len)
        scores = evaluate_tagger(trained.model, test)
        rows[variant] = StudyRow(variant=variant, title=STUDY_VARIANTS[variant][0],
                                 parameters=count_parameters(trained.model), dev_curve=trained.metrics["dev_curve"],
                                 test_f1=scores["f1"], test_f1_argmax=scores["f1_argmax"],
                                 train_seconds=trained.seconds).to_dict()
    return {"rows": rows, "unknown_rate": round(unknown_rate(msra(), vocab), 5),
            "split_profile": {split: split_profile(getattr(msra(), split)) for split in ("train", "test")}}


ARCHITECTURE_VARIANTS: tuple[str, ...] = ("sinusoidal", "relative", "bilstm")
LEARNING_RATES: tuple[float, ...] = (1e-3, 2e-3, 4e-3)
_PAIRS = (("bilstm", "sinusoidal"), ("relative", "sinusoidal"), ("bilstm", "relative"))


def architecture_study(
    context: CourseContext,
    *,
    variants: tuple[str, ...] = ARCHITECTURE_VARIANTS,
    learning_rates: tuple[float, ...] = LEARNING_RATES,
    seeds: tuple[int, ...] = (0, 1, 2),
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Each variant at its own learning rate, over ``seeds``: test F1 per seed, mean ± sd and verdicts (chapter 10).

    Every variant keeps the study's budget (sentences, epochs, batch, warm-up); only the learning
    rate is its own: the one of ``learning_rates`` with the best dev F1 at the first seed. The
    other seeds then train at that rate. The verdicts compare the BiLSTM with the Transformer and
    relative with sinusoidal positions by :func:`~course_lib.cases.common.seed_verdict` on test F1.
    """
    unknown = sorted(set(variants) - set(STUDY_VARIANTS))
    if unknown or not variants:
        raise ValueError(f"variants must be a non-empty selection of {tuple(STUDY_VARIANTS)}, got {variants!r}")
    if not learning_rates:
        raise ValueError("learning_rates must name at least one learning rate")
    for lr in learning_rates:
        checks.positive_number("learning rate", lr)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    msra = lazy_msra(corpus)
    rows = {}
    for variant in variants:
        tuning = {lr: _variant(context, variant, msra, progress, lr=lr, seed=seeds[0]) for lr in learning_rates}
        best = max(learning_rates, key=lambda lr: tuning[lr].metrics["dev_f1"])
        runs = [tuning[best], *(_variant(context, variant, msra, progress, lr=best, seed=seed) for seed in seeds[1:])]
        scores = [evaluate_tagger(run.model, scoring_loader(msra().test, run.vocab, run.recipe.max_len))
                  for run in runs]
        rows[variant] = {"title": STUDY_VARIANTS[variant][0], "parameters": count_parameters(runs[0].model),
                         "dev_f1_by_lr": {f"{lr:g}": round(tuning[lr].metrics["dev_f1"], 4)
                                          for lr in learning_rates},
                         "lr": best, "test_f1": seed_summary([score["f1"] for score in scores]),
                         "test_f1_argmax": seed_summary([score["f1_argmax"] for score in scores]),
                         "train_seconds": round(statistics.mean(run.seconds for run in runs), 1)}
    verdicts = {f"{first}_vs_{second}": seed_verdict(rows[first]["test_f1"]["per_seed"],
                                                     rows[second]["test_f1"]["per_seed"],
                                                     names=(rows[first]["title"], rows[second]["title"]),
                                                     unit="F1 points", scale=100)
                for first, second in _PAIRS if first in rows and second in rows}
    return {"rows": rows, "verdicts": verdicts, "seeds": list(seeds), "learning_rates": list(learning_rates)}
