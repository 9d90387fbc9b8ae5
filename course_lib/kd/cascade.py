"""The source document's "cascade" student, done correctly: a small tagger that reads the teacher's hidden states.

Seed ``002`` builds its NER "student" on top of the teacher: the student takes the teacher's
last hidden states as input instead of the characters. Written out so that it runs,
:class:`CascadeTagger` holds the (frozen) teacher, a projection from the teacher's width to the
student's, a few Transformer blocks and a classifier. It is a legitimate model — a small head
fine-tuned on frozen features — but not a compressed one: every prediction still runs the whole
teacher first, so it can only be *slower* than the teacher alone. Chapter 07 measures exactly
that against real distillation, where the student runs without its teacher.

The seed also updates both models in turn on every batch (a teacher step on the teacher's loss,
then a student step). ``train_teacher=True`` does that correctly: the head reads the teacher's
hidden states *detached*, so :func:`cascade_loss` — the teacher's token loss plus the head's — has
gradients that touch the two parameter sets separately, and one optimiser step on the sum is
the seed's two alternating steps, without its error of stepping one optimiser twice through a
graph already freed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.kd.teacher import frozen
from course_lib.train.tagging import token_classification_loss
from course_lib.nn.transformer import EncoderBlock, ModelOutput, TokenTagger, TransformerConfig


class CascadeTagger(nn.Module):
    """Teacher → Linear to ``d_model`` → ``num_layers`` encoder blocks → per-token labels (chapter 07).

    By default the teacher is frozen and stays in eval mode; with ``train_teacher=True`` it keeps
    learning from its own loss (the seed's alternating updates, see :func:`cascade_loss`).
    ``parameters()`` includes the teacher's; :meth:`trainable_parameters` are the ones to
    optimise. The teacher is part of the model: saving, moving or timing a cascade always
    includes it.
    """

    def __init__(
        self,
        teacher: TokenTagger,
        *,
        d_model: int = 64,
        num_heads: int = 2,
        num_layers: int = 1,
        d_ff: int = 128,
        dropout: float = 0.1,
        train_teacher: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(teacher, TokenTagger):
            raise TypeError(f"teacher must be a course_lib.nn.transformer.TokenTagger, got {type(teacher).__name__}")
        checks.positive_int("num_layers", num_layers)
        if not isinstance(train_teacher, bool):
            raise TypeError(f"train_teacher must be True or False, got {train_teacher!r}")
        self.train_teacher = train_teacher
        self.teacher = teacher.requires_grad_(True) if train_teacher else frozen(teacher)
        self.config = TransformerConfig(
            vocab_size=teacher.config.vocab_size,
            d_model=d_model,
            num_heads=num_heads,
            num_layers=num_layers,
            d_ff=d_ff,
            max_len=teacher.config.max_len,
            dropout=dropout,
            norm_first=True,
            positional="none",
            pad_id=teacher.config.pad_id,
        )
        self.num_labels = teacher.num_labels
        self.project = nn.Linear(teacher.config.d_model, d_model)
        self.blocks = nn.ModuleList(EncoderBlock(self.config) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, self.num_labels)

    def train(self, mode: bool = True) -> CascadeTagger:
        """Train or eval mode for the head; a frozen teacher stays in eval mode."""
        super().train(mode)
        if not self.train_teacher:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What an optimiser should get: the head (projection, blocks, norm, classifier), and the teacher if it trains."""
        if self.train_teacher:
            return list(self.parameters())
        teacher_ids = {id(p) for p in self.teacher.parameters()}
        return [p for p in self.parameters() if id(p) not in teacher_ids]

    def head(self, teacher_hidden: Tensor, mask: Tensor) -> ModelOutput:
        """The head alone on the teacher's last hidden states (gradients do not flow back into them)."""
        x = self.project(teacher_hidden.detach())
        hidden, attention = [x], []
        for block in self.blocks:
            x, weights = block(x, mask)
            hidden.append(x)
            attention.append(weights)
        x = self.final_norm(x)
        hidden[-1] = x
        return ModelOutput(logits=self.classifier(x), hidden=hidden, attention=attention, mask=mask)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Run the teacher under no_grad, then the head on its last hidden states."""
        with torch.no_grad():
            teacher_out = self.teacher(input_ids, mask=mask)
        return self.head(teacher_out.hidden[-1], teacher_out.mask)


def cascade_loss(model: CascadeTagger, batch: dict[str, Tensor]) -> Tensor:
    """Token cross-entropy of a :class:`CascadeTagger` on a ``collate_ner`` batch (a ``loss_fn`` for ``train``) (chapter 07).

    With ``train_teacher`` it is the teacher's own token loss plus the head's on the teacher's
    detached states: one step on the sum is a teacher step followed by a head step.
    """
    if not model.train_teacher:
        output = model(batch["input_ids"], mask=batch["mask"])
        return token_classification_loss(output.logits, batch["labels"])
    teacher_out = model.teacher(batch["input_ids"], mask=batch["mask"])
    head_out = model.head(teacher_out.hidden[-1], teacher_out.mask)
    return token_classification_loss(teacher_out.logits, batch["labels"]) + token_classification_loss(
        head_out.logits, batch["labels"]
    )
