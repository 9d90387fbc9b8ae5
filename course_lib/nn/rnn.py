"""A bidirectional LSTM tagger: the recurrent baseline the Transformer is compared with (chapter 10).

Before Transformers, sequence labelling ran on BiLSTMs (Huang et al. 2015; Lample et al. 2016
add a CRF on top). :class:`BiLSTMTagger` reads characters through an embedding, runs one
LSTM left-to-right and one right-to-left over the real characters only (padding is packed away,
so it never reaches a real position), concatenates their states and classifies each character.
It returns the same :class:`~course_lib.nn.transformer.ModelOutput` as the course's Transformer
taggers, so ``fit_tagger``, ``evaluate_tagger`` and the latency tools take it unchanged. The
difference that matters in the comparison: an LSTM walks the sentence one step at a time, a
Transformer layer reads all positions at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib import checks
from course_lib.nn.bigrams import HashedBigrams
from course_lib.nn.transformer import ModelOutput


@dataclass
class BiLSTMConfig:
    """Sizes of a :class:`BiLSTMTagger`: ``hidden`` units per direction, ``num_layers`` stacked BiLSTMs (chapter 10).

    ``bigram_buckets > 0`` adds hashed bigram features (:class:`~course_lib.nn.bigrams.HashedBigrams`,
    width ``bigram_dim``, projected to ``d_embed``) beside each character's embedding.
    """

    vocab_size: int
    d_embed: int = 64
    hidden: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    pad_id: int = 0
    bigram_buckets: int = 0
    bigram_dim: int = 64

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_embed", "hidden", "num_layers", "bigram_dim"):
            checks.positive_int(name, getattr(self, name))
        if self.bigram_buckets != 0:
            checks.int_at_least("bigram_buckets (0: no bigram features)", self.bigram_buckets, 2)
        checks.number_in("dropout", self.dropout, 0.0, 1.0, high_open=True)
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must lie in [0, vocab_size={self.vocab_size}), got {self.pad_id}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict."""
        return dataclasses.asdict(self)


class BiLSTMTagger(nn.Module):
    """Embedding (+ bigrams) -> BiLSTM over the real characters -> dropout -> Linear: logits (B, L, num_labels) (chapter 10)."""

    def __init__(self, config: BiLSTMConfig, num_labels: int) -> None:
        super().__init__()
        if not isinstance(config, BiLSTMConfig):
            raise TypeError(f"config must be a BiLSTMConfig, got {type(config).__name__}")
        checks.positive_int("num_labels", num_labels)
        self.config = config
        self.num_labels = num_labels
        self.embed = nn.Embedding(config.vocab_size, config.d_embed, padding_idx=config.pad_id)
        self.bigrams = (HashedBigrams(config.bigram_buckets, config.bigram_dim, config.d_embed)
                        if config.bigram_buckets else None)
        self.lstm = nn.LSTM(config.d_embed * (2 if self.bigrams is not None else 1), config.hidden, num_layers=config.num_layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.hidden, num_labels)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Tag ``input_ids`` (B, L); ``mask`` (B, L) bool, True on real characters (default: not ``pad_id``).

        Real characters must come first in each row (right padding), as ``collate_ner`` pads.
        """
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a 2-D (batch, length) tensor, got {getattr(input_ids, 'shape', input_ids)}")
        if mask is None:
            mask = input_ids != self.config.pad_id
        if mask.dtype != torch.bool or mask.shape != input_ids.shape:
            raise ValueError(f"mask must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}")
        lengths = mask.sum(dim=1)
        if bool((lengths == 0).any()):
            raise ValueError("every sequence needs at least one real character")
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if not torch.equal(mask, positions[None, :] < lengths[:, None]):
            raise ValueError("the padding must follow the real characters in each row (right padding)")
        embedded = self.embed(input_ids)
        if self.bigrams is not None:
            embedded = torch.cat([embedded, self.bigrams(input_ids, mask)], dim=-1)
        embedded = self.dropout(embedded)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=input_ids.shape[1])
        logits = self.classifier(self.dropout(states))
        return ModelOutput(logits=logits, hidden=[embedded, states], attention=[], mask=mask)
