"""The reference MSRA teacher the course ships: trained once, loaded in every mode (chapter 07).

A teacher worth distilling takes far longer to train than a classroom can wait, so the course
ships one: a Transformer tagger with relative positions over character embeddings and hashed
character bigrams (:mod:`course_lib.nn.bigrams`), the pair of changes that
:mod:`course_lib.cases.ner.recipe_study` found strongest, made four blocks deep and trained for
twelve epochs. It is stored as an fp16
safetensors file with its provenance (recipe, MSRA sha256, test F1, seconds, device, commit) in
:data:`course_lib.train.artefact.ARTEFACT_DIR`; ``make teachers`` rebuilds it, and the tests
re-measure its test F1 against the recorded one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.cases.ner.tagger import (
    TaggerRecipe,
    build_tagger,
    fit_tagger,
    scoring_loader,
    tagger_vocab,
    training_sentences,
)
from course_lib.data import LABELS, CharVocab, NerCorpus, load_msra
from course_lib.data.msra import MSRA_SOURCE
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from course_lib.nn.transformer import TokenTagger, TransformerConfig
from course_lib.train.artefact import (
    ARTEFACT_DIR,
    Artefact,
    ArtefactError,
    load_artefact,
    save_artefact,
)
from course_lib.train.tagging import evaluate_tagger

ARTEFACT_NAME = "ner_teacher"
REFERENCE_RECIPE = TaggerRecipe(
    architecture="transformer", positional="relative", d_model=128, num_heads=4, num_layers=4, d_ff=512,
    bigram_buckets=1 << 15, bigram_dim=64, dropout=0.1, epochs=12, lr=3e-3, warmup_fraction=0.05, weight_decay=0.01,
    batch_size=64, train_sentences=None, vocab_min_freq=2, threads=2,
    lstm_hidden=256,  # unused by a Transformer; the value the shipped teacher's provenance records
)
"""The reference teacher's recipe: all 48,126 training sentences, the dev epoch with the best F1 kept."""

_BUILDERS = {
    "BiLSTMTagger": lambda config: BiLSTMTagger(BiLSTMConfig(**config), num_labels=len(LABELS)),
    "TokenTagger": lambda config: TokenTagger(TransformerConfig(**config), num_labels=len(LABELS)),
}


def build_reference(architecture: str, config: dict[str, Any], vocab: CharVocab | None) -> nn.Module:
    """An untrained tagger of ``architecture`` (a class name) and ``config``, for :func:`load_artefact` (chapter 07)."""
    if architecture not in _BUILDERS:
        raise ArtefactError(f"unknown tagger architecture {architecture!r}; expected one of {tuple(_BUILDERS)}")
    if vocab is not None and config.get("vocab_size") != len(vocab):
        raise ArtefactError(f"the config's vocab_size {config.get('vocab_size')} differs from the {len(vocab)} "
                            "characters stored with it")
    return _BUILDERS[architecture](config)


def _test_scores(model: nn.Module, vocab: CharVocab, corpus: NerCorpus, max_len: int) -> dict[str, float]:
    scores = evaluate_tagger(model, scoring_loader(corpus.test, vocab, max_len))
    return {"test_f1": round(scores["f1"], 4), "test_f1_argmax": round(scores["f1_argmax"], 4)}


def train_reference_teacher(
    corpus: NerCorpus | None = None,
    recipe: TaggerRecipe = REFERENCE_RECIPE,
    *,
    folder: Path = ARTEFACT_DIR,
    progress: bool = True,
) -> Path:
    """Train the reference teacher on the CPU, score it on the test split and ship it to ``folder`` (chapter 07).

    Returns the weights' path. The provenance records the recipe, the MSRA sha256, the dev curve,
    the test F1 (Viterbi and argmax decoding), the seconds and the device.
    """
    corpus = load_msra() if corpus is None else corpus
    vocab = tagger_vocab(corpus, recipe)
    model = build_tagger(recipe, len(vocab))
    trained = fit_tagger(model, recipe, training_sentences(corpus, recipe), corpus.dev, vocab, progress=progress, desc=ARTEFACT_NAME)
    metrics = {"dev_f1": round(trained.metrics["dev_f1"], 4),
               "dev_curve": [round(f, 4) for f in trained.metrics["dev_curve"]],
               **_test_scores(trained.model, vocab, corpus, recipe.max_len)}
    return save_artefact(ARTEFACT_NAME, trained.model.eval(), architecture=type(trained.model).__name__,
                         config=trained.model.config.to_dict(), vocab=vocab, recipe=recipe,
                         data={"msra": MSRA_SOURCE.sha256}, metrics=metrics, seconds=trained.seconds,
                         device=f"cpu, {torch.get_num_threads()} threads", folder=folder)


def reference_teacher(folder: Path = ARTEFACT_DIR) -> Artefact:
    """The shipped reference teacher, checked against its provenance and against the MSRA file in use (chapter 07)."""
    artefact = load_artefact(ARTEFACT_NAME, build_reference, folder)
    trained_on = artefact.provenance["data_sha256"].get("msra")
    if trained_on != MSRA_SOURCE.sha256:
        raise ArtefactError(f"{artefact.path.name} was trained on MSRA sha256 {str(trained_on)[:12]}…, but the course "
                            f"reads {MSRA_SOURCE.sha256[:12]}…; run `make teachers` to train it on this data")
    return artefact


def remeasure(artefact: Artefact, corpus: NerCorpus | None = None) -> dict[str, float]:
    """The loaded teacher's test F1 measured again, to compare with its provenance (chapter 07)."""
    corpus = load_msra() if corpus is None else corpus
    max_len = artefact.provenance["recipe"].get("max_len", 128)
    start = time.perf_counter()
    scores = _test_scores(artefact.model, artefact.vocab, corpus, max_len)
    return {**scores, "seconds": round(time.perf_counter() - start, 1)}
