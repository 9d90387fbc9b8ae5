"""Tests for course_lib.cases.ner.models: chapter 07's teacher and students, their recipes and their cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.kd.cascade import CascadeTagger
from course_lib.data import LABELS, CharVocab, NerCorpus, load_msra
from course_lib.cases.ner.models import (
    NER_ROLES,
    capped_recipes,
    ner_recipe,
    ner_student,
    ner_teacher,
)
from course_lib.cases.ner.tagger import TaggerRecipe, training_sentences
from course_lib.nn.transformer import TokenTagger, count_parameters
from course_lib.train.cache import model_path

SHARED = dict(train_sentences=120, epochs=1, batch_size=16, dropout=0.1)
TEACHER = TaggerRecipe(d_model=32, num_heads=2, num_layers=2, d_ff=64, **SHARED)
STUDENTS = {
    "scratch": TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16, **SHARED),
    "logit_kd": TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16, method="logits", **SHARED),
    "layer_kd": TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16, method="layers", **SHARED),
    "teacher_init": TaggerRecipe(d_model=32, num_heads=2, num_layers=1, d_ff=64, method="teacher_init", **SHARED),
    "cascade": TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16, method="cascade", **SHARED),
}


@pytest.fixture(scope="module")
def corpus():
    full = load_msra()
    return NerCorpus(train=full.train[:200], dev=full.dev[:40], test=full.test[:40])


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_course_students_have_at_most_a_tenth_of_the_teachers_parameters(mode):
    full = load_msra()
    teacher = ner_recipe("teacher", mode)
    vocab = CharVocab.build(training_sentences(full, teacher), min_freq=teacher.vocab_min_freq)
    teacher_params = count_parameters(TokenTagger(teacher.model_config(len(vocab)), num_labels=len(LABELS)))
    for role in ("scratch", "logit_kd", "layer_kd"):
        student = ner_recipe(role, mode)
        params = count_parameters(TokenTagger(student.model_config(len(vocab)), num_labels=len(LABELS)))
        assert params <= 0.10 * teacher_params, f"{role} in {mode} mode: {params:,} vs {teacher_params:,}"
    for role in NER_ROLES:
        recipe = ner_recipe(role, mode)
        assert (recipe.train_sentences, recipe.epochs, recipe.batch_size) == (
            teacher.train_sentences, teacher.epochs, teacher.batch_size), f"{role} must get the teacher's budget"
    assert ner_recipe("teacher_init", mode).d_model == teacher.d_model
    assert ner_recipe("teacher_init", mode).num_layers == teacher.num_layers // 2


def test_teacher_and_students_train_once_then_load_from_the_cache(corpus, model_cache, context):
    teacher = ner_teacher(context, recipe=TEACHER, corpus=corpus, progress=False)
    assert teacher.trained and teacher.path == model_path("ner_teacher", "fast") and teacher.path.is_file()
    assert len(teacher.metrics["dev_curve"]) == 1 and teacher.metrics["dev_f1"] == teacher.metrics["dev_curve"][0]
    students = {role: ner_student(context, role, teacher, recipe=recipe, corpus=corpus, progress=False)
                for role, recipe in STUDENTS.items()}
    for role, student in students.items():
        assert student.trained and student.vocab is teacher.vocab and not student.model.training, role
    assert isinstance(students["cascade"].model, CascadeTagger)
    assert count_parameters(students["cascade"].model) > count_parameters(teacher.model)
    assert students["teacher_init"].metrics["copied_tensors"] > 0
    assert students["teacher_init"].metrics["skipped_tensors"] == 0

    again = ner_teacher(context, recipe=TEACHER, corpus=corpus, progress=False)
    assert not again.trained and again.vocab.tokens() == teacher.vocab.tokens()
    ids = torch.tensor([teacher.vocab.encode(list("新华社北京电"))])
    for role, recipe in STUDENTS.items():
        loaded = ner_student(context, role, again, recipe=recipe, corpus=corpus, progress=False)
        assert not loaded.trained and loaded.metrics == students[role].metrics, role
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(ids).logits, students[role].model(ids).logits)


def test_a_retrained_teacher_retrains_its_students(corpus, model_cache, context):
    teacher = ner_teacher(context, recipe=TEACHER, corpus=corpus, progress=False)
    ner_student(context, "logit_kd", teacher, recipe=STUDENTS["logit_kd"], corpus=corpus, progress=False)
    new_teacher = ner_teacher(context, recipe=dataclasses.replace(TEACHER, seed=1), corpus=corpus, progress=False)
    assert new_teacher.trained
    student = ner_student(context, "logit_kd", new_teacher, recipe=STUDENTS["logit_kd"], corpus=corpus,
                          progress=False)
    assert student.trained, "a student of another teacher must not be loaded"


def test_bad_recipes_and_arguments_are_rejected(corpus, model_cache, context):
    with pytest.raises(ValueError, match="method"):
        TaggerRecipe(method="magic")
    with pytest.raises(ValueError, match="temperature"):
        TaggerRecipe(temperature=0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        TaggerRecipe(alpha=1.5)
    with pytest.raises(ValueError, match="vocab_min_freq"):
        TaggerRecipe(vocab_min_freq=0)
    with pytest.raises(ValueError, match="role"):
        ner_recipe("assistant", "fast")
    with pytest.raises(ValueError, match="mode"):
        ner_recipe("teacher", "slow")
    with pytest.raises(ValueError, match="learns from the labels"):
        ner_teacher(context, recipe=STUDENTS["logit_kd"], corpus=corpus, progress=False)
    teacher = ner_teacher(context, recipe=TEACHER, corpus=corpus, progress=False)
    with pytest.raises(ValueError, match="students"):
        ner_student(context, "teacher", teacher, corpus=corpus, progress=False)
    with pytest.raises(TypeError, match="ner_teacher"):
        ner_student(context, "scratch", teacher.model, corpus=corpus, progress=False)
    with pytest.raises(ValueError, match="teacher's sentences"):
        ner_student(context, "scratch", teacher, recipe=dataclasses.replace(STUDENTS["scratch"], train_sentences=50),
                    corpus=corpus, progress=False)
    with pytest.raises(ValueError, match="exceeds"):
        training_sentences(corpus, dataclasses.replace(TEACHER, train_sentences=10_000))


def test_capped_recipes_cap_every_models_epochs():
    capped = capped_recipes("full", 3)
    assert all(recipe.epochs == 3 for recipe in capped.values())
    assert {role: dataclasses.asdict(r) | {"epochs": 0} for role, r in capped.items()} == {
        role: dataclasses.asdict(ner_recipe(role, "full")) | {"epochs": 0} for role in NER_ROLES
    }
    assert capped_recipes("full", None) == {role: ner_recipe(role, "full") for role in NER_ROLES}
    students_at_2 = capped_recipes("full", 3, 2)
    assert students_at_2["teacher"].epochs == 3
    assert {r.epochs for role, r in students_at_2.items() if role != "teacher"} == {2}
