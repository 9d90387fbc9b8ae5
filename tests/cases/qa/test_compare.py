"""Tests for course_lib.cases.qa.compare: the recipes, the cached models and a tiny comparison beside a tagger."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from course_lib.cases.qa.compare import (
    SPAN_QA_ROLES,
    SpanQARecipe,
    compare_span_qa,
    span_qa_data,
    span_qa_model,
    span_qa_recipe,
    span_qa_seeds,
)
from course_lib.cases.ner.reference import reference_teacher
from course_lib.data import NerCorpus
from course_lib.nn.span import SpanExtractor
from course_lib.nn.transformer import count_parameters
from tests.cases.qa import synthetic_corpus, tiny_recipes


@pytest.fixture(scope="module")
def corpus() -> NerCorpus:
    return synthetic_corpus()


def test_course_recipes_keep_the_students_small_and_on_the_teachers_data():
    for mode in ("fast", "full"):
        recipes = {role: span_qa_recipe(role, mode) for role in SPAN_QA_ROLES}
        assert len({(r.max_len, r.train_sentences) for r in recipes.values()}) == 1
        assert recipes["scratch"].epochs == recipes["span_kd"].epochs, "the students get the same budget"
        assert [r.method for r in recipes.values()] == ["labels", "labels", "logits"]
        assert recipes["teacher"].encoder_from == "ner_teacher"
        assert len(span_qa_seeds(mode)) == (3 if mode == "full" else 1), "the full run's claims rest on three seeds"
        sizes = {role: count_parameters(SpanExtractor(r.model_config(4000))) for role, r in recipes.items()}
        assert sizes["scratch"] <= 0.25 * sizes["teacher"], sizes


@pytest.mark.parametrize("fields, match", [
    ({"method": "layers"}, "method must be one of"), ({"max_len": 20}, "no room for a passage"),
    ({"max_span": 0}, "max_span must be a positive int"), ({"train_sentences": 0}, "train_sentences"),
    ({"encoder_from": "bert"}, "encoder_from must be one of"),
])
def test_bad_recipes_say_what_is_wrong(fields, match):
    with pytest.raises(ValueError, match=match):
        SpanQARecipe(**fields)


def test_the_comparison_trains_every_role_and_scores_the_tagger_on_the_same_passages(corpus, context, model_cache):
    recipes = tiny_recipes()
    comparison = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, latency_rounds=1,
                                 progress=False)
    rows = comparison.rows
    assert list(rows) == [*SPAN_QA_ROLES, "reference_tagger"]
    assert rows["teacher"].f1 > 0.8, "names from three short lists are easy to find"
    assert rows["scratch"].parameters == rows["span_kd"].parameters < rows["teacher"].parameters
    assert all(0 <= row.f1 <= 1 and row.latency_batch1_ms > 0 for row in rows.values())
    assert set(rows["span_kd"].per_type_f1) == {"PER", "LOC", "ORG"} and len(rows["teacher"].dev_curve) == 6
    payload = json.loads(json.dumps(comparison.to_dict()))
    assert payload["counts"]["test"]["questions"] == 3 * len(corpus.test) and payload["li_2020"]["msra_f1"] == 0.9575
    assert payload["examples"] and {"question", "passage", "gold", "teacher", "reference_tagger"} <= set(payload["examples"][0])
    again = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, latency_rounds=1, progress=False)
    assert not any(model.trained for model in again.models.values()), "the second call loads every model"
    assert again.rows["span_kd"].f1 == rows["span_kd"].f1
    with pytest.raises(ValueError, match="same max_len"):
        compare_span_qa(context, corpus=corpus, recipes={**recipes, "scratch": dataclasses.replace(recipes["scratch"], max_len=48)},
                        progress=False)


def test_the_teacher_starts_from_chapter_07s_shipped_encoder(corpus, context, model_cache):
    recipe = dataclasses.replace(span_qa_recipe("teacher", "fast"), max_len=40, epochs=1, lr=1e-9, dropout=0.0,
                                 train_sentences=32, dev_sentences=8, threads=1)
    shipped = reference_teacher()
    trained = span_qa_model(context, "teacher", recipe, span_qa_data(corpus, recipe), progress=False)
    assert trained.vocab.tokens()[:len(shipped.vocab)] == shipped.vocab.tokens(), "every known character keeps its id"
    assert {"[CLS]", "[SEP]"} <= set(trained.vocab.tokens()[len(shipped.vocab):])
    known = len(shipped.vocab)
    embeddings = trained.model.encoder.embed.weight.detach().cpu()[:known]
    assert torch.allclose(embeddings, shipped.model.encoder.embed.weight, atol=1e-4), "a tiny lr leaves them as loaded"
    block = "blocks.3.feed_forward.fc2.weight"
    assert torch.allclose(trained.model.encoder.state_dict()[block].cpu(), shipped.model.encoder.state_dict()[block],
                          atol=1e-4)
    with pytest.raises(ValueError, match="differ in shape"):
        span_qa_model(context, "teacher", dataclasses.replace(recipe, d_model=64), span_qa_data(corpus, recipe),
                      progress=False)


def test_students_train_once_per_seed_and_the_verdict_reads_every_seed(corpus, context, model_cache):
    recipes = {role: dataclasses.replace(recipe, epochs=2) for role, recipe in tiny_recipes().items()}
    comparison = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, seeds=(0, 1),
                                 latency_rounds=1, progress=False)
    kd = comparison.rows["span_kd"]
    assert kd.seeds == [0, 1] and kd.f1_over_seeds["per_seed"][0] == round(kd.f1, 4)
    assert len(comparison.rows["scratch"].f1_over_seeds["per_seed"]) == 2
    assert comparison.rows["teacher"].seeds == [0]
    assert comparison.verdict.startswith(("span-level KD beats", "span-level KD loses", "no measurable difference"))
    assert json.loads(json.dumps(comparison.to_dict()))["verdict"] == comparison.verdict
    one = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, seeds=(0,), latency_rounds=1,
                          progress=False)
    assert one.verdict.startswith("one seed each") and not any(model.trained for model in one.models.values())
    with pytest.raises(ValueError, match="distinct seeds"):
        compare_span_qa(context, corpus=corpus, recipes=recipes, seeds=(1, 1), progress=False)


def test_bad_inputs_raise_clear_errors(corpus, context, model_cache):
    recipes = tiny_recipes()
    data = span_qa_data(corpus, recipes["teacher"])
    with pytest.raises(ValueError, match="needs the teacher"):
        span_qa_model(context, "span_kd", recipes["span_kd"], data, progress=False)
    with pytest.raises(ValueError, match="does not match the role"):
        span_qa_model(context, "scratch", recipes["span_kd"], data, progress=False)
    with pytest.raises(ValueError, match="role must be one of"):
        span_qa_model(context, "oracle", recipes["teacher"], data, progress=False)
    with pytest.raises(TypeError, match="CourseContext"):
        compare_span_qa("fast", corpus=corpus, recipes=recipes)
