"""Tests for course_lib.kd.methods: one registry of distillation methods, and the recipe that names one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.kd.cascade import CascadeTagger, cascade_loss
from course_lib.kd.distiller import Distiller, IntermediateDistiller
from course_lib.kd.methods import METHODS, DistillRecipe, _register_method, setup_method
from course_lib.nn.transformer import TokenTagger, TransformerConfig


def tagger(width: int, layers: int, seed: int) -> TokenTagger:
    torch.manual_seed(seed)
    return TokenTagger(TransformerConfig(vocab_size=30, d_model=width, num_heads=2, num_layers=layers, d_ff=2 * width,
                                         max_len=16), num_labels=5)


def task_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(batch["input_ids"], mask=batch["mask"]).logits.sum()


def test_every_method_of_the_course_is_registered_once():
    assert set(METHODS) == {"labels", "logits", "layers", "teacher_init", "cascade", "transfer", "sequence_kd"}
    with pytest.raises(ValueError, match="already registered"):
        _register_method("logits")(lambda *args, **kwargs: None)


def test_each_method_builds_its_loss_and_what_the_optimiser_needs():
    sentinel_cache = object()
    teacher = tagger(16, 2, 0)
    student = tagger(8, 1, 1)
    labels = setup_method(DistillRecipe(), student=student, teacher=None, task_loss=task_loss)
    assert labels.loss_fn is task_loss and labels.extra_parameters == [] and labels.param_groups is None
    logits = setup_method(DistillRecipe(method="logits", temperature=3.0, alpha=0.2), student=student, teacher=teacher,
                          task_loss=task_loss)
    assert isinstance(logits.loss_fn, Distiller) and (logits.loss_fn.temperature, logits.loss_fn.alpha) == (3.0, 0.2)
    layers = setup_method(DistillRecipe(method="layers"), student=student, teacher=teacher, task_loss=task_loss)
    assert isinstance(layers.loss_fn, IntermediateDistiller)
    assert layers.extra_parameters == list(layers.loss_fn.parameters()) and layers.extra_parameters
    half = tagger(16, 1, 2)
    init = setup_method(DistillRecipe(method="teacher_init"), student=half, teacher=teacher, task_loss=task_loss)
    assert init.facts["copied_tensors"] > 0 and init.facts["skipped_tensors"] == 0
    assert torch.equal(half.encoder.blocks[0].feed_forward.fc1.weight, teacher.encoder.blocks[1].feed_forward.fc1.weight), "block 1 <- block 2"
    narrow = setup_method(DistillRecipe(method="teacher_init"), student=tagger(8, 1, 3), teacher=teacher,
                          task_loss=task_loss, cache=sentinel_cache)
    assert narrow.facts["reduced_tensors"] == 1, "a narrower student: its embeddings are reduced"
    assert narrow.facts["skipped_tensors"] > 0
    assert narrow.loss_fn.cache is sentinel_cache, "the teacher's cached logits are used, not a forward pass a step"
    cascade = CascadeTagger(teacher, d_model=8, num_heads=2)
    setup = setup_method(DistillRecipe(method="cascade"), student=cascade, teacher=teacher, task_loss=task_loss)
    assert setup.loss_fn is cascade_loss and setup.param_groups[0]["params"] == cascade.trainable_parameters()


def test_a_method_that_learns_from_a_teacher_needs_one_and_unknown_methods_are_refused():
    with pytest.raises(ValueError, match="learns from a teacher"):
        setup_method(DistillRecipe(method="logits"), student=tagger(8, 1, 0), teacher=None, task_loss=task_loss)
    with pytest.raises(ValueError, match="method must be one of"):
        DistillRecipe(method="magic")
    with pytest.raises(ValueError, match="hidden_weight must be a number >= 0"):
        DistillRecipe(hidden_weight=-1)


def test_every_parameter_a_method_trains_follows_the_training_loops_move():
    # The training loop moves the model and a loss that is a module; a projection that is not a
    # registered submodule would stay behind (on a GPU: "Expected all tensors to be on the same device").
    from course_lib.train.loop import train

    teacher, student = tagger(16, 2, 0), tagger(8, 1, 1)
    setup = setup_method(DistillRecipe(method="layers"), student=student, teacher=teacher, task_loss=task_loss)
    assert isinstance(setup.loss_fn, nn.Module) and setup.extra_parameters
    setup.loss_fn.to(torch.float64)
    assert {p.dtype for p in setup.extra_parameters} == {torch.float64}, "every projection is a registered submodule"
    setup.loss_fn.to(torch.float32)
    batch = {"input_ids": torch.randint(1, 30, (4, 6)), "mask": torch.ones(4, 6, dtype=torch.bool),
             "labels": torch.randint(0, 5, (4, 6))}
    optimizer = torch.optim.SGD([*student.parameters(), *setup.extra_parameters], lr=0.1)
    before = [p.detach().clone() for p in setup.extra_parameters]
    train(student, [batch], loss_fn=setup.loss_fn, optimizer=optimizer, epochs=1, device="cpu", progress=False)
    assert all(not torch.equal(b, p) for b, p in zip(before, setup.extra_parameters)), "the projections are trained"
