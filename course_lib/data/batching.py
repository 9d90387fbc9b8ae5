"""Batches of text: length buckets for taggers, shifted sequences for language models.

Length-bucketed batches: sentences of similar length share a batch, so little compute goes to padding.

MSRA sentences run from 1 to over 500 characters (median about 40). A random batch of 64 is
padded to its longest sentence, so most of its positions are padding; batching by length cuts
the cost of an epoch roughly in half. Randomness is kept where SGD needs it: every epoch the
sentences are shuffled, cut into pools, each pool is sorted by length and split into batches,
and the batch order is shuffled.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from course_lib.data.msra import IGNORE_INDEX, CharVocab, NerDataset, Sentence, collate_ner

BUCKET_POOL = 50  # batches per sorting pool


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of indices of similar length, in a seeded order that changes every epoch (chapter 04)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not lengths:
            raise ValueError("lengths is empty: there is nothing to batch")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        pool_size = self.batch_size * BUCKET_POOL
        batches: list[list[int]] = []
        for start in range(0, len(order), pool_size):
            pool = sorted(order[start : start + pool_size], key=self.lengths.__getitem__)
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return iter([batches[i] for i in shuffled])


def bucketed_ner_loader(
    sentences: Sequence[Sentence],
    vocab: CharVocab,
    batch_size: int,
    seed: int = 0,
    max_len: int | None = None,
) -> DataLoader:
    """A training DataLoader of padded NER batches built by :class:`LengthBucketSampler` (chapter 04)."""
    dataset = NerDataset(sentences, vocab, max_len=max_len)
    sampler = LengthBucketSampler([len(s) for s in sentences], batch_size, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_ner)


class TransferBatches:
    """Labelled batches and unlabelled ones, interleaved in a new seeded order every epoch (chapter 07).

    Every epoch yields each batch of ``labelled`` and of ``unlabelled`` once. An unlabelled batch
    loses its ``labels`` — a "transfer" loss then gives it the teacher's soft targets alone — and
    gets ``index_offset`` added to its ``index``, so that one cache of the teacher's logits over
    the labelled examples followed by the unlabelled ones finds every row.
    """

    def __init__(self, labelled: Iterable[Mapping[str, Tensor]], unlabelled: Iterable[Mapping[str, Tensor]],
                 index_offset: int, seed: int = 0) -> None:
        if index_offset < 0:
            raise ValueError(f"index_offset must be >= 0, got {index_offset}")
        self.labelled, self.unlabelled, self.index_offset = labelled, unlabelled, index_offset
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.labelled) + len(self.unlabelled)

    def _unlabelled(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        moved = {name: value for name, value in batch.items() if name != "labels"}
        moved["index"] = batch["index"] + self.index_offset
        return moved

    def __iter__(self) -> Iterator[Mapping[str, Tensor]]:
        order = [False] * len(self.labelled) + [True] * len(self.unlabelled)
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        self.epoch += 1
        labelled, unlabelled = iter(self.labelled), iter(self.unlabelled)
        for is_unlabelled in order:
            yield self._unlabelled(next(unlabelled)) if is_unlabelled else next(labelled)


def lm_batch(sequences: Sequence[Sequence[int]], bos_id: int, eos_id: int, pad_id: int = 0) -> dict[str, Tensor]:
    """Padded language-model batch: ``<s> seq`` as ``input_ids``, ``seq </s>`` as ``labels`` (chapter 04).

    ``mask`` is True on real input positions; padded label positions are ``IGNORE_INDEX``.
    """
    if not sequences:
        raise ValueError("cannot build a batch of no sequences")
    width = max(len(seq) for seq in sequences) + 1
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = list(seq)
        input_ids[row, : len(seq) + 1] = torch.tensor([bos_id, *seq], dtype=torch.long)
        labels[row, : len(seq) + 1] = torch.tensor([*seq, eos_id], dtype=torch.long)
    mask = labels != IGNORE_INDEX
    return {"input_ids": input_ids, "labels": labels, "mask": mask}
