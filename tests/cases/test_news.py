"""Tests for course_lib.cases.news: windows, batches, the recipes, the transfer loss and a small real comparison."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from course_lib.data import CharVocab, NewsCorpus, NewsItem
from course_lib.kd.distiller import Distiller
from course_lib.kd.methods import setup_method
from course_lib.cases.news import (
    NEWS_ROLES,
    _NewsRecipe,
    compare_news,
    _news_batches,
    news_model,
    news_recipe,
    _news_windows,
    window_coverage,
)
from course_lib.nn.transformer import SequenceClassifier, count_parameters

FILLER = "今天上午市里召开会议讨论城市交通建设方案和居民生活问题"
CUES = {0: "喜庆丰收成功表彰", 1: "", 2: "事故火灾死亡被捕"}


def synthetic_items(count: int, seed: int) -> list[NewsItem]:
    """News whose sentiment shows in cue characters near the start; the later text is filler."""
    rng = random.Random(seed)
    items = []
    for index in range(count):
        label = index % 3
        cue = "".join(rng.sample(CUES[label], 3)) if CUES[label] else ""
        body = "".join(rng.choice(FILLER) for _ in range(rng.randint(40, 120)))
        items.append(NewsItem(title=f"{cue}{rng.choice(FILLER)}{rng.choice(FILLER)}", content=body, label=label))
    return items


@pytest.fixture(scope="module")
def corpus() -> NewsCorpus:
    return NewsCorpus(train=synthetic_items(180, 0), dev=synthetic_items(45, 1), test=synthetic_items(60, 2))


def tiny_recipes() -> dict[str, _NewsRecipe]:
    shared = dict(max_len=24, epochs=4, batch_size=16, transfer_windows=2, vocab_min_freq=1)
    teacher = _NewsRecipe(d_model=32, num_heads=2, num_layers=1, d_ff=64, lr=5e-3, **shared)
    student = dict(d_model=8, num_heads=2, num_layers=1, d_ff=16, lr=1e-2, **shared)
    return {"teacher": teacher, "scratch": _NewsRecipe(**student), "logit_kd": _NewsRecipe(**student, method="logits"),
            "transfer_kd": _NewsRecipe(**student, method="transfer")}


def test_windows_cut_the_text_without_overlap_and_drop_a_short_tail():
    item = NewsItem(title="标题", content="一" * 25, label=1)  # text: 2 + 1 + 25 = 28 characters
    assert _news_windows(item, 10) == [item.text[:10]]
    assert _news_windows(item, 10, later=5) == [item.text[:10], item.text[10:20], item.text[20:28]]
    assert _news_windows(item, 13, later=5) == [item.text[:13], item.text[13:26]], "a 2-character tail is dropped"
    assert _news_windows(item, 10, later=1) == [item.text[:10], item.text[10:20]]


def test_window_coverage_counts_the_characters_the_windows_read():
    items = [NewsItem(title="标题", content="一" * 25, label=1), NewsItem(title="短", content="", label=0)]
    total = 28 + 1
    assert window_coverage(items, 10) == pytest.approx((10 + 1) / total)
    assert window_coverage(items, 10, later=5) == pytest.approx((28 + 1) / total)
    assert window_coverage(items, 100) == 1.0
    with pytest.raises(ValueError, match="items is empty"):
        window_coverage([], 10)
    with pytest.raises(ValueError, match="later must be an int >= 0"):
        window_coverage(items, 10, later=-1)


def test_batches_carry_labels_only_for_the_labelled_windows(corpus):
    recipe = dataclasses.replace(tiny_recipes()["scratch"], method="transfer")
    vocab = CharVocab.from_texts(item.text for item in corpus.train)
    ordered = _news_batches(corpus.train, vocab, recipe, shuffle=False)
    assert sum(len(b["labels"]) for b in ordered) == len(corpus.train)
    assert ordered[0]["labels"].tolist()[:3] == [0, 1, 2] and ordered[0]["input_ids"].shape[1] <= recipe.max_len
    training = _news_batches(corpus.train, vocab, recipe, shuffle=True, transfer=True)
    batches = list(training)
    labelled = [b for b in batches if "labels" in b]
    unlabelled = [b for b in batches if "labels" not in b]
    assert sum(len(b["input_ids"]) for b in labelled) == len(corpus.train)
    assert unlabelled and len(batches) == len(training)
    assert all(b["mask"].sum(1).min() >= 1 for b in batches)
    assert [b["input_ids"].tolist() for b in batches] != [b["input_ids"].tolist() for b in training], \
        "a new order every epoch"
    with pytest.raises(ValueError, match="nothing to batch"):
        _news_batches([], vocab, recipe, shuffle=False)


def test_the_transfer_student_learns_from_soft_targets_alone_where_there_are_no_labels(corpus):
    torch.manual_seed(0)
    recipe = tiny_recipes()["teacher"]
    vocab = CharVocab.from_texts(item.text for item in corpus.train)
    teacher = SequenceClassifier(recipe.model_config(len(vocab)), num_classes=3).eval()
    student = SequenceClassifier(dataclasses.replace(recipe, d_model=8).model_config(len(vocab)), num_classes=3).eval()

    labelled, soft = Distiller(teacher, temperature=2.0, alpha=0.5), Distiller(teacher, temperature=2.0, alpha=0.0)
    loss = setup_method(tiny_recipes()["transfer_kd"], student=student, teacher=teacher, task_loss=None).loss_fn
    batch = _news_batches(corpus.train[:8], vocab, recipe, shuffle=False)[0]
    unlabelled = {key: value for key, value in batch.items() if key != "labels"}
    assert torch.equal(loss(student, batch), labelled(student, batch))
    assert torch.equal(loss(student, unlabelled), soft(student, unlabelled))


def test_course_recipes_give_every_student_the_teachers_windows_and_a_fraction_of_its_size():
    for mode in ("fast", "full"):
        recipes = {role: news_recipe(role, mode) for role in NEWS_ROLES}
        assert len({(r.max_len, r.epochs, r.train_items, r.transfer_windows) for r in recipes.values()}) == 1
        assert [r.method for r in recipes.values()] == ["labels", "labels", "logits", "transfer"]
        sizes = {role: count_parameters(SequenceClassifier(r.model_config(5000), 3)) for role, r in recipes.items()}
        assert sizes["scratch"] < 0.25 * sizes["teacher"], sizes
    with pytest.raises(ValueError, match="role must be one of"):
        news_recipe("assistant", "fast")


@pytest.mark.parametrize("field, value, match", [
    ("method", "mixup", "method must be one of"), ("alpha", 1.5, "alpha must be in"),
    ("temperature", 0, "temperature must be a number > 0"), ("max_len", 0, "max_len must be a positive int"),
    ("train_items", 0, "train_items must be a positive int or None"),
])
def test_bad_recipes_say_what_is_wrong(field, value, match):
    with pytest.raises(ValueError, match=match):
        _NewsRecipe(**{field: value})


def test_a_distilled_student_needs_its_teacher(corpus, context, model_cache):
    vocab = CharVocab.from_texts(item.text for item in corpus.train)
    with pytest.raises(ValueError, match="learns from a teacher"):
        news_model(context, "logit_kd", tiny_recipes()["logit_kd"], corpus, vocab, progress=False)
    too_many = dataclasses.replace(tiny_recipes()["teacher"], train_items=500)
    with pytest.raises(ValueError, match="exceeds the 180 training items"):
        news_model(context, "teacher", too_many, corpus, vocab, progress=False)


def test_the_comparison_trains_every_role_and_measures_it(corpus, context, model_cache):
    recipes = tiny_recipes()
    comparison = compare_news(context, corpus=corpus, recipes=recipes, latency_rounds=1, progress=False)
    rows = comparison.rows
    assert all(model.trained for model in comparison.models.values())
    again = compare_news(context, corpus=corpus, recipes=recipes, latency_rounds=1, progress=False)
    assert not any(model.trained for model in again.models.values()), "a second run loads every model from the cache"
    assert {role: row.macro_f1 for role, row in again.rows.items()} == {role: r.macro_f1 for role, r in rows.items()}
    assert list(rows) == list(NEWS_ROLES)
    assert rows["teacher"].accuracy > 0.9, "the cue characters make the task easy for the teacher"
    assert rows["transfer_kd"].training_windows > rows["logit_kd"].training_windows == len(corpus.train)
    assert rows["scratch"].parameters == rows["logit_kd"].parameters < rows["teacher"].parameters
    assert all(0 <= row.macro_f1 <= 1 and row.latency_batch1_ms > 0 for row in rows.values())
    assert set(rows["teacher"].per_class_f1) == {"positive", "neutral", "negative"}
    payload = json.loads(json.dumps(comparison.to_dict()))
    assert payload["split_sizes"] == {"train": 180, "dev": 45, "test": 60} and payload["train_items"] == 180
    assert payload["rows"]["teacher"]["dev_curve"] and "distilbert_2019" in payload
    fewer = {role: dataclasses.replace(recipe, train_items=90, epochs=1) for role, recipe in recipes.items()}
    smaller = compare_news(context, corpus=corpus, recipes=fewer, latency_rounds=1, progress=False)
    assert smaller.train_items == 90 and smaller.rows["logit_kd"].training_windows == 90
    with pytest.raises(ValueError, match="same train_items"):
        compare_news(context, corpus=corpus, recipes={**fewer, "scratch": recipes["scratch"]}, progress=False)
    with pytest.raises(ValueError, match="same max_len"):
        compare_news(context, corpus=corpus, recipes={**recipes, "scratch": dataclasses.replace(recipes["scratch"], max_len=8)},
                     progress=False)
