"""Which student shape decodes three times faster than the teacher, and what it costs in BLEU (chapter 09).

The translation students of :mod:`course_lib.cases.translation` share one shape. At batch 1 a
decoding step is a few dozen small matrix products, each with a fixed cost per call, and the
decoder runs once per output subword while the encoder runs once per verse: the number of decoder
layers and the width set the time, the weights do not. :func:`shape_latency` times untrained
models of any shapes; :func:`compare_shapes` trains (or loads from the model cache) one
sequence-level-KD student of each of :data:`STUDENT_SHAPES` with the students' recipe and budget,
and sets its test BLEU beside its speed-up, against the goals of :data:`TRANSLATION_GOALS`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from course_lib import checks
from course_lib.cases.common import cpu_latency, rounded
from course_lib.cases.translation import (
    BATCHED_SENTENCES,
    LATENCY_SENTENCES,
    SERVING_BATCH,
    TRANSLATION_GOALS,
    TranslationRecipe,
    decoding_speed,
    score_translations,
    scored_verses,
    shipped_teacher_data,
    translation_model,
    translation_recipe,
)
from course_lib.context import CourseContext, context_mode_and_device
from course_lib.data import load_bible
from course_lib.data.bible import BibleCorpus
from course_lib.data.subwords import BOS_ID, EOS_ID, PAD_ID
from course_lib.nn.seq2seq import CachedDecoder, Seq2SeqConfig, Seq2SeqTransformer
from course_lib.nn.transformer import count_parameters
from course_lib.train.fit import Trained

STUDENT_SHAPES: dict[str, dict[str, int]] = {  # the course's students' shape, then deeper encoders, one decoder layer
    "2+2, d_model 96": dict(encoder_layers=2, decoder_layers=2, d_model=96, d_ff=384),
    "4+1, d_model 96": dict(encoder_layers=4, decoder_layers=1, d_model=96, d_ff=352),
    "4+1, d_model 80": dict(encoder_layers=4, decoder_layers=1, d_model=80, d_ff=320),
    "6+1, d_model 64": dict(encoder_layers=6, decoder_layers=1, d_model=64, d_ff=256),
}
SHAPE_FIELDS = ("encoder_layers", "decoder_layers", "d_model", "d_ff", "num_heads")


def shape_latency(configs: Mapping[str, Seq2SeqConfig], *, source_length: int = 30, steps: int = 28,
                  rounds: int = 3) -> dict[str, float]:
    """Milliseconds to translate one verse at batch 1 on one CPU thread with an untrained model of each config (chapter 09).

    A verse here is a random source of ``source_length`` subwords, encoded once, and ``steps``
    cached decoding steps along a fixed random prefix (about a test verse of median length), so
    every shape takes the same steps: the time of a step depends on the shape, not on the weights.
    Timed with :func:`~course_lib.cases.common.cpu_latency`.
    """
    if not configs:
        raise ValueError("configs must name at least one Seq2SeqConfig")
    for name, config in configs.items():
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"configs[{name!r}] must be a Seq2SeqConfig, got {type(config).__name__}")
    max_len = min(config.max_len for config in configs.values())
    for name, value in (("source_length", source_length), ("steps", steps)):
        if checks.positive_int(name, value) > max_len:
            raise ValueError(f"{name}={value} is longer than the shortest max_len of the configs, {max_len}")
    vocab_size, first_id = min(config.vocab_size for config in configs.values()), max(PAD_ID, BOS_ID, EOS_ID) + 1
    generator = torch.Generator().manual_seed(0)
    src_ids = torch.randint(first_id, vocab_size, (1, source_length), generator=generator)
    words = torch.randint(first_id, vocab_size, (1, steps - 1), generator=generator)
    prefix = torch.cat([torch.full((1, 1), BOS_ID), words], dim=1)
    src_mask = torch.ones_like(src_ids, dtype=torch.bool)

    def call(model: nn.Module) -> None:
        cached = CachedDecoder(model)
        memory = cached.encode(src_ids, src_mask)
        for length in range(1, steps + 1):
            cached.decode_step(memory, src_mask, prefix[:, :length]).argmax(dim=-1)

    models = {name: Seq2SeqTransformer(config).eval() for name, config in configs.items()}
    with torch.inference_mode():
        return cpu_latency(models, call, rounds, seconds_per_round=0.1)


def _shaped(recipe: TranslationRecipe, name: str, shape: Mapping[str, int]) -> TranslationRecipe:
    unknown = sorted(set(shape) - set(SHAPE_FIELDS))
    if unknown:
        raise ValueError(f"shape {name!r} sets {unknown}; a shape may set only {list(SHAPE_FIELDS)}")
    return dataclasses.replace(recipe, **shape)


def shape_cache_name(name: str, recipe: TranslationRecipe) -> str:
    """The model cache's name for the student of shape ``name`` and ``recipe``, e.g. ``seq_kd_4_1_d_model_80_seed0`` (chapter 09)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"shape name {name!r} needs a letter or a digit, to name its file in the model cache")
    return f"{recipe.method}_{slug}_seed{recipe.seed}"


