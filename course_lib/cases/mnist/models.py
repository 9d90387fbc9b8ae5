"""The trained MNIST networks of chapter 06, each trained once and then loaded from the model cache.

Hinton, Vinyals and Dean (2015, §3) compare three networks on MNIST, and the course adds the
control that Beyer et al. (2022) make necessary:

- ``"teacher"``: 784-1200-1200-10 with dropout, max-norm and inputs jittered by up to 2 px
  (67 test errors in the paper);
- ``"student_scratch"``: 784-800-800-10 trained alone on the plain images, no regularisation
  (146 errors in the paper); the distilled student (74 errors in the paper) is this
  architecture trained on the teacher's soft targets instead;
- ``"student_scratch_jitter"``: the same student trained alone with the teacher's jitter and
  the students' budget. Jitter on its own makes a student much better, so a distilled student
  that sees jittered digits only shows what distillation adds when it beats this one;
- ``"teacher_cnn"``: a small convolutional network (:mod:`course_lib.nn.cnn`) with dropout and
  the same jitter — a teacher of a stronger architecture, better than anything the 800-800
  student reaches alone, for the "patient and consistent" experiment of
  :mod:`course_lib.cases.mnist.consistent`.

Fast mode gives the teacher 6 epochs over the 60,000 training digits and the students 10 epochs
over a transfer set of 10,000, so the teacher is clearly the stronger network within a minute
of CPU; full mode trains the teacher for 100 epochs, the long schedule dropout nets need, and
the students for 60 epochs over all 60,000 digits. The convolutional teacher needs far fewer
epochs: 3 in fast mode, 15 in full mode. On a CPU the training runs on two threads:
the 800- and 1200-wide layers are big enough for a second thread to pay, and two is what any
laptop can spare.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib import checks
from course_lib.cases.common import Role, check_role, roles
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import JitteredBatches, MnistData, load_mnist, mnist_tensors
from course_lib.data.mnist import MNIST_SOURCE
from course_lib.nn.cnn import ConvNet, ConvNetConfig
from course_lib.nn.mlp import MLP, MLPConfig, apply_max_norm_, count_errors, student_config, teacher_config
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained, fit
from course_lib.train.recipe import Recipe

MNIST_ROLES = roles(
    Role("teacher", "teacher 1200-1200, dropout, jitter"),
    Role("student_scratch", "student 800-800, labels only"),
    Role("student_scratch_jitter", "student 800-800, labels only, jitter (control)"),
    Role("teacher_cnn", "teacher CNN 16-32-256, dropout, jitter"),
)
TEACHER_EPOCHS = {"fast": 6, "full": 100}
CNN_TEACHER_EPOCHS = {"fast": 3, "full": 15}
STUDENT_EPOCHS = {"fast": 10, "full": 60}
STUDENT_TRAIN_SIZE = {"fast": 10_000, "full": None}


@dataclass(frozen=True)
class MnistRecipe(Recipe):
    """A :class:`~course_lib.train.recipe.Recipe` plus the network, its data and its augmentation (chapter 05).

    ``hidden``, ``input_dropout``, ``dropout`` and ``max_norm`` build the :class:`MLPConfig`;
    with ``channels`` (the widths of two convolutions) the network is a
    :class:`~course_lib.nn.cnn.ConvNet` instead, with one hidden layer ``hidden[0]`` wide and
    ``dropout`` on it (no input dropout, no max-norm);
    ``max_shift`` jitters each training batch by up to that many pixels (0: no jitter);
    ``train_size`` takes that many digits from the start of the 60,000 training images
    (``None``: all), and ``exclude_digits`` then drops every example of those classes (the
    transfer set "without any 3" of the paper). Test errors are always counted on the whole
    10,000-digit test set. The optimiser defaults to SGD with momentum, as in the paper.
    """

    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 0.0
    clip_grad_norm: float | None = None
    threads: int = 2
    hidden: tuple[int, ...] = (800, 800)
    input_dropout: float = 0.0
    dropout: float = 0.0
    max_norm: float | None = None
    max_shift: int = 0
    train_size: int | None = None
    exclude_digits: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()

    def check(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "channels", tuple(self.channels))
        if self.channels and (len(self.hidden) != 1 or self.input_dropout or self.max_norm is not None):
            raise ValueError("a convolutional recipe (channels set) takes one hidden layer, e.g. hidden=(256,), "
                             "and neither input_dropout nor max_norm")
        self.model_config()
        if not isinstance(self.exclude_digits, (tuple, list)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and 0 <= d <= 9 for d in self.exclude_digits
        ):
            raise ValueError(f"exclude_digits must be a tuple of digits 0-9, got {self.exclude_digits!r}")
        if len(set(self.exclude_digits)) >= 10:
            raise ValueError("exclude_digits cannot drop all ten digits: nothing would be left to train on")
        object.__setattr__(self, "exclude_digits", tuple(sorted(set(int(d) for d in self.exclude_digits))))
        checks.int_at_least("max_shift (pixels of jitter)", self.max_shift, 0)
        checks.optional_positive_int("train_size (or None for all 60,000 digits)", self.train_size)

    def model_config(self) -> MLPConfig | ConvNetConfig:
        """The :class:`MLPConfig` (or, with ``channels``, the :class:`ConvNetConfig`) of the network this recipe trains."""
        if self.channels:
            return ConvNetConfig(channels=self.channels, hidden=self.hidden[0], dropout=self.dropout)
        return MLPConfig(hidden=self.hidden, input_dropout=self.input_dropout, dropout=self.dropout,
                         max_norm=self.max_norm)


def mnist_recipe(role: str, mode: str) -> MnistRecipe:
    """The course's recipe for ``role`` (one of :data:`MNIST_ROLES`) in ``mode`` ("fast" or "full") (chapter 06).

    All roles share the optimiser: SGD, momentum 0.9, learning rate 0.1 decayed linearly to zero,
    batches of 128. The teacher is :func:`~course_lib.nn.mlp.teacher_config` (1200-1200, dropout,
    max-norm) trained on all 60,000 digits jittered by up to 2 px: 6 epochs in fast mode, 100 in
    full mode. The students share one budget, which the distilled students of chapter 06 use too:
    in fast mode 10 epochs over a transfer set of the first 10,000 digits, in full mode 60 epochs
    over all 60,000. ``student_scratch`` is 800-800 without any regularisation or jitter;
    ``student_scratch_jitter`` is that student trained on digits jittered like the teacher's.
    ``teacher_cnn`` is :class:`~course_lib.nn.cnn.ConvNet` (16 and 32 channels, 256 hidden units,
    dropout 0.5) on all 60,000 jittered digits, with 15 % of the steps warming the learning rate
    up and weight decay 5e-4: 3 epochs in fast mode, 15 in full mode.
    """
    check_role(role, MNIST_ROLES)
    check_mode(mode)
    if role == "teacher_cnn":
        cnn = ConvNetConfig()
        return MnistRecipe(channels=cnn.channels, hidden=(cnn.hidden,), dropout=cnn.dropout, max_shift=2,
                           epochs=CNN_TEACHER_EPOCHS[mode], warmup_fraction=0.15, weight_decay=5e-4)
    if role == "teacher":
        teacher = teacher_config()
        return MnistRecipe(hidden=teacher.hidden, input_dropout=teacher.input_dropout, dropout=teacher.dropout,
                           max_norm=teacher.max_norm, max_shift=2, epochs=TEACHER_EPOCHS[mode])
    return MnistRecipe(hidden=student_config().hidden, max_shift=2 if role == "student_scratch_jitter" else 0,
                       train_size=STUDENT_TRAIN_SIZE[mode], epochs=STUDENT_EPOCHS[mode])


def transfer_set(data: MnistData, recipe: MnistRecipe) -> tuple[Tensor, Tensor]:
    """The training images and labels ``recipe`` trains on: its ``train_size`` first digits, less ``exclude_digits`` (chapter 05)."""
    images, labels = mnist_tensors(data, "train")
    if recipe.train_size is not None:
        if recipe.train_size > len(labels):
            raise ValueError(f"recipe.train_size={recipe.train_size} exceeds the {len(labels):,} training "
                             "digits; use a smaller number or None for all of them")
        images, labels = images[: recipe.train_size], labels[: recipe.train_size]
    if recipe.exclude_digits:
        keep = ~torch.isin(labels, torch.tensor(recipe.exclude_digits))
        images, labels = images[keep], labels[keep]
    return images, labels


LossFn = Callable[[nn.Module, tuple[Tensor, ...]], Tensor]


def _cross_entropy_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Cross-entropy of ``model`` on a batch ``(images, labels[, index])``: plain supervised training (chapter 06)."""
    return F.cross_entropy(model(batch[0]), batch[1])


