"""A small convolutional network for MNIST: the teacher a fully connected student cannot match alone (chapter 06).

Two 5x5 convolutions with ReLU and 2x2 max-pooling (28 -> 14 -> 7 pixels), one fully connected
ReLU layer with dropout, ten logits — LeNet's shape with fewer channels. Convolutions share
their weights across positions and see neighbouring pixels together, so the network knows that
a digit shifted by a pixel is the same digit; an 800-800 MLP has to learn that from examples.
That prior is what makes it a teacher the MLP student cannot become on its own (Beyer et al.
2022: distillation pays when the teacher is better than anything the student can reach alone).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from course_lib import checks
from course_lib.nn.mlp import IN_FEATURES, NUM_CLASSES

_SIDE = 28
_IMAGE_SHAPES = ((IN_FEATURES,), (_SIDE, _SIDE), (1, _SIDE, _SIDE))


@dataclass(frozen=True)
class ConvNetConfig:
    """Sizes of a :class:`ConvNet`: two convolution widths, one hidden layer, its dropout (chapter 06)."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.channels, (list, tuple)) or len(self.channels) != 2:
            raise ValueError(f"channels must name the widths of the two convolutions, e.g. (16, 32), got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(self.channels))
        for width in self.channels:
            checks.positive_int("every convolution width in channels", width)
        checks.positive_int("hidden (units of the fully connected layer)", self.hidden)
        checks.number_in("dropout (a drop probability)", self.dropout, 0.0, 1.0, high_open=True)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict (``channels`` as a list)."""
        return {**dataclasses.asdict(self), "channels": list(self.channels)}


class ConvNet(nn.Module):
    """conv 5x5 -> pool -> conv 5x5 -> pool -> ReLU layer with dropout -> 10 logits (chapter 06).

    Accepts images as (N, 784), (N, 28, 28) or (N, 1, 28, 28), like :class:`~course_lib.nn.mlp.MLP`,
    so the two are interchangeable as teachers.
    """

    def __init__(self, config: ConvNetConfig) -> None:
        super().__init__()
        if not isinstance(config, ConvNetConfig):
            raise TypeError(f"config must be a ConvNetConfig, got {type(config).__name__}")
        self.config = config
        first, second = config.channels
        self.conv1 = nn.Conv2d(1, first, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(first, second, kernel_size=5, padding=2)
        self.hidden = nn.Linear(second * (_SIDE // 4) ** 2, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden, NUM_CLASSES)

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, 10) for a batch of images."""
        if images.ndim < 2 or tuple(images.shape[1:]) not in _IMAGE_SHAPES:
            raise ValueError(
                f"ConvNet expects a batch of 28x28 images as (N, 784), (N, 28, 28) or (N, 1, 28, 28), "
                f"got shape {tuple(images.shape)}"
            )
        x = images.reshape(images.shape[0], 1, _SIDE, _SIDE)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.hidden(x.flatten(1))))
        return self.output(x)
