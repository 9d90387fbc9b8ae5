"""Teacher and student tagging the same sentence, side by side (the chapter-07 widget).

:func:`_tag_with_confidence` tags each character and keeps the probability of the chosen tag;
:func:`side_by_side_html` draws one row per model, each entity coloured by its type and each
character shaded by the model's confidence, so a reader sees at a glance where the student
agrees with its teacher and where it hesitates. :func:`tagging_explorer` puts a text box above
that drawing; its callback is the plain function :func:`side_by_side_html`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets
import torch
from torch import nn

from course_lib.data import ID2LABEL, CharVocab, extract_entities
from course_lib.train.tagging import run_on_text


ENTITY_COLOURS = {"PER": "#d62728", "LOC": "#2ca02c", "ORG": "#1f77b4"}

_Tagger = tuple[nn.Module, CharVocab]


def _tag_with_confidence(model: nn.Module, vocab: CharVocab, text: str) -> list[tuple[str, str, float]]:
    """``(character, tag, probability of that tag)`` for each character of ``text``."""
    output, _ = run_on_text(model, vocab, text)
    logits = output if isinstance(output, torch.Tensor) else output.logits
    probabilities = torch.softmax(logits[0].float(), dim=-1)
    confidence, index = probabilities.max(dim=-1)
    return [(char, ID2LABEL[int(i)], float(p)) for char, i, p in zip(text, index.tolist(), confidence.tolist())]


def _row(name: str, tagged: list[tuple[str, str, float]]) -> str:
    chars = [char for char, _, _ in tagged]
    kinds = [None] * len(tagged)
    for _, kind, start, end in extract_entities(chars, [tag for _, tag, _ in tagged]):
        kinds[start:end] = [kind] * (end - start)
    cells = []
    for (char, tag, confidence), kind in zip(tagged, kinds):
        colour = ENTITY_COLOURS.get(kind, "#7f7f7f")
        style = (
            f"color:{colour};opacity:{0.35 + 0.65 * confidence:.2f};"
            + ("font-weight:bold;border-bottom:2px solid " + colour + ";" if kind else "")
        )
        cells.append(
            f'<span title="{html.escape(tag)} {confidence:.0%}" style="{style}">{html.escape(char)}</span>'
        )
    mean = sum(c for _, _, c in tagged) / len(tagged)
    return (
        f'<tr><td style="padding-right:1em;white-space:nowrap"><b>{html.escape(name)}</b></td>'
        f'<td style="font-size:1.3em;letter-spacing:0.05em">{"".join(cells)}</td>'
        f'<td style="padding-left:1em;white-space:nowrap">mean confidence {mean:.0%}</td></tr>'
    )


def side_by_side_html(text: str, taggers: Mapping[str, _Tagger]) -> str:
    """An HTML table: one row per named ``(model, vocab)``, entities coloured, characters shaded by confidence (chapter 07)."""
    if not taggers:
        raise ValueError("taggers must name at least one (model, vocab) pair, e.g. {'teacher': (model, vocab)}")
    text = text.strip() if isinstance(text, str) else text
    if not text:
        return "<p>Type a sentence to tag it.</p>"
    rows = [_row(name, _tag_with_confidence(model, vocab, text)) for name, (model, vocab) in taggers.items()]
    legend = " ".join(f'<span style="color:{c};font-weight:bold">{k}</span>' for k, c in ENTITY_COLOURS.items())
    return (
        f"<table>{''.join(rows)}</table>"
        f"<p style='font-size:0.85em'>{legend} · paler characters: less confident (hover for tag and probability)</p>"
    )


def tagging_explorer(taggers: Mapping[str, _Tagger], text: str) -> widgets.VBox:
    """A text box and the side-by-side tagging of what it holds, redrawn on every change (chapter 07)."""
    box = widgets.Text(value=text, description="sentence", layout=widgets.Layout(width="95%"))
    view = widgets.HTML()

    def render(_change: object = None) -> None:
        try:
            view.value = side_by_side_html(box.value, taggers)
        except ValueError as error:  # e.g. a sentence longer than the models take
            view.value = f"<p style='color:#d62728'>{html.escape(str(error))}</p>"

    box.observe(render, names="value")
    render()
    return widgets.VBox([box, view])