def _build(recipe: MnistRecipe) -> MLP | ConvNet:
    torch.manual_seed(recipe.seed)
    config = recipe.model_config()
    return ConvNet(config) if isinstance(config, ConvNetConfig) else MLP(config)


def _train(model: MLP | ConvNet, data: MnistData, recipe: MnistRecipe, device: torch.device, *, loss_fn: LossFn,
           with_index: bool, test_curve: bool, progress: bool, desc: str, with_views: bool = False) -> Trained:
    """Train ``model`` as ``recipe`` says; its test errors (and, with ``test_curve``, after every epoch)."""
    images, labels = transfer_set(data, recipe)
    test_images, test_labels = mnist_tensors(data, "test")
    model.to(device)
    batches = JitteredBatches(images.to(device), labels.to(device), recipe.batch_size, max_shift=recipe.max_shift,
                              seed=recipe.seed, with_index=with_index, with_views=with_views)
    curve = {}
    if test_curve:
        curve = dict(dev_loader=[None], evaluate_fn=lambda net, _: {"test_errors": count_errors(net, test_images, test_labels)},
                     monitor="test_errors", mode="min", keep_best=False)
    after_step = (lambda: apply_max_norm_(model)) if isinstance(model, MLP) else None
    trained = fit(model, batches, recipe, loss_fn=loss_fn, after_step=after_step, device=device,
                  progress=progress, desc=desc, **curve)
    trained.metrics = {
        "test_errors": count_errors(model, test_images, test_labels),
        "errors_per_epoch": [int(r.dev["test_errors"]) for r in trained.history.epochs] if test_curve else [],
    }
    return trained


