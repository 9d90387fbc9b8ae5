"""Knowledge-distillation losses: the temperature softmax, Hinton's loss, hidden-state and attention-map terms.

The course's convention, used by every chapter from 05 on::

    kd_loss = alpha * CE(student, labels) + (1 - alpha) * T**2 * KL(p_teacher^T || p_student^T)

``alpha`` weighs the **hard** labels, ``1 - alpha`` the **soft** targets; ``p^T`` is a softmax at
temperature ``T``. The KL divergence is summed over classes and averaged over examples
(``reduction="batchmean"`` in PyTorch, the true mean KL per example; ``"mean"`` would also divide
by the number of classes). For token-level tasks (NER) both terms are averaged over the real
tokens only: padding never counts. The ``T**2`` factor keeps the soft term's gradient the same
size when ``T`` changes (Hinton et al. 2015, section 2), so ``alpha`` means the same thing at
every temperature.

The same formula under other names, as each reference writes it:

=====================  ============================  ===========================================
source                 weight on hard CE             weight on the soft term
=====================  ============================  ===========================================
this course            ``alpha``                     ``1 - alpha``, times ``T**2``
Keras KD example       ``alpha`` (0.1)               ``1 - alpha`` (0.9), times ``T**2`` (its
                                                     ``KLDivergence`` sums over classes and
                                                     averages over the batch, as here)
torchdistill KDLoss    ``alpha``                     ``beta`` (default ``1 - alpha``), times
                                                     ``T**2``; with ``alpha = 0`` or no labels it
                                                     returns the plain KL, without ``T**2``
PyTorch KD tutorial    ``ce_loss_weight`` (0.75)     ``soft_target_loss_weight`` (0.25), times
                                                     ``T**2``
=====================  ============================  ===========================================

Besides logits, a student can match the teacher's hidden states through a learned projection
(:class:`HiddenStateLoss`, TinyBERT's hidden-state loss) and its attention maps
(:func:`attention_map_loss`; TinyBERT takes the MSE of the attention *scores* before the
softmax, MiniLM the KL of the attention distributions; the course's encoder returns the
distributions, so its MSE compares those).

Every loss here holds on awkward inputs: a teacher logit of ``-inf`` (a masked class) adds
nothing instead of NaN; padded positions are dropped before anything is computed, so whatever
they hold never reaches a gradient; a term with weight 0 is not computed at all; half-precision
inputs are computed in float32; a batch without a single real token is refused with a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import checks
from course_lib.data import IGNORE_INDEX


def _full_precision(tensor: Tensor) -> Tensor:
    """``tensor`` in float32 when it is half or bfloat16 precision (whose exp and log overflow), else as it is."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def softmax_with_temperature(logits: Tensor, temperature: float, dim: int = -1) -> Tensor:
    """``softmax(logits / T)``: T > 1 softens the distribution, T < 1 sharpens it (chapter 00)."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    return torch.softmax(_full_precision(logits) / checks.temperature(temperature), dim=dim)


def entropy_bits(probabilities: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy in bits along ``dim`` (0 for one-hot, log2(C) for uniform) (chapter 00)."""
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=dim) / math.log(2.0)


@dataclass(frozen=True)
class TopLogits:
    """A teacher's largest logits (``values``) and their class ids (``classes``), both (..., k) (chapter 09).

    What a top-k :class:`~course_lib.kd.teacher.TeacherLogitCache` keeps: every other class has
    probability 0 in the teacher's distribution, so the soft term needs only the student's
    log-probabilities of these ``k`` classes, not a full row of teacher logits.
    """

    values: Tensor
    classes: Tensor

    def __post_init__(self) -> None:
        if self.values.shape != self.classes.shape or self.classes.dtype.is_floating_point:
            raise ValueError(f"values {tuple(self.values.shape)} and integer classes {tuple(self.classes.shape)} "
                             "must have the same shape")

    @property
    def shape(self) -> torch.Size:
        """The shape (..., k) of both tensors."""
        return self.values.shape

    def to(self, device: torch.device | str) -> TopLogits:
        """Both tensors on ``device``."""
        return TopLogits(self.values.to(device), self.classes.to(device))

    def detach(self) -> TopLogits:
        """The same logits cut from the autograd graph."""
        return TopLogits(self.values.detach(), self.classes)


