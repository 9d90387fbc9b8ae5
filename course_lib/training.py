"""A generic training loop with warm-up scheduling, early stopping and best-weight restore.

Chapter 04 introduces it to train a Transformer tagger; chapters 05-07 reuse the very same
loop for distillation students. The loop knows nothing about the task: the caller passes a
``loss_fn(model, batch) -> Tensor`` (a distillation loss is just a ``loss_fn`` that also
closes over a frozen teacher) and, optionally, an ``evaluate_fn(model, dev_loader) -> dict``
whose ``monitor`` entry decides which epoch's weights are kept.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from course_lib.checkpoint import save_checkpoint

__all__ = [
    "EpochRecord",
    "Fit",
    "TrainingHistory",
    "adamw_param_groups",
    "cpu_threads",
    "fit_adamw",
    "move_to_device",
    "train",
    "warmup_linear_schedule",
]


def _require_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise a descriptive error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def warmup_linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> LambdaLR:
    """Linear warm-up from 0 to the optimizer's lr over ``warmup_steps``, then linear decay to 0.

    The multiplier at step ``s`` is ``s / warmup_steps`` during warm-up and
    ``(total_steps - s) / (total_steps - warmup_steps)`` afterwards (the same curve as
    ``transformers.get_linear_schedule_with_warmup``). Call ``scheduler.step()`` once per
    optimizer step; ``train`` does this when given the scheduler.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    total_steps = _require_int("total_steps", total_steps, 1)
    warmup_steps = _require_int("warmup_steps", warmup_steps, 0)
    if warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps ({warmup_steps}) must not exceed total_steps ({total_steps})"
        )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)


@dataclass
class EpochRecord:
    """What happened in one epoch: mean training loss, dev metrics and the lr at its end."""

    epoch: int
    train_loss: float
    dev: dict[str, float]
    lr: float


@dataclass
class TrainingHistory:
    """Everything ``train`` measured, in a form that plots and JSON reports can use directly.

    ``best_epoch``/``best_score`` refer to the monitored dev metric (1-based epochs); they are
    ``None`` when training ran without an ``evaluate_fn``.
    """

    monitor: str
    mode: str
    step_losses: list[float] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the whole history."""
        return asdict(self)


def move_to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a batch (a tensor, dict, tuple or list, possibly nested) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(move_to_device(value, device) for value in batch)
    if isinstance(batch, list):
        return [move_to_device(value, device) for value in batch]
    return batch


def adamw_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW parameter groups: weight decay on matrices (ndim >= 2), none on biases and norms.

    Decaying a LayerNorm gain towards 0 or a bias towards 0 has no regularising meaning, so the
    usual Transformer recipe (BERT, the course's teachers and students) exempts 1-D parameters.
    """
    if not isinstance(weight_decay, numbers.Real) or isinstance(weight_decay, bool) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters: nothing to optimise")
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": float(weight_decay)},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


@contextmanager
def cpu_threads(device: torch.device | str, threads: int) -> Iterator[None]:
    """Run the body with ``threads`` PyTorch CPU threads when ``device`` is a CPU; restore after.

    Small models train fastest on one thread: their matrices are too small for intra-op
    parallelism to pay, and on a machine whose cores are busy with other work, extra threads
    wait on each other and can make training many times slower. On a GPU this does nothing.
    """
    threads = _require_int("threads", threads, 1)
    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _is_improvement(score: float, best: float | None, mode: str) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score > best if mode == "max" else score < best


def _evaluate(
    model: nn.Module,
    evaluate_fn: Callable[[nn.Module, Any], dict[str, float]],
    dev_loader: Iterable,
    monitor: str,
    epoch: int,
) -> dict[str, float]:
    """Run ``evaluate_fn`` in eval mode without gradients and validate what it returns."""
    model.eval()
    with torch.no_grad():
        metrics = evaluate_fn(model, dev_loader)
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"evaluate_fn must return a dict of metric name -> number, got "
            f"{type(metrics).__name__} after epoch {epoch}"
        )
    if monitor not in metrics:
        raise ValueError(
            f"monitor={monitor!r} is not among the metrics evaluate_fn returned "
            f"({sorted(metrics)}); pass one of those names as monitor"
        )
    try:
        return {str(name): float(value) for name, value in metrics.items()}
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"evaluate_fn must return numbers as metric values, got {dict(metrics)!r}"
        ) from error


