"""Tests for course_lib.nn.bigrams: hashed left/right bigram ids and features."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import LABELS
from course_lib.nn.bigrams import HashedBigrams, bigram_ids
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from course_lib.nn.transformer import TokenTagger, TransformerConfig


def test_each_character_gets_the_bigram_it_shares_with_each_neighbour():
    ids = torch.tensor([[5, 6, 7, 0], [6, 7, 0, 0]])
    mask = ids != 0
    left, right = bigram_ids(ids, mask, buckets=1000)
    assert torch.equal(left[:, 1:][mask[:, 1:]], right[:, :-1][mask[:, 1:]]), "'ab' is one bigram seen from a and b"
    assert right[0, 1] == right[1, 0] == left[0, 2] == left[1, 1], "the same pair of characters, the same bucket"
    assert bool((left[~mask] == 0).all() and (right[~mask] == 0).all()), "padding reads row 0"
    assert bool(((left[mask] >= 1) & (left[mask] < 1000)).all())
    assert right[1, 1] != right[0, 1], "a sentence end is a neighbour of its own"


def test_padding_changes_no_feature_of_a_real_character():
    torch.manual_seed(0)
    features = HashedBigrams(buckets=64, dim=8, out_dim=12)
    short = features(torch.tensor([[3, 4, 5]]), torch.ones(1, 3, dtype=torch.bool))
    padded = features(torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([[True] * 3 + [False] * 2]))
    assert torch.allclose(short, padded[:, :3])


@pytest.mark.parametrize("model", [
    lambda: TokenTagger(TransformerConfig(20, d_model=16, num_heads=2, num_layers=1, d_ff=32, bigram_buckets=64,
                                          bigram_dim=8), len(LABELS)),
    lambda: BiLSTMTagger(BiLSTMConfig(20, d_embed=16, hidden=8, bigram_buckets=64, bigram_dim=8), len(LABELS)),
])
def test_taggers_with_bigrams_learn_from_them(model):
    torch.manual_seed(0)
    tagger = model()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    mask = ids != 0
    tagger(ids, mask=mask).logits[mask].sum().backward()
    (bigrams,) = [module for module in tagger.modules() if isinstance(module, HashedBigrams)]
    assert bigrams.embed.weight.grad is not None and bigrams.embed.weight.grad.abs().sum() > 0


def test_bad_bigram_sizes_are_refused():
    with pytest.raises(ValueError, match="bigram_buckets"):
        TransformerConfig(20, bigram_buckets=1)
    with pytest.raises(ValueError, match="bigram_buckets"):
        BiLSTMConfig(20, bigram_buckets=-4)
