"""Tests for course_lib.views.tagging: side-by-side tagging with confidence, and its explorer."""

from __future__ import annotations

import torch
from torch import nn

from course_lib.data import LABEL2ID, CharVocab
from course_lib.views.tagging import side_by_side_html, _tag_with_confidence, tagging_explorer
from course_lib.nn.transformer import ModelOutput


class Scripted(nn.Module):
    """Tags 北京 as a location and everything else O, with a chosen confidence."""

    def __init__(self, vocab: CharVocab, confident: bool) -> None:
        super().__init__()
        self.vocab, self.scale = vocab, 8.0 if confident else 0.5
        self.config = type("Config", (), {"max_len": 10})()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, mask=None):
        logits = torch.zeros(*input_ids.shape, 7)
        logits[..., LABEL2ID["O"]] = self.scale
        for position, token in enumerate(input_ids[0].tolist()):
            char = self.vocab.id_to_token(token)
            if char in "北京":
                logits[0, position] = 0
                logits[0, position, LABEL2ID["B-LOC" if char == "北" else "I-LOC"]] = self.scale
        return ModelOutput(logits=logits, mask=mask)


VOCAB = CharVocab(list("我在北京"))


def test_tag_with_confidence_keeps_the_probability_of_each_chosen_tag():
    tagged = _tag_with_confidence(Scripted(VOCAB, confident=True), VOCAB, "我在北京")
    assert [tag for _, tag, _ in tagged] == ["O", "O", "B-LOC", "I-LOC"]
    assert all(0.99 < p <= 1.0 for _, _, p in tagged)
    unsure = _tag_with_confidence(Scripted(VOCAB, confident=False), VOCAB, "我在北京")
    assert all(p < 0.3 for _, _, p in unsure)


def test_the_html_has_a_row_per_model_with_the_entity_coloured():
    page = side_by_side_html("我在北京", {"teacher": (Scripted(VOCAB, True), VOCAB),
                                          "student": (Scripted(VOCAB, False), VOCAB)})
    assert page.count("<tr>") == 2 and "<b>teacher</b>" in page and "<b>student</b>" in page
    assert page.count("border-bottom:2px solid #2ca02c") == 4, "北京 is underlined as LOC in both rows"
    assert 'title="B-LOC 100%"' in page
    assert side_by_side_html("   ", {"teacher": (Scripted(VOCAB, True), VOCAB)}).startswith("<p>Type a sentence")


def test_the_explorer_redraws_and_reports_a_too_long_sentence_instead_of_crashing():
    explorer = tagging_explorer({"teacher": (Scripted(VOCAB, True), VOCAB)}, "我在北京")
    box, view = explorer.children
    assert "#2ca02c" in view.value
    box.value = "我" * 11
    assert "max_len=10" in view.value
    box.value = "北京"
    assert "B-LOC" in view.value
