"""Tests for course_lib.cases.ner.reference_kd: students of the shipped teacher, its cached logits, the seed verdict."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import course_lib.cases.ner.reference_kd as reference_kd_module
from course_lib.cases.ner.reference import (
    REFERENCE_RECIPE,
    reference_teacher,
    train_reference_teacher,
)
from course_lib.cases.ner.reference_kd import (
    REFERENCE_KD_ROLES,
    FAST_GOAL_F1,
    chapter_seeds,
    fast_goal_checks,
    goal_checks,
    reference_kd,
    reference_kd_recipe,
    reference_student,
    teacher_logits,
    verdict,
)
from course_lib.data import NerCorpus, load_msra
from course_lib.nn.transformer import TokenTagger

TINY_TEACHER = dataclasses.replace(REFERENCE_RECIPE, d_model=16, num_layers=1, d_ff=32, bigram_buckets=256, bigram_dim=8,
                                   epochs=1, train_sentences=200, batch_size=32, threads=1)


@pytest.fixture(scope="module")
def small():
    msra = load_msra()
    return NerCorpus(train=msra.train[:200], dev=msra.dev[:60], test=msra.test[:60])


@pytest.fixture
def tiny_teacher_folder(tmp_path, small):
    train_reference_teacher(small, TINY_TEACHER, folder=tmp_path, progress=False)
    return tmp_path


def test_the_students_share_one_shape_and_budget_and_differ_only_in_what_they_learn_from():
    scratch, kd = reference_kd_recipe("scratch", "full"), reference_kd_recipe("logit_kd", "full", seed=2)
    assert dataclasses.replace(kd, method="labels", seed=0) == scratch
    for role in ("transfer_kd", "teacher_init", "layer_kd", "cascade"):
        assert dataclasses.replace(reference_kd_recipe(role, "full"), method="labels") == scratch, role
    assert kd.method == "logits" and kd.positional == "relative"
    with pytest.raises(ValueError, match="role must be one of"):
        reference_kd_recipe("teacher", "fast")


def test_the_teachers_logits_are_computed_once_and_found_again_by_their_key(tiny_teacher_folder, small, model_cache):
    artefact = reference_teacher(tiny_teacher_folder)
    before = torch.get_rng_state()
    first = teacher_logits(artefact, small.train, 128)
    assert torch.equal(torch.get_rng_state(), before), "computing the logits must not move the global generator"
    assert first.logits.shape == (200, max(len(s) for s in small.train), 7) and first.per_token
    saved = list((model_cache / "models").glob("ner_reference_logits_*.pt"))
    assert len(saved) == 1
    without_teacher = dataclasses.replace(artefact, model=None)  # a second call must not run the teacher
    assert torch.equal(teacher_logits(without_teacher, small.train, 128).logits, first.logits)
    other = dataclasses.replace(artefact, provenance={**artefact.provenance, "weights_sha256": "0" * 64})
    assert teacher_logits(other, small.train, 128).logits.shape == first.logits.shape, "another teacher: computed anew"
    texts = ["新华社北京电今天上午召开会议。", "上海的天气很好。"]
    both = teacher_logits(artefact, small.train, 128, texts)
    assert both.logits.shape[0] == 202 and torch.equal(both.logits[:200], first.logits)
    assert len(list((model_cache / "models").glob("ner_reference_logits_200_transfer2.pt"))) == 1


def test_three_seeds_in_full_mode_and_in_fast_mode_for_the_pair_whose_gap_the_chapter_states():
    assert chapter_seeds("full") == {role: (0, 1, 2) for role in REFERENCE_KD_ROLES}
    fast = chapter_seeds("fast")
    assert set(fast) == set(REFERENCE_KD_ROLES) - {"layer_kd", "cascade"}, "the two that run the teacher every step"
    assert {role for role, seeds in fast.items() if len(seeds) >= 3} == {"scratch", "teacher_init"}


def test_each_student_is_scored_with_its_own_seeds_beside_the_teacher(tiny_teacher_folder, small, model_cache, context,
                                                                     monkeypatch):
    monkeypatch.setitem(reference_kd_module._STUDENT, "fast",
                        dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, train_sentences=200, epochs=1, lr=3e-3))
    monkeypatch.setitem(reference_kd_module._TRANSFER_SENTENCES, "fast", 60)
    seeds = {"scratch": (0, 1), "logit_kd": (0, 1), "transfer_kd": (0,), "teacher_init": (1, 2), "layer_kd": (0,),
             "cascade": (0,)}
    table = reference_kd(context, seeds=seeds, corpus=small, folder=tiny_teacher_folder, latency_rounds=2,
                         progress=False)
    assert list(table["students"]) == list(REFERENCE_KD_ROLES) and table["seeds"] == [0, 1, 2]
    assert set(table["verdicts"]) == {"logit_kd", "transfer_kd", "teacher_init", "layer_kd"}, "the cascade: no student"
    assert table["transfer_sentences"] == 60
    assert table["verdicts"]["transfer_kd"] == ("one seed of logit KD + unlabelled sentences: too few to tell a gap "
                                                "from seed-to-seed noise")
    for role, row in table["students"].items():
        assert row["seeds"] == list(seeds[role]) and len(row["test_f1"]) == len(seeds[role])
        assert row["std_f1"] >= 0 and 0 < row["size_ratio"]
        teacher_f1 = table["teacher"]["test_f1"]
        assert row["retention"] == (pytest.approx(row["mean_f1"] / teacher_f1, abs=1e-3) if teacher_f1 else None)
    assert table["teacher"]["latency_batch1_ms"] > 0 and all(row["latency_batch32_ms"] > 0 for row in table["students"].values())
    assert [goal["goal"] for goal in table["goals"]][0] == "reference teacher's test F1"
    assert table["verdicts"]["logit_kd"] == verdict(table["students"]["logit_kd"]["test_f1"],
                                                    table["students"]["scratch"]["test_f1"])
    cascade, student = table["students"]["cascade"], table["students"]["layer_kd"]
    assert cascade["size_ratio"] > 1 > student["size_ratio"], "the cascade's parameters include its teacher's"
    assert cascade["latency_batch1_ms"] > 0
    fast_pair = reference_kd(context, seeds={"scratch": (0,), "teacher_init": (1,)}, corpus=small,
                             folder=tiny_teacher_folder, latency_rounds=1, progress=False)
    assert list(fast_pair["students"]) == ["scratch", "teacher_init"]
    assert list(fast_pair["verdicts"]) == ["teacher_init"]
    with pytest.raises(ValueError, match="distinct seeds"):
        reference_kd(context, seeds=(0, 0), corpus=small, folder=tiny_teacher_folder)
    with pytest.raises(ValueError, match=r"unknown roles \['teacher'\]"):
        reference_kd(context, seeds={"scratch": (0,), "teacher": (0,)}, corpus=small, folder=tiny_teacher_folder)
    with pytest.raises(ValueError, match="must name 'scratch' and at least one distilled student"):
        reference_kd(context, seeds={"scratch": (0,), "cascade": (0,)}, corpus=small, folder=tiny_teacher_folder)


def test_a_student_that_runs_the_teacher_at_every_step_gets_its_own_copy(tiny_teacher_folder, small, model_cache,
                                                                         context, monkeypatch):
    monkeypatch.setitem(reference_kd_module._STUDENT, "fast",
                        dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, train_sentences=100, epochs=1, lr=3e-3))
    artefact = reference_teacher(tiny_teacher_folder)
    before = {name: tensor.clone() for name, tensor in artefact.model.state_dict().items()}
    cascade = reference_student(context, "cascade", artefact, corpus=small, progress=False)
    layered = reference_student(context, "layer_kd", artefact, corpus=small, progress=False)
    assert cascade.model.teacher is not artefact.model and isinstance(layered.model, TokenTagger)
    assert all(p.requires_grad for p in artefact.model.parameters()), "the cascade froze a copy, not the artefact"
    assert all(torch.equal(before[name], tensor) for name, tensor in artefact.model.state_dict().items())
    assert torch.equal(cascade.model.teacher.classifier.weight, artefact.model.classifier.weight)


def test_the_goals_compare_the_teacher_and_the_best_distilled_student_with_their_targets():
    student = {"size_ratio": 0.11, "latency_batch1_ms": 1.0}
    table = {"teacher": {"test_f1": 0.88, "latency_batch1_ms": 6.0},
             "students": {"scratch": {**student, "mean_f1": 0.9, "retention": 1.02},
                          "logit_kd": {**student, "mean_f1": 0.8, "retention": 0.91},
                          "transfer_kd": {**student, "mean_f1": 0.85, "retention": 0.96},
                          "cascade": {"size_ratio": 1.02, "latency_batch1_ms": 7.0, "mean_f1": 0.87,
                                      "retention": 0.99}}}
    checks = {check.goal: (check.measured, check.met) for check in goal_checks(table)}
    who = "best distilled student (logit KD + unlabelled sentences)"
    assert checks == {"reference teacher's test F1": (0.88, True), f"{who}: share of the teacher's F1": (0.96, True),
                      f"{who}: parameters / teacher's": (0.11, False), f"{who}: CPU speed-up at batch 1": (6.0, True)}


def test_fast_mode_asks_the_best_distilled_student_for_an_f1_and_a_gap_beyond_the_seed_spread():
    def row(f1s, std):
        return {"test_f1": f1s, "mean_f1": sum(f1s) / len(f1s), "std_f1": std}

    table = {"students": {"scratch": row([0.58, 0.59, 0.60], 0.01), "logit_kd": row([0.55], 0.0),
                          "transfer_kd": row([0.57], 0.0), "teacher_init": row([0.62, 0.63, 0.64], 0.01)}}
    f1, gap = fast_goal_checks(table)
    assert FAST_GOAL_F1 == 0.60 and "teacher-initialised" in f1.goal
    assert (f1.measured, f1.met) == (0.63, True) and (gap.measured, gap.met) == (2.0, True)
    table["students"]["teacher_init"] = row([0.60, 0.605, 0.61], 0.005)
    f1, gap = fast_goal_checks(table)
    assert (f1.met, gap.measured, gap.met) == (True, 0.75, False), "a gap within twice the larger spread"
    table["students"]["scratch"] = row([0.59], 0.0)
    with pytest.raises(ValueError, match="two seeds or more of both students"):
        fast_goal_checks(table)


def test_the_verdict_says_no_more_than_the_seeds_allow():
    assert verdict([0.8], [0.7]).startswith("one seed each")
    assert verdict([0.80, 0.82, 0.81], [0.70, 0.71, 0.72]) == "logit KD beats labels only by 10.0 points"
    assert verdict([0.70, 0.71, 0.72], [0.80, 0.82, 0.81]) == "logit KD loses to labels only by 10.0 points"
    assert verdict([0.80, 0.70, 0.90], [0.78, 0.79, 0.80]).startswith("no measurable difference (+1.0 points")
