"""An ensemble as the teacher: several taggers averaged into one set of soft targets (chapter 07).

Hinton, Vinyals and Dean (2015) introduce distillation to compress an *ensemble* into one small
model: averaging the predictions of differently built models cancels part of each one's
errors, and a student can learn the average. :class:`EnsembleTagger` averages its members'
per-character probabilities and returns their logarithm as logits, so every loss, decoder and
distiller of the course takes it as it takes one tagger. Its hidden states and attention maps
are those of its first member, so a layer map (TinyBERT) still has a Transformer to point at.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_lib.nn.transformer import ModelOutput


class EnsembleTagger(nn.Module):
    """Mean of the members' probabilities, as logits (log of the mean); layers of the first member (chapter 07)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2 or not all(isinstance(member, nn.Module) for member in members):
            raise ValueError(f"an ensemble needs at least two taggers (torch.nn.Module), got {len(members)}")
        self.members = nn.ModuleList(members)
        self.config = getattr(members[0], "config", None)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Tag ``input_ids`` (B, L) with every member and average their probabilities."""
        outputs = [member(input_ids, mask=mask) for member in self.members]
        for index, output in enumerate(outputs[1:], start=1):
            if output.logits.shape != outputs[0].logits.shape:
                raise ValueError(f"member {index} gives logits of shape {tuple(output.logits.shape)}, member 0 "
                                 f"{tuple(outputs[0].logits.shape)}: every member must tag with the same labels")
        log_probs = torch.stack([torch.log_softmax(output.logits.float(), dim=-1) for output in outputs])
        averaged = torch.logsumexp(log_probs, dim=0) - torch.log(torch.tensor(float(len(outputs))))
        first = outputs[0]
        return ModelOutput(logits=averaged, hidden=first.hidden, attention=first.attention, mask=first.mask)
