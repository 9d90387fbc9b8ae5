"""Tests for course_lib.views.translation: the cross-attention map and the translation explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.data.subwords import SubwordVocab
from course_lib.nn.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.views.translation import (
    CrossAttention,
    cross_attention_map,
    plot_cross_attention,
    translation_explorer,
    translations_html,
)
from course_lib.views.widgets import static_outputs

TEXTS = ["In the beginning God created the heaven and the earth.", "En el principio crió Dios los cielos y la tierra."]


@pytest.fixture(scope="module")
def vocab() -> SubwordVocab:
    return SubwordVocab.train(TEXTS, vocab_size=120, min_frequency=1)


@pytest.fixture(scope="module")
def model(vocab) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    return Seq2SeqTransformer(Seq2SeqConfig(vocab_size=len(vocab), d_model=16, num_heads=2, encoder_layers=1,
                                            decoder_layers=2, d_ff=32, max_len=40)).eval()


def test_the_map_has_a_row_per_written_subword_that_sums_to_one_over_the_source(model, vocab):
    attention = cross_attention_map(model, vocab, TEXTS[0], TEXTS[1])
    source, target = vocab.encode(TEXTS)
    assert attention.weights.shape == (len(target), len(source))
    assert np.allclose(attention.weights.sum(axis=1), 1.0, atol=1e-5)
    assert attention.source[-1] == attention.target[-1] == "</s>" and attention.source[0].startswith("_")
    figure = plot_cross_attention(attention)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == attention.source
    assert [t.get_text() for t in ax.get_yticklabels()] == attention.target
    plt.close(figure)


def test_bad_inputs_say_what_is_wrong(model, vocab):
    with pytest.raises(ValueError, match="target must be a non-empty sentence"):
        cross_attention_map(model, vocab, TEXTS[0], "  ")
    with pytest.raises(TypeError, match="must be a Seq2SeqTransformer"):
        cross_attention_map(torch.nn.Linear(2, 2), vocab, TEXTS[0], TEXTS[1])
    with pytest.raises(TypeError, match="must be a CrossAttention"):
        plot_cross_attention(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least one model"):
        translation_explorer({}, vocab, TEXTS[0], translate=lambda m, s, b: s)


def test_the_explorer_translates_with_every_model_and_redraws_on_a_new_beam(model, vocab):
    calls = []

    def translate(which, sentence, beam):
        calls.append(beam)
        return f"{sentence[:10]} <{beam}>"

    view = translation_explorer({"teacher": model, "student": model}, vocab, TEXTS[0], translate=translate)
    _, beam, table, _ = view.children
    assert "teacher" in table.value and "student" in table.value and "&lt;1&gt;" in table.value
    beam.value = 3
    assert calls[-2:] == [3, 3] and "&lt;3&gt;" in table.value
    kinds = [next(iter(output["data"])) for output in static_outputs(view)]
    assert kinds == ["text/html", "image/png"]
    assert "<b>English</b>" in translations_html("a & b", {"x": "<y>"}) and "&lt;y&gt;" in translations_html("a", {"x": "<y>"})
    assert isinstance(cross_attention_map(model, vocab, TEXTS[0], "x"), CrossAttention)
