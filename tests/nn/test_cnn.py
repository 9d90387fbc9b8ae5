"""Tests for course_lib.nn.cnn: the small convolutional MNIST teacher."""

from __future__ import annotations

import pytest
import torch

from course_lib.nn.cnn import ConvNet, ConvNetConfig
from course_lib.nn.transformer import count_parameters


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28)])
def test_convnet_maps_each_image_layout_to_ten_logits(shape):
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig(channels=(2, 3), hidden=8)).eval()
    images = torch.rand(5, 784)
    logits = model(images.reshape(shape))
    assert logits.shape == (5, 10)
    torch.testing.assert_close(logits, model(images))


def test_parameter_count_follows_the_layer_formula():
    model = ConvNet(ConvNetConfig())
    conv1, conv2 = 1 * 16 * 25 + 16, 16 * 32 * 25 + 32
    hidden, output = 32 * 7 * 7 * 256 + 256, 256 * 10 + 10
    assert count_parameters(model) == conv1 + conv2 + hidden + output


def test_dropout_acts_only_in_training_mode():
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig(channels=(2, 3), hidden=16, dropout=0.5))
    images = torch.rand(4, 784)
    model.eval()
    torch.testing.assert_close(model(images), model(images))
    model.train()
    assert not torch.equal(model(images), model(images))


def test_convolutions_see_a_shifted_digit_as_a_shifted_pattern():
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig(channels=(2, 3), hidden=8)).eval()
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 10:14, 10:14] = 1.0
    shifted = torch.roll(image, shifts=(1, 1), dims=(2, 3))
    first = model.conv1(image)
    torch.testing.assert_close(torch.roll(first, shifts=(1, 1), dims=(2, 3))[..., 3:-3, 3:-3],
                               model.conv1(shifted)[..., 3:-3, 3:-3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": (16,)}, "widths of the two convolutions"),
        ({"channels": (16, 0)}, "every convolution width"),
        ({"hidden": 0}, "hidden"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_configs_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvNetConfig(**kwargs)


def test_wrong_shapes_and_configs_are_refused():
    with pytest.raises(TypeError, match="ConvNetConfig"):
        ConvNet({"channels": (16, 32)})
    with pytest.raises(ValueError, match=r"28x28 images.*got shape \(5, 100\)"):
        ConvNet(ConvNetConfig(channels=(2, 3), hidden=8))(torch.rand(5, 100))
    assert ConvNetConfig(channels=[4, 8]).to_dict() == {"channels": [4, 8], "hidden": 256, "dropout": 0.5}
