"""Chapter 10's first question, measured: a Transformer tagger against a BiLSTM tagger on MSRA NER.

The Transformer is the course's demo tagger (:func:`course_lib.cases.ner.demo.demo_tagger`, trained
and cached by chapter 02). The BiLSTM (:class:`course_lib.nn.rnn.BiLSTMTagger`) reads the same
characters through the same vocabulary and is trained with the same recipe — the same
sentences, epochs, batch size, learning rate, warm-up and CPU threads — with its width chosen so
that both have about the same number of parameters. Both are then measured the same way: seqeval
F1 on the MSRA test split (overall and per entity type), and the latency of one sentence of
8, 32 and 128 characters at batch 1 on one CPU thread, where the difference between the two
designs shows: a BiLSTM takes one step per character, a Transformer layer reads every position
at once.

The BiLSTM is cached in ``<cache_dir()>/models/bilstm_tagger_<mode>.safetensors`` and reused only
if it was trained with the same recipe, shape and vocabulary.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from course_lib.cases.ner.demo import demo_tagger
from course_lib.cases.ner.tagger import (
    TAGGER_KEY,
    TaggerRecipe,
    fit_tagger,
    lazy_msra,
    scoring_loader,
    training_sentences,
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import LABELS, CharVocab, NerCorpus, load_msra
from course_lib.files import sha256_text
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from course_lib.nn.transformer import count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained
from course_lib.train.latency import interleaved_latency
from course_lib.train.tagging import evaluate_tagger, per_type_report

LATENCY_LENGTHS = (8, 32, 128)
# Hidden units per direction, chosen so that the BiLSTM has about the parameters of the demo
# tagger of the same mode (the embedding width is the Transformer's d_model).
_HIDDEN = {"fast": 80, "full": 160}


def _bilstm_config(mode: str, recipe: TaggerRecipe, vocab_size: int) -> BiLSTMConfig:
    """The BiLSTM of ``mode``: embeddings as wide as the Transformer's, one bidirectional layer (chapter 10)."""
    return BiLSTMConfig(vocab_size=vocab_size, d_embed=recipe.d_model, hidden=_HIDDEN[check_mode(mode)], num_layers=1,
                        dropout=recipe.dropout)


def _bilstm_tagger(
    context: CourseContext,
    recipe: TaggerRecipe,
    vocab: CharVocab,
    *,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached BiLSTM of ``context.mode`` trained with ``recipe`` over ``vocab``, or train and cache it (chapter 10)."""
    mode, device = context_mode_and_device(context)
    config = _bilstm_config(mode, recipe, len(vocab))

    def build(_: CharVocab) -> BiLSTMTagger:
        torch.manual_seed(recipe.seed)
        return BiLSTMTagger(config, num_labels=len(LABELS))

    msra = lazy_msra(corpus)

    def train(model: BiLSTMTagger, _: CharVocab) -> Trained:
        return fit_tagger(model, recipe, training_sentences(msra(), recipe), msra().dev, vocab, device=device,
                          progress=progress, desc="BiLSTM")

    return load_or_train(model_path("bilstm_tagger", mode), recipe, build=build, train=train, vocab=lambda: vocab,
                         depends_on={**TAGGER_KEY, "vocab": sha256_text("\n".join(vocab.tokens())),
                                     "shape": sha256_text(repr(config))}, device=device)


@dataclass
class _ArchitectureRow:
    """One architecture of the comparison, measured on the test split and timed per sentence length."""

    name: str
    parameters: int
    test_f1: float
    per_type_f1: dict[str, float]
    dev_f1: float
    train_seconds: float
    latency_ms: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict (rounded for a results file)."""
        return {"name": self.name, "parameters": self.parameters, "test_f1": round(self.test_f1, 4),
                "per_type_f1": {k: round(v, 4) for k, v in self.per_type_f1.items()},
                "dev_f1": round(self.dev_f1, 4), "train_seconds": round(self.train_seconds, 1),
                "latency_ms": {str(length): round(ms, 4) for length, ms in self.latency_ms.items()}}


@dataclass
class _RnnVsTransformer:
    """Both rows, the shared recipe, and the models themselves (not serialised)."""

    mode: str
    recipe: TaggerRecipe
    rows: dict[str, _ArchitectureRow]
    models: dict[str, nn.Module] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict."""
        return {"mode": self.mode, "recipe": self.recipe.to_dict(),
                "rows": {name: row.to_dict() for name, row in self.rows.items()}}


def _sentence_of_length(corpus: NerCorpus, vocab: CharVocab, length: int) -> torch.Tensor:
    """Ids (1, length) of test characters, sentences joined end to end until ``length`` characters."""
    chars: list[str] = []
    for sentence in corpus.test:
        chars.extend(sentence.chars)
        if len(chars) >= length:
            break
    return torch.tensor([vocab.encode(chars[:length])], dtype=torch.long)


def compare_rnn_transformer(
    context: CourseContext,
    *,
    corpus: NerCorpus | None = None,
    recipe: TaggerRecipe | None = None,
    lengths: tuple[int, ...] = LATENCY_LENGTHS,
    latency_rounds: int = 10,
    progress: bool = True,
) -> _RnnVsTransformer:
    """Load (or train) the demo Transformer and the BiLSTM of ``context.mode`` and measure both the same way (chapter 10).

    ``recipe`` replaces the demo tagger's course recipe (both models then train with it).
    """
    context_mode_and_device(context)  # a CourseContext, or a clear TypeError
    corpus = corpus or load_msra()
    transformer = demo_tagger(context, recipe=recipe, corpus=corpus, progress=progress)
    if max(lengths) > transformer.recipe.max_len:
        raise ValueError(f"lengths go up to {max(lengths)}, beyond the tagger's max_len={transformer.recipe.max_len}")
    bilstm = _bilstm_tagger(context, transformer.recipe, transformer.vocab, corpus=corpus, progress=progress)
    models = {"Transformer": transformer.model, "BiLSTM": bilstm.model}
    test = scoring_loader(corpus.test, transformer.vocab, transformer.recipe.max_len)
    on_cpu = {name: copy.deepcopy(model).cpu().eval() for name, model in models.items()}
    inputs = {length: _sentence_of_length(corpus, transformer.vocab, length) for length in lengths}
    calls = {(name, length): ((lambda m=model, x=x: m(x)), 1)
             for name, model in on_cpu.items() for length, x in inputs.items()}
    timed = interleaved_latency(calls, rounds=latency_rounds, threads=1)
    facts = {"Transformer": (transformer.metrics["dev_f1"], transformer.seconds),
             "BiLSTM": (bilstm.metrics["dev_f1"], bilstm.seconds)}
    rows = {}
    for name, model in models.items():
        per_type = per_type_report(model, test)
        rows[name] = _ArchitectureRow(
            name=name,
            parameters=count_parameters(model),
            test_f1=evaluate_tagger(model, test)["f1"],
            per_type_f1={kind: per_type[kind]["f1"] for kind in ("PER", "LOC", "ORG")},
            dev_f1=facts[name][0],
            train_seconds=facts[name][1],
            latency_ms={length: timed[(name, length)].p50_ms for length in lengths},
        )
    return _RnnVsTransformer(mode=context.mode, recipe=transformer.recipe, rows=rows, models=models)
