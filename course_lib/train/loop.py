"""The course's one training loop: epochs of steps, evaluation, early stopping, best weights kept (chapter 04).

The loop knows nothing about the task: the caller passes a ``loss_fn(model, batch) -> Tensor``
(a distillation loss is just a ``loss_fn`` that also holds a frozen teacher) and, optionally, an
``evaluate_fn(model, dev_loader) -> dict`` whose ``monitor`` entry decides which epoch's weights
are kept. :func:`course_lib.train.fit.fit` builds the optimiser and schedule from a recipe and
calls :func:`train`; chapter 04 calls :func:`train` directly to show every piece.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib import checks
from course_lib.context import progress_bars
from course_lib.train.checkpoint import save_checkpoint
from course_lib.train.distributed import current_processes, unwrap

LossFn = Callable[[nn.Module, Any], Tensor]
EvaluateFn = Callable[[nn.Module, Any], Mapping[str, float]]


@dataclass
class _EpochRecord:
    """What happened in one epoch: mean training loss, dev metrics and the lr at its end (chapter 04)."""

    epoch: int
    train_loss: float
    dev: dict[str, float]
    lr: float


@dataclass
class TrainingHistory:
    """Everything :func:`train` measured, in a form that plots and JSON reports use directly (chapter 04).

    ``best_epoch``/``best_score`` refer to the monitored dev metric (1-based epochs); they are
    ``None`` when training ran without an ``evaluate_fn``.
    """

    monitor: str
    mode: str
    step_losses: list[float] = field(default_factory=list)
    epochs: list[_EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the whole history."""
        return asdict(self)


def move_to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a batch (a tensor, dict, tuple or list, possibly nested) to ``device`` (chapter 04)."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


