"""Tests for course_lib.train.decoding: the BIO constraint and Viterbi decoding against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from course_lib.data import LABELS
from course_lib.train.decoding import argmax_decode, bio_transitions, decode_tags, viterbi_decode


def _valid(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def _brute_force(log_probs: torch.Tensor) -> list[int]:
    """The valid tag sequence of highest total log-probability, by trying every sequence."""
    best, best_score = None, -math.inf
    for sequence in itertools.product(range(len(LABELS)), repeat=log_probs.shape[0]):
        if _valid([LABELS[i] for i in sequence]):
            score = float(sum(log_probs[t, i] for t, i in enumerate(sequence)))
            if score > best_score:
                best, best_score = list(sequence), score
    return best


def test_the_transition_matrix_forbids_exactly_the_invalid_bio_steps():
    start, transition = bio_transitions(LABELS)
    assert [LABELS[j] for j in range(len(LABELS)) if start[j] == float("-inf")] == ["I-PER", "I-LOC", "I-ORG"]
    for i, previous in enumerate(LABELS):
        for j, tag in enumerate(LABELS):
            allowed = not tag.startswith("I-") or previous[2:] == tag[2:]
            assert (transition[i, j] == 0) == allowed, (previous, tag)


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_finds_the_best_valid_sequence(seed):
    torch.manual_seed(seed)
    lengths = [4, 2, 3]
    logits = torch.randn(3, 4, len(LABELS)) * 3
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    decoded = viterbi_decode(logits, mask, LABELS)
    for row, n in enumerate(lengths):
        assert decoded[row] == _brute_force(torch.log_softmax(logits[row, :n], dim=-1))
        assert _valid([LABELS[i] for i in decoded[row]])


def test_viterbi_repairs_an_orphan_inside_tag_and_keeps_valid_argmax():
    probs = torch.tensor([[0.6, 0.1, 0.2, 0.02, 0.03, 0.02, 0.03],   # O beats B-PER
                          [0.1, 0.05, 0.7, 0.05, 0.04, 0.03, 0.03],  # I-PER, strongly
                          [0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01]])
    logits = probs.log().unsqueeze(0)
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert decode_tags(logits, mask, LABELS, "argmax") == [["O", "I-PER", "O"]]
    assert decode_tags(logits, mask, LABELS, "viterbi") == [["B-PER", "I-PER", "O"]]
    valid = torch.randn(1, 3, len(LABELS))
    valid[0, :, 0] += 20  # every token clearly O: both decoders agree
    assert viterbi_decode(valid, mask, LABELS) == argmax_decode(valid, mask, LABELS) == [[0, 0, 0]]


def test_decoders_reject_bad_input():
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="decoder must be one of"):
        decode_tags(torch.zeros(1, 3, 7), mask, LABELS, "beam")
    with pytest.raises(ValueError, match="7 labels"):
        viterbi_decode(torch.zeros(1, 3, 5), mask, LABELS)
    with pytest.raises(TypeError, match="bool"):
        viterbi_decode(torch.zeros(1, 3, 7), mask.long(), LABELS)
    with pytest.raises(ValueError, match="prefix"):
        viterbi_decode(torch.zeros(1, 3, 7), torch.tensor([[True, False, True]]), LABELS)
    with pytest.raises(ValueError, match="not a BIO label"):
        viterbi_decode(torch.zeros(1, 3, 2), mask, ["O", "X-PER"])
