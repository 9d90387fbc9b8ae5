"""The trained MNIST networks of chapter 06, each trained once and then loaded from a cache.

Hinton, Vinyals and Dean (2015, §3) compare three networks on MNIST, and the course adds the
control that Beyer et al. (2022) make necessary:

- ``"teacher"``: 784-1200-1200-10 with dropout, max-norm and inputs jittered by up to 2 px
  (67 test errors in the paper);
- ``"student_scratch"``: 784-800-800-10 trained alone on the plain images, no regularisation
  (146 errors in the paper); the distilled student (74 errors in the paper) is this
  architecture trained on the teacher's soft targets instead;
- ``"student_scratch_jitter"``: the same student trained alone with the teacher's jitter and
  the teacher's training budget. Jitter on its own makes a student much better, so a distilled
  student that sees jittered digits only shows what distillation adds when it beats this one.

Training the teacher takes about a minute in fast mode on a two-core CPU and a quarter of an
hour on that CPU in full mode, so every network is cached: the checkpoint (``course_lib.checkpoint``)
goes to ``<cache_dir()>/models/mnist_<role>_<mode>.safetensors`` with the recipe, the test
errors and the training time in its metadata, and later calls load it in well under a second.
A cached model is used only if it was trained with exactly the requested :class:`MnistRecipe`;
otherwise it is trained again and the cache is replaced.

Fast mode gives the teacher 6 epochs over the 60,000 training digits and the students 10 epochs
over a transfer set of 10,000, so the teacher is clearly the stronger network within a minute
of CPU; full mode trains the teacher for 100 epochs, the long schedule dropout nets need, and
the students for 60 epochs over all 60,000 digits. On a CPU the training runs on two threads:
the 800- and 1200-wide layers are big enough for a second thread to pay, and two is what any
laptop can spare.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import functional as F

from course_lib.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from course_lib.data import JitteredBatches, MnistData, cache_dir, load_mnist, mnist_tensors
from course_lib.mlp import (
    MLP,
    MLPConfig,
    apply_max_norm_,
    count_errors,
    student_config,
    teacher_config,
)
from course_lib.notebook import MODES, context_mode_and_device
from course_lib.training import (
    TrainingHistory,
    adamw_param_groups,
    cpu_threads,
    train,
    warmup_linear_schedule,
)

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

__all__ = [
    "MNIST_ROLES",
    "OPTIMIZERS",
    "MnistFit",
    "MnistRecipe",
    "TrainedMnistModel",
    "cross_entropy_loss",
    "fit_mnist_mlp",
    "mnist_model",
    "mnist_model_path",
    "mnist_recipe",
    "transfer_set",
]

MNIST_ROLES = ("teacher", "student_scratch", "student_scratch_jitter")
OPTIMIZERS = ("sgd", "adamw")
CPU_THREADS = 2


def _int_at_least(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _number(name: str, value: object, *, positive: bool = False, below_one: bool = False) -> None:
    """Check a real number: >= 0, or > 0 when ``positive``, and < 1 when ``below_one``."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    ok = ok and (value > 0 if positive else value >= 0) and (value < 1 if below_one else True)
    if not ok:
        what = ("a positive number" if positive else "a number >= 0") + (" below 1" if below_one else "")
        raise ValueError(f"{name} must be {what}, got {value!r}")


