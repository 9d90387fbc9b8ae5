"""Knowledge-distillation losses and a frozen-teacher training step.

The course's convention, used by every chapter from 05 on::

    kd_loss = alpha * CE(student, labels) + (1 - alpha) * T**2 * KL(p_teacher^T || p_student^T)

``alpha`` weighs the **hard** labels, ``1 - alpha`` the **soft** targets; ``p^T`` is a
softmax at temperature ``T``. The KL divergence is summed over classes and averaged over
examples (``reduction="batchmean"`` in PyTorch, the true mean KL per example; ``"mean"`` would
also divide by the number of classes). For token-level tasks (NER) both terms are averaged over
the real tokens only: padding never counts. The ``T**2`` factor keeps the soft term's gradient
the same size when ``T`` changes (Hinton et al. 2015, section 2), so ``alpha`` means the same
thing at every temperature.

The same formula under other names:

=====================  ============================  ===========================================
source                 weight on hard CE             weight on T**2 * KL
=====================  ============================  ===========================================
this course            ``alpha``                     ``1 - alpha``
Keras KD example       ``alpha`` (0.1)               ``1 - alpha`` (0.9)
torchdistill KDLoss    ``alpha``                     ``beta`` (default ``1 - alpha``); with no
                                                     labels it returns the KL without ``T**2``
PyTorch KD tutorial    ``ce_loss_weight`` (0.75)     ``soft_target_loss_weight`` (0.25)
=====================  ============================  ===========================================

Besides logits, students can match the teacher's hidden states through a learned projection
(:class:`HiddenStateLoss`, as TinyBERT does) and its attention maps
(:func:`attention_map_loss`, TinyBERT with MSE, MiniLM with KL).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.data import IGNORE_INDEX

__all__ = [
    "Distiller",
    "HiddenStateLoss",
    "TeacherLogitCache",
    "attention_map_loss",
    "batch_fields",
    "check_alpha",
    "check_temperature",
    "distillation_terms",
    "kd_loss",
    "model_logits",
    "soft_kl",
    "soft_targets",
    "weighted_terms",
]


def check_temperature(temperature: Any) -> float:
    """Return ``temperature`` as a float if it is a finite number > 0, else raise ValueError."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature!r}; "
            "T = 1 is the plain softmax, larger T softens it"
        )
    return float(temperature)


