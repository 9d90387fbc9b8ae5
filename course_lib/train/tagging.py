"""Training and scoring a model that predicts one label per token: taggers and language models (chapter 04).

Token-level loss that ignores padding, decoding of logits into valid BIO tags, entity-level
evaluation with seqeval, the log-likelihood of a language model's next tokens, and helpers to
tag a raw sentence.

Evaluation follows seqeval's default mode, which matches the classic ``conlleval`` script
used by the MSRA/CoNLL literature: an ``I-X`` that does not continue an entity of type X
starts a new entity (it is not discarded as in the strict IOB2 mode).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from seqeval.metrics.sequence_labeling import get_entities
from torch import Tensor, nn

from course_lib.data import ID2LABEL, IGNORE_INDEX, LABELS, CharVocab
from course_lib.train.decoding import DECODERS, decode_tags
from course_lib.train.loop import move_to_device


def token_classification_loss(
    logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Mean cross-entropy over real tokens: positions whose label is ``ignore_index`` are left out (chapter 07).

    ``logits`` has shape (B, L, C), ``labels`` (B, L) with integer class ids.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        raise ValueError(
            "logits must be a (batch, length, num_labels) tensor, got "
            + (
                f"shape {tuple(logits.shape)}"
                if isinstance(logits, Tensor)
                else type(logits).__name__
            )
        )
    if not isinstance(labels, Tensor) or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"labels must be a (batch, length) tensor matching logits {tuple(logits.shape)}, got "
            + (
                f"shape {tuple(labels.shape)}"
                if isinstance(labels, Tensor)
                else type(labels).__name__
            )
        )
    if labels.dtype != torch.long:
        raise TypeError(f"labels must hold class ids as torch.long, got {labels.dtype}")
    if not bool((labels != ignore_index).any()):
        raise ValueError(
            f"every label equals ignore_index={ignore_index}: "
            "the batch has no real tokens to learn from"
        )
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index
    )


def _logits_of(output: Any) -> Tensor:
    """The logits of a model output (a ``ModelOutput`` or a bare tensor)."""
    return output if isinstance(output, Tensor) else output.logits


def tagger_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Token-classification loss of ``model`` on a ``collate_ner`` batch; a ``loss_fn`` for ``train`` (chapter 04)."""
    output = model(batch["input_ids"], mask=batch["mask"])
    return token_classification_loss(_logits_of(output), batch["labels"])


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _predict_tags(
    model: nn.Module, loader: Iterable[dict[str, Tensor]], decoders: Sequence[str] = ("viterbi",)
) -> tuple[list[list[str]], dict[str, list[list[str]]]]:
    """Gold tag sequences and, per decoder, predicted ones for every sentence of ``loader`` (eval mode, no gradients)."""
    device = _model_device(model)
    was_training = model.training
    model.eval()
    gold: list[list[str]] = []
    predicted: dict[str, list[list[str]]] = {decoder: [] for decoder in decoders}
    try:
        with torch.no_grad():
            for batch in loader:
                batch = move_to_device(batch, device)
                logits = _logits_of(model(batch["input_ids"], mask=batch["mask"]))
                for decoder in decoders:
                    predicted[decoder].extend(decode_tags(logits, batch["mask"], LABELS, decoder))
                for row, keep in zip(batch["labels"].cpu(), batch["mask"].cpu()):
                    gold.append([ID2LABEL[int(index)] for index in row[keep]])
    finally:
        model.train(was_training)
    if not gold:
        raise ValueError("the loader yielded no sentences to evaluate")
    return gold, predicted


