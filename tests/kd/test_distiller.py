"""Tests for course_lib.kd.distiller: logit and layer distillation as a loss for the one training loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from course_lib.kd.distiller import Distiller, IntermediateDistiller
from course_lib.kd.layers import LayerMap
from course_lib.kd.losses import (
    soft_kl,
)
from course_lib.kd.teacher import TeacherLogitCache, model_logits
from course_lib.nn.transformer import TokenTagger
from course_lib.train.loop import train
from tests.kd import NUM_LABELS, classifier, tagger, toy_data


def test_distiller_keeps_the_teacher_frozen_and_in_eval_mode():
    teacher = classifier(0, dropout=0.5)
    modes: list[bool] = []
    teacher.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    distiller = Distiller(teacher, temperature=4, alpha=0.5)
    teacher.train()  # a caller switching it back must not turn dropout on
    student = classifier(1)
    batch = next(iter(DataLoader(toy_data(), batch_size=16)))
    first = distiller(student, batch)
    second = distiller(student, batch)
    first.backward()
    assert modes == [False, False]
    assert torch.equal(first, second), "a teacher with dropout on would give a different target each call"
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    with pytest.raises(ValueError, match="is its teacher"):
        distiller(teacher, batch)


def test_distiller_loss_depends_on_the_teacher():
    student = classifier(1)
    batch = next(iter(DataLoader(toy_data(), batch_size=16)))
    losses = [Distiller(classifier(seed), temperature=4, alpha=0.0)(student, batch).item() for seed in (0, 2)]
    assert losses[0] != pytest.approx(losses[1])


def test_distiller_trains_a_student_towards_its_teacher_with_the_course_loop():
    teacher, data = classifier(0), toy_data(256)
    student = classifier(4)
    loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    distiller = Distiller(teacher, temperature=2, alpha=0.0)
    probe = next(iter(DataLoader(data, batch_size=256)))
    before = soft_kl(model_logits(student, probe), model_logits(teacher, probe), 2).item()
    history = train(student, loader, loss_fn=distiller, optimizer=torch.optim.Adam(student.parameters(), lr=1e-2),
                    epochs=5, progress=False)
    after = soft_kl(model_logits(student, probe), model_logits(teacher, probe), 2).item()
    assert after < 0.2 * before
    assert math.isfinite(history.step_losses[-1])


def test_distiller_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature must be"):
        Distiller(classifier(0), temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha must be"):
        Distiller(classifier(0), temperature=2, alpha=2)
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        Distiller("teacher", temperature=2, alpha=0.5)
    with pytest.raises(KeyError, match="'input_ids'.*'inputs'"):
        model_logits(classifier(0), {"x": torch.zeros(1, 6)})


def test_tuple_batches_work_like_dicts():
    teacher, student, data = classifier(0), classifier(1), toy_data(16)
    as_dict = {"inputs": data.inputs, "labels": data.labels, "index": torch.arange(16)}
    as_tuple = (data.inputs, data.labels, torch.arange(16))
    distiller = Distiller(teacher, temperature=3, alpha=0.4)
    assert torch.equal(distiller(student, as_dict), distiller(student, as_tuple[:2]))
    cache = TeacherLogitCache.build(teacher, [as_tuple])
    cached = Distiller(teacher, temperature=3, alpha=0.4, cache=cache)
    assert torch.allclose(cached(student, as_tuple), distiller(student, as_dict))
    with pytest.raises(TypeError, match="a batch must be a dict"):
        distiller(student, data.inputs)


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 50, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 4:] = False
    input_ids[~mask] = 0
    labels = torch.randint(0, NUM_LABELS, (3, 9), generator=generator).masked_fill(~mask, -100)
    return {"input_ids": input_ids, "mask": mask, "labels": labels}


def test_only_the_projections_are_trainable_and_the_teacher_stays_frozen_in_eval_mode():
    teacher, student = tagger(4, d_model=64), tagger(2, d_model=32, seed=1)
    teacher.train()
    distiller = IntermediateDistiller(teacher, student, LayerMap.uniform(2, 4), temperature=2.0, alpha=0.5)
    assert sum(p.numel() for p in distiller.parameters()) == 3 * (32 * 64 + 64)
    student.train()
    distiller(student, batch()).backward()
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in distiller.parameters())
    assert sum(p.grad is not None for p in student.parameters()) == len(list(student.parameters()))


def test_every_term_ignores_what_sits_in_padded_positions():
    teacher, student = tagger(4, seed=0), tagger(2, seed=1)
    distiller = IntermediateDistiller(teacher, student, LayerMap.uniform(2, 4), temperature=3.0, alpha=0.4)
    student.eval()
    first = batch()
    second = {key: value.clone() for key, value in first.items()}
    second["input_ids"][~second["mask"]] = 17  # garbage where the mask says padding
    with torch.no_grad():
        a, b = distiller.terms(student, first), distiller.terms(student, second)
    assert set(a) == {"hard", "soft", "hidden", "attention"}
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_terms_depend_on_the_teacher_and_heads_may_differ():
    student = tagger(2, heads=2, seed=1)
    student.eval()
    losses = []
    for seed in (0, 5):
        distiller = IntermediateDistiller(tagger(4, heads=4, seed=seed), student, LayerMap.uniform(2, 4),
                                          temperature=2.0, alpha=0.0, attention_kind="kl")
        with torch.no_grad():
            losses.append(distiller.terms(student, batch()))
    for name in ("soft", "hidden", "attention"):
        assert not torch.allclose(losses[0][name], losses[1][name]), f"the {name} term ignores the teacher"


def test_a_student_cannot_be_its_own_teacher_and_label_sets_must_match():
    teacher = tagger(2)
    distiller = IntermediateDistiller(teacher, tagger(2, seed=1), LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="is its teacher"):
        distiller(teacher, batch())
    other = TokenTagger(tagger(2).config, NUM_LABELS + 1)
    with pytest.raises(ValueError, match="different label sets"):
        IntermediateDistiller(teacher, other, LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="must be a course_lib.nn.transformer.TokenTagger"):
        IntermediateDistiller(torch.nn.Linear(2, 2), teacher, LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="temperature"):
        IntermediateDistiller(teacher, tagger(2), LayerMap.uniform(2, 2), temperature=0.0, alpha=0.5)
    with pytest.raises(ValueError, match="hidden_weight must be a number >= 0"):
        IntermediateDistiller(teacher, tagger(2), LayerMap.uniform(2, 2), temperature=1.0, alpha=0.5, hidden_weight=-1)


def test_every_weight_the_layer_distiller_trains_is_a_registered_submodule():
    teacher, student = tagger(4, d_model=64), tagger(2, d_model=32, seed=1)
    distiller = IntermediateDistiller(teacher, student, LayerMap.uniform(2, 4), temperature=2.0, alpha=0.5)
    distiller.to(torch.float64)  # what moving to a GPU does to registered weights
    weights = list(distiller.parameters())
    assert weights and all(p.dtype == torch.float64 for p in weights)
    assert all(p.dtype == torch.float32 for p in teacher.parameters()), "the teacher is not the distiller's"
