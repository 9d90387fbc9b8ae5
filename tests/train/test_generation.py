"""Tests for course_lib.train.generation: greedy decoding and beam search on a tiny model and a hand-built one."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from course_lib.nn.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.train.generation import Generation, beam_search, greedy_decode, length_penalty
from course_lib.train.teacher_forcing import label_smoothed_cross_entropy, shift_right

VOCAB, PAD, BOS, EOS = 12, 0, 1, 2
A, B, C, D, E = 3, 4, 5, 6, 7


pytestmark = pytest.mark.usefixtures("one_thread")


class ShortSighted:
    """A hand-built model where greedy decoding is provably worse than beam search.

    After <bos>: A 0.55, B 0.45. After A: <eos> 0.3, C 0.25, D 0.25, E 0.2. After anything else: <eos> 1.
    Greedy takes A then <eos> (probability 0.165); the best sequence is B <eos> (0.45).
    """

    def encode(self, src_ids: Tensor, src_mask: Tensor) -> Tensor:
        return src_ids.float()[:, :, None]

    def decode_step(self, memory: Tensor, src_mask: Tensor, prefix: Tensor) -> Tensor:
        rows = []
        for row in prefix.tolist():
            probs = torch.zeros(VOCAB)
            if row == [BOS]:
                probs[A], probs[B] = 0.55, 0.45
            elif row == [BOS, A]:
                probs[EOS], probs[C], probs[D], probs[E] = 0.3, 0.25, 0.25, 0.2
            else:
                probs[EOS] = 1.0
            rows.append(probs.log())
        return torch.stack(rows)


@pytest.fixture(scope="module")
def model() -> Seq2SeqTransformer:
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=VOCAB, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=32,
                           max_len=12, dropout=0.0)
    return Seq2SeqTransformer(config).eval()


@pytest.fixture(scope="module")
def sources() -> tuple[Tensor, Tensor]:
    """Four right-padded sources of lengths 6, 4, 3, 5."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (4, 6), generator=generator)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 4, 3, 5])[:, None]
    return ids.masked_fill(~mask, PAD), mask


def _check_well_formed(result: Generation, batch: int, max_len: int) -> None:
    assert len(result.tokens) == len(result.scores) == len(result.log_probs) == len(result.finished) == batch
    for tokens, finished in zip(result.tokens, result.finished, strict=True):
        assert 1 <= len(tokens) <= max_len
        assert finished == (tokens[-1] == EOS)
        assert finished or len(tokens) == max_len
        assert EOS not in tokens[:-1] and PAD not in tokens and BOS not in tokens


def test_greedy_is_short_sighted_and_beam_search_finds_the_better_sequence():
    src, toy = torch.tensor([[5, 6]]), ShortSighted()
    greedy = greedy_decode(toy, src, max_len=5, alpha=0.0)
    assert greedy.tokens == [[A, EOS]] and greedy.log_probs[0] == pytest.approx(math.log(0.55 * 0.3), abs=1e-6)
    beam = beam_search(toy, src, beam_size=2, max_len=5, alpha=0.0)
    assert beam.tokens == [[B, EOS]] and beam.log_probs[0] == pytest.approx(math.log(0.45), abs=1e-6)
    assert beam.scores[0] > greedy.scores[0]
    assert beam_search(toy, src, beam_size=1, max_len=5, alpha=0.0).tokens == greedy.tokens


def test_scores_are_log_probabilities_over_the_gnmt_length_penalty():
    assert length_penalty(1, 0.6) == pytest.approx(1.0)
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    beam = beam_search(ShortSighted(), torch.tensor([[5]]), beam_size=2, max_len=5, alpha=1.0)
    assert beam.scores[0] == pytest.approx(math.log(0.45) / ((5 + 2) / 6), abs=1e-6)