def check_alpha(alpha: Any) -> float:
    """Return ``alpha`` as a float if it lies in [0, 1], else raise ValueError."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha must be a number in [0, 1] (the weight of the hard-label loss), got {alpha!r}"
        )
    return float(alpha)


def soft_targets(logits: Tensor, temperature: float) -> Tensor:
    """Softmax of ``logits / temperature`` over the last dimension."""
    return torch.softmax(logits / check_temperature(temperature), dim=-1)


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    for name, value in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() not in (2, 3):
            raise ValueError(
                f"{name} must be (batch, classes) or (batch, length, classes), got shape {tuple(value.shape)}"
            )
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(
            f"student has {student_logits.shape[-1]} classes but teacher has {teacher_logits.shape[-1]}: "
            "teacher and student must predict the same label set"
        )
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} "
            "must have the same shape (same batch, same positions)"
        )


def _token_mask(logits: Tensor, mask: Tensor | None) -> Tensor | None:
    """The boolean mask of real positions for 3-D logits; None for 2-D logits."""
    if logits.dim() == 2:
        if mask is not None:
            raise ValueError(
                f"mask is only for (batch, length, classes) logits; got a mask of shape {tuple(mask.shape)} "
                f"with logits of shape {tuple(logits.shape)}"
            )
        return None
    if mask is None:
        raise ValueError(
            "token-level logits (batch, length, classes) need mask (batch, length), True on real tokens, "
            "so that padding does not count in the loss"
        )
    if mask.shape != logits.shape[:2]:
        raise ValueError(f"mask must have shape {tuple(logits.shape[:2])} (batch, length), got {tuple(mask.shape)}")
    mask = mask.to(device=logits.device, dtype=torch.bool)
    if not mask.any():
        raise ValueError("mask has no real token: there is nothing to distil")
    return mask


def soft_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float, mask: Tensor | None = None) -> Tensor:
    """KL(p_teacher^T || p_student^T) summed over classes, averaged over examples or real tokens.

    Not multiplied by ``T**2``: :func:`kd_loss` does that.
    """
    temperature = check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    token_mask = _token_mask(student_logits, mask)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    per_position = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    if token_mask is None:
        return per_position.mean()
    return per_position[token_mask].mean()


def _hard_ce(student_logits: Tensor, labels: Tensor, mask: Tensor | None) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(
            f"labels must have shape {tuple(student_logits.shape[:-1])} to match the logits "
            f"{tuple(student_logits.shape)}, got {tuple(labels.shape)}"
        )
    labels = labels.to(student_logits.device)
    if mask is not None:
        labels = labels.masked_fill(~mask, IGNORE_INDEX)
    return F.cross_entropy(student_logits.flatten(0, -2), labels.flatten(), ignore_index=IGNORE_INDEX)


def distillation_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    temperature: float,
    mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """The two terms of :func:`kd_loss` before weighting: ``hard`` (CE) and ``soft`` (``T**2`` * KL).

    ``hard`` is absent when ``labels`` is None. For 3-D logits, ``mask`` (batch, length) marks
    the real tokens; both terms average over them only.
    """
    temperature = check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    token_mask = _token_mask(student_logits, mask)
    terms = {"soft": temperature**2 * soft_kl(student_logits, teacher_logits, temperature, token_mask)}
    if labels is not None:
        terms["hard"] = _hard_ce(student_logits, labels, token_mask)
    return terms


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    T: float,
    alpha: float,
    mask: Tensor | None = None,
) -> Tensor:
    """``alpha * CE(hard) + (1 - alpha) * T**2 * KL(teacher_T || student_T)`` (see the module docstring).

    ``labels`` may be None only when ``alpha == 0`` (pure soft-target training, e.g. on an
    unlabelled transfer set). The teacher's logits are detached: no gradient reaches the teacher.
    """
    alpha = check_alpha(alpha)
    return weighted_terms(distillation_terms(student_logits, teacher_logits.detach(), labels, T, mask), alpha)


def weighted_terms(terms: Mapping[str, Tensor], alpha: float) -> Tensor:
    """``alpha * hard + (1 - alpha) * soft``; the hard term is needed only when ``alpha > 0``."""
    loss = (1.0 - alpha) * terms["soft"]
    if alpha > 0:
        if "hard" not in terms:
            raise ValueError(f"alpha={alpha} puts weight on the hard labels, but there are no labels; "
                             "pass labels or use alpha=0 (an unlabelled transfer set)")
        loss = loss + alpha * terms["hard"]
    return loss


class HiddenStateLoss(nn.Module):
    """MSE between a learned projection of the student's hidden states and the teacher's.

    TinyBERT's hidden-state loss: ``MSE(H_student W + b, H_teacher)``, averaged over the real
    tokens and the teacher's width. The projection ``W`` (student width -> teacher width) is
    trained with the student and thrown away afterwards.
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        for name, value in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.projection = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_hidden: Tensor, teacher_hidden: Tensor, mask: Tensor | None = None) -> Tensor:
        """Loss of (batch, length, student_dim) against (batch, length, teacher_dim) hidden states."""
        if student_hidden.dim() != 3 or student_hidden.shape[-1] != self.student_dim:
            raise ValueError(
                f"student_hidden must be (batch, length, {self.student_dim}), got {tuple(student_hidden.shape)}"
            )
        if teacher_hidden.dim() != 3 or teacher_hidden.shape[-1] != self.teacher_dim:
            raise ValueError(
                f"teacher_hidden must be (batch, length, {self.teacher_dim}), got {tuple(teacher_hidden.shape)}"
            )
        if student_hidden.shape[:2] != teacher_hidden.shape[:2]:
            raise ValueError(
                f"student and teacher hidden states cover different (batch, length): "
                f"{tuple(student_hidden.shape[:2])} vs {tuple(teacher_hidden.shape[:2])}"
            )
        squared = (self.projection(student_hidden) - teacher_hidden.detach()).pow(2).mean(dim=-1)
        if mask is None:
            return squared.mean()
        if mask.shape != squared.shape:
            raise ValueError(f"mask must have shape {tuple(squared.shape)} (batch, length), got {tuple(mask.shape)}")
        return squared[mask.to(device=squared.device, dtype=torch.bool)].mean()


