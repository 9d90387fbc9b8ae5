"""Tests for course_lib.cases.mnist.models: the cached MNIST teacher and students and their recipes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.cases.mnist.models import MNIST_ROLES, MnistRecipe, mnist_model, mnist_recipe
from course_lib.data import load_mnist, mnist_tensors
from course_lib.nn.cnn import ConvNet, ConvNetConfig
from course_lib.nn.mlp import MLP, student_config, teacher_config
from course_lib.train.cache import model_path
from course_lib.train.fit import Trained

TINY = MnistRecipe(
    hidden=(16, 16),
    input_dropout=0.2,
    dropout=0.5,
    max_norm=0.5,
    max_shift=2,
    train_size=600,
    epochs=1,
    batch_size=64,
)


@pytest.fixture(scope="module")
def data():
    return load_mnist()


def test_mnist_model_trains_once_then_loads_the_cache(data, model_cache, context):
    threads = torch.get_num_threads()
    first = mnist_model(context, "teacher", recipe=TINY, data=data, progress=False)
    assert torch.get_num_threads() == threads, "training must restore the thread count it changed"
    assert isinstance(first, Trained)
    assert first.trained and first.history is not None and len(first.history.step_losses) == 10
    assert first.path == model_cache / "models" / "mnist_teacher_fast.safetensors" and first.path.is_file()
    assert 0 <= first.metrics["test_errors"] < 9_000, "even a tiny network beats chance (9,000 errors)"
    assert first.seconds > 0
    assert not first.model.training and first.model.config == TINY.model_config()
    for layer in first.model.hidden:  # max-norm was applied after the optimiser steps
        assert torch.all(layer.weight.norm(dim=1) <= 0.5 + 1e-5)

    second = mnist_model(context, "teacher", recipe=TINY, data=data, progress=False)
    assert not second.trained and second.history is None and not second.model.training
    assert second.metrics == first.metrics and second.seconds == pytest.approx(first.seconds, abs=1e-3)
    assert second.metrics["errors_per_epoch"] == [first.metrics["test_errors"]], "one epoch, one count"
    assert second.recipe == TINY
    images, _ = mnist_tensors(data, "test")
    with torch.no_grad():
        torch.testing.assert_close(second.model(images[:50]), first.model(images[:50]))


def test_a_changed_recipe_retrains_instead_of_loading_a_stale_model(data, model_cache, context):
    mnist_model(context, "teacher", recipe=TINY, data=data, progress=False)
    changed = dataclasses.replace(TINY, max_shift=1)
    again = mnist_model(context, "teacher", recipe=changed, data=data, progress=False)
    assert again.trained and again.recipe == changed
    assert not mnist_model(context, "teacher", recipe=changed, data=data, progress=False).trained


def test_training_repeats_exactly_with_the_same_seed(data, model_cache, context):
    recipe = dataclasses.replace(TINY, optimizer="adamw", lr=1e-3, hidden=(8,), train_size=300)
    first = mnist_model(context, "student_scratch", recipe=recipe, data=data, progress=False)
    assert first.path.name == "mnist_student_scratch_fast.safetensors"
    first.path.unlink()
    again = mnist_model(context, "student_scratch", recipe=recipe, data=data, progress=False)
    assert again.trained and again.metrics["test_errors"] == first.metrics["test_errors"]
    for a, b in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)


def test_the_course_recipes_differ_only_where_the_paper_varies():
    for mode in ("fast", "full"):
        teacher, scratch, jitter = (mnist_recipe(role, mode) for role in ("teacher", "student_scratch",
                                                                          "student_scratch_jitter"))
        assert teacher.model_config() == teacher_config() and teacher.max_shift == 2
        assert scratch.model_config() == student_config() and scratch.max_shift == 0
        assert jitter.model_config() == student_config() and jitter.max_shift == teacher.max_shift
        for field in ("batch_size", "optimizer", "lr", "momentum", "weight_decay", "seed"):
            assert getattr(jitter, field) == getattr(scratch, field) == getattr(teacher, field), field
        for field in ("epochs", "train_size", "exclude_digits"):
            assert getattr(jitter, field) == getattr(scratch, field), "the students share one budget"
        assert teacher.train_size is None, "the teacher always sees all 60,000 digits"
    assert mnist_recipe("teacher", "full").epochs > mnist_recipe("teacher", "fast").epochs
    assert mnist_recipe("student_scratch", "full").train_size is None


def test_the_cnn_teacher_is_a_convnet_with_the_students_jitter_and_all_the_digits():
    assert list(MNIST_ROLES)[0] == "teacher" and "teacher_cnn" in MNIST_ROLES
    for mode in ("fast", "full"):
        cnn = mnist_recipe("teacher_cnn", mode)
        assert cnn.model_config() == ConvNetConfig() and cnn.max_shift == mnist_recipe("teacher", mode).max_shift
        assert cnn.train_size is None and cnn.max_norm is None and cnn.input_dropout == 0.0
    assert mnist_recipe("teacher_cnn", "full").epochs > mnist_recipe("teacher_cnn", "fast").epochs
    assert MnistRecipe(**mnist_recipe("teacher_cnn", "full").to_dict()) == mnist_recipe("teacher_cnn", "full")


def test_a_convolutional_recipe_trains_a_convnet_without_max_norm(data, model_cache, context):
    recipe = dataclasses.replace(mnist_recipe("teacher_cnn", "fast"), channels=(2, 4), hidden=(8,), epochs=1,
                                 train_size=300, batch_size=64)
    trained = mnist_model(context, "teacher_cnn", recipe=recipe, data=data, progress=False)
    assert isinstance(trained.model, ConvNet) and trained.model.config.channels == (2, 4)
    assert trained.path.name == "mnist_teacher_cnn_fast.safetensors"
    assert 0 <= trained.metrics["test_errors"] <= 10_000
    assert isinstance(mnist_model(context, "student_scratch", recipe=dataclasses.replace(recipe, channels=(), hidden=(8,),
                                  dropout=0.0), data=data, progress=False).model, MLP)


def test_recipes_round_trip_through_their_dict():
    recipe = mnist_recipe("teacher", "full")
    assert recipe.to_dict()["hidden"] == [1200, 1200]
    assert MnistRecipe(**recipe.to_dict()) == recipe


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": ()}, "at least one hidden layer"),
        ({"channels": (4, 8), "hidden": (8, 8)}, "one hidden layer"),
        ({"channels": (4, 8), "hidden": (8,), "max_norm": 3.0}, "neither input_dropout nor max_norm"),
        ({"channels": (4,), "hidden": (8,)}, "widths of the two convolutions"),
        ({"dropout": 1.0}, r"dropout \(a drop probability\) must be a number"),
        ({"max_shift": -1}, r"max_shift \(pixels of jitter\) must be an int >= 0"),
        ({"train_size": 0}, r"train_size \(or None for all 60,000 digits\) must be a positive int or None"),
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"batch_size": 2.5}, "batch_size must be a positive int"),
        ({"optimizer": "adam"}, r"optimizer must be one of \('adamw', 'sgd'\)"),
        ({"lr": 0}, "lr must be a number > 0"),
        ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
        ({"weight_decay": -1e-4}, "weight_decay must be a number >= 0"),
        ({"warmup_fraction": 1.0}, r"warmup_fraction must be a number in \[0, 1\)"),
        ({"seed": -1}, "seed must be an int >= 0"),
    ],
)
def test_bad_recipes_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MnistRecipe(**kwargs)


def test_bad_arguments_are_rejected(data, model_cache, context):
    with pytest.raises(ValueError, match="role must be one of"):
        mnist_recipe("student", "fast")
    with pytest.raises(ValueError, match="mode must be one of"):
        mnist_recipe("teacher", "medium")
    with pytest.raises(ValueError, match="role must be one of"):
        mnist_model(context, "assistant", recipe=TINY, data=data)
    with pytest.raises(TypeError, match="context must be the CourseContext"):
        mnist_model("fast", "teacher", recipe=TINY, data=data)
    with pytest.raises(TypeError, match="recipe must be a MnistRecipe"):
        mnist_model(context, "teacher", recipe=TINY.to_dict(), data=data)
    with pytest.raises(TypeError, match="data must be the MnistData"):
        mnist_model(context, "teacher", recipe=TINY, data=mnist_tensors(data, "train"))
    with pytest.raises(ValueError, match="train_size=70000 exceeds the 60,000 training digits"):
        mnist_model(context, "teacher", recipe=dataclasses.replace(TINY, train_size=70_000), data=data)
    assert not model_path("mnist_teacher", "fast").exists()