def compare_shapes(
    context: CourseContext,
    *,
    teacher: Trained,
    shapes: Mapping[str, Mapping[str, int]] = STUDENT_SHAPES,
    recipe: TranslationRecipe | None = None,
    corpus: BibleCorpus | None = None,
    eval_pairs: int | None | str = "mode",
    latency_rounds: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Train or load a student of each shape from ``teacher``, score its test translations and time its decoding (chapter 09).

    Every student is ``recipe`` (default: the mode's sequence-level-KD recipe, seed included) with
    the layers and widths of its shape, learning from the teacher's beam translations, and is cached
    under :func:`shape_cache_name` (a shape that is ``recipe``'s own shares the course's student); ``teacher``
    is a teacher trained elsewhere (:func:`~course_lib.cases.translation.shipped_teacher_data`).
    Returns a JSON-ready dict: ``rows`` for the teacher and each shape (the shape, parameters and
    share of the teacher's, test BLEU and chrF greedy and beam, BLEU points below the teacher,
    training seconds and dev curve, :func:`~course_lib.cases.translation.decoding_speed`, and which
    goals it meets), ``goals`` (the BLEU gap and speed-up of :data:`TRANSLATION_GOALS`), the seed,
    the method and the number of test verses.
    """
    mode, _ = context_mode_and_device(context)
    if not shapes:
        raise ValueError("shapes must name at least one student shape")
    recipe = recipe or translation_recipe("seq_kd", mode)
    recipes = {name: _shaped(recipe, name, shape) for name, shape in shapes.items()}
    corpus = corpus or load_bible()
    test = scored_verses(corpus.test, mode, eval_pairs)
    data = shipped_teacher_data(corpus, recipe, teacher)
    cache_names = {name: None if shaped == recipe else shape_cache_name(name, shaped) for name, shaped in recipes.items()}
    named = [cache_name for cache_name in cache_names.values() if cache_name is not None]
    if len(set(named)) < len(named):
        raise ValueError(f"shape names {list(shapes)} give the model cache the same file name twice ({named}): "
                         "name the shapes apart by their letters and digits")
    trained = {name: translation_model(context, "seq_kd", shaped, data, teacher=teacher, cache_name=cache_names[name],
                                       progress=progress)
               for name, shaped in recipes.items()}
    models = {"teacher": teacher.model, **{name: student.model for name, student in trained.items()}}
    speed = decoding_speed(models, data.vocab, test, data.max_len, recipe.beam_size, latency_rounds)
    teacher_parameters = count_parameters(teacher.model)
    rows: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        scores, _ = score_translations(model, data.vocab, test, data.max_len, recipe.beam_size)
        parameters = count_parameters(model)
        rows[name] = {"shape": {field: getattr(model.config, field) for field in SHAPE_FIELDS},
                      "parameters": parameters, "size_ratio": round(parameters / teacher_parameters, 4),
                      "test": scores, **speed[name]}
    teacher_bleu = rows["teacher"]["test"]["bleu_greedy"]
    for name, student in trained.items():
        row = rows[name]
        row["bleu_below_teacher"] = round(teacher_bleu - row["test"]["bleu_greedy"], 2)
        row["train_seconds"], row["dev_curve"] = student.seconds, student.metrics["dev_curve"]
        row["meets"] = {"seq_kd_gap": row["bleu_below_teacher"] <= TRANSLATION_GOALS["seq_kd_gap"],
                        "seq_kd_speedup": row["speedup"] >= TRANSLATION_GOALS["seq_kd_speedup"]}
    return rounded({
        "mode": mode, "method": recipe.method, "seed": recipe.seed, "test_pairs": len(test),
        "latency_sentences": LATENCY_SENTENCES, "batched_sentences": min(len(test), BATCHED_SENTENCES), "serving_batch": SERVING_BATCH,
        "goals": {key: TRANSLATION_GOALS[key] for key in ("seq_kd_gap", "seq_kd_speedup")}, "rows": rows,
        "recipes": {name: shaped.to_dict() for name, shaped in recipes.items()},
    })
