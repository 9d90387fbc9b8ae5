"""Tests for course_lib.cases.poetry: the vocabulary, the recipes, and a small real comparison of the four models."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from course_lib.nn.char_lm import CharLM
from course_lib.data import Poem, PoetryCorpus, is_regulated_pentasyllabic
from course_lib.cases.poetry import (
    POETRY_ROLES,
    _PoetryRecipe,
    compare_poetry,
    _poem_vocab,
    poetry_model,
    poetry_recipe,
    poem_perplexity,
    write_poems,
)
from course_lib.nn.transformer import count_parameters

CHARACTERS = "山水風月花雲春秋江天人日夜長"


def synthetic_poems(count: int, seed: int) -> list[Poem]:
    """Poems of three fixed line patterns, so that a small model can learn the form quickly."""
    rng = random.Random(seed)
    patterns = ["山高月小水", "江天一色春", "花落人歸去"]
    return [Poem(f"詩{index}", "佚名", tuple(rng.choice(patterns) for _ in range(8))) for index in range(count)]


@pytest.fixture(scope="module")
def corpus() -> PoetryCorpus:
    return PoetryCorpus(train=synthetic_poems(96, 0), dev=synthetic_poems(16, 1), test=synthetic_poems(16, 2))


def tiny_recipes() -> dict[str, _PoetryRecipe]:
    shared = dict(epochs=6, batch_size=16, dropout=0.0, warmup_fraction=0.1)
    teacher = _PoetryRecipe(d_model=32, num_heads=2, num_layers=2, d_ff=64, lr=1e-2, **shared)
    student = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, lr=1e-2, **shared)
    return {"teacher": teacher, "scratch": _PoetryRecipe(**student),
            "word_kd": _PoetryRecipe(**student, method="logits"),
            "sequence_kd": _PoetryRecipe(**student, method="sequence_kd")}


def test_the_vocabulary_puts_the_sentence_markers_after_padding_and_unknown(corpus):
    vocab = _poem_vocab(corpus.train)
    assert vocab.tokens()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert {"，", "。"} <= set(vocab.tokens()) and vocab.index("</s>") == 3
    with pytest.raises(ValueError, match="at least one poem"):
        _poem_vocab([])


def test_course_recipes_share_the_teachers_poems_and_epochs_and_are_causal():
    for mode in ("fast", "full"):
        recipes = {role: poetry_recipe(role, mode) for role in POETRY_ROLES}
        assert len({(r.train_poems, r.epochs) for r in recipes.values()}) == 1
        assert [r.method for r in recipes.values()] == ["labels", "labels", "logits", "sequence_kd"]
        sizes = {role: count_parameters(CharLM(r.model_config(6000))) for role, r in recipes.items()}
        assert sizes["scratch"] < 0.5 * sizes["teacher"], sizes
        assert all(r.model_config(10).causal for r in recipes.values())


@pytest.mark.parametrize("field, value, match", [
    ("method", "beam", "method must be one of"), ("alpha", -0.1, "alpha must be in"),
    ("teacher_sampling_temperature", 0, "teacher_sampling_temperature must be a number > 0"),
    ("train_poems", 0, "train_poems must be a positive int or None"),
])
def test_bad_recipes_say_what_is_wrong(field, value, match):
    with pytest.raises(ValueError, match=match):
        _PoetryRecipe(**{field: value})


def test_a_distilled_student_needs_its_teacher_and_enough_poems(corpus, context, model_cache):
    vocab = _poem_vocab(corpus.train)
    with pytest.raises(ValueError, match="learns from a teacher"):
        poetry_model(context, "word_kd", tiny_recipes()["word_kd"], corpus, vocab, progress=False)
    with pytest.raises(ValueError, match="exceeds the 96 training poems"):
        poetry_model(context, "teacher", dataclasses.replace(tiny_recipes()["teacher"], train_poems=500), corpus, vocab,
                     progress=False)


def test_the_comparison_trains_every_role_and_measures_it(corpus, context, model_cache):
    comparison = compare_poetry(context, corpus=corpus, recipes=tiny_recipes(), samples=40, latency_rounds=1,
                                progress=False)
    rows = comparison.rows
    assert all(model.trained for model in comparison.models.values())
    again = compare_poetry(context, corpus=corpus, recipes=tiny_recipes(), samples=40, latency_rounds=1, progress=False)
    assert not any(model.trained for model in again.models.values()), "a second run loads every model from the cache"
    assert again.rows["sequence_kd"].extra == rows["sequence_kd"].extra
    assert {role: row.test_perplexity for role, row in again.rows.items()} == pytest.approx(
        {role: row.test_perplexity for role, row in rows.items()})
    assert list(rows) == list(POETRY_ROLES)
    teacher = rows["teacher"]
    assert teacher.test_perplexity < 3.0, "three line patterns: the next character is nearly always known"
    assert 0 < teacher.in_form <= 1 and any(is_regulated_pentasyllabic(text) for text in teacher.examples)
    assert rows["sequence_kd"].extra["teacher_written_poems"] == 96
    assert 0 <= rows["sequence_kd"].extra["teacher_written_in_form"] <= 1
    assert rows["scratch"].parameters == rows["word_kd"].parameters < teacher.parameters
    assert all(row.ms_per_poem > 0 and len(row.examples) == 3 and row.dev_curve for row in rows.values())
    payload = json.loads(json.dumps(comparison.to_dict()))
    assert (payload["train_poems"], payload["test_poems"], payload["samples"]) == (96, 16, 40)
    assert set(payload["kim_rush_2016"]) == {"teacher", "no_kd", "word_kd", "sequence_kd"}
    teacher, vocab = comparison.models["teacher"].model, comparison.models["teacher"].vocab
    poems = write_poems(teacher, vocab, 8, temperature=0.7, seed=3)
    assert poems == write_poems(teacher, vocab, 8, temperature=0.7, seed=3) and len(poems) == 8
    assert all(isinstance(poem, str) and "<s>" not in poem for poem in poems)
    real = [poem.text for poem in corpus.test]
    assert poem_perplexity(teacher, vocab, real) == pytest.approx(rows["teacher"].test_perplexity, rel=1e-4)
    with pytest.raises(ValueError, match="non-empty sequence of poems"):
        poem_perplexity(teacher, vocab, "山高月小水")
    with pytest.raises(ValueError, match="missing"):
        compare_poetry(context, corpus=corpus, recipes={"teacher": tiny_recipes()["teacher"]}, progress=False)
