"""Tests for course_lib.nn.rnn: the BiLSTM tagger baseline."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import LABELS, CharVocab, load_msra, ner_loader
from course_lib.train.tagging import evaluate_tagger
from course_lib.cases.ner.tagger import TaggerRecipe
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from course_lib.cases.ner.tagger import fit_tagger


def tagger(**overrides) -> BiLSTMTagger:
    torch.manual_seed(0)
    return BiLSTMTagger(BiLSTMConfig(vocab_size=50, d_embed=8, hidden=6, dropout=0.0, **overrides), len(LABELS)).eval()


def test_logits_have_one_row_per_character_and_padding_changes_nothing():
    model = tagger()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    logits = model(ids).logits
    assert logits.shape == (2, 4, len(LABELS))
    alone = model(torch.tensor([[9, 10]])).logits
    torch.testing.assert_close(logits[1, :2], alone[0], rtol=0, atol=1e-6)


def test_the_backward_direction_reads_the_right_context():
    model = tagger()
    a = model(torch.tensor([[5, 6, 7]])).logits
    b = model(torch.tensor([[5, 6, 9]])).logits
    assert not torch.allclose(a[0, 0], b[0, 0]), "the first character's tag sees the last character"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hidden": 0}, "hidden must be a positive int"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ({"pad_id": 50}, "pad_id must lie in"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiLSTMConfig(vocab_size=50, **kwargs)


def test_bad_inputs_are_refused():
    model = tagger()
    with pytest.raises(ValueError, match="2-D"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="at least one real character"):
        model(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="right padding"):
        model(torch.tensor([[5, 6]]), mask=torch.tensor([[False, True]]))


def test_it_learns_real_msra_sentences_with_the_course_training_path():
    corpus = load_msra()
    sentences = [s for s in corpus.train[:300] if len(s) <= 60]
    vocab = CharVocab.build(sentences)
    torch.manual_seed(0)
    model = BiLSTMTagger(BiLSTMConfig(vocab_size=len(vocab), d_embed=32, hidden=32), len(LABELS))
    loader = ner_loader(sentences[:100], vocab, batch_size=50, shuffle=False)
    before = evaluate_tagger(model, loader)["token_accuracy"]
    recipe = TaggerRecipe(train_sentences=None, epochs=3, batch_size=16, lr=1e-2, max_len=128)
    fit = fit_tagger(model, recipe, sentences, sentences[:100], vocab, progress=False)
    assert len(fit.metrics["dev_curve"]) == 3
    assert evaluate_tagger(model, loader)["token_accuracy"] > max(before, 0.85), "most characters are O: learn that"
