"""From a trained encoder–decoder to output sentences: batched greedy decoding and beam search (chapter 09).

Both work with any model that has ``encode(src_ids, src_mask) -> memory`` (batch first) and
``decode_step(memory, src_mask, prefix) -> logits (B, V)`` of the token after ``prefix`` (B, t), such as
:class:`~course_lib.nn.seq2seq.Seq2SeqTransformer`. Generation starts from ``<bos>``, never emits
``<pad>`` or ``<bos>``, and stops a hypothesis at ``<eos>`` or after ``max_len`` generated tokens.

The model score of a hypothesis y of |y| generated tokens (``<eos>`` included, ``<bos>`` not) is its
log-probability divided by the length penalty of Wu et al. 2016 (GNMT), section 7:

    score(y) = log P(y | x) / lp(y),    lp(y) = ((5 + |y|) / 6) ** alpha

``alpha = 0`` is the plain sum of log-probabilities, which favours short outputs; ``alpha = 1`` is close to
the mean log-probability per token. Greedy decoding reports the same score, so the two can be compared.

Beam search keeps the ``beam_size`` best unfinished prefixes of each input (ranked by log-probability: all
have the same length), moves a prefix that ends in ``<eos>`` among the ``beam_size`` best candidates to a
finished list (as fairseq does), and stops an input once it has ``beam_size`` finished hypotheses or
reaches ``max_len``. The answer is the finished hypothesis of highest score. With ``beam_size=1`` this is
exactly greedy decoding. A larger beam is not guaranteed to score higher than greedy, since the greedy
prefix can drop out of the beam; it usually does, and on a model where greedy is short-sighted it must.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.data.subwords import BOS_ID, EOS_ID, PAD_ID

DEFAULT_LENGTH_PENALTY = 0.6


class StepModel(Protocol):
    """What generation needs of a model: ``encode`` once, then ``decode_step`` once per token (chapter 09)."""

    def encode(self, src_ids: Tensor, src_mask: Tensor) -> Tensor:
        """The encoder output (batch first) of ``src_ids`` (B, S)."""

    def decode_step(self, memory: Tensor, src_mask: Tensor, prefix: Tensor) -> Tensor:
        """The logits (B, V) of the token after ``prefix`` (B, t)."""


@dataclass(frozen=True)
class Generation:
    """Decoded hypotheses, one per input (chapter 09).

    * ``tokens``: the generated ids, ``<bos>`` left out, ending with ``<eos>`` when the hypothesis finished;
    * ``scores``: the model score, log-probability / GNMT length penalty (see the module docstring);
    * ``log_probs``: the summed log-probability of the tokens;
    * ``finished``: whether the hypothesis ended with ``<eos>`` (False: it was cut at ``max_len``).
    """

    tokens: list[list[int]]
    scores: list[float]
    log_probs: list[float]
    finished: list[bool]


def length_penalty(length: int | Tensor, alpha: float = DEFAULT_LENGTH_PENALTY) -> float | Tensor:
    """GNMT's length penalty ((5 + length) / 6) ** alpha, which divides a hypothesis's log-probability (chapter 09)."""
    checks.non_negative_number("alpha", alpha)
    return ((5 + length) / 6) ** alpha


@contextlib.contextmanager
def _evaluating(model: object) -> Iterator[None]:
    """Switch an ``nn.Module`` to eval mode (no dropout) and gradients off, then restore its mode."""
    was_training = isinstance(model, nn.Module) and model.training
    if was_training:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def _check_arguments(model: object, src_ids: Tensor, src_mask: Tensor | None, pad_id: int, max_len: int) -> Tensor:
    """The source mask (read from ``pad_id`` when None) after checking the model, ``max_len`` and the source."""
    for method in ("encode", "decode_step"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"model must have an {method}() method (see StepModel), got {type(model).__name__}")
    model_len = getattr(getattr(model, "config", None), "max_len", None)
    if isinstance(model_len, int) and max_len > model_len:
        raise ValueError(f"max_len={max_len} is longer than the model's max_len={model_len}: the last step would "
                         f"feed it {max_len} decoder positions; pass max_len <= {model_len}")
    if not isinstance(src_ids, Tensor) or src_ids.dim() != 2 or src_ids.shape[0] == 0:
        shape = tuple(src_ids.shape) if isinstance(src_ids, Tensor) else type(src_ids).__name__
        raise ValueError(f"src_ids must be a 2-D (batch, length) id tensor with at least one row, got {shape}")
    if src_mask is None:
        return src_ids != pad_id
    if not isinstance(src_mask, Tensor) or src_mask.dtype != torch.bool or src_mask.shape != src_ids.shape:
        got = (tuple(src_mask.shape), src_mask.dtype) if isinstance(src_mask, Tensor) else type(src_mask).__name__
        raise ValueError(f"src_mask must be a boolean mask of the shape of src_ids {tuple(src_ids.shape)}, "
                         f"got {got}")
    return src_mask


def _next_log_probs(model: StepModel, memory: Tensor, src_mask: Tensor, prefix: Tensor,
                    forbidden: list[int]) -> Tensor:
    """Log-probabilities (B, V) of the next token, ``forbidden`` ids set to -inf (after the softmax)."""
    log_probs = torch.log_softmax(model.decode_step(memory, src_mask, prefix).float(), dim=-1)
    log_probs[:, forbidden] = float("-inf")
    return log_probs


def greedy_decode(model: StepModel, src_ids: Tensor, src_mask: Tensor | None = None, *, max_len: int,
                  bos_id: int = BOS_ID, eos_id: int = EOS_ID, pad_id: int = PAD_ID,
                  alpha: float = DEFAULT_LENGTH_PENALTY) -> Generation:
    """Pick the most likely next token at every step, for a whole batch at once (chapter 09).

    ``src_ids`` (B, S) with ``src_mask`` (B, S), True on real tokens (default: ``src_ids != pad_id``);
    at most ``max_len`` tokens are generated per input. ``alpha`` only sets the reported score.
    """
    max_len = checks.positive_int("max_len", max_len)
    checks.non_negative_number("alpha", alpha)
    src_mask = _check_arguments(model, src_ids, src_mask, pad_id, max_len)
    batch = src_ids.shape[0]
    with _evaluating(model):
        memory = model.encode(src_ids, src_mask)
        prefix = torch.full((batch, 1), bos_id, dtype=torch.long, device=src_ids.device)
        total = torch.zeros(batch, device=src_ids.device)
        lengths = torch.zeros(batch, dtype=torch.long, device=src_ids.device)
        done = torch.zeros(batch, dtype=torch.bool, device=src_ids.device)
        for _ in range(max_len):
            best, token = _next_log_probs(model, memory, src_mask, prefix, [pad_id, bos_id]).max(dim=-1)
            total = torch.where(done, total, total + best)
            lengths = lengths + (~done).long()
            prefix = torch.cat([prefix, torch.where(done, pad_id, token)[:, None]], dim=1)
            done = done | (token == eos_id)
            if bool(done.all()):
                break
    rows = [row[1 : 1 + n] for row, n in zip(prefix.tolist(), lengths.tolist(), strict=True)]
    scores = total / length_penalty(lengths.float(), alpha)
    return Generation(tokens=rows, scores=scores.tolist(), log_probs=total.tolist(),
                      finished=[bool(row) and row[-1] == eos_id for row in rows])


@dataclass
class _Finished:
    """The finished hypotheses of one input: (score, log-probability, tokens, ended with eos)."""

    hypotheses: list[tuple[float, float, list[int], bool]]

    def add(self, log_prob: float, tokens: list[int], ended: bool, alpha: float) -> None:
        self.hypotheses.append((log_prob / float(length_penalty(len(tokens), alpha)), log_prob, tokens, ended))

    def best(self) -> tuple[float, float, list[int], bool]:
        if not self.hypotheses:
            raise RuntimeError("beam search found no hypothesis of finite log-probability: the model gives -inf "
                               "to every token other than <pad> and <bos>")
        return max(self.hypotheses, key=lambda hypothesis: hypothesis[0])


def beam_search(model: StepModel, src_ids: Tensor, src_mask: Tensor | None = None, *, beam_size: int = 4,
                max_len: int, bos_id: int = BOS_ID, eos_id: int = EOS_ID, pad_id: int = PAD_ID,
                alpha: float = DEFAULT_LENGTH_PENALTY) -> Generation:
    """Keep the ``beam_size`` best prefixes per input and return the best finished hypothesis of each (chapter 09).

    Arguments as in :func:`greedy_decode`; all inputs and beams run through the model as one batch of
    B * beam_size rows. Scores use the GNMT length penalty with ``alpha`` (see the module docstring).
    """
    beam_size = checks.positive_int("beam_size", beam_size)
    max_len = checks.positive_int("max_len", max_len)
    alpha = checks.non_negative_number("alpha", alpha)
    src_mask = _check_arguments(model, src_ids, src_mask, pad_id, max_len)
    batch, device = src_ids.shape[0], src_ids.device
    finished = [_Finished([]) for _ in range(batch)]
    with _evaluating(model):
        memory = model.encode(src_ids, src_mask).repeat_interleave(beam_size, dim=0)
        beam_mask = src_mask.repeat_interleave(beam_size, dim=0)
        prefix = torch.full((batch * beam_size, 1), bos_id, dtype=torch.long, device=device)
        alive = torch.full((batch, beam_size), float("-inf"), device=device)
        alive[:, 0] = 0.0  # at the start only one prefix, <bos>, is alive per input
        for step in range(1, max_len + 1):
            log_probs = _next_log_probs(model, memory, beam_mask, prefix, [pad_id, bos_id])
            vocab = log_probs.shape[-1]
            candidates = (alive[:, :, None] + log_probs.view(batch, beam_size, vocab)).view(batch, -1)
            scores, index = candidates.topk(min(2 * beam_size, candidates.shape[1]), dim=1)
            beams, tokens = index // vocab, index % vocab
            history = prefix.view(batch, beam_size, step)
            last = step == max_len
            _finish(finished, history, scores, beams, tokens, eos_id, beam_size, alpha, last)
            if last or all(len(f.hypotheses) >= beam_size for f in finished):
                break
            keep = torch.argsort((tokens == eos_id).int(), dim=1, stable=True)[:, :beam_size]
            alive, beams, tokens = scores.gather(1, keep), beams.gather(1, keep), tokens.gather(1, keep)
            chosen = history.gather(1, beams[:, :, None].expand(-1, -1, step))
            prefix = torch.cat([chosen, tokens[:, :, None]], dim=2).view(batch * beam_size, step + 1)
    best = [f.best() for f in finished]
    return Generation(tokens=[b[2] for b in best], scores=[b[0] for b in best], log_probs=[b[1] for b in best],
                      finished=[b[3] for b in best])


def _finish(finished: list[_Finished], history: Tensor, scores: Tensor, beams: Tensor, tokens: Tensor,
            eos_id: int, beam_size: int, alpha: float, last: bool) -> None:
    """Move the candidates that end a hypothesis to ``finished``, best first, at most ``beam_size`` per input.

    A candidate ends a hypothesis when it is ``<eos>`` among the ``beam_size`` best of its input, or when it is
    among the ``beam_size`` best at the last step.
    """
    ends = (tokens[:, :beam_size] == eos_id) | last
    ends &= torch.isfinite(scores[:, :beam_size])
    for row, rank in ends.nonzero().tolist():
        if len(finished[row].hypotheses) >= beam_size:
            continue
        token = int(tokens[row, rank])
        generated = history[row, int(beams[row, rank]), 1:].tolist() + [token]
        finished[row].add(float(scores[row, rank]), generated, token == eos_id, alpha)