def _check_arguments(model: Any, loss_fn: Any, optimizer: Any, dev_loader: Any, evaluate_fn: Any,
                     monitor: Any, mode: Any, patience: Any, clip_grad_norm: Any) -> None:
    """Every argument error of :func:`train`, raised before anything runs."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(model, batch) -> Tensor, got {loss_fn!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    checks.one_of("mode", mode, ("max", "min"))
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a metric name (str), got {monitor!r}")
    if (dev_loader is None) != (evaluate_fn is None):
        raise ValueError(
            "dev_loader and evaluate_fn go together: pass both to evaluate after each epoch, "
            f"or neither (got dev_loader={'set' if dev_loader is not None else None}, "
            f"evaluate_fn={'set' if evaluate_fn is not None else None})"
        )
    if evaluate_fn is not None and not callable(evaluate_fn):
        raise TypeError(f"evaluate_fn must be a callable evaluate_fn(model, dev_loader) -> dict, got {evaluate_fn!r}")
    if patience is not None:
        checks.positive_int("patience", patience)
        if evaluate_fn is None:
            raise ValueError(f"patience={patience} needs a dev set to watch: pass dev_loader and evaluate_fn")
    if clip_grad_norm is not None:
        checks.positive_number("clip_grad_norm", clip_grad_norm)


def _step(model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
          scheduler: Any, clip_grad_norm: float | None) -> float:
    """One optimiser step on ``batch``: loss, backward, clip, step, schedule. Returns the loss value."""
    loss = loss_fn(model, batch)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else ""
        raise TypeError(f"loss_fn must return a scalar Tensor, got {type(loss).__name__}{shape}")
    value = loss.item()
    if not math.isfinite(value):
        return value
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return value


def _run_epoch(model: nn.Module, loader: Iterable, epoch: int, history: TrainingHistory, bar: tqdm,
               loss_fn: LossFn, optimizer: torch.optim.Optimizer, scheduler: Any,
               clip_grad_norm: float | None, device: torch.device) -> float:
    """Train ``model`` for one epoch of ``loader``; return the mean training loss."""
    model.train()
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # a DistributedSampler draws a new order every epoch only when told the epoch
        sampler.set_epoch(epoch - 1)
    total, steps = 0.0, 0
    for batch in loader:
        value = _step(model, move_to_device(batch, device), loss_fn, optimizer, scheduler, clip_grad_norm)
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} at epoch {epoch}, step {steps + 1} "
                f"(step {len(history.step_losses) + 1} overall) with lr={optimizer.param_groups[0]['lr']:.3g}; "
                "training diverged: try a lower learning rate, a warm-up schedule or clip_grad_norm"
            )
        history.step_losses.append(value)
        total, steps = total + value, steps + 1
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{total / steps:.4f}", refresh=False)
    if steps == 0:
        raise ValueError("train_loader yielded no batches; it must hold at least one")
    return total / steps


def _evaluate(model: nn.Module, evaluate_fn: EvaluateFn, dev_loader: Iterable, monitor: str,
              epoch: int) -> dict[str, float]:
    """Run ``evaluate_fn`` in eval mode without gradients and check what it returns."""
    model.eval()
    with torch.no_grad():
        metrics = evaluate_fn(unwrap(model), dev_loader)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"evaluate_fn must return a dict of metric name -> number, got "
                        f"{type(metrics).__name__} after epoch {epoch}")
    if monitor not in metrics:
        raise ValueError(f"monitor={monitor!r} is not among the metrics evaluate_fn returned "
                         f"({sorted(metrics)}); pass one of those names as monitor")
    try:
        return {str(name): float(value) for name, value in metrics.items()}
    except (TypeError, ValueError) as error:
        raise TypeError(f"evaluate_fn must return numbers as metric values, got {dict(metrics)!r}") from error


def _improves(score: float, best: float | None, mode: str) -> bool:
    if math.isnan(score):
        return False
    return best is None or (score > best if mode == "max" else score < best)


def train(
    model: nn.Module,
    train_loader: Iterable,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    dev_loader: Iterable | None = None,
    evaluate_fn: EvaluateFn | None = None,
    monitor: str = "f1",
    mode: str = "max",
    patience: int | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip_grad_norm: float | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "train",
    checkpoint_path: str | PathLike[str] | None = None,
    keep_best: bool = True,
) -> TrainingHistory:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`TrainingHistory` (chapter 04).

    Each step moves the batch to ``device``, computes ``loss_fn(model, batch)`` in train mode,
    back-propagates, optionally clips the gradient norm, steps the optimizer and (per step) the
    scheduler. After each epoch, when ``evaluate_fn`` is given, it is called as
    ``evaluate_fn(model, dev_loader)`` in eval mode under ``torch.no_grad()``; the epoch whose
    ``monitor`` metric is best (``mode`` "max" or "min") is kept in memory, training stops after
    ``patience`` epochs without improvement, and the best weights are loaded back at the end.
    Without ``evaluate_fn``, or with ``keep_best=False`` (the metrics are then only recorded,
    e.g. a learning curve on a test set that must not pick the epoch), the final weights are
    kept. With ``checkpoint_path`` the kept weights are also written with
    :func:`~course_lib.train.checkpoint.save_checkpoint`. The model, and ``loss_fn`` when it is a
    module with weights of its own (the projections of a layer-distillation loss), are moved to
    ``device``; the model is left in eval mode without gradients.

    Raises ``FloatingPointError`` as soon as a loss is NaN or infinite.
    """
    _check_arguments(model, loss_fn, optimizer, dev_loader, evaluate_fn, monitor, mode, patience, clip_grad_norm)
    epochs = checks.positive_int("epochs", epochs)
    device = torch.device(device)
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    history = TrainingHistory(monitor=monitor, mode=mode)
    best_state: dict[str, Tensor] | None = None
    waited = 0
    try:
        total = len(train_loader) * epochs  # type: ignore[arg-type]
    except TypeError:
        total = None
    with tqdm(total=total, desc=desc, leave=False, disable=not (progress and progress_bars())) as bar:
        for epoch in range(1, epochs + 1):
            train_loss = _run_epoch(model, train_loader, epoch, history, bar, loss_fn, optimizer, scheduler,
                                    clip_grad_norm, device)
            dev: dict[str, float] = {}
            if evaluate_fn is not None:
                dev = _evaluate(model, evaluate_fn, dev_loader, monitor, epoch)
                if _improves(dev[monitor], history.best_score, mode):
                    history.best_epoch, history.best_score, waited = epoch, dev[monitor], 0
                    if keep_best:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    waited += 1
                bar.set_postfix(epoch=epoch, loss=f"{train_loss:.4f}", **{f"dev_{monitor}": f"{dev[monitor]:.4f}"},
                                refresh=False)
            history.epochs.append(_EpochRecord(epoch, train_loss, dev, float(optimizer.param_groups[0]["lr"])))
            if patience is not None and waited >= patience:
                history.stopped_early = epoch < epochs
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.zero_grad(set_to_none=True)  # no stale gradient of the last step stays on the trained model
    model.eval()
    if checkpoint_path is not None and current_processes(device).main:  # one writer under torchrun: rank 0
        kept_epoch = history.best_epoch if best_state is not None else len(history.epochs)
        plain = unwrap(model)
        save_checkpoint(checkpoint_path, plain, getattr(plain, "config", {}),
                        metadata={"epoch": kept_epoch, "monitor": monitor if evaluate_fn is not None else None,
                                  "score": history.best_score})
    return history
