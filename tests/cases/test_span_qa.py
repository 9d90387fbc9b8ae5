"""Tests for course_lib.cases.span_qa: questions and passages, decoding, the span metric, the KD loss, a tiny comparison."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from course_lib.cases.span_qa import (
    QUESTIONS,
    SPAN_QA_ROLES,
    SpanQARecipe,
    _pairs,
    compare_span_qa,
    decode_spans,
    encode_example,
    gold_spans,
    passage_window,
    qa_counts,
    qa_examples,
    qa_loader,
    qa_vocab,
    span_f1,
    span_kd_loss,
    span_loss,
    span_qa_data,
    span_qa_model,
    span_qa_recipe,
    span_scores,
    tagger_spans,
    two_class_logits,
)
from course_lib.data import LABELS, CharVocab, NerCorpus, Sentence
from course_lib.kd.losses import kd_loss
from course_lib.nn.span import SpanExtractor
from course_lib.nn.transformer import TokenTagger, TransformerConfig, count_parameters

NAMES = {"PER": ["张伟", "李明", "王芳"], "LOC": ["北京", "上海", "广州"], "ORG": ["新华社", "外交部", "清华大学"]}
FILLER = "今天上午在里召开会议讨论了建设方案和生活问题"


def sentence(*parts: tuple[str, str | None]) -> Sentence:
    """A sentence from (text, entity type or None) parts, tagged BIO."""
    chars, tags = [], []
    for text, kind in parts:
        chars += list(text)
        tags += ["O"] * len(text) if kind is None else [f"B-{kind}"] + [f"I-{kind}"] * (len(text) - 1)
    return Sentence(chars, tags)


def synthetic_sentences(count: int, seed: int) -> list[Sentence]:
    """Filler with one to three entities; about one sentence in four has none."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        parts: list[tuple[str, str | None]] = [("".join(rng.sample(FILLER, 3)), None)]
        for kind in rng.sample(list(NAMES), rng.randint(0, 3)):
            parts += [(rng.choice(NAMES[kind]), kind), ("".join(rng.sample(FILLER, 2)), None)]
        sentences.append(sentence(*parts))
    return sentences


@pytest.fixture(scope="module")
def corpus() -> NerCorpus:
    return NerCorpus(train=synthetic_sentences(240, 0), dev=synthetic_sentences(40, 1), test=synthetic_sentences(60, 2))


def tiny_recipes() -> dict[str, SpanQARecipe]:
    shared = {"max_len": 40, "epochs": 6, "batch_size": 16, "train_sentences": None, "dev_sentences": None,
              "threads": 1, "dropout": 0.0}
    student = {"d_model": 8, "num_heads": 2, "num_layers": 1, "d_ff": 16, "lr": 1e-2, **shared}
    return {"teacher": SpanQARecipe(d_model=32, num_heads=2, num_layers=1, d_ff=64, lr=5e-3, **shared),
            "scratch": SpanQARecipe(**student), "span_kd": SpanQARecipe(**student, method="logits")}


def test_questions_and_passages_shift_answers_by_the_question_and_leave_empty_answers():
    text = sentence(("我在", None), ("北京", "LOC"), ("见到", None), ("张伟", "PER"), ("和", None), ("李明", "PER"))
    examples = qa_examples([text], max_len=40)
    assert [e.kind for e in examples] == ["PER", "LOC", "ORG"] and {e.question for e in examples} == set(QUESTIONS.values())
    per, loc, org = examples
    assert per.answers == ((6, 8), (9, 11)) and loc.answers == ((2, 4),) and org.answers == (), "no ORG: empty answer"
    assert qa_counts(examples) == {"questions": 3, "answers": 3, "without_answer": 1}
    vocab = qa_vocab(examples)
    ids, offset = encode_example(per, vocab)
    assert offset == len(QUESTIONS["PER"]) + 2 and len(ids) == offset + len(per.passage)
    assert vocab.id_to_token(ids[0]) == "[CLS]" and vocab.id_to_token(ids[offset - 1]) == "[SEP]"
    assert [vocab.id_to_token(i) for i in ids[offset + 6:offset + 8]] == list("张伟"), "spans shift by the question"
    batch = next(iter(qa_loader(examples, vocab, 3, shuffle=False)))
    assert batch["start"][0].nonzero().flatten().tolist() == [offset + 6, offset + 9]
    assert batch["end"][0].nonzero().flatten().tolist() == [offset + 7, offset + 10], "ends mark the last character"
    assert batch["passage"][0].sum() == len(per.passage) and not batch["passage"][0, :offset].any()
    assert batch["start"][2].sum() == 0