def train(
    model: nn.Module,
    train_loader: Iterable,
    *,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    dev_loader: Iterable | None = None,
    evaluate_fn: Callable[[nn.Module, Any], dict[str, float]] | None = None,
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
    """Train ``model`` for up to ``epochs`` epochs and return its ``TrainingHistory``.

    Each step moves the batch to ``device``, computes ``loss_fn(model, batch)`` in train mode,
    back-propagates, optionally clips the gradient norm, steps the optimizer and (per step)
    the scheduler. After each epoch, when ``evaluate_fn`` is given, it is called as
    ``evaluate_fn(model, dev_loader)`` in eval mode under ``torch.no_grad()``; the epoch whose
    ``monitor`` metric is best (``mode`` "max" or "min") is kept in memory, training stops
    after ``patience`` epochs without improvement, and the best weights are loaded back at the
    end. Without ``evaluate_fn``, or with ``keep_best=False`` (the metrics are then only
    recorded, e.g. a learning curve on a test set that must not pick the epoch), the final
    weights are kept. With ``checkpoint_path`` the kept
    weights are also written with ``course_lib.checkpoint.save_checkpoint`` (config from
    ``model.config`` when the model has one). The model is moved to ``device`` and left in
    eval mode without gradients (``.grad`` is None); anything else ``loss_fn`` uses (e.g. a distillation teacher) must already be
    on ``device``.

    Raises ``FloatingPointError`` as soon as a loss is NaN or infinite.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a callable loss_fn(model, batch) -> Tensor, got {loss_fn!r}"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    epochs = _require_int("epochs", epochs, 1)
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a metric name (str), got {monitor!r}")
    if (dev_loader is None) != (evaluate_fn is None):
        raise ValueError(
            "dev_loader and evaluate_fn go together: pass both to evaluate after each epoch, "
            f"or neither (got dev_loader={'set' if dev_loader is not None else None}, "
            f"evaluate_fn={'set' if evaluate_fn is not None else None})"
        )
    if evaluate_fn is not None and not callable(evaluate_fn):
        raise TypeError(
            "evaluate_fn must be a callable evaluate_fn(model, dev_loader) -> dict, "
            f"got {evaluate_fn!r}"
        )
    if patience is not None:
        patience = _require_int("patience", patience, 1)
        if evaluate_fn is None:
            raise ValueError(
                f"patience={patience} needs a dev set to watch: pass dev_loader and evaluate_fn"
            )
    if clip_grad_norm is not None and not (
        isinstance(clip_grad_norm, numbers.Real) and clip_grad_norm > 0
    ):
        raise ValueError(
            f"clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}"
        )

    device = torch.device(device)
    model.to(device)
    history = TrainingHistory(monitor=monitor, mode=mode)
    best_state: dict[str, Tensor] | None = None
    epochs_without_improvement = 0
    postfix: dict[str, Any] = {}
    try:
        steps_per_epoch: int | None = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        steps_per_epoch = None

    with tqdm(
        total=steps_per_epoch * epochs if steps_per_epoch is not None else None,
        desc=desc,
        leave=False,
        disable=not progress,
    ) as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            epoch_loss, n_steps = 0.0, 0
            for batch in train_loader:
                batch = move_to_device(batch, device)
                loss = loss_fn(model, batch)
                if not isinstance(loss, Tensor) or loss.numel() != 1:
                    raise TypeError(
                        "loss_fn must return a scalar Tensor, got "
                        f"{type(loss).__name__}"
                        + (f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else "")
                    )
                value = loss.item()
                if not math.isfinite(value):
                    lr = optimizer.param_groups[0]["lr"]
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch}, step {n_steps + 1} "
                        f"(step {len(history.step_losses) + 1} overall) with lr={lr:.3g}; "
                        "training diverged: try a lower learning rate, a warm-up schedule "
                        "or clip_grad_norm"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                history.step_losses.append(value)
                epoch_loss += value
                n_steps += 1
                bar.update(1)
                postfix.update(epoch=epoch, loss=f"{epoch_loss / n_steps:.4f}")
                bar.set_postfix(postfix, refresh=False)
            if n_steps == 0:
                raise ValueError("train_loader yielded no batches; it must hold at least one")

            dev: dict[str, float] = {}
            if evaluate_fn is not None:
                dev = _evaluate(model, evaluate_fn, dev_loader, monitor, epoch)
                score = dev[monitor]
                if _is_improvement(score, history.best_score, mode):
                    history.best_epoch, history.best_score = epoch, score
                    if keep_best:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    epochs_without_improvement = 0
                else:
                    epochs_without_improvement += 1
                postfix[f"dev_{monitor}"] = f"{score:.4f}"
                bar.set_postfix(postfix, refresh=False)
            history.epochs.append(
                EpochRecord(
                    epoch=epoch,
                    train_loss=epoch_loss / n_steps,
                    dev=dev,
                    lr=float(optimizer.param_groups[0]["lr"]),
                )
            )
            if patience is not None and epochs_without_improvement >= patience:
                history.stopped_early = epoch < epochs
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.zero_grad(set_to_none=True)  # no stale gradient of the last step stays on the trained model
    model.eval()
    if checkpoint_path is not None:
        save_checkpoint(
            checkpoint_path,
            model,
            getattr(model, "config", {}),
            metadata={
                "epoch": history.best_epoch if best_state is not None else len(history.epochs),
                "monitor": monitor if evaluate_fn is not None else None,
                "score": history.best_score,
            },
        )
    return history


@dataclass
class Fit:
    """What :func:`fit_adamw` returns: the training history and the wall seconds training took."""

    history: TrainingHistory
    seconds: float


def fit_adamw(
    model: nn.Module,
    train_loader: Iterable,
    *,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    lr: float,
    epochs: int,
    warmup_fraction: float,
    dev_loader: Iterable | None = None,
    evaluate_fn: Callable[[nn.Module, Any], dict[str, float]] | None = None,
    monitor: str = "f1",
    mode: str = "max",
    patience: int | None = None,
    parameters: Iterable[nn.Parameter] | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
    weight_decay: float = 0.01,
    clip_grad_norm: float | None = 1.0,
    device: torch.device | str = "cpu",
    threads: int = 1,
    progress: bool = True,
    desc: str = "train",
) -> Fit:
    """The course's recipe around :func:`train`: AdamW, linear warm-up and decay, clipping, best dev epoch kept.

    ``parameters`` are the model's parameters to optimise (default: all of them, with no weight
    decay on biases and norms, :func:`adamw_param_groups`); ``extra_parameters`` (e.g. the
    projections of a hidden-state loss) are optimised too, without weight decay. The first
    ``warmup_fraction`` of the steps warm the learning rate up. On a CPU training runs on
    ``threads`` threads.
    """
    if not isinstance(warmup_fraction, numbers.Real) or not 0.0 <= warmup_fraction <= 1.0:
        raise ValueError(f"warmup_fraction must be a number in [0, 1], got {warmup_fraction!r}")
    groups = adamw_param_groups(model, weight_decay) if parameters is None else [{"params": list(parameters)}]
    extra = [p for p in extra_parameters if p.requires_grad]
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    total_steps = len(train_loader) * epochs  # type: ignore[arg-type]
    scheduler = warmup_linear_schedule(optimizer, int(warmup_fraction * total_steps), total_steps)
    start = time.perf_counter()
    with cpu_threads(device, threads):
        history = train(
            model,
            train_loader,
            loss_fn=loss_fn,
            optimizer=optimizer,
            epochs=epochs,
            dev_loader=dev_loader,
            evaluate_fn=evaluate_fn,
            monitor=monitor,
            mode=mode,
            patience=patience,
            scheduler=scheduler,
            clip_grad_norm=clip_grad_norm,
            device=device,
            progress=progress,
            desc=desc,
        )
    return Fit(history=history, seconds=time.perf_counter() - start)
