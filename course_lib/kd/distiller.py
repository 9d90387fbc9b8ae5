"""Distillation as a loss, not a loop: ``loss_fn(student, batch)`` objects for the one training loop (chapter 05).

:class:`Distiller` distils a frozen teacher's logits (Hinton's loss); :class:`IntermediateDistiller`
adds TinyBERT's hidden-state and attention-map terms along a layer map (chapter 07). Both are
handed to :func:`course_lib.train.fit.fit` as its ``loss_fn``; neither owns an optimiser or a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.kd.layers import LayerMap, comparable_maps
from course_lib.kd.losses import (
    HiddenStateLoss,
    TopLogits,
    attention_map_loss,
    distillation_terms,
    needed_terms,
    weighted_terms,
)
from course_lib.kd.teacher import Batch, TeacherLogitCache, batch_fields, frozen, model_logits
from course_lib.nn.transformer import ModelOutput, TokenTagger


class Distiller:
    """A ``loss_fn(student, batch)`` that distils a frozen teacher's logits (chapter 05).

    The teacher is frozen once (:func:`~course_lib.kd.teacher.frozen`) and runs in eval mode under
    ``torch.no_grad`` at every step, whatever mode the caller left it in. With a
    :class:`~course_lib.kd.teacher.TeacherLogitCache` the teacher does not run at all: its logits
    are looked up by the batch's dataset indices. Batches are dicts or ``(inputs, labels[, index])``
    tuples; ``forward(model, batch) -> logits`` adapts the models to them. Token-level batches
    carry a ``mask``: padded positions are left out of both terms.
    """

    def __init__(
        self,
        teacher: nn.Module,
        temperature: float,
        alpha: float,
        forward: Callable[[nn.Module, Batch], Tensor] = model_logits,
        cache: TeacherLogitCache | None = None,
    ) -> None:
        self.teacher = frozen(teacher)
        self.temperature = checks.temperature(temperature)
        self.alpha = checks.alpha(alpha)
        self.forward = forward
        self.cache = cache

    def teacher_logits(self, batch: Batch, device: torch.device, width: int | None = None) -> Tensor | TopLogits:
        """The teacher's logits for ``batch``: from the cache when there is one, else a no-grad eval pass.

        A top-k cache gives the kept logits and their classes (:class:`~course_lib.kd.losses.TopLogits`).
        ``width`` is the batch's padded length in tokens (default: that of ``batch["input_ids"]``),
        to which a cache of token logits is cut.
        """
        batch = batch_fields(batch)
        if self.cache is not None:
            if "index" not in batch:
                raise KeyError("a TeacherLogitCache needs batch['index'], the dataset index of every example")
            if width is None and "input_ids" in batch:
                width = batch["input_ids"].shape[1]
            width = width if self.cache.per_token else None
            if self.cache.top_classes is not None:
                return self.cache.lookup_top(batch["index"], width).to(device)
            return self.cache.lookup(batch["index"], width).to(device)
        self.teacher.eval()
        with torch.no_grad():
            return self.forward(self.teacher, batch)

    def terms(self, student: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """The unweighted ``hard`` and ``soft`` terms this distiller's ``alpha`` uses on ``batch``."""
        if student is self.teacher:
            raise ValueError("the student passed to the Distiller is its teacher: pass the model being trained")
        batch = batch_fields(batch)
        student_logits = self.forward(student, batch)
        width = student_logits.shape[1] if student_logits.dim() == 3 else None
        teacher_logits = self.teacher_logits(batch, student_logits.device, width)
        mask = batch.get("mask") if student_logits.dim() == 3 else None
        return distillation_terms(student_logits, teacher_logits, batch.get("labels"), self.temperature, mask,
                                  need=needed_terms(self.alpha))

    def __call__(self, student: nn.Module, batch: Batch) -> Tensor:
        return weighted_terms(self.terms(student, batch), self.alpha)


