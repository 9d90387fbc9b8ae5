"""Tests for course_lib.kd.cascade: the seed's cascade student, written so that it runs and measures honestly."""

from __future__ import annotations

import pytest
import torch

from course_lib.kd.cascade import CascadeTagger, cascade_loss
from course_lib.nn.transformer import TokenTagger, TransformerConfig, count_parameters


@pytest.fixture
def teacher() -> TokenTagger:
    torch.manual_seed(0)
    return TokenTagger(TransformerConfig(vocab_size=40, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=16), 7)


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 40, (4, 10), generator=generator)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[2, 7:] = False
    input_ids[~mask] = 0
    labels = torch.randint(0, 7, (4, 10), generator=generator).masked_fill(~mask, -100)
    return {"input_ids": input_ids, "mask": mask, "labels": labels}


def test_the_cascade_tags_every_token_from_the_teachers_states(teacher):
    cascade = CascadeTagger(teacher, d_model=16, num_heads=2, num_layers=1, d_ff=32)
    output = cascade(batch()["input_ids"], mask=batch()["mask"])
    assert output.logits.shape == (4, 10, 7) and len(output.attention) == 1 and len(output.hidden) == 2


def test_only_the_head_trains_and_the_teacher_stays_frozen_in_eval_mode(teacher):
    cascade = CascadeTagger(teacher, d_model=16, num_heads=2)
    cascade.train()
    assert not cascade.teacher.training and cascade.blocks[0].training
    trainable = cascade.trainable_parameters()
    assert sum(p.numel() for p in trainable) == count_parameters(cascade) - count_parameters(teacher)
    cascade_loss(cascade, batch()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in trainable)


def test_the_cascade_always_costs_more_than_its_teacher(teacher):
    cascade = CascadeTagger(teacher, d_model=16, num_heads=2)
    assert count_parameters(cascade) > count_parameters(teacher), "inference runs the whole teacher, then the head"


def test_the_head_learns_a_fixed_batch(teacher):
    cascade = CascadeTagger(teacher, d_model=16, num_heads=2, dropout=0.0)
    optimizer = torch.optim.Adam(cascade.trainable_parameters(), lr=1e-2)
    data = batch()
    first = cascade_loss(cascade, data).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = cascade_loss(cascade, data)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_bad_arguments_are_rejected(teacher):
    with pytest.raises(TypeError, match="teacher must be a course_lib.nn.transformer.TokenTagger"):
        CascadeTagger(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        CascadeTagger(teacher, num_layers=0)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        CascadeTagger(teacher, d_model=30, num_heads=4)


def test_one_step_on_the_summed_loss_is_the_seeds_two_alternating_steps():
    """Teacher step on its loss, then head step on the (pre-step) hidden states == one step on the sum."""
    import copy

    from course_lib.train.tagging import token_classification_loss

    data = batch()
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=40, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=16, dropout=0.0)
    joint = CascadeTagger(TokenTagger(config, 7), d_model=16, num_heads=2, dropout=0.0, train_teacher=True)
    alternating = copy.deepcopy(joint)
    assert len(joint.trainable_parameters()) == len(list(joint.parameters()))
    optimizer = torch.optim.SGD(joint.trainable_parameters(), lr=0.1)
    cascade_loss(joint, data).backward()
    optimizer.step()

    teacher_opt = torch.optim.SGD(alternating.teacher.parameters(), lr=0.1)
    head_params = [p for n, p in alternating.named_parameters() if not n.startswith("teacher.")]
    head_opt = torch.optim.SGD(head_params, lr=0.1)
    teacher_out = alternating.teacher(data["input_ids"], mask=data["mask"])
    token_classification_loss(teacher_out.logits, data["labels"]).backward()
    teacher_opt.step()
    head_out = alternating.head(teacher_out.hidden[-1], teacher_out.mask)
    token_classification_loss(head_out.logits, data["labels"]).backward()
    head_opt.step()
    for (name, a), b in zip(joint.named_parameters(), alternating.parameters()):
        torch.testing.assert_close(a, b, msg=name)
    assert joint.train().teacher.training, "a training teacher follows the cascade's mode"


def test_train_teacher_must_be_a_bool(teacher):
    with pytest.raises(TypeError, match="train_teacher must be True or False"):
        CascadeTagger(teacher, train_teacher="yes")
