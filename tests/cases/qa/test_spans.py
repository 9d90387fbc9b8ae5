"""Tests for course_lib.cases.qa.spans: decoding, the span metric, the span-level KD loss, a tagger's spans."""

from __future__ import annotations

import pytest
import torch

from course_lib.cases.qa.questions import passage_window, qa_examples, qa_loader, qa_vocab
from course_lib.cases.qa.spans import (
    _pairs,
    decode_spans,
    gold_spans,
    span_f1,
    span_kd_loss,
    span_loss,
    span_scores,
    tagger_spans,
    two_class_logits,
)
from course_lib.data import LABELS, CharVocab, NerCorpus
from course_lib.kd.losses import kd_loss
from course_lib.nn.span import SpanExtractor
from course_lib.nn.transformer import TokenTagger, TransformerConfig
from tests.cases.qa import sentence, synthetic_corpus, tiny_recipes


@pytest.fixture(scope="module")
def corpus() -> NerCorpus:
    return synthetic_corpus()


def test_decoding_pairs_each_start_with_the_nearest_end_at_or_after_it():
    starts = [0.9, 0.1, 0.1, 0.8, 0.1, 0.7, 0.1]
    ends = [0.1, 0.9, 0.1, 0.6, 0.1, 0.1, 0.1]
    assert decode_spans(starts, ends) == [(0, 2), (3, 4)], "a one-character span; the start at 5 has no end"
    assert decode_spans(starts, ends, max_span=1) == [(3, 4)]
    assert decode_spans([0.2] * 4, [0.9] * 4) == []
    with pytest.raises(ValueError, match="one start and one end"):
        decode_spans([0.9], [0.9, 0.1])


def test_the_span_metric_on_hand_made_examples():
    gold = {(0, "PER", 1, 3), (0, "LOC", 4, 6), (1, "ORG", 0, 4), (2, "PER", 2, 3)}
    assert span_f1(gold, gold) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    missed = gold - {(1, "ORG", 0, 4)}
    assert span_f1(gold, missed) == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7})
    off_by_one = missed | {(1, "ORG", 0, 3)}
    assert span_f1(gold, off_by_one)["f1"] == pytest.approx(0.75), "an exact match only"
    scores = span_scores(gold, missed)
    assert scores["ORG"]["f1"] == 0.0 and scores["PER"]["f1"] == 1.0 and scores["all"]["recall"] == 0.75
    assert span_f1(set(), set())["f1"] == 0.0


def test_span_kd_is_hintons_loss_on_two_class_logits(corpus):
    examples = qa_examples(corpus.train[:6], 40)
    vocab = qa_vocab(examples)
    batch = next(iter(qa_loader(examples, vocab, 18, shuffle=False)))
    torch.manual_seed(0)
    model = SpanExtractor(tiny_recipes()["teacher"].model_config(len(vocab))).eval()
    logits = model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"]).logits
    assert torch.allclose(torch.softmax(two_class_logits(logits), -1)[..., 1],
                          torch.sigmoid(torch.cat([logits[..., 0], logits[..., 1]], 1)))
    assert span_kd_loss(logits, logits, batch, temperature=2.0, alpha=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert span_kd_loss(logits, logits, batch, 2.0, alpha=1.0).item() == pytest.approx(span_loss(model, batch).item(), rel=1e-5)
    assert span_kd_loss(logits, torch.zeros_like(logits), batch, 2.0, alpha=0.0).item() > 0
    labels, passage = _pairs(batch)
    other = torch.randn_like(logits)
    assert span_kd_loss(logits, other, batch, 2.0, alpha=0.3).item() == pytest.approx(
        kd_loss(two_class_logits(logits), two_class_logits(other), labels, 2.0, 0.3, mask=passage).item(), rel=1e-5)
    assert span_loss(model, batch, positive_weight=5.0) > span_loss(model, batch), "gold positions weigh more"
    with pytest.raises(ValueError, match=r"\(batch, length, 2\)"):
        two_class_logits(logits[..., 0])


def test_a_tagger_is_scored_on_the_same_passages():
    window = passage_window(40)
    text = sentence(("我在", None), ("北京", "LOC"), ("见到" * window, None))
    vocab = CharVocab.build([text])
    torch.manual_seed(0)
    tagger = TokenTagger(TransformerConfig(vocab_size=len(vocab), d_model=8, num_heads=2, num_layers=1, d_ff=16,
                                           max_len=64), num_labels=len(LABELS))
    with torch.no_grad():  # a tagger that calls every character a one-character place
        for parameter in tagger.classifier.parameters():
            parameter.zero_()
        tagger.classifier.bias[LABELS.index("B-LOC")] = 1.0
    assert tagger_spans(tagger, vocab, [text, text], 40) == {(n, "LOC", i, i + 1) for n in (0, 1) for i in range(window)}
    assert gold_spans(qa_examples([text], 40)) == {(0, "LOC", 2, 4)}
