"""Tests for course_lib.train.teacher_forcing: the shifted decoder input and the label-smoothed loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.train.teacher_forcing import label_smoothed_cross_entropy, shift_right

VOCAB = 20


def test_shift_right_feeds_bos_and_the_previous_labels():
    labels = torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]])
    assert shift_right(labels).tolist() == [[1, 5, 6, 7], [1, 8, 2, 0]]
    assert shift_right(labels, bos_id=9)[:, 0].tolist() == [9, 9]
    with pytest.raises(ValueError, match="2-D"):
        shift_right(labels[0])
    with pytest.raises(TypeError, match="integer tensor"):
        shift_right(labels.float())


def test_label_smoothed_loss_ignores_padding_and_matches_the_formula():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 4, VOCAB), torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]])
    plain = label_smoothed_cross_entropy(logits, labels, smoothing=0.0)
    real = labels != 0
    torch.testing.assert_close(plain, F.cross_entropy(logits[real], labels[real]))
    noisy = logits.clone()
    noisy[1, 2:] = 100.0
    smoothed = label_smoothed_cross_entropy(logits, labels)
    torch.testing.assert_close(label_smoothed_cross_entropy(noisy, labels), smoothed)
    log_probs = logits[real].log_softmax(-1)
    expected = 0.9 * F.nll_loss(log_probs, labels[real]) - 0.1 * log_probs.mean(-1).mean()
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, labels, smoothing=0.1), expected)
    with pytest.raises(ValueError, match=r"smoothing must be a number in \[0, 1\)"):
        label_smoothed_cross_entropy(logits, labels, smoothing=1.0)
    with pytest.raises(ValueError, match="expected logits"):
        label_smoothed_cross_entropy(logits, labels[:, :3])