def _check_pair(student_logits: Tensor, teacher_logits: Tensor | TopLogits) -> None:
    if isinstance(teacher_logits, TopLogits):
        if teacher_logits.shape[:-1] != student_logits.shape[:-1]:
            raise ValueError(f"the teacher's top logits {tuple(teacher_logits.shape)} must cover the student's "
                             f"rows {tuple(student_logits.shape[:-1])} (same batch, same positions)")
        if teacher_logits.shape[-1] > student_logits.shape[-1]:
            raise ValueError(f"the teacher keeps {teacher_logits.shape[-1]} classes but the student has only "
                             f"{student_logits.shape[-1]}: teacher and student must predict the same label set")
        return
    for name, value in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() not in (2, 3):
            raise ValueError(f"{name} must be (batch, classes) or (batch, length, classes), got shape {tuple(value.shape)}")
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


def _real_positions(mask: Tensor | None, shape: torch.Size) -> Tensor | None:
    """The boolean mask of real positions of (batch, length, …) tensors; None when there is no length axis (chapter 05).

    Token-level tensors need ``mask`` (batch, length), True on real tokens; a mask without a
    single real token is refused: there would be nothing to learn from.
    """
    if len(shape) == 2:
        if mask is not None:
            raise ValueError(f"mask is only for (batch, length, classes) logits; got a mask of shape "
                             f"{tuple(mask.shape)} with logits of shape {tuple(shape)}")
        return None
    if mask is None:
        raise ValueError("token-level logits (batch, length, classes) need mask (batch, length), True on real tokens, "
                         "so that padding does not count in the loss")
    if tuple(mask.shape) != tuple(shape[:2]):
        raise ValueError(f"mask must have shape {tuple(shape[:2])} (batch, length), got {tuple(mask.shape)}")
    mask = mask.to(dtype=torch.bool)
    if not bool(mask.any()):
        raise ValueError("mask has no real token: there is nothing to distil")
    return mask


def _rows(logits: Tensor | TopLogits, mask: Tensor | None) -> Tensor | TopLogits:
    """The real rows (positions, classes) of ``logits``, selected before anything is computed on them."""
    if isinstance(logits, TopLogits):
        return TopLogits(_rows(logits.values, mask), _rows(logits.classes, mask))
    return logits if mask is None else logits[mask.to(logits.device)]


def _log_probs(rows: Tensor, temperature: float) -> Tensor:
    """log softmax(rows / T) over the classes, in float32 at least."""
    return F.log_softmax(_full_precision(rows) / temperature, dim=-1)


def _kl_rows(log_q: Tensor, teacher_rows: Tensor | TopLogits, temperature: float) -> Tensor:
    """KL(p_teacher^T || p_student^T) of each row from the student's ``log_q``; a class the teacher rules out adds 0."""
    if isinstance(teacher_rows, TopLogits):  # the teacher's distribution over its top classes only
        log_p = _log_probs(teacher_rows.values, temperature)
        return (log_p.exp() * (log_p - log_q.gather(-1, teacher_rows.classes.long()))).sum(dim=-1)
    log_p = _log_probs(teacher_rows, temperature)
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(dim=-1)


def soft_kl(student_logits: Tensor, teacher_logits: Tensor | TopLogits, temperature: float,
            mask: Tensor | None = None) -> Tensor:
    """KL(p_teacher^T || p_student^T) summed over classes, averaged over examples or real tokens (chapter 05).

    Not multiplied by ``T**2``: :func:`kd_loss` does that.
    """
    temperature = checks.temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    mask = _real_positions(mask, student_logits.shape)
    log_q = _log_probs(_rows(student_logits, mask), temperature)
    return _kl_rows(log_q, _rows(teacher_logits, mask), temperature).mean()


