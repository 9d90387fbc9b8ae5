"""Tests for course_lib.train.cache: a model is trained once, loaded after, retrained only when what made it changed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from course_lib.data import CharVocab
from course_lib.train.cache import _cache_key, load_or_train, model_path
from course_lib.train.fit import Trained
from course_lib.train.recipe import Recipe


class Counted:
    """A build and a train function that count how often each runs."""

    def __init__(self) -> None:
        self.built = self.trained = 0

    def build(self, vocab: CharVocab | None) -> nn.Module:
        self.built += 1
        torch.manual_seed(0)
        model = nn.Linear(len(vocab) if vocab else 3, 2)
        model.config = {"in": model.in_features}
        return model

    def train(self, model: nn.Module, vocab: CharVocab | None) -> Trained:
        self.trained += 1
        with torch.no_grad():
            model.weight.add_(1.0)
        return Trained(model=model, recipe=Recipe(), metrics={"score": 0.5, "curve": [0.1, 0.5]}, seconds=1.25)


def test_a_model_is_trained_once_then_loaded_with_its_metrics_and_vocabulary(tmp_path):
    path, recipe, counted = tmp_path / "m.safetensors", Recipe(lr=1e-2), Counted()
    vocab = CharVocab(list("abc"))
    first = load_or_train(path, recipe, build=counted.build, train=counted.train, vocab=lambda: vocab,
                          depends_on={"data": "digest-1"})
    assert first.trained and first.path == path and path.is_file() and first.vocab is vocab
    second = load_or_train(path, recipe, build=counted.build, train=counted.train, vocab=lambda: pytest.fail("no vocab"),
                           depends_on={"data": "digest-1"})
    assert (counted.built, counted.trained) == (2, 1), "the loaded model is built, not trained"
    assert not second.trained and second.recipe == recipe and second.metrics == first.metrics
    assert second.seconds == 1.25 and second.vocab.tokens() == vocab.tokens() and not second.model.training
    assert torch.equal(second.model.weight, first.model.weight)


def test_another_recipe_or_another_input_retrains(tmp_path):
    path, counted = tmp_path / "m.safetensors", Counted()
    source = tmp_path / "teacher.bin"
    source.write_bytes(b"one")
    load_or_train(path, Recipe(), build=counted.build, train=counted.train, depends_on={"teacher": source})
    load_or_train(path, dataclasses.replace(Recipe(), seed=1), build=counted.build, train=counted.train,
                  depends_on={"teacher": source})
    source.write_bytes(b"two")
    load_or_train(path, dataclasses.replace(Recipe(), seed=1), build=counted.build, train=counted.train,
                  depends_on={"teacher": source})
    assert counted.trained == 3


def test_the_key_is_the_fingerprint_and_the_digests(tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("x", encoding="utf-8")
    key = _cache_key(Recipe(), {"data": source, "vocab": "abc"})
    assert key["recipe"] == Recipe().fingerprint() and key["depends_on"]["vocab"] == "abc"
    assert len(key["depends_on"]["data"]) == 64


def test_model_paths_live_in_the_cache(model_cache):
    assert model_path("ner_teacher", "fast") == model_cache / "models" / "ner_teacher_fast.safetensors"
    with pytest.raises(ValueError, match="mode must be one of"):
        model_path("ner_teacher", "slow")


def test_a_file_that_is_no_course_checkpoint_is_trained_over(tmp_path):
    path, counted = tmp_path / "m.safetensors", Counted()
    path.write_bytes(b"not a checkpoint")
    trained = load_or_train(path, Recipe(), build=counted.build, train=counted.train)
    assert trained.trained and counted.trained == 1 and path.stat().st_size > 100
