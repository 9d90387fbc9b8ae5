"""A start/end span extractor: the course's encoder with two binary heads per token (chapter 09).

Extractive question answering reads ``[CLS] question [SEP] passage`` and marks, at every
passage position, whether an answer starts there and whether one ends there. Like Li et al.
2020 (the MRC framework for NER), each head is a binary (sigmoid) decision per token rather
than a softmax over positions, so a question can have no answer or several. Positions outside
the passage (the question, the separators, padding) can never be answers: the
``passage_mask`` sets their logits to :data:`NOT_AN_ANSWER`, whose sigmoid is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.nn.transformer import ModelOutput, TransformerConfig, TransformerEncoder

NOT_AN_ANSWER = -1e4
"""The start and end logit of every position outside the passage: sigmoid(-1e4) is 0, also in half precision."""


@dataclass
class SpanOutput(ModelOutput):
    """The encoder's :class:`ModelOutput` plus per-token start and end logits, each (B, L) (chapter 09).

    ``logits`` holds both, stacked last: (B, L, 2) with ``[..., 0]`` the start and ``[..., 1]``
    the end logit, so the course's distillation tools (which read ``output.logits``) see them.
    """

    start_logits: Tensor | None = None
    end_logits: Tensor | None = None


class SpanExtractor(nn.Module):
    """Encoder + dropout + two Linear heads: a start and an end logit per token, binary each (chapter 09)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.start_head = nn.Linear(config.d_model, 1)
        self.end_head = nn.Linear(config.d_model, 1)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None, passage_mask: Tensor | None = None) -> SpanOutput:
        """Start and end logits (B, L) for ``input_ids`` (B, L); outside ``passage_mask`` they are :data:`NOT_AN_ANSWER`.

        ``mask`` (B, L) bool is True on real tokens (None: not ``pad_id``); ``passage_mask``
        (B, L) bool is True where an answer may start or end (None: every real token).
        """
        encoded = self.encoder(input_ids, mask)
        allowed = encoded.mask if passage_mask is None else _checked_passage(passage_mask, encoded.mask)
        hidden = self.dropout(encoded.hidden[-1])
        start = self.start_head(hidden).squeeze(-1).masked_fill(~allowed, NOT_AN_ANSWER)
        end = self.end_head(hidden).squeeze(-1).masked_fill(~allowed, NOT_AN_ANSWER)
        return SpanOutput(logits=torch.stack([start, end], dim=-1), hidden=encoded.hidden,
                          attention=encoded.attention, mask=encoded.mask, start_logits=start, end_logits=end)


def _checked_passage(passage_mask: Tensor, mask: Tensor) -> Tensor:
    """``passage_mask`` if it is a bool (B, L) tensor marking real tokens only, else a clear error."""
    if not isinstance(passage_mask, Tensor) or passage_mask.dtype != torch.bool:
        got = passage_mask.dtype if isinstance(passage_mask, Tensor) else type(passage_mask).__name__
        raise TypeError(f"passage_mask must be a boolean tensor (True on passage tokens), got {got}")
    if passage_mask.shape != mask.shape:
        raise ValueError(f"passage_mask must have the shape of input_ids {tuple(mask.shape)}, "
                         f"got {tuple(passage_mask.shape)}")
    if bool((passage_mask & ~mask).any()):
        raise ValueError("passage_mask marks padding as passage: a padded position can never be an answer")
    return passage_mask