def _check_labels(labels: object, student_logits: Tensor) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.shape != student_logits.shape[:-1]:
        raise ValueError(f"labels must have shape {tuple(student_logits.shape[:-1])} to match the logits "
                         f"{tuple(student_logits.shape)}, got {tuple(labels.shape)}")
    return labels


def distillation_terms(
    student_logits: Tensor,
    teacher_logits: Tensor | TopLogits,
    labels: Tensor | None,
    temperature: float,
    mask: Tensor | None = None,
    *,
    need: tuple[str, ...] = ("hard", "soft"),
) -> dict[str, Tensor]:
    """The terms of :func:`kd_loss` before weighting: ``hard`` (CE) and ``soft`` (``T**2`` * KL) (chapter 05).

    ``hard`` is absent when ``labels`` is None; ``need`` leaves out a term nobody will use.
    ``teacher_logits`` may be the teacher's :class:`TopLogits` (a top-k cache's): its
    distribution is then the softmax over those classes, every other class 0. For
    3-D logits, ``mask`` (batch, length) marks the real tokens: they are selected first, and both
    terms average over them only. At ``T`` = 1 both terms read one log-softmax of the student rows.
    """
    temperature = checks.temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    mask = _real_positions(mask, student_logits.shape)
    student_rows = _rows(student_logits, mask)
    terms, log_q = {}, None
    if "soft" in need:
        log_q = _log_probs(student_rows, temperature)
        terms["soft"] = temperature**2 * _kl_rows(log_q, _rows(teacher_logits.detach(), mask), temperature).mean()
    if "hard" in need and labels is not None:
        label_rows = _rows(_check_labels(labels, student_logits), mask).to(student_rows.device)
        log_p = log_q if log_q is not None and temperature == 1 else _log_probs(student_rows, 1.0)
        terms["hard"] = F.nll_loss(log_p, label_rows, ignore_index=IGNORE_INDEX)
    return terms


def weighted_terms(terms: Mapping[str, Tensor], alpha: float) -> Tensor:
    """``alpha * hard + (1 - alpha) * soft``; a term whose weight is 0 is left out, never multiplied by 0 (chapter 05)."""
    parts = []
    if alpha < 1:
        parts.append((1.0 - alpha) * terms["soft"])
    if alpha > 0:
        if "hard" not in terms:
            raise ValueError(f"alpha={alpha} puts weight on the hard labels, but there are no labels; "
                             "pass labels or use alpha=0 (an unlabelled transfer set)")
        parts.append(alpha * terms["hard"])
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


def needed_terms(alpha: float) -> tuple[str, ...]:
    """The terms a loss with hard-label weight ``alpha`` uses: no soft term at 1, no hard term at 0 (chapter 05)."""
    return tuple(name for name, used in (("hard", alpha > 0), ("soft", alpha < 1)) if used)


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor | TopLogits,
    labels: Tensor | None,
    T: float,
    alpha: float,
    mask: Tensor | None = None,
) -> Tensor:
    """``alpha * CE(hard) + (1 - alpha) * T**2 * KL(teacher_T || student_T)`` (see the module docstring) (chapter 05).

    ``labels`` may be None only when ``alpha == 0`` (pure soft-target training, e.g. on an
    unlabelled transfer set). The teacher's logits are detached: no gradient reaches the teacher.
    """
    alpha = checks.alpha(alpha)
    terms = distillation_terms(student_logits, teacher_logits, labels, T, mask, need=needed_terms(alpha))
    return weighted_terms(terms, alpha)