def test_the_passage_is_cut_to_the_window_and_entities_past_it_are_no_answers():
    window = passage_window(40)
    assert window == 40 - 2 - max(map(len, QUESTIONS.values()))
    long = sentence(("一" * (window - 1), None), ("北京", "LOC"), ("和", None))
    assert qa_examples([long], 40)[1].answers == () and len(qa_examples([long], 40)[1].passage) == window
    with pytest.raises(ValueError, match="no room for a passage"):
        passage_window(10)


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


def test_course_recipes_keep_the_students_small_and_on_the_teachers_data():
    for mode in ("fast", "full"):
        recipes = {role: span_qa_recipe(role, mode) for role in SPAN_QA_ROLES}
        assert len({(r.max_len, r.epochs, r.train_sentences) for r in recipes.values()}) == 1
        assert [r.method for r in recipes.values()] == ["labels", "labels", "logits"]
        sizes = {role: count_parameters(SpanExtractor(r.model_config(4000))) for role, r in recipes.items()}
        assert sizes["scratch"] <= 0.25 * sizes["teacher"], sizes


@pytest.mark.parametrize("fields, match", [
    ({"method": "layers"}, "method must be one of"), ({"max_len": 20}, "no room for a passage"),
    ({"max_span": 0}, "max_span must be a positive int"), ({"train_sentences": 0}, "train_sentences"),
])
def test_bad_recipes_say_what_is_wrong(fields, match):
    with pytest.raises(ValueError, match=match):
        SpanQARecipe(**fields)


def test_the_comparison_trains_every_role_and_scores_the_tagger_on_the_same_passages(corpus, context, model_cache):
    recipes = tiny_recipes()
    comparison = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, latency_rounds=1,
                                 progress=False)
    rows = comparison.rows
    assert list(rows) == [*SPAN_QA_ROLES, "reference_tagger"]
    assert rows["teacher"].f1 > 0.8, "names from three short lists are easy to find"
    assert rows["scratch"].parameters == rows["span_kd"].parameters < rows["teacher"].parameters
    assert all(0 <= row.f1 <= 1 and row.latency_batch1_ms > 0 for row in rows.values())
    assert set(rows["span_kd"].per_type_f1) == {"PER", "LOC", "ORG"} and len(rows["teacher"].dev_curve) == 6
    payload = json.loads(json.dumps(comparison.to_dict()))
    assert payload["counts"]["test"]["questions"] == 3 * len(corpus.test) and payload["li_2020"]["msra_f1"] == 0.9575
    assert payload["examples"] and {"question", "passage", "gold", "teacher", "reference_tagger"} <= set(payload["examples"][0])
    again = compare_span_qa(context, corpus=corpus, recipes=recipes, test_sentences=None, latency_rounds=1, progress=False)
    assert not any(model.trained for model in again.models.values()), "the second call loads every model"
    assert again.rows["span_kd"].f1 == rows["span_kd"].f1
    with pytest.raises(ValueError, match="same max_len"):
        compare_span_qa(context, corpus=corpus, recipes={**recipes, "scratch": dataclasses.replace(recipes["scratch"], max_len=48)},
                        progress=False)


def test_bad_inputs_raise_clear_errors(corpus, context, model_cache):
    recipes = tiny_recipes()
    with pytest.raises(TypeError, match="Sentence"):
        qa_examples(["我在北京"], 40)
    with pytest.raises(ValueError, match="nothing to batch"):
        qa_loader([], qa_vocab(qa_examples(corpus.train[:2], 40)), 4, shuffle=False)
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        encode_example(qa_examples(corpus.train[:1], 40)[0], CharVocab.build(corpus.train))
    data = span_qa_data(corpus, recipes["teacher"])
    with pytest.raises(ValueError, match="needs the teacher"):
        span_qa_model(context, "span_kd", recipes["span_kd"], data, progress=False)
    with pytest.raises(ValueError, match="does not match the role"):
        span_qa_model(context, "scratch", recipes["span_kd"], data, progress=False)
    with pytest.raises(ValueError, match="role must be one of"):
        span_qa_model(context, "oracle", recipes["teacher"], data, progress=False)
    with pytest.raises(TypeError, match="CourseContext"):
        compare_span_qa("fast", corpus=corpus, recipes=recipes)
