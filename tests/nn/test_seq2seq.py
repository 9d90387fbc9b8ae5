"""Tests for course_lib.nn.seq2seq: the encoder–decoder Transformer."""

from __future__ import annotations

import pytest
import torch

from course_lib.nn.seq2seq import (
    DecoderBlock,
    DecoderOutput,
    Seq2SeqConfig,
    Seq2SeqTransformer,
)
from course_lib.nn.transformer import count_parameters
from course_lib.train.teacher_forcing import label_smoothed_cross_entropy, shift_right

VOCAB = 20


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(**overrides) -> Seq2SeqConfig:
    values = {"vocab_size": VOCAB, "d_model": 16, "num_heads": 2, "encoder_layers": 1, "decoder_layers": 2,
              "d_ff": 32, "max_len": 16, "dropout": 0.0}
    values.update(overrides)
    return Seq2SeqConfig(**values)


def _model(seed: int = 0, **overrides) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    return Seq2SeqTransformer(_config(**overrides)).eval()


def _ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=generator)  # no pad, bos or eos inside


def test_forward_shapes_and_decoder_output():
    model = _model()
    src, tgt = _ids(3, 7), _ids(3, 5, seed=1)
    with torch.no_grad():
        logits = model(src, None, tgt, None)
        memory = model.encode(src)
        output = model.decode(memory, src != 0, tgt)
    assert logits.shape == (3, 5, VOCAB) and memory.shape == (3, 7, 16)
    assert isinstance(output, DecoderOutput)
    torch.testing.assert_close(output.logits, logits)
    assert len(output.hidden) == 3 and all(h.shape == (3, 5, 16) for h in output.hidden)
    assert [a.shape for a in output.self_attention] == [(3, 2, 5, 5)] * 2
    assert [a.shape for a in output.cross_attention] == [(3, 2, 5, 7)] * 2
    step = model.decode_step(memory, src != 0, tgt[:, :3])
    torch.testing.assert_close(step, logits[:, 2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [True, False])
def test_the_decoder_cannot_see_the_future(norm_first):
    model = _model(norm_first=norm_first)
    src, tgt = _ids(2, 6), _ids(2, 8, seed=1)
    changed = tgt.clone()
    changed[:, 5] = (tgt[:, 5] + 1 - 3) % (VOCAB - 3) + 3
    with torch.no_grad():
        before, after = model(src, None, tgt, None), model(src, None, changed, None)
    torch.testing.assert_close(after[:, :5], before[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(after[:, 5:], before[:, 5:])
    with torch.no_grad():
        weights = model.decode(model.encode(src), src != 0, tgt).self_attention
    assert all(torch.all(w.triu(diagonal=1) == 0) for w in weights)


def test_cross_attention_sums_to_one_over_real_source_tokens_only():
    model = _model()
    src = _ids(3, 8)
    src_mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3, [True] * 2 + [False] * 6])
    tgt = _ids(3, 4, seed=1)
    for layer in (0, 1, -1):
        with torch.no_grad():
            weights = model.cross_attention(src, src_mask, tgt, None, layer=layer)
        assert weights.shape == (3, 2, 4, 8)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 4))
        assert torch.all(weights.masked_select(~src_mask[:, None, None, :]) == 0)
        assert torch.all(weights[:, :, :, :2] > 0)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_source_padding_does_not_change_the_outputs(norm_first, positional):
    model = _model(norm_first=norm_first, positional=positional)
    src, tgt = _ids(2, 6), _ids(2, 5, seed=1)
    padded = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    noisy = torch.cat([src, _ids(2, 4, seed=2)], dim=1)  # the explicit mask must hide non-pad tokens too
    with torch.no_grad():
        short = model(src, None, tgt, None)
        for ids, mask in ((padded, None), (noisy, padded != 0)):
            torch.testing.assert_close(model(ids, mask, tgt, None), short, atol=1e-5, rtol=0)


def test_target_padding_does_not_change_real_positions():
    model = _model()
    src, tgt = _ids(2, 6), _ids(2, 5, seed=1)
    padded = torch.cat([tgt, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(src, None, padded, None)[:, :5], model(src, None, tgt, None),
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", [
    {}, {"tie_embeddings": False}, {"norm_first": False}, {"positional": "learned", "encoder_layers": 2},
])
def test_parameter_count_matches_the_formula(overrides):
    config = _config(**overrides)
    assert count_parameters(Seq2SeqTransformer(config)) == config.parameter_count()