def fit_mnist_mlp(
    data: MnistData,
    recipe: MnistRecipe,
    device: torch.device | str = "cpu",
    *,
    loss_fn: LossFn = _cross_entropy_loss,
    with_index: bool = False,
    with_views: bool = False,
    test_curve: bool = False,
    progress: bool = True,
    desc: str = "MNIST",
) -> Trained:
    """Train a fresh network as ``recipe`` says, with ``loss_fn(model, batch)`` (default: cross-entropy) (chapter 06).

    Batches are ``(images, labels)``, or ``(images, labels, index)`` with ``with_index`` (index:
    the position in :func:`transfer_set`) or ``with_views`` (the jittered version's number, see
    :class:`~course_lib.data.augment.JitteredBatches`). The network is seeded with ``recipe.seed``,
    max-norm constrained after every step, and its test errors are counted on the 10,000 test
    digits (``metrics["test_errors"]``), after every epoch with ``test_curve``
    (``metrics["errors_per_epoch"]``: recorded, never used to pick an epoch).
    """
    if not isinstance(recipe, MnistRecipe):
        raise TypeError(f"recipe must be a MnistRecipe, got {type(recipe).__name__}")
    return _train(_build(recipe), data, recipe, torch.device(device), loss_fn=loss_fn, with_index=with_index,
                  with_views=with_views, test_curve=test_curve, progress=progress, desc=desc)


def mnist_model(
    context: CourseContext,
    role: str,
    *,
    recipe: MnistRecipe | None = None,
    data: MnistData | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached network of ``role`` for ``context.mode``, or train and cache it first (chapter 05).

    ``role`` is one of :data:`MNIST_ROLES`; ``recipe`` replaces the course recipe
    :func:`mnist_recipe` (the model is still cached under ``role``'s name); ``data`` is MNIST when
    already loaded (it is loaded otherwise). ``metrics`` holds ``test_errors`` and
    ``errors_per_epoch``; the model is in eval mode on ``context.device``.
    """
    mode, device = context_mode_and_device(context)
    check_role(role, MNIST_ROLES)
    if recipe is None:
        recipe = mnist_recipe(role, mode)
    elif not isinstance(recipe, MnistRecipe):
        raise TypeError(f"recipe must be a MnistRecipe or None, got {type(recipe).__name__}")
    if data is not None and not isinstance(data, MnistData):
        raise TypeError(f"data must be the MnistData returned by load_mnist() or None, got {type(data).__name__}")
    return load_or_train(
        model_path(f"mnist_{role}", mode), recipe,
        build=lambda _: _build(recipe),
        train=lambda model, _: _train(model, data or load_mnist(), recipe, device, loss_fn=_cross_entropy_loss,
                                      with_index=False, test_curve=True, progress=progress, desc=f"MNIST {role}"),
        depends_on={"mnist": MNIST_SOURCE.sha256}, device=device,
    )