def test_beam_size_one_is_greedy_decoding(model, sources):
    greedy = greedy_decode(model, *sources, max_len=8)
    beam = beam_search(model, *sources, beam_size=1, max_len=8)
    assert beam.tokens == greedy.tokens and beam.finished == greedy.finished
    assert beam.scores == pytest.approx(greedy.scores, abs=1e-5)
    assert beam.log_probs == pytest.approx(greedy.log_probs, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_never_scores_below_greedy_on_these_inputs(model, sources, alpha):
    greedy = greedy_decode(model, *sources, max_len=8, alpha=alpha)
    for beam_size in (2, 3, 5):
        beam = beam_search(model, *sources, beam_size=beam_size, max_len=8, alpha=alpha)
        assert all(b >= g - 1e-5 for b, g in zip(beam.scores, greedy.scores, strict=True)), (beam_size, alpha)


@pytest.mark.parametrize("max_len", [1, 3, 8])
def test_every_hypothesis_stops_at_eos_or_max_len(model, sources, max_len):
    _check_well_formed(greedy_decode(model, *sources, max_len=max_len), 4, max_len)
    _check_well_formed(beam_search(model, *sources, beam_size=3, max_len=max_len), 4, max_len)
    toy = beam_search(ShortSighted(), torch.tensor([[5], [6]]), beam_size=3, max_len=4)
    _check_well_formed(toy, 2, 4)
    assert all(toy.finished)


def test_a_batch_decodes_like_its_inputs_one_at_a_time(model, sources):
    ids, mask = sources
    batched = {"greedy": greedy_decode(model, ids, mask, max_len=6),
               "beam": beam_search(model, ids, mask, beam_size=3, max_len=6)}
    for row in range(ids.shape[0]):
        length = int(mask[row].sum())
        alone = {"greedy": greedy_decode(model, ids[row : row + 1, :length], max_len=6),
                 "beam": beam_search(model, ids[row : row + 1, :length], beam_size=3, max_len=6)}
        for name, result in alone.items():
            assert result.tokens[0] == batched[name].tokens[row], (name, row)
            assert result.scores[0] == pytest.approx(batched[name].scores[row], abs=1e-5)


def test_generation_restores_training_mode_and_needs_no_gradients(model, sources):
    model.train()
    try:
        result = beam_search(model, *sources, beam_size=2, max_len=3)
        assert model.training
    finally:
        model.eval()
    assert result == beam_search(model, *sources, beam_size=2, max_len=3)  # dropout 0, eval inside: same answer


def test_a_tiny_model_trained_to_copy_decodes_its_training_targets():
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=8, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=32,
                           max_len=6, dropout=0.0)
    model = Seq2SeqTransformer(config)
    src = torch.tensor([[3, 4, 5], [5, 3, 0], [6, 7, 4], [7, 0, 0]])
    labels = torch.tensor([[3, 4, 5, 2], [5, 3, 2, 0], [6, 7, 4, 2], [7, 2, 0, 0]])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimiser.zero_grad()
        loss = label_smoothed_cross_entropy(model(src, None, shift_right(labels), labels != 0), labels, 0.0)
        loss.backward()
        optimiser.step()
    expected = [[token for token in row if token != PAD] for row in labels.tolist()]
    assert greedy_decode(model, src, max_len=5).tokens == expected
    assert beam_search(model, src, beam_size=3, max_len=5).tokens == expected


def test_bad_arguments_give_clear_errors(model, sources):
    ids, mask = sources
    with pytest.raises(TypeError, match=r"model must have an encode\(\) method"):
        greedy_decode(object(), ids, max_len=3)
    with pytest.raises(ValueError, match="max_len must be a positive int, got 0"):
        greedy_decode(model, ids, max_len=0)
    with pytest.raises(ValueError, match="beam_size must be a positive int, got 0"):
        beam_search(model, ids, beam_size=0, max_len=3)
    with pytest.raises(ValueError, match=r"src_ids must be a 2-D \(batch, length\) id tensor"):
        beam_search(model, ids[0], max_len=3)
    with pytest.raises(ValueError, match="src_mask must be a boolean mask of the shape of src_ids"):
        greedy_decode(model, ids, mask[:, :2], max_len=3)
    with pytest.raises(ValueError, match="alpha must be a number >= 0"):
        beam_search(model, ids, max_len=3, alpha=-1.0)
    with pytest.raises(ValueError, match="max_len=13 is longer than the model's max_len=12"):
        greedy_decode(model, ids, max_len=13)