def attention_map_loss(
    student_attention: Tensor, teacher_attention: Tensor, mask: Tensor | None = None, kind: str = "kl"
) -> Tensor:
    """Distance between attention maps (batch, heads, query, key), averaged over heads and real queries.

    ``kind="kl"``: KL(teacher row || student row) for each query (MiniLM); ``kind="mse"``: mean
    squared difference of the weights (TinyBERT). ``mask`` (batch, length) marks real tokens:
    padded queries are left out. Student and teacher need the same number of heads.
    """
    if kind not in ("kl", "mse"):
        raise ValueError(f"kind must be 'kl' or 'mse', got {kind!r}")
    for name, value in (("student_attention", student_attention), ("teacher_attention", teacher_attention)):
        if value.dim() != 4 or value.shape[-1] != value.shape[-2]:
            raise ValueError(f"{name} must be (batch, heads, length, length), got {tuple(value.shape)}")
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"attention maps differ in shape: student {tuple(student_attention.shape)}, teacher "
            f"{tuple(teacher_attention.shape)}; heads must match (pair layers with the same head count, "
            "or average the heads of each first)"
        )
    teacher_attention = teacher_attention.detach()
    if kind == "kl":
        eps = torch.finfo(student_attention.dtype).tiny
        per_key = teacher_attention * (
            torch.log(teacher_attention.clamp_min(eps)) - torch.log(student_attention.clamp_min(eps))
        )
        per_query = per_key.sum(dim=-1)
    else:
        per_query = (student_attention - teacher_attention).pow(2).mean(dim=-1)
    if mask is None:
        return per_query.mean()
    batch, heads, length = per_query.shape
    if mask.shape != (batch, length):
        raise ValueError(f"mask must have shape {(batch, length)} (batch, length), got {tuple(mask.shape)}")
    query_mask = mask.to(device=per_query.device, dtype=torch.bool)[:, None, :].expand(batch, heads, length)
    return per_query[query_mask].mean()


Batch = Mapping[str, Tensor] | Sequence[Tensor]


def batch_fields(batch: Batch) -> Mapping[str, Tensor]:
    """A batch as a dict: dicts pass through; ``(inputs, labels[, index])`` tuples get those names."""
    if isinstance(batch, Mapping):
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return dict(zip(("inputs", "labels", "index"), batch))
    raise TypeError(
        "a batch must be a dict (input_ids/mask/labels or inputs/labels, optionally index) or a tuple "
        f"(inputs, labels[, index]); got {type(batch).__name__}"
    )


def model_logits(model: nn.Module, batch: Batch) -> Tensor:
    """Logits of ``model`` on a batch: ``input_ids`` + ``mask`` (tagger) or ``inputs`` (classifier)."""
    fields = batch_fields(batch)
    if "input_ids" in fields:
        output = model(fields["input_ids"], mask=fields.get("mask"))
    elif "inputs" in fields:
        output = model(fields["inputs"])
    else:
        raise KeyError(f"the batch needs 'input_ids' (a token model) or 'inputs' (a classifier); it has {sorted(fields)}")
    return output.logits if hasattr(output, "logits") else output


