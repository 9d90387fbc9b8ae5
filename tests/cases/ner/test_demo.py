"""Tests for course_lib.cases.ner.demo: the cached demo tagger and its recipes."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import load_msra
from course_lib.cases.ner.demo import demo_recipe, demo_tagger
from course_lib.cases.ner.tagger import TaggerRecipe
from course_lib.train.fit import Trained

TINY = TaggerRecipe(d_model=16, num_heads=2, d_ff=32, train_sentences=300, batch_size=16)


@pytest.fixture(scope="module")
def corpus():
    return load_msra()


def logits_of(demo: Trained, text: str = "新华社北京十月一日电") -> torch.Tensor:
    ids = torch.tensor([demo.vocab.encode(list(text))])
    with torch.no_grad():
        return demo.model(ids).logits


def test_demo_tagger_trains_once_then_loads_the_cache(corpus, model_cache, context):
    threads = torch.get_num_threads()
    first = demo_tagger(context, recipe=TINY, corpus=corpus, progress=False)
    assert torch.get_num_threads() == threads, "training must restore the thread count it changed"
    assert first.trained and first.history is not None
    assert first.path == model_cache / "models" / "demo_tagger_sinusoidal_fast.safetensors" and first.path.is_file()
    assert 0.0 <= first.metrics["dev_f1"] <= 1.0 and first.seconds > 0
    assert not first.model.training
    assert first.model.config.d_model == 16 and first.model.config.positional == "sinusoidal"

    second = demo_tagger(context, recipe=TINY, corpus=corpus, progress=False)
    assert not second.trained and second.history is None
    assert not second.model.training
    assert second.metrics == first.metrics
    assert second.seconds == pytest.approx(first.seconds, abs=1e-3)
    assert second.vocab.tokens() == first.vocab.tokens()
    torch.testing.assert_close(logits_of(second), logits_of(first))


def test_a_changed_recipe_retrains_instead_of_loading_a_stale_model(corpus, model_cache, context):
    demo_tagger(context, recipe=TINY, corpus=corpus, progress=False)
    changed = TaggerRecipe(**{**TINY.to_dict(), "train_sentences": 200})
    again = demo_tagger(context, recipe=changed, corpus=corpus, progress=False)
    assert again.trained and again.recipe == changed


def test_positional_variants_are_cached_side_by_side(corpus, model_cache, context):
    recipe = TaggerRecipe(**{**TINY.to_dict(), "positional": "none", "train_sentences": 100})
    demo = demo_tagger(context, recipe=recipe, corpus=corpus, progress=False)
    assert demo.path.name == "demo_tagger_none_fast.safetensors"
    assert demo.model.config.positional == "none"


def test_demo_recipes_of_the_two_modes():
    fast, full = demo_recipe("fast"), demo_recipe("full", positional="learned")
    assert fast.num_layers == full.num_layers == 2 and fast.num_heads == full.num_heads == 4
    assert 64 <= fast.d_model <= full.d_model <= 128
    assert fast.train_sentences is not None and full.train_sentences is None
    assert full.positional == "learned" and full.patience is not None
    config = fast.model_config(vocab_size=100)
    assert (config.vocab_size, config.d_model, config.positional) == (100, 64, "sinusoidal")


def test_bad_arguments_are_rejected(context):
    with pytest.raises(ValueError, match="mode must be one of"):
        demo_recipe("medium")
    with pytest.raises(ValueError, match="positional must be one of"):
        TaggerRecipe(positional="rotary")
    with pytest.raises(ValueError, match="train_sentences must be a positive int or None"):
        TaggerRecipe(train_sentences=0)
    with pytest.raises(TypeError, match="context must be the CourseContext"):
        demo_tagger("fast")
    with pytest.raises(ValueError, match="contradicts recipe.positional"):
        demo_tagger(context, positional="none", recipe=TINY)
    with pytest.raises(TypeError, match="recipe must be a TaggerRecipe"):
        demo_tagger(context, recipe={"d_model": 16})
