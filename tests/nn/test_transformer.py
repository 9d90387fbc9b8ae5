"""Tests for course_lib.nn.transformer."""

import pytest
import torch
from torch import nn

from course_lib.nn.transformer import (
    EncoderBlock,
    FeedForward,
    ModelOutput,
    SequenceClassifier,
    TokenTagger,
    TransformerConfig,
    TransformerEncoder,
    count_parameters,
    load_encoder_weights,
)

VOCAB = 30


def _config(**overrides) -> TransformerConfig:
    values = {
        "vocab_size": VOCAB,
        "d_model": 16,
        "num_heads": 4,
        "num_layers": 2,
        "d_ff": 32,
        "max_len": 24,
        "dropout": 0.1,
    }
    values.update(overrides)
    return TransformerConfig(**values)


def _ids(batch: int = 3, length: int = 10, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=gen)  # no pad_id (0) inside


# --- config -----------------------------------------------------------------------------


def test_config_defaults_and_round_trip():
    config = TransformerConfig(vocab_size=100)
    assert (config.d_model, config.num_heads, config.num_layers, config.d_ff) == (128, 4, 2, 512)
    assert config.norm_first is True and config.positional == "sinusoidal" and config.pad_id == 0
    data = config.to_dict()
    assert data["vocab_size"] == 100
    assert TransformerConfig.from_dict(data) == config


def test_config_from_dict_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"unknown TransformerConfig keys \['n_layer'\]"):
        TransformerConfig.from_dict({"vocab_size": 10, "n_layer": 2})
    with pytest.raises(ValueError, match="must contain 'vocab_size'"):
        TransformerConfig.from_dict({"d_model": 16})


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"vocab_size": 0}, ValueError, "vocab_size must be a positive int, got 0"),
        ({"d_model": -8}, ValueError, "d_model must be a positive int"),
        ({"num_layers": 1.5}, ValueError, "num_layers must be a positive int, got 1.5"),
        ({"d_ff": True}, ValueError, "d_ff must be a positive int"),
        ({"num_heads": 3}, ValueError, r"d_model \(16\) must be divisible by num_heads \(3\)"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a number in \[0, 1\), got 1.0"),
        ({"dropout": "0.1"}, ValueError, r"dropout must be a number in \[0, 1\)"),
        ({"norm_first": "yes"}, TypeError, "norm_first must be a bool"),
        ({"positional": "rotary"}, ValueError, "positional must be one of .* got 'rotary'"),
        ({"d_model": 15, "num_heads": 3}, ValueError, "d_model must be even for the sinusoidal"),
        ({"pad_id": VOCAB}, ValueError, r"pad_id must be an int in \[0, vocab_size=30\)"),
    ],
)
def test_config_rejects_bad_values(overrides, error, match):
    with pytest.raises(error, match=match):
        _config(**overrides)


# --- building blocks --------------------------------------------------------------------


def test_feed_forward_shape_and_relu():
    ff = FeedForward(16, 32, dropout=0.0)
    assert isinstance(ff.activation, nn.ReLU)
    assert ff(torch.randn(2, 5, 16)).shape == (2, 5, 16)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_shapes(norm_first):
    block = EncoderBlock(_config(norm_first=norm_first)).eval()
    x = torch.randn(2, 7, 16)
    real = torch.ones(2, 7, dtype=torch.bool)
    real[1, 4:] = False
    out, weights = block(x, real)
    assert out.shape == (2, 7, 16) and weights.shape == (2, 4, 7, 7)
    assert torch.all(weights[1, :, :, 4:] == 0)


