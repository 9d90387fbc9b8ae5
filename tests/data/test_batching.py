"""Tests for course_lib.data.batching: length-bucketed batches of MSRA sentences."""

from __future__ import annotations

import pytest

from course_lib.data import CharVocab, LengthBucketSampler, Sentence, bucketed_ner_loader, ner_loader


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
