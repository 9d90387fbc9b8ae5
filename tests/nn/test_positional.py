"""Tests for course_lib.nn.positional."""

import math

import pytest
import torch

from course_lib.nn.positional import (
    POSITIONAL_KINDS,
    LearnedPositionalEncoding,
    RelativePositionBias,
    _NoPositionalEncoding,
    SinusoidalPositionalEncoding,
    build_positional_encoding,
    offset_matrix,
    sinusoidal_encoding,
)
from course_lib.nn.transformer import TokenTagger, TransformerConfig


def _formula(p: int, j: int, d_model: int) -> float:
    """PE[p, j] computed with plain Python math, following the paper's definition."""
    i = j // 2
    angle = p / 10000 ** (2 * i / d_model)
    return math.sin(angle) if j % 2 == 0 else math.cos(angle)


def test_sinusoidal_matches_formula():
    d_model = 16
    pe = sinusoidal_encoding(50, d_model, dtype=torch.float64)
    assert pe.shape == (50, d_model) and pe.dtype == torch.float64
    for p, j in [(0, 0), (0, 1), (1, 0), (1, 1), (7, 4), (13, 9), (49, 14), (49, 15), (25, 3)]:
        assert pe[p, j].item() == pytest.approx(_formula(p, j, d_model), abs=1e-12)
    assert sinusoidal_encoding(4, 8).dtype == torch.float32


def test_sinusoidal_position_zero_alternates_zero_one():
    pe = sinusoidal_encoding(3, 6)
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))


@pytest.mark.parametrize("offset", [1, 2, 5, 17, 40])
def test_relative_offset_property(offset):
    max_len, d_model = 64, 32
    pe = sinusoidal_encoding(max_len, d_model, dtype=torch.float64)
    m_k = offset_matrix(offset, d_model, dtype=torch.float64)
    shifted = pe[: max_len - offset] @ m_k.T
    torch.testing.assert_close(shifted, pe[offset:], atol=1e-5, rtol=0)


def test_offset_matrix_is_a_rotation():
    d_model = 8
    m_3 = offset_matrix(3, d_model, dtype=torch.float64)
    m_4 = offset_matrix(4, d_model, dtype=torch.float64)
    eye = torch.eye(d_model, dtype=torch.float64)
    torch.testing.assert_close(m_3 @ m_3.T, eye)
    torch.testing.assert_close(m_3 @ m_4, offset_matrix(7, d_model, dtype=torch.float64))
    torch.testing.assert_close(offset_matrix(0, d_model, dtype=torch.float64), eye)
    torch.testing.assert_close(offset_matrix(-3, d_model, dtype=torch.float64), m_3.T)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sinusoidal_encoding(10, 7), ValueError, "d_model must be even .* got 7"),
        (lambda: sinusoidal_encoding(0, 8), ValueError, "max_len must be a positive int"),
        (lambda: offset_matrix(1, 5), ValueError, "d_model must be even"),
        (lambda: offset_matrix(1.5, 8), TypeError, "offset must be an int"),
    ],
)
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sinusoidal_module_adds_table():
    module = SinusoidalPositionalEncoding(d_model=8, max_len=20)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(module(x), x + sinusoidal_encoding(20, 8)[:5])
    assert "pe" not in module.state_dict()
    assert list(module.parameters()) == []


def test_learned_module_adds_trainable_table():
    module = LearnedPositionalEncoding(d_model=8, max_len=20)
    x = torch.randn(2, 5, 8)
    out = module(x)
    torch.testing.assert_close(out, x + module.weight[:5])
    out.sum().backward()
    assert torch.all(module.weight.grad[:5] == 2) and torch.all(module.weight.grad[5:] == 0)


def test_none_module_is_identity():
    x = torch.randn(2, 5, 8)
    assert torch.equal(_NoPositionalEncoding(8, 20)(x), x)


@pytest.mark.parametrize("kind", ["sinusoidal", "learned", "none"])
def test_sequence_longer_than_max_len_raises(kind):
    module = build_positional_encoding(kind, d_model=8, max_len=128)
    with pytest.raises(ValueError, match="sequence length 130 exceeds max_len 128 of this"):
        module(torch.zeros(1, 130, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, length, d_model=8\)"):
        module(torch.zeros(1, 10, 6))


@pytest.mark.parametrize("kind", ["sinusoidal", "learned", "none"])
def test_start_adds_the_positions_of_a_later_slice(kind):
    torch.manual_seed(0)
    module = build_positional_encoding(kind, d_model=8, max_len=12)
    x = torch.randn(2, 10, 8)
    torch.testing.assert_close(module(x[:, 6:], start=6), module(x)[:, 6:])
    with pytest.raises(ValueError, match="sequence length 3 from position 10 exceeds max_len 12 of this"):
        module(x[:, :3], start=10)
    with pytest.raises(ValueError, match="start must be"):
        module(x, start=-1)


def test_factory():
    assert isinstance(build_positional_encoding("sinusoidal", 8, 16), SinusoidalPositionalEncoding)
    assert isinstance(build_positional_encoding("learned", 8, 16), LearnedPositionalEncoding)
    assert isinstance(build_positional_encoding("none", 8, 16), _NoPositionalEncoding)
    with pytest.raises(ValueError, match="kind must be one of .* got 'rotary'"):
        build_positional_encoding("rotary", 8, 16)


def test_relative_bias_depends_on_the_signed_distance_only_and_is_clipped():
    bias = RelativePositionBias(num_heads=2, max_distance=3)
    with torch.no_grad():
        bias.table.copy_(torch.arange(14.0).view(2, 7))
    table = bias(5, 5)
    assert table.shape == (1, 2, 5, 5)
    for i in range(5):
        for j in range(5):
            assert table[0, 1, i, j] == 7 + max(-3, min(3, j - i)) + 3


def test_a_relative_tagger_tells_positions_apart_and_ignores_padding():
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=12, d_model=16, num_heads=2, num_layers=2, d_ff=32, dropout=0.0,
                               positional="relative")
    tagger = TokenTagger(config, num_labels=3).eval()
    for block in tagger.encoder.blocks:
        torch.nn.init.normal_(block.position_bias.table)
    ids = torch.tensor([[3, 4, 5, 6]])
    alone = tagger(ids).logits
    assert not torch.allclose(alone[0, 0], alone[0, 3]), "positions differ: the bias was used"
    shifted = tagger(torch.tensor([[3, 4, 5, 6, 0, 0]]), mask=torch.tensor([[True] * 4 + [False] * 2])).logits
    assert torch.allclose(alone, shifted[:, :4], atol=1e-5)
    assert "relative" in POSITIONAL_KINDS
