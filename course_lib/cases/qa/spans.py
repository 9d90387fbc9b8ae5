"""Span extraction: the start/end losses, span-level KD, decoding answers and the exact-match span F1 (chapter 09).

The model gives every passage position a binary start and a binary end probability;
:func:`decode_spans` pairs each predicted start with the nearest predicted end at or after it.
:func:`span_f1` scores exact (sentence, type, start, end) matches, for the span models and, on
the same passages, for a BIO tagger (:func:`tagger_spans`). A binary sigmoid is a two-way
softmax over the logits ``[0, z]`` (:func:`two_class_logits`), so Hinton's loss
:func:`~course_lib.kd.losses.kd_loss` applies to start/end probabilities as it is
(:func:`span_kd_loss`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import checks
from course_lib.cases.qa.questions import ENTITY_TYPES, QAExample, Span, passage_window, qa_loader
from course_lib.data import LABELS, CharVocab, Sentence, ner_loader
from course_lib.data.msra import extract_entities
from course_lib.kd.losses import kd_loss
from course_lib.train.decoding import decode_tags
from course_lib.train.loop import move_to_device

def _pairs(batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The start then end targets (B, 2L) as class ids and the passage mask repeated to match."""
    labels = torch.cat([batch["start"], batch["end"]], dim=1).long()
    return labels, torch.cat([batch["passage"], batch["passage"]], dim=1)