@dataclass(frozen=True)
class MnistRecipe:
    """Everything that determines a trained MNIST network: architecture, data, augmentation, optimisation.

    ``hidden``, ``input_dropout``, ``dropout`` and ``max_norm`` build the :class:`MLPConfig`;
    ``max_shift`` jitters each training batch by up to that many pixels (0: no jitter);
    ``train_size`` takes that many digits from the start of the 60,000 training images
    (``None``: all), and ``exclude_digits`` then drops every example of those classes (the
    transfer set "without any 3" of the paper). ``optimizer`` is "sgd" (with ``momentum``) or "adamw"; the learning rate
    warms up linearly over ``warmup_fraction`` of the steps, then decays linearly to zero.
    Test errors are always counted on the whole 10,000-digit test set.
    """

    hidden: tuple[int, ...] = (800, 800)
    input_dropout: float = 0.0
    dropout: float = 0.0
    max_norm: float | None = None
    max_shift: int = 0
    train_size: int | None = None
    exclude_digits: tuple[int, ...] = ()
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.model_config()
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if not isinstance(self.exclude_digits, (tuple, list)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and 0 <= d <= 9 for d in self.exclude_digits
        ):
            raise ValueError(f"exclude_digits must be a tuple of digits 0-9, got {self.exclude_digits!r}")
        if len(set(self.exclude_digits)) >= 10:
            raise ValueError("exclude_digits cannot drop all ten digits: nothing would be left to train on")
        object.__setattr__(self, "exclude_digits", tuple(sorted(set(int(d) for d in self.exclude_digits))))
        _int_at_least("max_shift (pixels of jitter)", self.max_shift, 0)
        if self.train_size is not None:
            _int_at_least("train_size (or None for all 60,000 digits)", self.train_size, 1)
        _int_at_least("epochs", self.epochs, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _number("lr", self.lr, positive=True)
        _number("momentum", self.momentum, below_one=True)
        _number("weight_decay", self.weight_decay)
        _number("warmup_fraction", self.warmup_fraction, below_one=True)
        _int_at_least("seed", self.seed, 0)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain JSON-serialisable dict (stored in the checkpoint)."""
        return {**dataclasses.asdict(self), "hidden": list(self.hidden), "exclude_digits": list(self.exclude_digits)}

    def model_config(self) -> MLPConfig:
        """The :class:`MLPConfig` of the network this recipe trains."""
        return MLPConfig(
            hidden=self.hidden,
            input_dropout=self.input_dropout,
            dropout=self.dropout,
            max_norm=self.max_norm,
        )


def _check_role_and_mode(role: object, mode: object) -> None:
    if role not in MNIST_ROLES:
        raise ValueError(f"role must be one of {MNIST_ROLES}, got {role!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


TEACHER_EPOCHS = {"fast": 6, "full": 100}
STUDENT_EPOCHS = {"fast": 10, "full": 60}
STUDENT_TRAIN_SIZE = {"fast": 10_000, "full": None}


def mnist_recipe(role: str, mode: str) -> MnistRecipe:
    """The course's recipe for ``role`` (one of :data:`MNIST_ROLES`) in ``mode`` ("fast" or "full").

    All roles share the optimiser: SGD, momentum 0.9, learning rate 0.1 decayed linearly to zero,
    batches of 128. The teacher is :func:`~course_lib.mlp.teacher_config` (1200-1200, dropout,
    max-norm) trained on all 60,000 digits jittered by up to 2 px: 6 epochs in fast mode, 100 in
    full mode. The students share one budget, which the distilled students of chapter 06 use too:
    in fast mode 10 epochs over a transfer set of the first 10,000 digits, in full mode 60 epochs
    over all 60,000. ``student_scratch`` is 800-800 without any regularisation or jitter;
    ``student_scratch_jitter`` is that student trained on digits jittered like the teacher's.
    """
    _check_role_and_mode(role, mode)
    shared = dict(batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9)
    if role == "teacher":
        teacher = teacher_config()
        return MnistRecipe(
            hidden=teacher.hidden,
            input_dropout=teacher.input_dropout,
            dropout=teacher.dropout,
            max_norm=teacher.max_norm,
            max_shift=2,
            epochs=TEACHER_EPOCHS[mode],
            **shared,
        )
    return MnistRecipe(
        hidden=student_config().hidden,
        max_shift=2 if role == "student_scratch_jitter" else 0,
        train_size=STUDENT_TRAIN_SIZE[mode],
        epochs=STUDENT_EPOCHS[mode],
        **shared,
    )


def mnist_model_path(role: str, mode: str) -> Path:
    """Where the network of ``role`` and ``mode`` is cached (a ``.safetensors`` file)."""
    _check_role_and_mode(role, mode)
    return cache_dir() / "models" / f"mnist_{role}_{mode}.safetensors"


@dataclass
class TrainedMnistModel:
    """A trained MNIST network with what was measured about it.

    ``model`` is in eval mode on the context's device; ``test_errors`` counts its mistakes on
    the 10,000 test digits; ``trained`` says whether this call trained it (False: loaded from
    ``path``); ``train_seconds`` is the wall time its training took on ``train_device``;
    ``history`` is the training history when this call trained it; ``errors_per_epoch`` the
    test errors after each training epoch (stored with the checkpoint, so a loaded model has it).
    """

    model: MLP
    recipe: MnistRecipe
    test_errors: int
    path: Path
    trained: bool
    train_seconds: float
    train_device: str
    history: TrainingHistory | None = None
    errors_per_epoch: list[int] = dataclasses.field(default_factory=list)


def _load_cached(path: Path, recipe: MnistRecipe, device: torch.device) -> TrainedMnistModel | None:
    """The cached network at ``path`` if it exists and was trained with ``recipe``, else None."""
    if not path.is_file():
        return None
    model = MLP(MLPConfig.from_dict(read_checkpoint_config(path)))
    metadata = load_checkpoint(path, model)["metadata"]
    if metadata.get("recipe") != recipe.to_dict():
        return None
    return TrainedMnistModel(
        model=model.to(device).eval(),
        recipe=recipe,
        test_errors=int(metadata["test_errors"]),
        path=path,
        trained=False,
        train_seconds=float(metadata["train_seconds"]),
        train_device=str(metadata["train_device"]),
        errors_per_epoch=[int(e) for e in metadata.get("errors_per_epoch", [])],
    )


def _optimizer(model: MLP, recipe: MnistRecipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(adamw_param_groups(model, recipe.weight_decay), lr=recipe.lr)
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )


def transfer_set(data: MnistData, recipe: MnistRecipe) -> tuple[Tensor, Tensor]:
    """The training images and labels ``recipe`` trains on: its ``train_size`` first digits, less ``exclude_digits``."""
    images, labels = mnist_tensors(data, "train")
    if recipe.train_size is not None:
        if recipe.train_size > len(labels):
            raise ValueError(
                f"recipe.train_size={recipe.train_size} exceeds the {len(labels):,} training "
                "digits; use a smaller number or None for all of them"
            )
        images, labels = images[: recipe.train_size], labels[: recipe.train_size]
    if recipe.exclude_digits:
        keep = ~torch.isin(labels, torch.tensor(recipe.exclude_digits))
        images, labels = images[keep], labels[keep]
    return images, labels


@dataclass
class MnistFit:
    """What :func:`fit_mnist_mlp` returns: the trained network in eval mode and its measurements.

    ``errors_per_epoch`` holds the test errors after each epoch when a test curve was asked
    for (empty otherwise); ``test_errors`` is the final count.
    """

    model: MLP
    history: TrainingHistory
    test_errors: int
    seconds: float
    errors_per_epoch: list[int]


LossFn = Callable[[MLP, tuple[Tensor, ...]], Tensor]


def cross_entropy_loss(model: MLP, batch: tuple[Tensor, ...]) -> Tensor:
    """Cross-entropy of ``model`` on a batch ``(images, labels[, index])``: plain supervised training."""
    images, labels = batch[0], batch[1]
    return F.cross_entropy(model(images), labels)


def fit_mnist_mlp(
    data: MnistData,
    recipe: MnistRecipe,
    device: torch.device | str = "cpu",
    *,
    loss_fn: LossFn = cross_entropy_loss,
    with_index: bool = False,
    test_curve: bool = False,
    progress: bool = True,
    desc: str = "MNIST",
) -> MnistFit:
    """Train a fresh network as ``recipe`` says, with ``loss_fn(model, batch)`` (default: cross-entropy).

    Batches are ``(images, labels)``, or ``(images, labels, index)`` with ``with_index`` (index:
    the position in :func:`transfer_set`). The network is seeded with ``recipe.seed``, trained on
    two CPU threads when ``device`` is the CPU, max-norm constrained after every step, and its
    test errors are counted on the 10,000 test digits, after every epoch with ``test_curve``
    (recorded, never used to pick an epoch).
    """
    if not isinstance(recipe, MnistRecipe):
        raise TypeError(f"recipe must be a MnistRecipe, got {type(recipe).__name__}")
    device = torch.device(device)
    images, labels = transfer_set(data, recipe)
    test_images, test_labels = mnist_tensors(data, "test")
    torch.manual_seed(recipe.seed)
    model = MLP(recipe.model_config()).to(device)
    batches = JitteredBatches(
        images.to(device),
        labels.to(device),
        recipe.batch_size,
        max_shift=recipe.max_shift,
        seed=recipe.seed,
        with_index=with_index,
    )
    optimizer = _optimizer(model, recipe)
    optimizer.register_step_post_hook(lambda *_: apply_max_norm_(model))
    total_steps = len(batches) * recipe.epochs
    scheduler = warmup_linear_schedule(optimizer, int(recipe.warmup_fraction * total_steps), total_steps)
    curve = {}
    if test_curve:
        curve = dict(
            dev_loader=[None],
            evaluate_fn=lambda net, _: {"test_errors": count_errors(net, test_images, test_labels)},
            monitor="test_errors",
            mode="min",
            keep_best=False,
        )
    start = time.perf_counter()
    with cpu_threads(device, CPU_THREADS):
        history = train(
            model,
            batches,
            loss_fn=loss_fn,
            optimizer=optimizer,
            epochs=recipe.epochs,
            scheduler=scheduler,
            device=device,
            progress=progress,
            desc=desc,
            **curve,
        )
        seconds = time.perf_counter() - start
        errors = count_errors(model, test_images, test_labels)
    per_epoch = [int(record.dev["test_errors"]) for record in history.epochs] if test_curve else []
    return MnistFit(model=model, history=history, test_errors=errors, seconds=seconds, errors_per_epoch=per_epoch)


def mnist_model(
    context: CourseContext,
    role: str,
    *,
    recipe: MnistRecipe | None = None,
    data: MnistData | None = None,
    progress: bool = True,
) -> TrainedMnistModel:
    """Load the cached network of ``role`` for ``context.mode``, or train and cache it first.

    ``role`` is one of :data:`MNIST_ROLES`; ``recipe`` replaces the course recipe
    :func:`mnist_recipe` (the model is still cached under ``role``'s name); ``data`` is MNIST
    when already loaded (it is loaded otherwise). The returned model is in eval mode on
    ``context.device``.
    """
    mode, device = context_mode_and_device(context)
    _check_role_and_mode(role, mode)
    if recipe is None:
        recipe = mnist_recipe(role, mode)
    elif not isinstance(recipe, MnistRecipe):
        raise TypeError(f"recipe must be a MnistRecipe or None, got {type(recipe).__name__}")
    if data is not None and not isinstance(data, MnistData):
        raise TypeError(f"data must be the MnistData returned by load_mnist() or None, got {type(data).__name__}")

    path = mnist_model_path(role, mode)
    cached = _load_cached(path, recipe, device)
    if cached is not None:
        return cached

    fit = fit_mnist_mlp(
        data or load_mnist(), recipe, device, test_curve=True, progress=progress, desc=f"MNIST {role}"
    )
    save_checkpoint(
        path,
        fit.model,
        fit.model.config,
        metadata={
            "recipe": recipe.to_dict(),
            "test_errors": fit.test_errors,
            "train_seconds": fit.seconds,
            "train_device": str(device),
            "errors_per_epoch": fit.errors_per_epoch,
        },
    )
    return TrainedMnistModel(
        model=fit.model,
        recipe=recipe,
        test_errors=fit.test_errors,
        path=path,
        trained=True,
        train_seconds=fit.seconds,
        train_device=str(device),
        history=fit.history,
        errors_per_epoch=fit.errors_per_epoch,
    )
