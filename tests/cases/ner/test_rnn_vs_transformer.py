"""Tests for course_lib.cases.ner.rnn_vs_transformer: the BiLSTM's shape and cache, and a small real comparison."""

from __future__ import annotations

import json

import pytest

from course_lib.data import load_msra
from course_lib.cases.ner.demo import demo_recipe, demo_tagger
from course_lib.cases.ner.tagger import TaggerRecipe
from course_lib.nn.rnn import BiLSTMTagger
from course_lib.cases.ner.rnn_vs_transformer import (
    _bilstm_config,
    _bilstm_tagger,
    compare_rnn_transformer,
)
from course_lib.nn.transformer import TokenTagger, count_parameters

RECIPE = TaggerRecipe(d_model=16, num_heads=2, num_layers=1, d_ff=32, train_sentences=300, epochs=1, batch_size=16)


@pytest.fixture(scope="module")
def corpus():
    return load_msra()


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_the_bilstm_has_about_the_parameters_of_the_demo_transformer(mode):
    recipe = demo_recipe(mode)
    transformer = count_parameters(TokenTagger(recipe.model_config(4000), num_labels=7))
    bilstm = count_parameters(BiLSTMTagger(_bilstm_config(mode, recipe, 4000), num_labels=7))
    assert 0.8 < bilstm / transformer < 1.25, (bilstm, transformer)


def test_the_bilstm_trains_once_then_loads_from_the_cache(corpus, model_cache, context):
    vocab = demo_tagger(context, recipe=RECIPE, corpus=corpus, progress=False).vocab
    first = _bilstm_tagger(context, RECIPE, vocab, corpus=corpus, progress=False)
    assert first.trained and first.path.name == "bilstm_tagger_fast.safetensors" and 0 <= first.metrics["dev_f1"] <= 1
    second = _bilstm_tagger(context, RECIPE, vocab, corpus=corpus, progress=False)
    assert not second.trained and second.metrics == first.metrics
    other = _bilstm_tagger(context, RECIPE.__class__(**{**RECIPE.to_dict(), "seed": 1}), vocab, corpus=corpus,
                          progress=False)
    assert other.trained, "another recipe retrains"


def test_the_comparison_scores_and_times_both_architectures(corpus, model_cache, context):
    comparison = compare_rnn_transformer(context, corpus=corpus, recipe=RECIPE, lengths=(8, 32), latency_rounds=1,
                                         progress=False)
    rows = comparison.rows
    assert list(rows) == ["Transformer", "BiLSTM"]
    assert all(0 <= row.test_f1 <= 1 and set(row.per_type_f1) == {"PER", "LOC", "ORG"} for row in rows.values())
    assert all(set(row.latency_ms) == {8, 32} and min(row.latency_ms.values()) > 0 for row in rows.values())
    payload = json.loads(json.dumps(comparison.to_dict()))
    assert payload["recipe"] == RECIPE.to_dict() and set(payload["rows"]["BiLSTM"]["latency_ms"]) == {"8", "32"}
    with pytest.raises(ValueError, match="beyond the tagger's max_len=128"):
        compare_rnn_transformer(context, corpus=corpus, recipe=RECIPE, lengths=(8, 256), progress=False)
