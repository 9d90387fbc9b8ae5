"""Tests for course_lib.nn.char_lm: the causal mask, the key/value-cached step, batches, scoring and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.data.batching import lm_batch
from course_lib.nn.char_lm import CharLM, sample
from course_lib.train.tagging import tagger_loss, token_nll
from course_lib.data import IGNORE_INDEX
from course_lib.train.loop import train
from course_lib.nn.transformer import TransformerConfig

BOS, EOS = 2, 3


def sequence_nll(model: CharLM, sequences: list[list[int]]) -> float:
    """The mean NLL per token of ``sequences``, each scored as ``<s> seq </s>``."""
    if not sequences:
        raise ValueError("sequences is empty: there is nothing to score")
    return token_nll(model, [lm_batch(sequences, BOS, EOS)])


def tiny_lm(norm_first: bool = True, positional: str = "sinusoidal", seed: int = 0) -> CharLM:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=12, d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=20,
                               dropout=0.0, causal=True, norm_first=norm_first, positional=positional)
    return CharLM(config).eval()


def test_a_language_model_refuses_an_encoder_without_the_causal_mask():
    with pytest.raises(ValueError, match="causal=True"):
        CharLM(TransformerConfig(vocab_size=12, d_model=16, num_heads=2))
    with pytest.raises(TypeError, match="causal must be a bool"):
        TransformerConfig(vocab_size=12, causal="yes")


def test_a_position_never_sees_the_characters_after_it():
    model = tiny_lm()
    ids = torch.randint(4, 12, (2, 9))
    changed = ids.clone()
    changed[:, 5:] = torch.randint(4, 12, (2, 4))
    before, after = model(ids).logits, model(changed).logits
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6), "positions 0-4 must not depend on 5 onwards"
    assert not torch.allclose(before[:, 5:], after[:, 5:])
    attention = model(ids).attention[0]
    assert torch.all(attention.triu(diagonal=1) == 0), "no weight above the diagonal"


@pytest.mark.parametrize("norm_first, positional", [(True, "sinusoidal"), (False, "learned"), (True, "none")])
def test_the_cached_step_gives_the_logits_of_the_whole_prefix(norm_first, positional):
    model = tiny_lm(norm_first, positional)
    ids = torch.randint(4, 12, (3, 10))
    full = model(ids).logits
    cache = None
    for position in range(ids.shape[1]):
        logits, cache = model.step(ids[:, position:position + 1], cache)
        assert torch.allclose(logits, full[:, position], atol=1e-5), f"position {position}"
    assert cache[0][0].shape == (3, 2, 10, 8)


def test_the_step_refuses_train_mode_wrong_shapes_and_overlong_sequences():
    model = tiny_lm()
    with pytest.raises(ValueError, match=r"one new character per row, shape \(batch, 1\)"):
        model.step(torch.tensor([[4, 5]]), None)
    cache = None
    for _ in range(20):
        _, cache = model.step(torch.tensor([[4]]), cache)
    with pytest.raises(ValueError, match="exceed max_len=20"):
        model.step(torch.tensor([[4]]), cache)
    with pytest.raises(RuntimeError, match="eval mode"):
        model.train().step(torch.tensor([[4]]), None)


def test_lm_batch_shifts_by_one_and_pads_with_ignored_labels():
    batch = lm_batch([[5, 6, 7], [8]], BOS, EOS)
    assert batch["input_ids"].tolist() == [[BOS, 5, 6, 7], [BOS, 8, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7, EOS], [8, EOS, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["mask"].tolist() == [[True] * 4, [True, True, False, False]]
    with pytest.raises(ValueError, match="no sequences"):
        lm_batch([], BOS, EOS)


def test_padding_does_not_change_the_score_of_a_sequence():
    model = tiny_lm()
    alone = sequence_nll(model, [[5, 6, 7, 8, 9]])
    batched = token_nll(model, [lm_batch([[5, 6, 7, 8, 9]], BOS, EOS)])
    assert math.isclose(alone, batched, rel_tol=1e-6)
    with_short = [lm_batch([[5, 6, 7, 8, 9], [4]], BOS, EOS)]
    short = sequence_nll(model, [[4]])
    assert math.isclose(token_nll(model, with_short), (6 * alone + 2 * short) / 8, rel_tol=1e-5)
    with pytest.raises(ValueError, match="nothing to score"):
        sequence_nll(model, [])


def test_a_trained_model_scores_its_data_better_and_samples_it():
    model = tiny_lm().train()
    data = [[4, 5, 6, 7], [4, 5, 6, 7], [8, 9, 10, 11]] * 8
    before = sequence_nll(model, data)
    loader = [lm_batch(data[i:i + 6], BOS, EOS) for i in range(0, len(data), 6)]
    train(model, loader, loss_fn=tagger_loss, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), epochs=40,
          progress=False)
    assert sequence_nll(model, data) < 0.3 * before
    drawn = sample(model, 40, bos_id=BOS, eos_id=EOS, max_new_tokens=8, temperature=0.5, banned_ids=(0, 1, BOS))
    assert sum(seq in ([4, 5, 6, 7], [8, 9, 10, 11]) for seq in drawn) >= 36
    assert drawn == sample(model, 40, bos_id=BOS, eos_id=EOS, max_new_tokens=8, temperature=0.5,
                           banned_ids=(0, 1, BOS)), "seeded sampling repeats"
    assert not model.training


def test_sampling_respects_banned_tokens_and_the_length_limit():
    model = tiny_lm()
    drawn = sample(model, 10, bos_id=BOS, eos_id=EOS, max_new_tokens=6, banned_ids=(0, 1, BOS, EOS, 4, 5, 6))
    assert all(len(seq) == 6 and not set(seq) & {0, 1, 2, 3, 4, 5, 6} for seq in drawn)
    with pytest.raises(ValueError, match="does not fit max_len=20"):
        sample(model, 1, bos_id=BOS, eos_id=EOS, max_new_tokens=20)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        sample(model, 1, bos_id=BOS, eos_id=EOS, max_new_tokens=5, temperature=0)
    with pytest.raises(ValueError, match="count must be a positive int"):
        sample(model, 0, bos_id=BOS, eos_id=EOS, max_new_tokens=5)
