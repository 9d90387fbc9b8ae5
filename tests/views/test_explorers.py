"""Tests for course_lib.views.explorers: attention heatmaps, positional-encoding views, softmax saturation."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib import font_manager
from matplotlib.figure import Figure

from course_lib.data import CharVocab, Sentence
from course_lib.data.fonts import cjk_font_family
from course_lib.views.explorers import (
    _SaturationCurve,
    attention_for,
    plot_saturation,
    show_attention,
    show_positional_encoding,
    softmax_saturation,
)
from course_lib.nn.transformer import TokenTagger, TransformerConfig

TEXT = "新华社北京十月一日电"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tagger() -> tuple[TokenTagger, CharVocab]:
    vocab = CharVocab.build([Sentence(list(TEXT), ["O"] * len(TEXT))])
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=3, d_ff=32, max_len=32)
    return TokenTagger(config, num_labels=7).eval(), vocab


def test_attention_for_gives_one_row_stochastic_matrix_per_layer_and_head(tagger):
    model, vocab = tagger
    model.train()
    attention = attention_for(model, vocab, TEXT)
    assert model.training, "attention_for must leave the model in the mode it found it"
    model.eval()
    assert len(attention) == 3
    for weights in attention:
        assert weights.shape == (2, len(TEXT), len(TEXT))
        assert not weights.requires_grad
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, len(TEXT)))


def test_attention_for_matches_the_model_output(tagger):
    model, vocab = tagger
    ids = torch.tensor([vocab.encode(list(TEXT))])
    with torch.no_grad():
        expected = model(ids).attention
    for got, want in zip(attention_for(model, vocab, TEXT), expected):
        torch.testing.assert_close(got, want[0])


def test_show_attention_heatmap_has_the_characters_on_both_axes(tagger):
    model, vocab = tagger
    fig = show_attention(model, vocab, TEXT, layer=2, head=1)
    assert isinstance(fig, Figure)
    heat, colorbar = fig.axes
    assert len(heat.images) == 1
    assert heat.images[0].get_array().shape == (len(TEXT), len(TEXT))
    assert [t.get_text() for t in heat.get_xticklabels()] == list(TEXT)
    assert [t.get_text() for t in heat.get_yticklabels()] == list(TEXT)
    assert heat.get_title() == "layer 2, head 1"
    expected = attention_for(model, vocab, TEXT)[2][1].numpy()
    assert (heat.images[0].get_array() == expected).all()


def test_show_attention_draws_on_a_given_axes(tagger):
    model, vocab = tagger
    fig, ax = plt.subplots()
    assert show_attention(model, vocab, "北京", 0, 0, ax=ax) is fig
    assert [t.get_text() for t in ax.get_xticklabels()] == ["北", "京"]


@pytest.mark.parametrize(
    "layer, head, error, message",
    [
        (3, 0, ValueError, r"layer must be between 0 and 2 \(the model has 3 layers\), got 3"),
        (-1, 0, ValueError, "layer must be between 0 and 2"),
        (0, 2, ValueError, r"head must be between 0 and 1 \(the model has 2 heads per layer\), got 2"),
        (0.5, 0, TypeError, "layer must be an int, got float"),
    ],
)
def test_show_attention_rejects_bad_layer_or_head(tagger, layer, head, error, message):
    model, vocab = tagger
    with pytest.raises(error, match=message):
        show_attention(model, vocab, TEXT, layer, head)


def test_attention_for_rejects_bad_text(tagger):
    model, vocab = tagger
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        attention_for(model, vocab, "")
    with pytest.raises(ValueError, match="at most max_len=32"):
        attention_for(model, vocab, "中" * 33)
    with pytest.raises(TypeError, match="vocab must be a CharVocab"):
        attention_for(model, {"中": 2}, TEXT)


def test_cjk_font_family_can_be_found_by_matplotlib():
    family = cjk_font_family()
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert path


def test_show_positional_encoding_panels():
    fig = show_positional_encoding(max_len=50, d_model=16, position=7, dims=[0, 1, 6])
    heat, vector, curves, colorbar = fig.axes
    assert len(heat.images) == 1
    assert heat.images[0].get_array().shape == (50, 16)
    vector_line = vector.lines[0]
    assert list(vector_line.get_xdata()) == list(range(16))
    assert vector_line.get_ydata()[0] == pytest.approx(math.sin(7.0), abs=1e-6)
    assert vector_line.get_ydata()[1] == pytest.approx(math.cos(7.0), abs=1e-6)
    assert len(curves.get_legend().get_texts()) == 3
    assert "dim 6 (sin" in curves.get_legend().get_texts()[2].get_text()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(position=50, dims=[0]), r"position must be between 0 and 49"),
        (dict(position=0, dims=[16]), r"each of dims must be between 0 and 15"),
        (dict(position=0, dims=[]), "dims must be a non-empty sequence"),
    ],
)
def test_show_positional_encoding_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        show_positional_encoding(max_len=50, d_model=16, **kwargs)


def test_softmax_saturation_measures_the_variance_and_the_collapse():
    d_k = [1, 16, 256]
    unscaled = softmax_saturation(d_k, scaled=False, seed=0)
    scaled = softmax_saturation(d_k, scaled=True, seed=0)
    for dim, std in zip(d_k, unscaled.score_std):
        assert std == pytest.approx(math.sqrt(dim), rel=0.1)
    for std in scaled.score_std:
        assert std == pytest.approx(1.0, rel=0.1)
    assert unscaled.max_weight[0] < unscaled.max_weight[1] < unscaled.max_weight[2]
    assert unscaled.entropy[2] < 0.5 < 2.0 < scaled.entropy[2] <= math.log(16)
    assert unscaled.jacobian_norm[2] < scaled.jacobian_norm[2] / 2
    assert softmax_saturation(d_k, scaled=False, seed=0) == unscaled


def test_softmax_saturation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="d_k_values must be a non-empty sequence"):
        softmax_saturation([], scaled=True)
    with pytest.raises(ValueError, match="every d_k must be a positive int, got 0"):
        softmax_saturation([4, 0], scaled=True)
    with pytest.raises(TypeError, match="scaled must be a bool"):
        softmax_saturation([4], scaled="yes")
    with pytest.raises(ValueError, match="num_keys must be an int >= 2"):
        softmax_saturation([4], scaled=True, num_keys=1)


def test_plot_saturation_draws_one_line_per_curve_in_each_panel():
    curves = [softmax_saturation([1, 4, 16], scaled=s, num_samples=32) for s in (False, True)]
    fig = plot_saturation(curves)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.lines if not line.get_label().startswith("uniform")]
        assert labels == ["unscaled: q·k", "scaled: q·k / √d_k"]
    with pytest.raises(ValueError, match="non-empty list of _SaturationCurve"):
        plot_saturation([])
    with pytest.raises(ValueError, match="non-empty list of _SaturationCurve"):
        plot_saturation(curves[0])
    assert isinstance(curves[0], _SaturationCurve)
