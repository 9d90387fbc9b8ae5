"""Tests for course_lib.data.batching: length-bucketed batches of MSRA sentences, and labelled batches mixed with unlabelled ones."""

from __future__ import annotations

import pytest

import torch

from course_lib.data import CharVocab, LengthBucketSampler, Sentence, TransferBatches, bucketed_ner_loader, ner_loader


def test_length_bucket_sampler_covers_every_sentence_once_per_epoch():
    lengths = [(7 * i) % 50 + 1 for i in range(1000)]
    sampler = LengthBucketSampler(lengths, batch_size=10, seed=3)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 100
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(1000))
    assert first != second, "each epoch must see a new order"
    assert list(LengthBucketSampler(lengths, batch_size=10, seed=3)) == first
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 5, "sentences in a batch should have similar lengths"


@pytest.mark.parametrize(
    "lengths, batch_size, error",
    [([3, 4], 0, "batch_size must be at least 1"), ([], 4, "lengths is empty")],
)
def test_length_bucket_sampler_rejects_bad_arguments(lengths, batch_size, error):
    with pytest.raises(ValueError, match=error):
        LengthBucketSampler(lengths, batch_size=batch_size)


def _sentences(count: int) -> list[Sentence]:
    chars = "甲乙丙丁戊己庚辛"
    return [Sentence(list(chars[: i % 8 + 1]), ["O"] * (i % 8 + 1)) for i in range(count)]


def test_bucketed_loader_pads_less_than_random_batches():
    sentences = _sentences(400)
    vocab = CharVocab.build(sentences)

    def padded_positions(loader) -> int:
        return sum(int((~batch["mask"]).sum()) for batch in loader)

    bucketed = bucketed_ner_loader(sentences, vocab, batch_size=16, seed=0)
    seen = sorted(int(n) for batch in bucketed for n in batch["lengths"])
    assert seen == sorted(len(s) for s in sentences)
    assert padded_positions(bucketed) < padded_positions(ner_loader(sentences, vocab, batch_size=16, shuffle=True)) / 4


def test_bucketed_loader_enforces_max_len():
    with pytest.raises(ValueError, match="longer than max_len=4"):
        bucketed_ner_loader(_sentences(20), CharVocab.build(_sentences(20)), batch_size=4, max_len=4)


def test_transfer_batches_yield_every_batch_once_and_unlabelled_ones_without_labels_past_the_offset():
    labelled = [Sentence(list("北京是首都"), ["B-LOC", "I-LOC", "O", "O", "O"])] * 6
    unlabelled = [Sentence(list("上海很好"), ["O"] * 4)] * 4
    vocab = CharVocab.build(labelled + unlabelled)
    batches = TransferBatches(ner_loader(labelled, vocab, 2, shuffle=False), ner_loader(unlabelled, vocab, 2, shuffle=False),
                              index_offset=6, seed=1)
    first = list(batches)
    assert len(batches) == len(first) == 5
    indices = sorted(int(i) for batch in first for i in batch["index"])
    assert indices == list(range(10)), "labelled rows keep 0..5, unlabelled ones follow from the offset"
    assert all(("labels" in batch) == bool((batch["index"] < 6).all()) for batch in first)
    rows = [{"labels": torch.zeros(1), "index": torch.tensor([row])} for row in range(3)]
    orders = {tuple("labels" in batch for batch in TransferBatches(rows, rows, 3, seed=seed)) for seed in range(8)}
    assert len(orders) > 1, "the order of labelled and unlabelled batches is drawn, not fixed"
    with pytest.raises(ValueError, match="index_offset"):
        TransferBatches([], [], index_offset=-1)