class HiddenStateLoss(nn.Module):
    """MSE between a learned projection of the student's hidden states and the teacher's (chapter 05).

    TinyBERT's hidden-state loss: ``MSE(H_student W + b, H_teacher)``, averaged over the real
    tokens and the teacher's width. The projection ``W`` (student width -> teacher width) is
    trained with the student and thrown away afterwards.
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.student_dim = checks.positive_int("student_dim", student_dim)
        self.teacher_dim = checks.positive_int("teacher_dim", teacher_dim)
        self.projection = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_hidden: Tensor, teacher_hidden: Tensor, mask: Tensor | None = None) -> Tensor:
        """Loss of (batch, length, student_dim) against (batch, length, teacher_dim) hidden states."""
        if student_hidden.dim() != 3 or student_hidden.shape[-1] != self.student_dim:
            raise ValueError(f"student_hidden must be (batch, length, {self.student_dim}), got {tuple(student_hidden.shape)}")
        if teacher_hidden.dim() != 3 or teacher_hidden.shape[-1] != self.teacher_dim:
            raise ValueError(f"teacher_hidden must be (batch, length, {self.teacher_dim}), got {tuple(teacher_hidden.shape)}")
        if student_hidden.shape[:2] != teacher_hidden.shape[:2]:
            raise ValueError(f"student and teacher hidden states cover different (batch, length): "
                             f"{tuple(student_hidden.shape[:2])} vs {tuple(teacher_hidden.shape[:2])}")
        if mask is not None:
            mask = _real_positions(mask, student_hidden.shape)
        student_rows = _full_precision(_rows(student_hidden, mask))
        teacher_rows = _full_precision(_rows(teacher_hidden.detach(), mask))
        projected = self.projection(student_rows.to(self.projection.weight.dtype))
        return (projected - teacher_rows).pow(2).mean()


def attention_map_loss(
    student_attention: Tensor, teacher_attention: Tensor, mask: Tensor | None = None, kind: str = "kl"
) -> Tensor:
    """Distance between attention maps (batch, heads, query, key) over the real (query, key) pairs (chapter 05).

    ``kind="kl"``: KL(teacher row || student row) for each real query, averaged over heads and
    real queries (MiniLM); ``kind="mse"``: the squared difference of the weights, averaged over
    heads and real (query, key) pairs (TinyBERT's loss, here on the distributions). ``mask``
    (batch, length) marks real tokens: padded queries and keys are left out, so the same
    sentence gives the same loss however much padding its batch has. Student and teacher need the
    same number of heads.
    """
    checks.one_of("kind", kind, ("kl", "mse"))
    for name, value in (("student_attention", student_attention), ("teacher_attention", teacher_attention)):
        if value.dim() != 4 or value.shape[-1] != value.shape[-2]:
            raise ValueError(f"{name} must be (batch, heads, length, length), got {tuple(value.shape)}")
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"attention maps differ in shape: student {tuple(student_attention.shape)}, teacher "
            f"{tuple(teacher_attention.shape)}; heads must match (pair layers with the same head count, "
            "or average the heads of each first)"
        )
    student = _full_precision(student_attention)
    teacher = _full_precision(teacher_attention.detach())
    batch, heads, length, _ = student.shape
    if mask is None:
        pairs = torch.ones(batch, length, length, dtype=torch.bool, device=student.device)
    else:
        real = _real_positions(mask, (batch, length, length)).to(student.device)
        pairs = real[:, :, None] & real[:, None, :]
    pairs = pairs[:, None].expand(batch, heads, length, length)
    if kind == "mse":
        return (student[pairs] - teacher[pairs]).pow(2).mean()
    log_q = torch.log(student.clamp_min(torch.finfo(student.dtype).tiny))
    per_pair = torch.where(pairs & (teacher > 0), teacher * (torch.log(teacher.clamp_min(torch.finfo(teacher.dtype).tiny))
                                                             - log_q), torch.zeros_like(teacher))
    queries = pairs.any(dim=-1)
    return per_pair.sum(dim=-1)[queries].mean()