def _spans_by_type(sequences: Sequence[Sequence[str]]) -> dict[str, set[tuple[int, int]]]:
    """seqeval's entities of ``sequences`` (conlleval mode), as a set of (start, end) spans per entity type."""
    spans: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for type_name, start, end in get_entities([list(row) for row in sequences]):
        spans[type_name].add((start, end))
    return spans


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0 where the denominator is 0 (seqeval's ``zero_division=0``)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator != 0)


def _scores(tp: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per row of entity counts, computed as seqeval computes them."""
    precision, recall = _divide(tp, predicted), _divide(tp, true)
    denominator = precision + recall
    denominator[denominator == 0] = 1
    return precision, recall, 2 * precision * recall / denominator


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                  gold_spans: dict[str, set[tuple[int, int]]] | None = None) -> dict[str, dict[str, float]]:
    """seqeval's entity-level ``precision``, ``recall``, ``f1`` and ``support`` per type and averaged (chapter 04).

    The one place the course scores entities: keys are the entity types ("PER", "LOC", "ORG")
    and seqeval's averages ("micro avg" is the overall score every table reports), the figures of
    seqeval's ``classification_report(..., zero_division=0)``. The entities come from seqeval's
    ``get_entities`` once per side (the report extracts them ten times); ``gold_spans``, the gold
    entities already extracted, lets several predictions be scored against one gold side.
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError(f"gold and predicted must hold the same number of sequences of the same lengths, got "
                         f"{len(gold)} and {len(predicted)} sequences")
    truth = _spans_by_type(gold) if gold_spans is None else gold_spans
    guess = _spans_by_type(predicted)
    names = sorted(set(truth) | set(guess))
    tp = np.array([len(truth.get(name, set()) & guess.get(name, set())) for name in names], dtype=np.int64)
    pred_sum = np.array([len(guess.get(name, set())) for name in names], dtype=np.int64)
    true_sum = np.array([len(truth.get(name, set())) for name in names], dtype=np.int64)
    precision, recall, f1 = _scores(tp, pred_sum, true_sum)
    report = {name: (precision[i], recall[i], f1[i], true_sum[i]) for i, name in enumerate(names)}
    micro = _scores(tp.sum(keepdims=True), pred_sum.sum(keepdims=True), true_sum.sum(keepdims=True))
    report["micro avg"] = (*(float(value[0]) for value in micro), true_sum.sum())
    report["macro avg"] = (*(np.average(value) if names else 0.0 for value in (precision, recall, f1)), true_sum.sum())
    if true_sum.sum() == 0:
        report["weighted avg"] = (0.0, 0.0, 0.0, 0)
    else:
        report["weighted avg"] = (*(np.average(value, weights=true_sum) for value in (precision, recall, f1)),
                                  true_sum.sum())
    return {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for name, (p, r, f, n) in report.items()}


def evaluate_tagger(model: nn.Module, loader: Iterable[dict[str, Tensor]]) -> dict[str, float]:
    """Entity-level micro ``precision``/``recall``/``f1`` (seqeval, conlleval mode) and ``token_accuracy`` (chapter 04).

    The tags are Viterbi-decoded under the BIO constraint (:mod:`course_lib.train.decoding`);
    ``f1_argmax`` is the F1 of plain per-token argmax, for comparison. Usable as ``evaluate_fn``
    for ``train`` (with ``monitor="f1"``).
    """
    gold, predicted = _predict_tags(model, loader, DECODERS)
    viterbi, gold_spans = predicted["viterbi"], _spans_by_type(gold)
    correct = sum(g == p for gold_row, pred_row in zip(gold, viterbi) for g, p in zip(gold_row, pred_row))
    overall = entity_scores(gold, viterbi, gold_spans)["micro avg"]
    return {"precision": overall["precision"], "recall": overall["recall"], "f1": overall["f1"],
            "f1_argmax": entity_scores(gold, predicted["argmax"], gold_spans)["micro avg"]["f1"],
            "token_accuracy": correct / sum(len(row) for row in gold)}


def per_type_report(model: nn.Module, loader: Iterable[dict[str, Tensor]]) -> dict[str, dict[str, float]]:
    """:func:`entity_scores` of ``model`` (Viterbi-decoded tags) on the sentences of ``loader`` (chapter 04)."""
    gold, predicted = _predict_tags(model, loader)
    return entity_scores(gold, predicted["viterbi"])


@torch.no_grad()
def token_nll(model: nn.Module, batches: Iterable[dict[str, Tensor]], device: torch.device | str = "cpu") -> float:
    """Mean negative log-likelihood (nats) per real labelled token of ``batches`` under ``model`` (chapter 04).

    For a language model on :func:`~course_lib.data.batching.lm_batch` batches, ``exp`` of the
    result is the perplexity. The model is scored in eval mode and left in the mode it was in.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            batch = move_to_device(batch, device)
            logits = model(batch["input_ids"], mask=batch["mask"]).logits
            total += float(F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(),
                                           ignore_index=IGNORE_INDEX, reduction="sum"))
            count += int((batch["labels"] != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the batches hold no real position: there is nothing to score")
    return total / count


def run_on_text(model: nn.Module, vocab: CharVocab, text: str) -> tuple[Any, Tensor]:
    """Run ``model`` on one raw sentence in eval mode without gradients: (its output, the mask) (chapter 03).

    The text is encoded character by character with ``vocab``; texts longer than the model's
    ``config.max_len`` are refused. The model is left in the mode it was in.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    max_len = getattr(getattr(model, "config", None), "max_len", None)
    if max_len is not None and len(text) > max_len:
        raise ValueError(
            f"text has {len(text)} characters but the model takes at most max_len={max_len}; "
            "split it into shorter sentences"
        )
    input_ids = torch.tensor([vocab.encode(list(text))], dtype=torch.long, device=_model_device(model))
    mask = torch.ones_like(input_ids, dtype=torch.bool)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(input_ids, mask=mask)
    finally:
        model.train(was_training)
    return output, mask


def tag_sentence(model: nn.Module, text: str, vocab: CharVocab) -> list[tuple[str, str]]:
    """Tag each character of ``text``: a list of (character, BIO tag) pairs (chapter 03)."""
    output, mask = run_on_text(model, vocab, text)
    return list(zip(text, decode_tags(_logits_of(output), mask, LABELS)[0]))


