"""Tests for course_lib.cases.ner.compare: chapter 07's table, its seqeval scores, latency and goal checks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from course_lib.data import LABEL2ID, LABELS, NerCorpus, Sentence, load_msra
from course_lib.cases.ner.compare import GOALS, _NerComparison, _NerRow, compare_ner, cpu_latencies
from course_lib.cases.ner.compare import _split_scores
from course_lib.nn.transformer import ModelOutput
from tests.cases.ner.test_models import STUDENTS, TEACHER


class Oracle(nn.Module):
    """Tags each sentence with fixed tags, found by its character ids whatever the batch order: seqeval's input made exact."""

    def __init__(self, vocab, sentences: list[Sentence], tags: list[list[str]]) -> None:
        super().__init__()
        self.tags = {tuple(vocab.encode(s.chars)): t for s, t in zip(sentences, tags)}
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, mask=None):
        logits = torch.zeros(*input_ids.shape, len(LABELS))
        for row in range(input_ids.shape[0]):
            ids = tuple(input_ids[row][mask[row].bool()].tolist())
            for position, tag in enumerate(self.tags[ids]):
                logits[row, position, LABEL2ID[tag]] = 1.0
        return ModelOutput(logits=logits, hidden=[], attention=[], mask=mask)


def sentence(text: str, tags: str) -> Sentence:
    return Sentence(chars=list(text), tags=tags.split())


GOLD = [
    sentence("张三在北京", "B-PER I-PER O B-LOC I-LOC"),
    sentence("新华社电", "B-ORG I-ORG I-ORG O"),
]


def test_split_scores_on_hand_built_tags():
    from course_lib.data import CharVocab

    vocab = CharVocab.build(GOLD)
    perfect = _split_scores(Oracle(vocab, GOLD, [s.tags for s in GOLD]), vocab, GOLD)
    assert perfect["f1"] == 1.0 and perfect["per_type_f1"] == {"PER": 1.0, "LOC": 1.0, "ORG": 1.0}
    # The person is found, the place is cut short (a wrong span), the organisation is missed:
    # 1 of 2 predicted entities is right (P = 1/2), 1 of 3 gold entities is found (R = 1/3).
    guessed = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "O", "O", "O"]]
    scores = _split_scores(Oracle(vocab, GOLD, guessed), vocab, GOLD)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert scores["per_type_f1"] == {"PER": 1.0, "LOC": 0.0, "ORG": 0.0}


def row(role: str, params: int, f1: float, ms: float) -> _NerRow:
    return _NerRow(role=role, title=role, parameters=params, precision=f1, recall=f1, f1=f1,
                  per_type_f1={"PER": f1, "LOC": f1, "ORG": f1}, latency_batch1_ms=ms, latency_batch32_ms=ms / 10,
                  dev_curve=[f1], train_seconds=1.0)


def test_goals_pick_the_best_small_distilled_student():
    rows = {
        "teacher": row("teacher", 1000, 0.93, 6.0),
        "scratch": row("scratch", 90, 0.88, 1.0),
        "logit_kd": row("logit_kd", 90, 0.905, 1.0),
        "layer_kd": row("layer_kd", 90, 0.91, 1.2),
        "teacher_init": row("teacher_init", 600, 0.95, 3.0),
    }
    comparison = _NerComparison(mode="full", rows=rows)
    assert comparison.best_distilled == "layer_kd", "teacher_init is too large to count"
    checks = {check.goal.split(":")[-1].strip(): check for check in comparison.goals()}
    assert checks["teacher test F1"].met
    assert checks["share of the teacher's F1 kept"].measured == pytest.approx(0.91 / 0.93)
    assert checks["share of the teacher's F1 kept"].met
    assert checks["parameters / teacher's"].measured == pytest.approx(0.09)
    assert checks["CPU speed-up at batch 1"].measured == pytest.approx(5.0) and checks["CPU speed-up at batch 1"].met
    assert checks["F1 above the scratch student"].measured == pytest.approx(0.03)
    json.dumps(comparison.to_dict())

    rows["teacher"] = row("teacher", 1000, 0.80, 3.0)
    missed = {check.goal.split(":")[-1].strip(): check for check in _NerComparison("full", rows).goals()}
    assert not missed["teacher test F1"].met and not missed["CPU speed-up at batch 1"].met
    assert GOALS["parameter_ratio"] == 0.10


def test_cpu_latency_times_one_sentence_and_a_batch_of_32():
    corpus = load_msra()
    from course_lib.data import CharVocab
    from course_lib.nn.transformer import TokenTagger, TransformerConfig

    vocab = CharVocab.build(corpus.train[:100])
    model = TokenTagger(TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1, d_ff=32,
                                          max_len=128), num_labels=len(LABELS))
    both = cpu_latencies({"a": (model, vocab), "b": (model, vocab)}, corpus.test[:40], rounds=2,
                          seconds_per_round=0.01)
    assert set(both) == {"a", "b"} and all(0 < batch32 < batch1 for batch1, batch32 in both.values()), \
        "a batch of 32 shares the per-call cost: less time per sentence"
    with pytest.raises(ValueError, match="at least 32"):
        cpu_latencies({"a": (model, vocab)}, corpus.test[:10])


def test_compare_ner_measures_every_role_it_trains(model_cache, context):
    full = load_msra()
    corpus = NerCorpus(train=full.train[:200], dev=full.dev[:40], test=full.test[:40])
    roles = ("teacher", "scratch", "logit_kd", "cascade")
    recipes = {"teacher": TEACHER, **{role: STUDENTS[role] for role in roles[1:]}}
    comparison = compare_ner(context, corpus=corpus, roles=roles, recipes=recipes, latency_rounds=2,
                             progress=False)
    assert list(comparison.rows) == list(roles)
    for role, measured in comparison.rows.items():
        assert 0.0 <= measured.f1 <= 1.0 and measured.latency_batch1_ms > 0, role
        assert set(measured.per_type_f1) == {"PER", "LOC", "ORG"}
    assert comparison.rows["cascade"].parameters > comparison.rows["teacher"].parameters
    assert comparison.best_distilled == "logit_kd"
    with pytest.raises(ValueError, match="must include 'teacher' and 'scratch'"):
        compare_ner(context, corpus=corpus, roles=("teacher", "logit_kd"))