class IntermediateDistiller(nn.Module):
    """``loss_fn(student, batch)``: logits, hidden states and attention maps along a layer map (chapter 05).

    The total is ``kd_loss`` (α on the hard labels, ``1 − α`` on T²·KL) plus ``hidden_weight`` ×
    the mean hidden-state term over the mapped pairs plus ``attention_weight`` × the mean
    attention term over the mapped blocks. Batches are dicts with ``input_ids``, ``mask`` and
    ``labels``. The teacher is frozen, kept in eval mode and is not a submodule, so
    ``distiller.parameters()`` are only the learned projections: the training loop moves them to
    the student's device and :func:`~course_lib.train.fit.fit` optimises them with the student's.
    When the head counts differ, both attention maps are averaged over their heads first.
    """

    def __init__(
        self,
        teacher: TokenTagger,
        student: TokenTagger,
        layer_map: LayerMap,
        *,
        temperature: float,
        alpha: float,
        hidden_weight: float = 1.0,
        attention_weight: float = 1.0,
        attention_kind: str = "mse",
    ) -> None:
        super().__init__()
        for name, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, TokenTagger):
                raise TypeError(f"{name} must be a course_lib.nn.transformer.TokenTagger, got {type(model).__name__}")
        if teacher.num_labels != student.num_labels:
            raise ValueError(
                f"teacher and student tag different label sets: {teacher.num_labels} vs {student.num_labels} labels"
            )
        if not isinstance(layer_map, LayerMap):
            raise TypeError(f"layer_map must be a LayerMap, got {type(layer_map).__name__}")
        layer_map.check_against(student.config.num_layers, teacher.config.num_layers)
        self.__dict__["teacher"] = frozen(teacher)  # not a submodule: its weights are not the distiller's
        self.layer_map = layer_map
        self.temperature = checks.temperature(temperature)
        self.alpha = checks.alpha(alpha)
        self.hidden_weight = checks.non_negative_number("hidden_weight", hidden_weight)
        self.attention_weight = checks.non_negative_number("attention_weight", attention_weight)
        self.attention_kind = checks.one_of("attention_kind", attention_kind, ("kl", "mse"))
        self.hidden_losses = nn.ModuleList(
            HiddenStateLoss(student.config.d_model, teacher.config.d_model) for _ in layer_map.pairs
        )

    def _teacher_output(self, input_ids: Tensor, mask: Tensor) -> ModelOutput:
        self.teacher.eval()
        with torch.no_grad():
            return self.teacher(input_ids, mask=mask)

    def terms(self, student: TokenTagger, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The unweighted terms on ``batch``: ``hard``, ``soft``, ``hidden`` and (with block pairs) ``attention``."""
        if student is self.teacher:
            raise ValueError("the student passed to the distiller is its teacher: pass the model being trained")
        input_ids, mask = batch["input_ids"], batch["mask"]
        student_out = student(input_ids, mask=mask)
        teacher_out = self._teacher_output(input_ids, mask)
        terms = distillation_terms(student_out.logits, teacher_out.logits, batch.get("labels"), self.temperature, mask,
                                   need=needed_terms(self.alpha))
        hidden = [loss(student_out.hidden[s], teacher_out.hidden[t], mask)
                  for loss, (s, t) in zip(self.hidden_losses, self.layer_map.pairs)]
        terms["hidden"] = torch.stack(hidden).mean()
        if self.layer_map.block_pairs:
            attention = [attention_map_loss(*comparable_maps(student_out.attention[s - 1], teacher_out.attention[t - 1]),
                                            mask, self.attention_kind)
                         for s, t in self.layer_map.block_pairs]
            terms["attention"] = torch.stack(attention).mean()
        return terms

    def forward(self, student: TokenTagger, batch: Mapping[str, Tensor]) -> Tensor:
        terms = self.terms(student, batch)
        loss = weighted_terms(terms, self.alpha) + self.hidden_weight * terms["hidden"]
        if "attention" in terms:
            loss = loss + self.attention_weight * terms["attention"]
        return loss