def two_class_logits(logits: Tensor) -> Tensor:
    """Start/end logits (B, L, 2) as two-class logits ``[0, z]`` (B, 2L, 2): starts first, then ends (chapter 09).

    ``softmax([0, z])[1] = sigmoid(z)``: a binary decision is a two-way softmax, so the course's
    softmax losses (cross-entropy, Hinton's KD loss) apply to it unchanged.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 3 or logits.shape[-1] != 2:
        raise ValueError(f"logits must be (batch, length, 2) start/end logits, got "
                         f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    flat = torch.cat([logits[..., 0], logits[..., 1]], dim=1)
    return torch.stack([torch.zeros_like(flat), flat], dim=-1)


def span_hard_loss(logits: Tensor, batch: Mapping[str, Tensor], positive_weight: float) -> Tensor:
    """Binary cross-entropy of (B, L, 2) start/end logits at passage positions; gold positions weigh ``positive_weight`` (chapter 09)."""
    labels, passage = _pairs(batch)
    flat = two_class_logits(logits)[..., 1]
    weight = torch.tensor(checks.positive_number("positive_weight", positive_weight), device=flat.device)
    return F.binary_cross_entropy_with_logits(flat[passage], labels[passage].float(), pos_weight=weight)


def span_loss(model: nn.Module, batch: Mapping[str, Tensor], positive_weight: float = 1.0) -> Tensor:
    """Binary cross-entropy of the start and end logits against the gold ones, over passage positions (chapter 09).

    Only about one passage position in fifty starts an answer; ``positive_weight`` > 1 (PyTorch's
    ``pos_weight``) counts each gold start and end that many times, so a small model trained
    briefly still learns to say "yes" somewhere.
    """
    logits = model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"]).logits
    return span_hard_loss(logits, batch, positive_weight)


def span_kd_loss(student_logits: Tensor, teacher_logits: Tensor, batch: Mapping[str, Tensor], temperature: float,
                 alpha: float, positive_weight: float = 1.0) -> Tensor:
    """Span-level KD: ``alpha`` × binary CE + ``(1 − alpha)`` × T² × binary KL to the teacher, over passage positions (chapter 09).

    The soft term is :func:`~course_lib.kd.losses.kd_loss` (at ``alpha = 0``) on
    :func:`two_class_logits`; the hard term is :func:`span_loss`'s. With ``positive_weight = 1``
    the sum is exactly ``kd_loss`` with the gold starts and ends as labels; it is 0 at
    ``alpha = 0`` when the student's logits are the teacher's.
    """
    alpha = checks.alpha(alpha)
    _, passage = _pairs(batch)
    parts = []
    if alpha > 0:
        parts.append(alpha * span_hard_loss(student_logits, batch, positive_weight))
    if alpha < 1:
        parts.append((1 - alpha) * kd_loss(two_class_logits(student_logits), two_class_logits(teacher_logits), None,
                                           temperature, 0.0, mask=passage))
    return sum(parts[1:], parts[0])


def decode_spans(start_probs: Sequence[float], end_probs: Sequence[float], threshold: float = 0.5,
                 max_span: int = 30) -> list[tuple[int, int]]:
    """Answer spans (start, end exclusive) from per-position start and end probabilities of one passage (chapter 09).

    Every position whose start probability exceeds ``threshold`` is paired with the nearest
    position at or after it whose end probability exceeds ``threshold``, if the span is at most
    ``max_span`` characters long; a start without such an end gives no answer.
    """
    if len(start_probs) != len(end_probs):
        raise ValueError(f"need one start and one end probability per position, got {len(start_probs)} "
                         f"and {len(end_probs)}")
    checks.number_in("threshold", threshold, 0.0, 1.0, high_open=True)
    checks.positive_int("max_span", max_span)
    ends = [position for position, p in enumerate(end_probs) if p > threshold]
    spans = []
    for start, p in enumerate(start_probs):
        if p > threshold:
            end = next((e for e in ends if e >= start), None)
            if end is not None and end - start < max_span:
                spans.append((start, end + 1))
    return spans


def gold_spans(examples: Iterable[QAExample]) -> set[Span]:
    """Every answer of ``examples`` as (sentence, type, start, end exclusive) (chapter 09)."""
    return {(example.sentence, example.kind, start, end) for example in examples for start, end in example.answers}


def span_f1(gold: Iterable[Span], predicted: Iterable[Span]) -> dict[str, float]:
    """Exact-match micro ``precision``, ``recall`` and ``f1`` of predicted spans against gold spans (chapter 09).

    A span counts only when its sentence, type, start and end all match; nothing predicted or
    nothing to find gives 0 for that part (seqeval's convention).
    """
    gold, predicted = set(gold), set(predicted)
    correct = len(gold & predicted)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_scores(gold: Iterable[Span], predicted: Iterable[Span]) -> dict[str, dict[str, float]]:
    """:func:`span_f1` over all spans (``"all"``) and per entity type (chapter 09)."""
    gold, predicted = set(gold), set(predicted)
    scores = {"all": span_f1(gold, predicted)}
    for kind in ENTITY_TYPES:
        scores[kind] = span_f1({s for s in gold if s[1] == kind}, {s for s in predicted if s[1] == kind})
    return scores


@torch.no_grad()
def batches_spans(model: nn.Module, batches: Iterable[Mapping[str, Tensor]], examples: Sequence[QAExample],
                   max_span: int) -> set[Span]:
    """The answers ``model`` gives to the questions of ``batches`` (from :func:`qa_loader` over ``examples``) (chapter 09)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    spans: set[Span] = set()
    for batch in batches:
        moved = move_to_device(dict(batch), device)
        output = model(moved["input_ids"], mask=moved["mask"], passage_mask=moved["passage"])
        starts, ends = torch.sigmoid(output.start_logits).cpu(), torch.sigmoid(output.end_logits).cpu()
        for row, (index, offset) in enumerate(zip(batch["index"].tolist(), batch["offset"].tolist())):
            example = examples[index]
            window = slice(offset, offset + len(example.passage))
            spans |= {(example.sentence, example.kind, start, end)
                      for start, end in decode_spans(starts[row, window].tolist(), ends[row, window].tolist(),
                                                     max_span=max_span)}
    model.train(was_training)
    return spans


def predict_spans(model: nn.Module, examples: Sequence[QAExample], vocab: CharVocab, max_span: int = 30,
                  batch_size: int = 128) -> set[Span]:
    """The answers ``model`` gives to ``examples``, decoded by :func:`decode_spans`, as (sentence, type, start, end) (chapter 09)."""
    return batches_spans(model, qa_loader(examples, vocab, batch_size, shuffle=False, by_length=True), examples,
                         max_span)


def tagger_spans(model: nn.Module, vocab: CharVocab, sentences: Sequence[Sentence], max_len: int) -> set[Span]:
    """The entities a BIO tagger finds in the passages of ``sentences`` (Viterbi decoding), as (sentence, type, start, end) (chapter 09).

    The tagger reads each sentence's :func:`passage_window` characters — the very passages the
    span models answer questions about — so :func:`span_f1` compares the two on equal terms.
    """
    window = passage_window(max_len)
    passages = [Sentence(sentence.chars[:window], sentence.tags[:window]) for sentence in sentences]
    spans: set[Span] = set()
    number = 0
    model.eval()
    with torch.no_grad():
        for batch in ner_loader(passages, vocab, batch_size=128, shuffle=False):
            for tags in decode_tags(model(batch["input_ids"], mask=batch["mask"]).logits, batch["mask"], LABELS):
                chars = passages[number].chars
                spans |= {(number, kind, start, end) for _, kind, start, end in extract_entities(chars, tags)}
                number += 1
    return spans