class TeacherLogitCache:
    """The teacher's logits for every example of a dataset, looked up by dataset index.

    Keyed by the index each batch carries (``batch["index"]``), never by batch position, so a
    shuffled loader gets the right row for every example. Valid only while every example looks
    the same each epoch: with random augmentation the teacher must see the augmented input.
    """

    def __init__(self, logits: Tensor) -> None:
        if not isinstance(logits, Tensor) or logits.dim() < 2:
            raise ValueError(f"logits must be a tensor (examples, ..., classes), got {getattr(logits, 'shape', logits)!r}")
        self.logits = logits.detach()

    def __len__(self) -> int:
        return self.logits.shape[0]

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        teacher: nn.Module,
        batches: Iterable[Batch],
        forward: Callable[[nn.Module, Batch], Tensor] = model_logits,
        device: torch.device | str = "cpu",
    ) -> "TeacherLogitCache":
        """Run ``teacher`` (eval mode, no gradients) over ``batches`` and store each row by ``batch["index"]``."""
        was_training = teacher.training
        teacher.eval()
        rows: dict[int, Tensor] = {}
        try:
            for batch in map(batch_fields, batches):
                if "index" not in batch:
                    raise KeyError("each batch needs an 'index' entry (the dataset index of every example)")
                moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                logits = forward(teacher, moved).detach().cpu()
                for position, index in enumerate(batch["index"].tolist()):
                    rows[index] = logits[position]
        finally:
            teacher.train(was_training)
        if not rows:
            raise ValueError("batches is empty: there is nothing to cache")
        if sorted(rows) != list(range(len(rows))):
            raise ValueError(f"the batches must cover dataset indices 0..{len(rows) - 1} exactly once each")
        return cls(torch.stack([rows[i] for i in range(len(rows))]))

    def lookup(self, index: Tensor) -> Tensor:
        """The cached logits of the examples ``index`` (a 1-D tensor of dataset indices)."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        if index.dim() != 1:
            raise ValueError(f"index must be 1-D (one dataset index per example), got shape {tuple(index.shape)}")
        if index.numel() and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"dataset index out of range: the cache holds {len(self)} examples, got {index.tolist()}")
        return self.logits[index]


class Distiller:
    """A ``loss_fn(student, batch)`` for :func:`course_lib.training.train` that distils a frozen teacher.

    The teacher is frozen once (``requires_grad=False``) and runs in eval mode under
    ``torch.no_grad`` at every step, whatever mode the caller left it in. With a
    :class:`TeacherLogitCache` the teacher does not run at all: its logits are looked up by the
    batch's dataset indices. Batches are dicts or ``(inputs, labels[, index])`` tuples
    (:func:`batch_fields`); ``forward(model, batch) -> logits`` adapts the models to them
    (default :func:`model_logits`).
    """

    def __init__(
        self,
        teacher: nn.Module,
        temperature: float,
        alpha: float,
        forward: Callable[[nn.Module, Batch], Tensor] = model_logits,
        cache: TeacherLogitCache | None = None,
    ) -> None:
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
        self.teacher = teacher.requires_grad_(False).eval()
        self.temperature = check_temperature(temperature)
        self.alpha = check_alpha(alpha)
        self.forward = forward
        self.cache = cache

    def teacher_logits(self, batch: Batch, device: torch.device) -> Tensor:
        """The teacher's logits for ``batch``: from the cache when there is one, else a no-grad eval pass."""
        batch = batch_fields(batch)
        if self.cache is not None:
            if "index" not in batch:
                raise KeyError("a TeacherLogitCache needs batch['index'], the dataset index of every example")
            return self.cache.lookup(batch["index"]).to(device)
        self.teacher.eval()
        with torch.no_grad():
            return self.forward(self.teacher, batch)

    def terms(self, student: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """The unweighted ``hard`` and ``soft`` terms on ``batch`` (see :func:`distillation_terms`)."""
        batch = batch_fields(batch)
        student_logits = self.forward(student, batch)
        teacher_logits = self.teacher_logits(batch, student_logits.device)
        mask = batch.get("mask") if student_logits.dim() == 3 else None
        return distillation_terms(student_logits, teacher_logits, batch.get("labels"), self.temperature, mask)

    def __call__(self, student: nn.Module, batch: Batch) -> Tensor:
        if student is self.teacher:
            raise ValueError("the student passed to the Distiller is its teacher: pass the model being trained")
        return weighted_terms(self.terms(student, batch), self.alpha)
