"""The fully connected networks of Hinton, Vinyals and Dean's 2015 MNIST experiment (chapter 06).

Both networks map a flattened 28x28 digit (784 inputs) through ReLU hidden layers to 10 logits:

- the **teacher**, 784-1200-1200-10, is regularised the way Hinton et al. 2012 and Srivastava
  et al. 2014 regularised their dropout nets: dropout on the inputs (20 %) and on every hidden
  layer (50 %), and a *max-norm* constraint: after every optimiser step each hidden unit's
  incoming weight vector is scaled back onto the ball of radius ``max_norm`` if it left it.
  The constraint lets dropout nets train with large learning rates without their weights
  blowing up;
- the **student**, 784-800-800-10, has no regularisation at all.

One readable file in the spirit of nanoGPT: a config dataclass, the module, the constraint,
the two presets and an error counter that reports results the way the paper does (test
errors out of 10,000, not accuracy).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from course_lib import checks


IN_FEATURES = 28 * 28
NUM_CLASSES = 10
_IMAGE_SHAPES = ((IN_FEATURES,), (28, 28), (1, 28, 28))


@dataclass(frozen=True)
class MLPConfig:
    """Sizes and regularisation of an :class:`MLP` (chapter 05).

    ``hidden`` lists the widths of the hidden layers (e.g. ``(1200, 1200)``); ``input_dropout``
    and ``dropout`` are the drop probabilities on the inputs and after each hidden layer;
    ``max_norm`` bounds the L2 norm of each hidden unit's incoming weights (``None``: no bound),
    enforced by :func:`apply_max_norm_`.
    """

    hidden: tuple[int, ...]
    input_dropout: float = 0.0
    dropout: float = 0.0
    max_norm: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (list, tuple)):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        else:
            raise TypeError(
                f"hidden must be a tuple of layer widths such as (800, 800), got {self.hidden!r}"
            )
        if not self.hidden:
            raise ValueError("hidden must name at least one hidden layer, e.g. (800, 800)")
        for width in self.hidden:
            checks.positive_int("every hidden layer width", width)
        checks.number_in("input_dropout (a drop probability)", self.input_dropout, 0.0, 1.0, high_open=True)
        checks.number_in("dropout (a drop probability)", self.dropout, 0.0, 1.0, high_open=True)
        if self.max_norm is not None:
            checks.positive_number("max_norm (or None for no bound)", self.max_norm)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict (``hidden`` as a list)."""
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MLPConfig:
        """Rebuild a config from :meth:`to_dict` output (e.g. a checkpoint's config)."""
        return cls(**values)


def teacher_config() -> MLPConfig:
    """Hinton et al.'s MNIST teacher: 1200-1200 ReLU, dropout 0.2 on inputs and 0.5 on hidden units, max-norm (chapter 06)."""
    return MLPConfig(hidden=(1200, 1200), input_dropout=0.2, dropout=0.5, max_norm=3.5)


def student_config(hidden: int = 800) -> MLPConfig:
    """Hinton et al.'s MNIST student: two ReLU layers of ``hidden`` units (800 in the paper), no regularisation (chapter 06)."""
    return MLPConfig(hidden=(hidden, hidden))


class MLP(nn.Module):
    """784 inputs -> ReLU hidden layers of ``config.hidden`` widths -> 10 logits, with optional dropout (chapter 06).

    Accepts images as (N, 784), (N, 28, 28) or (N, 1, 28, 28) and returns logits (N, 10).
    The hidden layers are ``self.hidden`` (an ``nn.ModuleList`` of ``nn.Linear``), the output
    layer is ``self.output``.
    """

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(config).__name__}")
        self.config = config
        widths = (IN_FEATURES, *config.hidden)
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(widths[-1], NUM_CLASSES)

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, 10) for a batch of images."""
        if images.ndim < 2 or tuple(images.shape[1:]) not in _IMAGE_SHAPES:
            raise ValueError(
                f"MLP expects a batch of 28x28 images as (N, 784), (N, 28, 28) or (N, 1, 28, 28), "
                f"got shape {tuple(images.shape)}"
            )
        x = self.input_dropout(images.reshape(images.shape[0], IN_FEATURES))
        for layer in self.hidden:
            x = self.dropout(torch.relu(layer(x)))
        return self.output(x)


@torch.no_grad()
def apply_max_norm_(model: MLP) -> None:
    """Scale each hidden unit's incoming weight vector down to L2 norm ``model.config.max_norm`` if longer (chapter 05).

    Rows of each hidden layer's weight matrix are the incoming weights of its units; rows within
    the bound are left untouched, biases and the output layer are not constrained. Does nothing
    when ``max_norm`` is ``None``. Call it after every optimiser step (in place).
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    bound = model.config.max_norm
    if bound is None:
        return
    for layer in model.hidden:
        norms = layer.weight.norm(dim=1, keepdim=True)
        layer.weight.mul_(bound / norms.clamp_min(bound))


@torch.no_grad()
def count_errors(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> int:
    """How many of ``images`` the model classifies wrongly (argmax of its logits != label) (chapter 06).

    Runs in eval mode without gradients, ``batch_size`` images at a time on the model's device,
    and puts the model back in the mode it was in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(
            f"images and labels must be torch tensors, got {type(images).__name__} and {type(labels).__name__}"
        )
    if images.shape[0] != labels.shape[0] or labels.ndim != 1:
        raise ValueError(
            f"labels must be (N,) with one label per image, got {images.shape[0]} images and labels "
            f"of shape {tuple(labels.shape)}"
        )
    checks.positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        errors = 0
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device)
            predicted = model(batch).argmax(dim=-1)
            errors += int((predicted != labels[start : start + batch_size].to(device)).sum())
    finally:
        model.train(was_training)
    return errors
