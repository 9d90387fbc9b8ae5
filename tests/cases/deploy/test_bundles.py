"""Tests for course_lib.cases.deploy.bundles: the chapter-08 bundles of the NER and MNIST teachers and students."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from course_lib.serve.bundle import load_bundle, read_bundle_config
from course_lib.cases.deploy.bundles import _bundle_dir, mnist_bundles
from course_lib.serve.predict import default_bundle_dir


def test_the_ner_bundles_hold_the_teacher_and_its_student_with_one_vocabulary(tiny_deploy_pairs):
    pair = tiny_deploy_pairs["pairs"]["ner"]
    cache = tiny_deploy_pairs["cache"]
    assert pair.teacher == _bundle_dir("ner", "teacher", "fast", cache / "deploy")
    assert pair.student == _bundle_dir("ner", "student", "fast", cache / "deploy")
    teacher, student = load_bundle(pair.teacher), load_bundle(pair.student)
    assert teacher.vocab.tokens() == student.vocab.tokens(), "the student reads the teacher's vocabulary"
    assert teacher.metadata["role"] == "teacher" and student.metadata["role"] == "layer_kd"
    assert student.metadata["recipe"] == dataclasses.asdict(tiny_deploy_pairs["ner_recipes"]["layer_kd"])
    assert student.model.config.d_model == 8 and teacher.model.config.d_model == 32


def test_the_cli_default_folder_is_where_the_chapter_saves_the_student(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert default_bundle_dir("ner", "full") == _bundle_dir("ner", "student", "full")
    assert _bundle_dir("mnist", "student", "fast") == tmp_path / "deploy" / "mnist_student_fast"
    with pytest.raises(ValueError, match="role must be 'teacher' or 'student'"):
        _bundle_dir("ner", "cascade", "fast")


def test_the_distilled_mnist_student_is_reused_only_for_the_same_teacher_and_recipe(tiny_deploy_pairs, monkeypatch,
                                                                                     tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tiny_deploy_pairs["cache"]))
    first = tiny_deploy_pairs["pairs"]["mnist"]
    metadata = read_bundle_config(first.student)["metadata"]
    assert metadata["role"] == "student_distilled" and metadata["temperature"] == 20.0 and metadata["alpha"] == 0.5
    recipes = tiny_deploy_pairs["mnist_recipes"]
    context, data = tiny_deploy_pairs["context"], tiny_deploy_pairs["mnist"]
    weights = load_bundle(first.student).model.state_dict()

    again = mnist_bundles(context, recipes=recipes, data=data, progress=False)
    assert not again.student_trained_now and again.student_train_seconds == metadata["train_seconds"]
    assert all(torch.equal(weights[k], v) for k, v in load_bundle(again.student).model.state_dict().items())

    root = tmp_path / "deploy"
    shutil.copytree(first.student, _bundle_dir("mnist", "student", "fast", root))
    assert not mnist_bundles(context, recipes=recipes, data=data, root=root, progress=False).student_trained_now
    other_student = dict(recipes, student=dataclasses.replace(recipes["student"], seed=1))
    retrained = mnist_bundles(context, recipes=other_student, data=data, root=root, progress=False)
    assert retrained.student_trained_now and retrained.student == _bundle_dir("mnist", "student", "fast", root)
    assert read_bundle_config(retrained.student)["metadata"]["recipe"]["seed"] == 1
