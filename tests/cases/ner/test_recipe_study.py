"""Tests for course_lib.cases.ner.recipe_study: one change per variant, and a small real study."""

from __future__ import annotations

import dataclasses

import pytest

from course_lib.cases.ner.recipe_study import (
    STUDY_VARIANTS,
    architecture_study,
    recipe_study,
    study_recipe,
    unknown_rate,
)
from course_lib.cases.ner.tagger import build_tagger
from course_lib.data import CharVocab, NerCorpus, load_msra
from course_lib.nn.rnn import BiLSTMTagger
from course_lib.nn.transformer import TokenTagger, count_parameters


@pytest.mark.parametrize("variant", [v for v in STUDY_VARIANTS if v != "sinusoidal"])
def test_each_variant_differs_from_the_base_only_in_what_it_studies(variant):
    base, changed = study_recipe("sinusoidal", "full"), study_recipe(variant, "full")
    differing = {f.name for f in dataclasses.fields(base) if getattr(base, f.name) != getattr(changed, f.name)}
    assert differing == set(STUDY_VARIANTS[variant][1])


def test_the_bilstm_and_the_transformer_of_the_study_are_about_the_same_size():
    sizes = {v: count_parameters(build_tagger(study_recipe(v, "full"), 4000)) for v in ("sinusoidal", "bilstm")}
    assert 0.75 < sizes["bilstm"] / sizes["sinusoidal"] < 1.25, sizes
    assert isinstance(build_tagger(study_recipe("bilstm", "full"), 40), BiLSTMTagger)
    assert isinstance(build_tagger(study_recipe("relative", "full"), 40), TokenTagger)


def test_a_small_real_study_scores_every_variant_with_both_decoders(model_cache, context):
    corpus = load_msra()
    study = recipe_study(context, variants=("relative", "bilstm_bigrams"), corpus=corpus, progress=False)
    assert set(study["rows"]) == {"relative", "bilstm_bigrams"}
    for row in study["rows"].values():
        assert 0 <= row["test_f1"] <= 1 and 0 <= row["test_f1_argmax"] <= 1 and len(row["dev_curve"]) == 1
    assert study["split_profile"]["test"]["sentences"] == len(corpus.test)
    assert 0 < study["unknown_rate"] < 0.05
    with pytest.raises(ValueError, match="variants must be"):
        recipe_study(context, variants=("sinusoidal", "crf"), corpus=corpus)


def test_unknown_rate_counts_characters_the_vocabulary_lacks():
    corpus = load_msra()
    assert unknown_rate(corpus, CharVocab.build(corpus.train)) < unknown_rate(corpus, CharVocab.build(corpus.train[:100]))


def test_the_architecture_study_tunes_each_learning_rate_then_trains_every_seed(model_cache, context):
    corpus = load_msra()
    small = NerCorpus(train=corpus.train, dev=corpus.dev[:200], test=corpus.test[:300])
    rates = (2e-3, 4e-3)
    study = architecture_study(context, variants=("sinusoidal", "bilstm"), learning_rates=rates, seeds=(0, 1),
                               corpus=small, progress=False)
    assert set(study["rows"]) == {"sinusoidal", "bilstm"} and study["seeds"] == [0, 1]
    for row in study["rows"].values():
        assert row["lr"] == max(rates, key=lambda lr: row["dev_f1_by_lr"][f"{lr:g}"]), "the best dev F1 picks the rate"
        per_seed = row["test_f1"]["per_seed"]
        assert len(per_seed) == 2 and all(0 <= f <= 1 for f in per_seed)
        assert row["test_f1"]["mean"] == pytest.approx(sum(per_seed) / 2, abs=1e-4)
    assert list(study["verdicts"]) == ["bilstm_vs_sinusoidal"]
    cached = sorted(path.name for path in (model_cache / "models").glob("ner_study_*.safetensors"))
    assert len(cached) == 6, "two rates at the first seed and the chosen rate at the second, per variant"
    assert {"ner_study_sinusoidal_fast.safetensors", "ner_study_bilstm_fast.safetensors"} <= set(cached), \
        "the study's own rate at seed 0 is the recipe study's model"


@pytest.mark.parametrize(("options", "message"), [
    ({"variants": ("sinusoidal", "crf")}, "variants must be"),
    ({"learning_rates": ()}, "at least one learning rate"),
    ({"learning_rates": (0.0,)}, "learning rate must be a number > 0"),
    ({"seeds": (1, 1)}, "seeds must be distinct"),
])
def test_the_architecture_study_refuses_bad_options(context, options, message):
    with pytest.raises(ValueError, match=message):
        architecture_study(context, **options)
