"""Tests for course_lib.cases.translation_shapes: timing untrained shapes and training one student of each."""

from __future__ import annotations

import dataclasses
import json

import pytest

from course_lib.cases.translation import (
    TRANSLATION_GOALS,
    prepare_translation_data,
    translation_model,
    translation_recipe,
)
from course_lib.cases.translation_shapes import STUDENT_SHAPES, compare_shapes, shape_latency
from course_lib.data.bible import BibleCorpus
from course_lib.nn.seq2seq import Seq2SeqConfig
from tests.cases.test_translation import tiny_recipes, verses

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shape_latency_times_untrained_models_of_each_shape():
    shapes = {name: Seq2SeqConfig(vocab_size=30, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=layers,
                                  d_ff=32, max_len=20)
              for name, layers in (("deep", 3), ("shallow", 1))}
    latency = shape_latency(shapes, source_length=6, steps=5, rounds=1)
    assert set(latency) == {"deep", "shallow"} and all(ms > 0 for ms in latency.values())
    with pytest.raises(ValueError, match="steps=21 is longer than the shortest max_len of the configs, 20"):
        shape_latency(shapes, source_length=6, steps=21)
    with pytest.raises(TypeError, match=r"configs\['x'\] must be a Seq2SeqConfig"):
        shape_latency({"x": {"d_model": 16}})
    with pytest.raises(ValueError, match="at least one"):
        shape_latency({})


def test_every_shape_keeps_under_a_quarter_of_the_teachers_parameters_and_the_first_is_the_students():
    student, teacher = (translation_recipe(role, "full") for role in ("seq_kd", "teacher"))
    assert dataclasses.replace(student, **next(iter(STUDENT_SHAPES.values()))) == student
    limit = teacher.model_config().parameter_count() / 4
    for name, shape in STUDENT_SHAPES.items():
        assert dataclasses.replace(student, **shape).model_config().parameter_count() <= limit, name


def test_compare_shapes_trains_one_student_of_each_shape_and_times_it(context, model_cache):
    corpus = BibleCorpus(train=verses(40, 0, "Gen"), dev=verses(6, 1, "Esth"), test=verses(6, 2, "Ruth"))
    recipes = tiny_recipes()
    data = prepare_translation_data(corpus, recipes["teacher"])
    teacher = dataclasses.replace(translation_model(context, "teacher", recipes["teacher"], data, progress=False),
                                  vocab=data.vocab)
    own = {field: getattr(recipes["seq_kd"], field) for field in ("encoder_layers", "decoder_layers")}
    shapes = {"the recipe's": own, "1+2": dict(encoder_layers=1, decoder_layers=2),
              "2+1, d_model 12": dict(encoder_layers=2, decoder_layers=1, d_model=12)}
    table = json.loads(json.dumps(compare_shapes(context, teacher=teacher, shapes=shapes, recipe=recipes["seq_kd"],
                                                 corpus=corpus, eval_pairs=None, latency_rounds=1, progress=False)))
    assert list(table["rows"]) == ["teacher", *shapes] and table["test_pairs"] == 6
    cached = sorted(path.name for path in (model_cache / "models").glob("mt_seq_kd_*.safetensors"))
    assert cached == ["mt_seq_kd_1_2_seed0_fast.safetensors", "mt_seq_kd_2_1_d_model_12_seed0_fast.safetensors",
                      "mt_seq_kd_seed0_fast.safetensors"]  # each shape its own file; the recipe's own shape the course's
    assert table["rows"]["2+1, d_model 12"]["shape"]["d_model"] == 12 and table["rows"]["teacher"]["speedup"] == 1.0
    for name in shapes:
        row = table["rows"][name]
        assert row["bleu_below_teacher"] == pytest.approx(
            table["rows"]["teacher"]["test"]["bleu_greedy"] - row["test"]["bleu_greedy"], abs=0.01)
        assert row["meets"]["seq_kd_speedup"] == (row["speedup"] >= TRANSLATION_GOALS["seq_kd_speedup"])
        assert row["batched_speedup"] > 0 and row["beam_ms_per_sentence"] > 0 and len(row["dev_curve"]) == 1
    assert table["goals"] == {"seq_kd_gap": 1.0, "seq_kd_speedup": 3.0} and table["method"] == "seq_kd"
    with pytest.raises(ValueError, match="the same file name twice"):
        compare_shapes(context, teacher=teacher, shapes={"1+2": {"decoder_layers": 2}, "1 2": {"d_model": 12}}, recipe=recipes["seq_kd"],
                       corpus=corpus)
    with pytest.raises(ValueError, match=r"shape 'wide' sets \['lr'\]; a shape may set only"):
        compare_shapes(context, teacher=teacher, shapes={"wide": {"lr": 1.0}}, recipe=recipes["seq_kd"], corpus=corpus)