def test_tied_embeddings_are_one_table_counted_once():
    tied, untied = _model(), _model(tie_embeddings=False)
    assert tied.encoder.embed.weight is tied.decoder.embed.weight is tied.output.weight
    assert untied.encoder.embed.weight is not untied.decoder.embed.weight
    assert count_parameters(untied) - count_parameters(tied) == 2 * VOCAB * 16
    assert tied.output.bias is None


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = Seq2SeqTransformer(_config(dropout=0.1, tie_embeddings=False)).train()
    src, labels = _ids(2, 6), torch.cat([_ids(2, 4, seed=1), torch.full((2, 1), 2)], dim=1)
    labels[1, 3:] = 0
    logits = model(src, None, shift_right(labels), labels != 0)
    label_smoothed_cross_entropy(logits, labels).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_decoder_block_keeps_shapes_in_both_norm_placements():
    for norm_first in (True, False):
        block = DecoderBlock(_config(norm_first=norm_first)).eval()
        x, memory = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
        causal, real = torch.ones(4, 4, dtype=torch.bool).tril()[None], torch.ones(2, 6, dtype=torch.bool)
        out, self_w, cross_w = block(x, memory, causal, real)
        assert out.shape == (2, 4, 16) and self_w.shape == (2, 2, 4, 4) and cross_w.shape == (2, 2, 4, 6)


def test_config_round_trip_and_encoder_config():
    config = _config(tie_embeddings=False)
    assert Seq2SeqConfig.from_dict(config.to_dict()) == config
    encoder = config.encoder_config()
    assert (encoder.num_layers, encoder.causal, encoder.pad_id) == (1, False, 0)
    with pytest.raises(ValueError, match=r"unknown Seq2SeqConfig keys \['num_layers'\]"):
        Seq2SeqConfig.from_dict({"vocab_size": 10, "num_layers": 2})


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"vocab_size": 0}, ValueError, "vocab_size must be a positive int, got 0"),
        ({"decoder_layers": 0}, ValueError, "decoder_layers must be a positive int"),
        ({"num_heads": 3}, ValueError, r"d_model \(16\) must be divisible by num_heads \(3\)"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a number in \[0, 1\)"),
        ({"tie_embeddings": "yes"}, TypeError, "tie_embeddings must be a bool"),
        ({"positional": "relative"}, ValueError, "positional must be one of .*'sinusoidal', 'learned'"),
        ({"eos_id": VOCAB}, ValueError, r"eos_id must be an int in \[0, vocab_size=20\)"),
        ({"bos_id": 0}, ValueError, "pad_id, bos_id and eos_id must differ"),
    ],
)
def test_config_rejects_bad_values(overrides, error, match):
    with pytest.raises(error, match=match):
        _config(**overrides)


def test_bad_inputs_give_clear_errors():
    model = _model()
    src, tgt = _ids(2, 6), _ids(2, 5)
    cases = [
        ((src[0], None, tgt, None), ValueError, r"src_ids must be 2-D \(batch, length\)"),
        ((src.float(), None, tgt, None), TypeError, "src_ids must be an integer tensor"),
        ((src, None, tgt[:1], None), ValueError, r"source batch \(2\) and the target batch \(1\)"),
        ((src, src.bool()[:, :3], tgt, None), ValueError, "src_mask must have the shape of its ids"),
        ((src, None, tgt, tgt != 0), None, None),
        ((src, None, tgt, (tgt != 0).long()), TypeError, "tgt_mask must be a boolean tensor"),
        ((_ids(2, 17), None, tgt, None), ValueError, "src_ids has length 17, which exceeds max_len=16"),
        ((src, None, tgt + VOCAB, None), ValueError, r"tgt_in_ids must lie in \[0, vocab_size=20\)"),
    ]
    for args, error, match in cases:
        if error is None:
            model(*args)
            continue
        with pytest.raises(error, match=match):
            model(*args)
    with pytest.raises(ValueError, match=r"layer must be an int in \[-2, 2\)"):
        model.cross_attention(src, None, tgt, None, layer=2)
    with pytest.raises(ValueError, match="memory must be the encoder output"):
        model.decode(torch.zeros(2, 6), src != 0, tgt)
    with pytest.raises(TypeError, match="config must be a Seq2SeqConfig"):
        Seq2SeqTransformer({"vocab_size": VOCAB})
