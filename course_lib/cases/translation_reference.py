"""The reference English→Spanish teacher the course ships, and how it was made (chapter 09).

Training an encoder–decoder that translates recognisably takes most of an hour on two CPU cores,
longer than a lecture can wait, so the course ships one, as a lecturer would load a pretrained
model: :data:`REFERENCE_RECIPE` trained on every training verse (KJV → Reina-Valera 1909, split by
book), kept as fp16 weights with its BPE vocabulary and provenance (``course_lib/artefacts/mt_teacher.*``,
see :mod:`course_lib.train.artefact`). ``make teachers`` retrains it; a test re-measures its BLEU.

The students of chapter 09 are distilled from it live (:func:`reference_student_recipes`): they
share its vocabulary, length limit and beam, and learn from a part of the training verses.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from course_lib.cases.translation import (
    TRANSLATION_ROLES,
    TranslationRecipe,
    fit_translation,
    prepare_translation_data,
    score_translations,
    translate,
    translation_recipe,
    translation_scores,
)
from course_lib.context import check_mode
from course_lib.data import load_bible
from course_lib.data.bible import KJV_SOURCE, SPARV_SOURCE, BibleCorpus, VersePair
from course_lib.data.subwords import SubwordVocab
from course_lib.nn.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.train.artefact import ARTEFACT_DIR, Artefact, ArtefactError, load_artefact, save_artefact
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained

ARTEFACT_NAME = "mt_teacher"
REFERENCE_RECIPE = TranslationRecipe(
    d_model=192, num_heads=4, encoder_layers=3, decoder_layers=3, d_ff=768, dropout=0.1, vocab_size=4000,
    max_len=100, label_smoothing=0.1, train_pairs=None, dev_pairs=None, method="labels", beam_size=5, epochs=10,
    batch_size=64, lr=1.5e-3, warmup_fraction=0.05, threads=1, seed=0,
)
CHECK_PAIRS = 200  # the first test verses whose greedy BLEU the provenance records and a test re-measures
_STUDENT_DATA = {"fast": {"train_pairs": 1000, "dev_pairs": 20}, "full": {"train_pairs": None, "dev_pairs": None}}


def _data_digests(corpus_sha256: str) -> dict[str, str]:
    return {"kjv_deb": KJV_SOURCE.sha256, "sparv_deb": SPARV_SOURCE.sha256, "train_pairs": corpus_sha256}


def _measure(model: Seq2SeqTransformer, vocab: SubwordVocab, corpus: BibleCorpus,
             recipe: TranslationRecipe) -> dict[str, float]:
    """Test BLEU and chrF of ``model``, greedy and beam, on every test verse and on the first :data:`CHECK_PAIRS`."""
    metrics: dict[str, float] = {}
    for name, pairs in (("test", corpus.test), (f"test_first{CHECK_PAIRS}", corpus.test[:CHECK_PAIRS])):
        scores, _ = score_translations(model, vocab, pairs, recipe.max_len, recipe.beam_size)
        metrics |= {f"{name}_{metric}": round(value, 2) for metric, value in scores.items()}
    return metrics


def train_reference_translator(
    corpus: BibleCorpus | None = None,
    recipe: TranslationRecipe = REFERENCE_RECIPE,
    *,
    folder: Path = ARTEFACT_DIR,
    progress: bool = True,
) -> Path:
    """Train the reference translator (or take it from the model cache), score it and ship it to ``folder`` (chapter 09).

    The model is cached as ``mt_reference_teacher_full`` under the recipe and the training data, so
    a run that was stopped after training only measures and writes. Returns the weights' path;
    the provenance records the recipe, the data's sha256, the dev BLEU curve, test BLEU and chrF
    (greedy and beam, all test verses and the first :data:`CHECK_PAIRS`), the seconds and the device.
    """
    corpus = load_bible() if corpus is None else corpus
    data = prepare_translation_data(corpus, recipe)
    device = torch.device("cpu")

    def build(_: Any) -> Seq2SeqTransformer:
        torch.manual_seed(recipe.seed)
        return Seq2SeqTransformer(recipe.model_config(len(data.vocab)))

    def train(model: Seq2SeqTransformer, _: Any) -> Trained:
        return fit_translation(model, "teacher", recipe, data, None, "full", device, progress)

    trained = load_or_train(model_path("mt_reference_teacher", "full"), recipe, build=build, train=train,
                            depends_on={"data": data.data_sha256, "vocab": data.vocab_sha256})
    shipped = trained.model.eval()
    shipped.load_state_dict({key: value.half().float() if value.is_floating_point() else value
                             for key, value in shipped.state_dict().items()})  # measure what ships: fp16 weights
    metrics = {"dev_curve": trained.metrics["dev_curve"], "train_pairs": len(data.sources),
               "dropped_long_pairs": data.dropped, **_measure(shipped, data.vocab, corpus, recipe)}
    return save_artefact(ARTEFACT_NAME, shipped, architecture=type(shipped).__name__, config=shipped.config.to_dict(), vocab=data.vocab, recipe=recipe,
                         data=_data_digests(data.data_sha256), metrics=metrics, seconds=trained.seconds,
                         device=f"cpu, {recipe.threads} thread{'s' if recipe.threads > 1 else ''}", folder=folder)


def _build(architecture: str, config: dict[str, Any], _: Any) -> Seq2SeqTransformer:
    if architecture != "Seq2SeqTransformer":
        raise ArtefactError(f"{ARTEFACT_NAME} must hold a Seq2SeqTransformer, its provenance says {architecture}; "
                            "run `make teachers`")
    return Seq2SeqTransformer(Seq2SeqConfig(**config))


def reference_translator(folder: Path = ARTEFACT_DIR) -> Artefact:
    """The shipped English→Spanish teacher, checked against its provenance and the Bible packages in use (chapter 09)."""
    artefact = load_artefact(ARTEFACT_NAME, _build, folder)
    recorded = artefact.provenance["data_sha256"]
    for key, source in (("kjv_deb", KJV_SOURCE), ("sparv_deb", SPARV_SOURCE)):
        if recorded.get(key) != source.sha256:
            raise ArtefactError(f"{artefact.path.name} was trained on {source.package} sha256 {str(recorded.get(key))[:12]}…, "
                                f"but the course reads {source.sha256[:12]}…; run `make teachers` to train it on this data")
    return artefact


def reference_recipe(artefact: Artefact) -> TranslationRecipe:
    """The recipe the shipped teacher was trained with, read from its provenance (chapter 09)."""
    fields = {key: value for key, value in artefact.provenance["recipe"].items() if key != "class"}
    return TranslationRecipe(**fields)


def as_trained(artefact: Artefact) -> Trained:
    """The shipped teacher as the :class:`~course_lib.train.fit.Trained` a student learns from (chapter 09).

    Its ``path`` is the shipped weights file, so every student's cache key names the teacher it learned from.
    """
    return Trained(model=artefact.model, recipe=reference_recipe(artefact), metrics=dict(artefact.provenance["metrics"]),
                   seconds=artefact.provenance["seconds"], trained=False, path=artefact.path, vocab=artefact.vocab)


def reference_student_recipes(artefact: Artefact, mode: str) -> dict[str, TranslationRecipe]:
    """The teacher's recipe and the four students' of ``mode``, reading the shipped teacher's vocabulary and beam (chapter 09).

    Students keep the course's student shape and budget for ``mode``; they learn from the
    training verses of :data:`_STUDENT_DATA` (fast: a spread-out part, full: all).
    """
    teacher = reference_recipe(artefact)
    shared = dict(vocab_size=teacher.vocab_size, max_len=teacher.max_len, beam_size=teacher.beam_size,
                  **_STUDENT_DATA[check_mode(mode)])
    recipes = {"teacher": teacher}
    for role in list(TRANSLATION_ROLES)[1:]:
        recipes[role] = dataclasses.replace(translation_recipe(role, mode), **shared)
    return recipes


def remeasure(artefact: Artefact, pairs: list[VersePair] | None = None) -> dict[str, float]:
    """Greedy BLEU and chrF of the loaded teacher on the first :data:`CHECK_PAIRS` test verses, and the seconds (chapter 09)."""
    pairs = load_bible().test[:CHECK_PAIRS] if pairs is None else pairs
    start = time.perf_counter()
    recipe = reference_recipe(artefact)
    scores = translation_scores(translate(artefact.model, artefact.vocab, [pair.english for pair in pairs],
                                          max_len=recipe.max_len), [pair.spanish for pair in pairs])
    return {"bleu_greedy": round(scores["bleu"], 2), "chrf_greedy": round(scores["chrf"], 2),
            "seconds": round(time.perf_counter() - start, 1)}
