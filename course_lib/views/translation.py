"""Looking inside an encoder–decoder: where each target subword attends, and a translation explorer (chapter 09).

:func:`cross_attention_map` runs a verse and a translation of it through
:class:`~course_lib.nn.seq2seq.Seq2SeqTransformer` under teacher forcing and returns the
decoder's cross-attention (target subwords × source subwords, averaged over heads);
:func:`plot_cross_attention` draws it. :func:`translation_explorer` is the chapter's widget:
type an English verse, pick a beam size, read every model's translation and the teacher's map.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.data.subwords import BOS_ID, EOS_ID, SubwordVocab
from course_lib.nn.seq2seq import Seq2SeqTransformer
from course_lib.views.widgets import png_output


@dataclass(frozen=True)
class CrossAttention:
    """Cross-attention of one translation: ``weights`` (target × source), averaged over heads, and the subwords (chapter 09).

    ``source`` ends with ``<eos>``; ``target`` lists the subwords the decoder *produced* at each
    row (the last one is ``<eos>``), so row t shows where the decoder looked to write ``target[t]``.
    """

    weights: np.ndarray
    source: list[str]
    target: list[str]


def _pieces(vocab: SubwordVocab, ids: list[int]) -> list[str]:
    return [vocab.tokenizer.id_to_token(index).replace("▁", "_") if index != EOS_ID else "</s>" for index in ids]


def cross_attention_map(model: Seq2SeqTransformer, vocab: SubwordVocab, source: str, target: str,
                        layer: int = -1) -> CrossAttention:
    """The decoder layer ``layer``'s cross-attention while it reads ``source`` and writes ``target`` (chapter 09)."""
    if not isinstance(model, Seq2SeqTransformer):
        raise TypeError(f"model must be a Seq2SeqTransformer, got {type(model).__name__}")
    for name, text in (("source", source), ("target", target)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name} must be a non-empty sentence, got {text!r}")
    limit = model.config.max_len
    src, tgt = (ids if len(ids) <= limit else ids[: limit - 1] + [EOS_ID] for ids in vocab.encode([source, target]))
    device = next(model.parameters()).device
    src_ids = torch.tensor([src], device=device)
    tgt_in = torch.tensor([[BOS_ID] + tgt[:-1]], device=device)
    model.eval()
    with torch.no_grad():
        weights = model.cross_attention(src_ids, torch.ones_like(src_ids, dtype=torch.bool), tgt_in,
                                        torch.ones_like(tgt_in, dtype=torch.bool), layer=layer)
    return CrossAttention(weights[0].mean(dim=0).float().cpu().numpy(), _pieces(vocab, src), _pieces(vocab, tgt))


def plot_cross_attention(attention: CrossAttention, ax: Axes | None = None, title: str = "") -> Figure:
    """A heatmap of ``attention``: target subwords down, source subwords across, darker = more weight (chapter 09)."""
    if not isinstance(attention, CrossAttention):
        raise TypeError(f"attention must be a CrossAttention (see cross_attention_map), got {type(attention).__name__}")
    rows, cols = attention.weights.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.32 * cols, 14), min(1.5 + 0.3 * rows, 12)))
    image = ax.imshow(attention.weights, cmap="Blues", vmin=0.0, aspect="auto")
    ax.set_xticks(range(cols), attention.source, rotation=90, fontsize=8)
    ax.set_yticks(range(rows), attention.target, fontsize=8)
    ax.set_xlabel("English source subwords (what the encoder read)")
    ax.set_ylabel("Spanish subword written")
    ax.set_title(title or "cross-attention, last decoder layer, mean over heads")
    ax.figure.colorbar(image, ax=ax, fraction=0.03)
    return ax.figure


def translations_html(source: str, translations: Mapping[str, str]) -> str:
    """An HTML table: the English source, then each model's translation (chapter 09)."""
    rows = "".join(f"<tr><td><b>{html.escape(name)}</b></td><td>{html.escape(text)}</td></tr>"
                   for name, text in translations.items())
    return (f"<table><tr><td><b>English</b></td><td>{html.escape(source)}</td></tr>{rows}</table>")


def translation_explorer(models: Mapping[str, Seq2SeqTransformer], vocab: SubwordVocab, source: str, *,
                         translate: Callable[[Seq2SeqTransformer, str, int], str], max_beam: int = 8) -> widgets.VBox:
    """Type an English verse and a beam size; read each model's translation and the first model's map (chapter 09).

    ``translate(model, sentence, beam_size)`` returns one translation; the first model of
    ``models`` (the teacher) also draws its cross-attention over its own translation.
    """
    if not models:
        raise ValueError("translation_explorer needs at least one model, e.g. {'teacher': model}")
    checks.positive_int("max_beam", max_beam)
    text = widgets.Textarea(value=source, description="English", layout=widgets.Layout(width="95%"))
    beam = widgets.IntSlider(value=1, min=1, max=max_beam, description="beam size")
    table, figure = widgets.HTML(), widgets.Output()
    first = next(iter(models))

    def render(_change: object = None) -> None:
        sentence = text.value.strip() or source
        translations = {name: translate(model, sentence, beam.value) for name, model in models.items()}
        table.value = translations_html(sentence, translations)
        attention = cross_attention_map(models[first], vocab, sentence, translations[first] or ".")
        figure.outputs = (png_output(plot_cross_attention(attention, title=f"{first}: cross-attention, beam {beam.value}")),)

    text.observe(render, names="value")
    beam.observe(render, names="value")
    render()
    return widgets.VBox([text, beam, table, figure])