def test_pre_norm_and_post_norm_differ_in_arrangement():
    torch.manual_seed(0)
    pre = EncoderBlock(_config(norm_first=True, dropout=0.0))
    post = EncoderBlock(_config(norm_first=False, dropout=0.0))
    post.load_state_dict(pre.state_dict())
    x = torch.randn(2, 5, 16) * 3 + 1
    out_pre, _ = pre(x)
    out_post, _ = post(x)
    assert not torch.allclose(out_pre, out_post)
    # post-norm ends in a LayerNorm with unit weight: each position has mean 0, std 1
    torch.testing.assert_close(out_post.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    # pre-norm keeps the residual stream un-normalised
    assert out_pre.mean(-1).abs().max() > 0.1


# --- encoder and heads ------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "none"])
def test_encoder_output_shapes(norm_first, positional):
    config = _config(norm_first=norm_first, positional=positional, num_layers=3)
    encoder = TransformerEncoder(config).eval()
    ids = _ids()
    ids[0, 7:] = config.pad_id
    output = encoder(ids)
    assert isinstance(output, ModelOutput) and output.logits is None
    assert len(output.hidden) == 4 and len(output.attention) == 3
    assert all(h.shape == (3, 10, 16) for h in output.hidden)
    assert all(a.shape == (3, 4, 10, 10) for a in output.attention)
    # without an explicit mask, pad_id positions are padding
    assert torch.equal(output.mask, ids != 0)
    assert all(torch.isfinite(h).all() for h in output.hidden)
    assert isinstance(encoder.final_norm, nn.LayerNorm if norm_first else nn.Identity)


def test_explicit_mask_overrides_pad_id():
    encoder = TransformerEncoder(_config()).eval()
    ids = _ids(2, 6)
    real = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    output = encoder(ids, real)
    assert output.mask is real
    assert all(torch.all(a[1, :, :, 2:] == 0) for a in output.attention)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_padding_does_not_change_real_positions(norm_first, positional):
    torch.manual_seed(0)
    config = _config(norm_first=norm_first, positional=positional)
    tagger = TokenTagger(config, num_labels=5).eval()
    ids = _ids(2, 8)
    padded = torch.cat([ids, torch.full((2, 6), config.pad_id)], dim=1)
    # give the padded tail arbitrary non-pad tokens too: the explicit mask must hide them
    noisy = padded.clone()
    noisy[:, 8:] = _ids(2, 6, seed=1)
    real = padded != config.pad_id
    with torch.no_grad():
        short = tagger(ids)
        long = tagger(padded)
        long_noisy = tagger(noisy, real)
    for out in (long, long_noisy):
        torch.testing.assert_close(out.logits[:, :8], short.logits, atol=1e-5, rtol=0)
        for h_long, h_short in zip(out.hidden, short.hidden, strict=True):
            torch.testing.assert_close(h_long[:, :8], h_short, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_sequence_classifier_ignores_padding(pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(_config(), num_classes=3, pooling=pooling).eval()
    ids = _ids(2, 8)
    padded = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short, long = model(ids), model(padded)
    assert short.logits.shape == (2, 3)
    torch.testing.assert_close(long.logits, short.logits, atol=1e-5, rtol=0)


def test_mean_pooling_averages_real_tokens_only():
    model = SequenceClassifier(_config(), num_classes=2)
    hidden = torch.arange(12.0).view(1, 4, 3)
    mask = torch.tensor([[True, True, False, False]])
    torch.testing.assert_close(model.pool(hidden, mask), torch.tensor([[1.5, 2.5, 3.5]]))
    empty = torch.zeros(1, 4, dtype=torch.bool)
    assert torch.equal(model.pool(hidden, empty), torch.zeros(1, 3))


@pytest.mark.parametrize("norm_first", [True, False])
def test_gradients_reach_every_parameter(norm_first):
    torch.manual_seed(0)
    tagger = TokenTagger(_config(norm_first=norm_first, positional="learned"), num_labels=4)
    tagger.train()
    ids = _ids(3, 9)
    ids[2, 6:] = 0
    output = tagger(ids)
    assert output.logits.shape == (3, 9, 4)
    labels = torch.randint(0, 4, (3, 9))
    loss = nn.functional.cross_entropy(output.logits[output.mask], labels[output.mask])
    loss.backward()
    for name, param in tagger.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert param.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


def test_count_parameters_matches_formula():
    v, d, f, layers, c, max_len = VOCAB, 16, 32, 2, 5, 24
    per_layer = 4 * (d * d + d) + 2 * (2 * d) + (d * f + f) + (f * d + d)
    expected = v * d + max_len * d + layers * per_layer + 2 * d + d * c + c
    tagger = TokenTagger(_config(positional="learned", max_len=max_len), num_labels=c)
    assert count_parameters(tagger) == expected
    # sinusoidal tables and post-norm have no extra parameters
    post = TokenTagger(_config(norm_first=False), num_labels=c)
    assert count_parameters(post) == expected - max_len * d - 2 * d
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        count_parameters("tagger")


# --- starting from a trained encoder ----------------------------------------------------


def test_a_trained_encoder_starts_a_model_over_a_longer_vocabulary():
    torch.manual_seed(0)
    source = TokenTagger(_config(positional="relative", bigram_buckets=64, bigram_dim=8), num_labels=3).encoder
    target = TokenTagger(_config(positional="relative", bigram_buckets=64, bigram_dim=8, vocab_size=VOCAB + 2,
                                 max_len=40, dropout=0.0), num_labels=5).encoder
    untouched = target.embed.weight[VOCAB:].clone()
    assert load_encoder_weights(target, source) == 2
    assert torch.equal(target.embed.weight[:VOCAB], source.embed.weight)
    assert torch.equal(target.embed.weight[VOCAB:], untouched), "the new tokens keep their initialisation"
    for name, tensor in source.state_dict().items():
        if name != "embed.weight":
            assert torch.equal(target.state_dict()[name], tensor), name
    ids = _ids()
    source.eval(), target.eval()
    assert torch.allclose(target(ids).hidden[-1], source(ids).hidden[-1]), "over the old tokens both encode alike"


def test_loading_encoder_weights_refuses_other_shapes():
    source = TransformerEncoder(_config())
    with pytest.raises(ValueError, match=r"differ in shape \(d_model 32 vs 16; num_heads 8 vs 4\)"):
        load_encoder_weights(TransformerEncoder(_config(d_model=32, num_heads=8)), source)
    with pytest.raises(ValueError, match="fewer than the source's 30"):
        load_encoder_weights(TransformerEncoder(_config(vocab_size=20)), source)
    with pytest.raises(TypeError, match="target must be a TransformerEncoder"):
        load_encoder_weights(TokenTagger(_config(), num_labels=3), source)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "mask", "error", "match"),
    [
        (torch.randint(1, VOCAB, (2, 30)), None, ValueError, "input_ids has length 30, .*max_len=24"),
        (torch.randint(1, VOCAB, (10,)), None, ValueError, r"input_ids must be 2-D \(batch, length\)"),
        (torch.rand(2, 5), None, TypeError, "input_ids must be an integer tensor, got dtype torch.float32"),
        (torch.ones(2, 5, dtype=torch.bool), None, TypeError, "input_ids must be an integer tensor"),
        ([[1, 2, 3]], None, TypeError, "input_ids must be a torch.Tensor, got list"),
        (torch.tensor([[1, 2, VOCAB]]), None, ValueError, r"\[0, vocab_size=30\), got values from 1 to 30"),
        (torch.tensor([[1, 2, 3]]), torch.ones(1, 3), TypeError, "mask must be a boolean tensor"),
        (torch.tensor([[1, 2, 3]]), torch.ones(1, 4, dtype=torch.bool), ValueError, r"mask must have the shape of input_ids \(1, 3\)"),
    ],
)
def test_bad_input_raises_helpful_error(ids, mask, error, match):
    tagger = TokenTagger(_config(), num_labels=3)
    with pytest.raises(error, match=match):
        tagger(ids, mask)


def test_bad_head_arguments_raise():
    with pytest.raises(ValueError, match="num_labels must be a positive int, got 0"):
        TokenTagger(_config(), num_labels=0)
    with pytest.raises(ValueError, match="pooling must be one of .* got 'max'"):
        SequenceClassifier(_config(), num_classes=2, pooling="max")
    with pytest.raises(TypeError, match="config must be a TransformerConfig, got dict"):
        TransformerEncoder({"vocab_size": 10})
