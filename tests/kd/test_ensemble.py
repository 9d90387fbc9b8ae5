"""Tests for course_lib.kd.ensemble: averaged probabilities as logits, layers of the first member."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import LABELS
from course_lib.kd.distiller import Distiller
from course_lib.kd.ensemble import EnsembleTagger
from course_lib.nn.rnn import BiLSTMConfig, BiLSTMTagger
from tests.kd import tagger


def _members():
    torch.manual_seed(1)
    return [tagger(2).eval(), BiLSTMTagger(BiLSTMConfig(50, d_embed=16, hidden=8), num_labels=len(LABELS)).eval()]


def test_the_ensemble_predicts_the_mean_of_its_members_probabilities():
    members = _members()
    ensemble = EnsembleTagger(members)
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    mask = ids != 0
    output = ensemble(ids, mask=mask)
    expected = torch.stack([member(ids, mask=mask).logits.softmax(-1) for member in members]).mean(0)
    assert torch.allclose(output.logits.softmax(-1), expected, atol=1e-6)
    assert torch.allclose(output.logits.exp().sum(-1), torch.ones(2, 4), atol=1e-5), "log of a distribution"
    first = members[0](ids, mask=mask)
    assert len(output.attention) == len(first.attention) and torch.equal(output.hidden[-1], first.hidden[-1])


def test_an_ensemble_teaches_like_a_single_teacher():
    ensemble = EnsembleTagger(_members())
    ids = torch.tensor([[3, 4, 5, 6]])
    batch = {"input_ids": ids, "mask": ids != 0, "labels": torch.tensor([[0, 1, 2, 0]])}
    loss = Distiller(ensemble, temperature=2.0, alpha=0.5)(tagger(1, seed=3), batch)
    loss.backward()
    assert torch.isfinite(loss) and all(not p.requires_grad for p in ensemble.parameters())


def test_an_ensemble_of_one_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        EnsembleTagger([tagger(1)])
