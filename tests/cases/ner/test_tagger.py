"""Tests for course_lib.cases.ner.tagger: one training path for every MSRA tagger of the course."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import LABELS, CharVocab, load_msra
from course_lib.kd.distiller import Distiller
from course_lib.cases.ner.tagger import TaggerRecipe
from course_lib.cases.ner.tagger import fit_tagger
from course_lib.nn.transformer import TokenTagger

RECIPE = TaggerRecipe(d_model=16, num_heads=2, num_layers=1, d_ff=32, train_sentences=200, epochs=2, batch_size=16)


@pytest.fixture(scope="module")
def data():
    corpus = load_msra()
    train, dev = corpus.train[:200], corpus.dev[:60]
    return train, dev, CharVocab.build(train)


def tagger(vocab: CharVocab, recipe: TaggerRecipe = RECIPE) -> TokenTagger:
    torch.manual_seed(0)
    return TokenTagger(recipe.model_config(len(vocab)), num_labels=len(LABELS))


def test_fit_records_one_dev_f1_per_epoch_and_keeps_the_best(data):
    train, dev, vocab = data
    model = tagger(vocab)
    before = [p.detach().clone() for p in model.parameters()]
    fit = fit_tagger(model, RECIPE, train, dev, vocab, progress=False)
    assert len(fit.metrics["dev_curve"]) == RECIPE.epochs == len(fit.history.epochs)
    assert fit.metrics["dev_f1"] == max(fit.metrics["dev_curve"]) and 0.0 <= fit.metrics["dev_f1"] <= 1.0
    assert fit.seconds > 0 and not model.training
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_the_same_seed_gives_the_same_training(data):
    train, dev, vocab = data
    first, second = tagger(vocab), tagger(vocab)
    fit_tagger(first, RECIPE, train, dev, vocab, progress=False)
    fit_tagger(second, RECIPE, train, dev, vocab, progress=False)
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b)


def test_a_distillation_loss_and_its_extra_parameters_are_optimised(data):
    train, dev, vocab = data
    teacher = tagger(vocab).eval()
    student = tagger(vocab, TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16))
    extra = torch.nn.Parameter(torch.ones(3))

    def loss(model, batch):
        return Distiller(teacher, temperature=2.0, alpha=0.5)(model, batch) + (extra - 2).pow(2).sum()

    teacher_before = [p.detach().clone() for p in teacher.parameters()]
    fit_tagger(student, RECIPE, train, dev, vocab, loss_fn=loss, extra_parameters=[extra], progress=False)
    assert not torch.allclose(extra.detach(), torch.ones(3)), "extra parameters must be optimised"
    for a, b in zip(teacher_before, teacher.parameters()):
        assert torch.equal(a, b), "the teacher must not change"


def test_bad_arguments_are_rejected(data):
    train, dev, vocab = data
    model = tagger(vocab)
    with pytest.raises(TypeError, match="CharVocab"):
        fit_tagger(model, RECIPE, train, dev, {"a": 1}, progress=False)
    with pytest.raises(ValueError, match="training and dev sentences"):
        fit_tagger(model, RECIPE, [], dev, vocab, progress=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fit_tagger("model", RECIPE, train, dev, vocab, progress=False)
