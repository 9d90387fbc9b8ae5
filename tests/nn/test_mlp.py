"""Tests for course_lib.nn.mlp: Hinton et al.'s MNIST MLPs, the max-norm constraint, error counting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.nn.mlp import MLP, MLPConfig, apply_max_norm_, count_errors, student_config, teacher_config
from course_lib.nn.transformer import count_parameters


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28)])
def test_mlp_maps_each_image_layout_to_ten_logits(shape):
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(32, 16))).eval()
    images = torch.rand(5, 784)
    logits = model(images.reshape(shape))
    assert logits.shape == (5, 10)
    torch.testing.assert_close(logits, model(images))


def test_parameter_counts_follow_the_layer_formula():
    teacher, student = MLP(teacher_config()), MLP(student_config())
    assert count_parameters(teacher) == (784 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 10 + 10)
    assert count_parameters(student) == (784 * 800 + 800) + (800 * 800 + 800) + (800 * 10 + 10)
    assert count_parameters(MLP(student_config(30))) == (784 * 30 + 30) + (30 * 30 + 30) + (30 * 10 + 10)
    assert count_parameters(MLP(MLPConfig(hidden=(7,)))) == (784 * 7 + 7) + (7 * 10 + 10)


def test_presets_match_the_paper():
    teacher, student = teacher_config(), student_config()
    assert teacher.hidden == (1200, 1200)
    assert (teacher.input_dropout, teacher.dropout) == (0.2, 0.5) and teacher.max_norm is not None
    assert student == MLPConfig(hidden=(800, 800))
    assert (student.input_dropout, student.dropout, student.max_norm) == (0.0, 0.0, None)
    assert student_config(hidden=300).hidden == (300, 300)


def test_max_norm_bounds_every_hidden_unit_and_leaves_short_rows_alone():
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(20, 20), max_norm=1.0))
    with torch.no_grad():
        for layer in model.hidden:
            layer.weight[:10] *= 10.0  # push half the units far outside the ball
    before = [layer.weight.detach().clone() for layer in model.hidden]
    output_before = model.output.weight.detach().clone()
    apply_max_norm_(model)
    for layer, old in zip(model.hidden, before):
        norms = layer.weight.norm(dim=1)
        assert torch.all(norms <= 1.0 + 1e-6)
        torch.testing.assert_close(norms[:10], torch.ones(10))
        long_rows = old[:10] / old[:10].norm(dim=1, keepdim=True)
        torch.testing.assert_close(layer.weight[:10], long_rows)  # same direction, shorter
        short = old.norm(dim=1) <= 1.0
        assert short.any() and torch.equal(layer.weight[short], old[short])
    assert torch.equal(model.output.weight, output_before), "the output layer is not constrained"


def test_max_norm_none_changes_nothing():
    model = MLP(MLPConfig(hidden=(8,)))
    with torch.no_grad():
        model.hidden[0].weight.mul_(100.0)
    before = model.hidden[0].weight.detach().clone()
    apply_max_norm_(model)
    assert torch.equal(model.hidden[0].weight, before)
    with pytest.raises(TypeError, match="model must be an MLP"):
        apply_max_norm_(nn.Linear(784, 10))


def test_dropout_acts_only_in_train_mode():
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(64, 64), input_dropout=0.2, dropout=0.5))
    images = torch.rand(4, 784)
    model.train()
    assert not torch.equal(model(images), model(images))
    model.eval()
    assert torch.equal(model(images), model(images))
    plain = MLP(MLPConfig(hidden=(64, 64))).train()
    assert torch.equal(plain(images), plain(images))


def test_count_errors_against_a_hand_count():
    class FirstPixel(nn.Module):
        """Predicts the class written in the first pixel in eval mode, class 0 in train mode."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, images):
            classes = torch.zeros(len(images), dtype=torch.long) if self.training else images[:, 0].long()
            return nn.functional.one_hot(classes, 10).float() * self.scale

    images = torch.zeros(7, 784)
    images[:, 0] = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    labels = torch.tensor([3, 1, 4, 0, 5, 0, 0])  # three wrong by hand (four in train mode)
    model = FirstPixel().train()
    assert count_errors(model, images, labels, batch_size=3) == 3
    assert model.training, "count_errors restores train mode"
    model.eval()
    assert count_errors(model, images, labels) == 3 and not model.training


def test_count_errors_of_a_real_mlp_matches_argmax():
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(16,), dropout=0.5))
    images, labels = torch.rand(50, 784), torch.randint(0, 10, (50,))
    expected = int((model.eval()(images).argmax(1) != labels).sum())
    model.train()
    assert count_errors(model, images, labels, batch_size=7) == expected
    assert model.training


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"hidden": ()}, ValueError, "at least one hidden layer"),
        ({"hidden": 800}, TypeError, "hidden must be a tuple"),
        ({"hidden": (800, 0)}, ValueError, "every hidden layer width must be a positive int"),
        ({"hidden": (800, 1.5)}, ValueError, "every hidden layer width must be a positive int"),
        ({"hidden": (8,), "dropout": 1.0}, ValueError, r"dropout \(a drop probability\) must be a number in \[0, 1\)"),
        ({"hidden": (8,), "input_dropout": -0.1}, ValueError, r"input_dropout \(a drop probability\) must be a number"),
        ({"hidden": (8,), "dropout": "0.5"}, ValueError, r"dropout \(a drop probability\) must be a number"),
        ({"hidden": (8,), "max_norm": 0.0}, ValueError, r"max_norm \(or None for no bound\) must be a number > 0"),
    ],
)
def test_bad_configs_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        MLPConfig(**kwargs)


def test_config_round_trips_through_a_dict_and_accepts_lists():
    config = MLPConfig(hidden=[1200, 1200], input_dropout=0.2, dropout=0.5, max_norm=3.5)
    assert config.hidden == (1200, 1200)
    assert config.to_dict()["hidden"] == [1200, 1200]
    assert MLPConfig.from_dict(config.to_dict()) == config


def test_bad_inputs_are_rejected():
    model = MLP(MLPConfig(hidden=(8,)))
    with pytest.raises(ValueError, match=r"MLP expects .*got shape \(2, 100\)"):
        model(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="MLP expects"):
        model(torch.zeros(784))
    with pytest.raises(TypeError, match="config must be an MLPConfig"):
        MLP({"hidden": (8,)})
    with pytest.raises(ValueError, match="one label per image"):
        count_errors(model, torch.zeros(3, 784), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        count_errors(model, torch.zeros(3, 784), torch.zeros(3, dtype=torch.int64), batch_size=0)
