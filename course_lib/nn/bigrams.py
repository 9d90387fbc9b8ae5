"""Character bigrams as input features, hashed into a fixed table (chapter 07).

Chinese words are mostly two characters long, so the pair a character forms with its left and
right neighbour says much about where an entity starts and ends; Chinese NER taggers have read
bigram embeddings beside character embeddings since Zhang & Yang (2018). A vocabulary of every
bigram in MSRA would hold hundreds of thousands of entries; here each bigram is hashed into one
of ``buckets`` rows (the hashing trick of fastText), so the table has a fixed size, needs no
vocabulary file, and a bigram never seen in training still gets a row (shared with others).

:class:`HashedBigrams` reads only the character ids the model already gets, so every trainer,
distiller and exporter of the course takes a model with bigrams unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib import checks

_MULTIPLIER = 1_000_003  # a prime: pairs (a, b) and (a', b') rarely share a bucket


def bigram_ids(input_ids: Tensor, mask: Tensor, buckets: int) -> tuple[Tensor, Tensor]:
    """Hashed ids of the bigrams each character forms with its left and right neighbour (chapter 07).

    Returns ``(left, right)``, each (B, L) in ``[1, buckets)``; 0 at padded positions. The
    sentence boundary counts as a neighbour (id 0), so the first and last characters get
    bigrams of their own.
    """
    ids = input_ids.long() * mask.long()
    zeros = torch.zeros_like(ids[:, :1])
    previous = torch.cat([zeros, ids[:, :-1]], dim=1)
    following = torch.cat([ids[:, 1:], zeros], dim=1)

    def hashed(first: Tensor, second: Tensor) -> Tensor:
        return ((first * _MULTIPLIER + second) % (buckets - 1) + 1) * mask.long()

    return hashed(previous, ids), hashed(ids, following)


class HashedBigrams(nn.Module):
    """Left and right bigram embeddings of every character, projected to ``out_dim``: (B, L, out_dim) (chapter 07)."""

    def __init__(self, buckets: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.buckets = checks.int_at_least("buckets", buckets, 2)
        self.embed = nn.Embedding(buckets, checks.positive_int("dim", dim), padding_idx=0)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.project = nn.Linear(2 * dim, checks.positive_int("out_dim", out_dim))

    def forward(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        """The bigram features of ``input_ids`` (B, L); ``mask`` (B, L) bool, True on real characters."""
        left, right = bigram_ids(input_ids, mask, self.buckets)
        return self.project(torch.cat([self.embed(left), self.embed(right)], dim=-1))
