"""The recipe around the training loop: optimiser, warm-up schedule, CPU threads and memory, timer (chapter 04).

:func:`fit` turns a :class:`~course_lib.train.recipe.Recipe` into an optimiser and a schedule,
runs :func:`~course_lib.train.loop.train` on the recipe's CPU threads and returns a
:class:`Trained`: the model, its history, the wall seconds and the metrics the case adds. Every
case of the course — MNIST networks, taggers, students, classifiers, language models — trains
through it.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from course_lib import checks
from course_lib.context import capped_threads
from course_lib.data import CharVocab
from course_lib.data.subwords import SubwordVocab
from course_lib.train.distributed import current_processes, for_processes
from course_lib.train.loop import EvaluateFn, LossFn, TrainingHistory, train
from course_lib.train.recipe import Recipe


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Linear warm-up from 0 to the optimizer's lr over ``warmup_steps``, then linear decay to 0 (chapter 04).

    The multiplier at step ``s`` is ``s / warmup_steps`` during warm-up and
    ``(total_steps - s) / (total_steps - warmup_steps)`` afterwards (the same curve as
    ``transformers.get_linear_schedule_with_warmup``). Call ``scheduler.step()`` once per
    optimizer step; :func:`~course_lib.train.loop.train` does this when given the scheduler.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    total_steps = checks.positive_int("total_steps", total_steps)
    warmup_steps = checks.int_at_least("warmup_steps", warmup_steps, 0)
    if warmup_steps > total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must not exceed total_steps ({total_steps})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)


def adamw_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW parameter groups: weight decay on matrices (ndim >= 2), none on biases and norms (chapter 04).

    Decaying a LayerNorm gain or a bias towards 0 has no regularising meaning, so the usual
    Transformer recipe (BERT, the course's teachers and students) exempts 1-D parameters.
    """
    weight_decay = checks.non_negative_number("weight_decay", weight_decay)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters: nothing to optimise")
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
KEPT_FREE_BYTES = 1 << 30


@functools.cache
def reuse_freed_memory() -> bool:
    """Have glibc keep freed large blocks for the next training step instead of handing them back (chapter 04).

    A training step allocates and frees buffers of tens of megabytes: a translation batch's
    logits over 4,000 subwords alone are 64 verses × 66 positions × 4,000 × 4 bytes = 68 MB, and
    so are their softmax and gradient. glibc serves every block above 32 MB from fresh pages of
    the kernel and returns it when freed, so each step the kernel maps and zeroes those pages
    again at their first touch, which costs a chapter 09 student a large share of its step time on a
    CPU. With that path off (``M_MMAP_MAX`` 0) and up to :data:`KEPT_FREE_BYTES` of free memory
    kept (``M_TRIM_THRESHOLD``), freed blocks stay in the process and the next step reuses them;
    the price is that a process keeps the memory of its largest step. Set once per process;
    returns whether the C library took it (False where it is not glibc, e.g. macOS).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES))


@contextmanager
def cpu_threads(device: torch.device | str, threads: int) -> Iterator[None]:
    """Run the body with ``threads`` PyTorch CPU threads when ``device`` is a CPU; restore after (chapter 04).

    Small models train fastest on few threads: their matrices are too small for intra-op
    parallelism to pay, and on a machine whose cores are busy with other work, extra threads
    wait on each other. Never more than ``$OMP_NUM_THREADS`` when it is set
    (:func:`~course_lib.context.capped_threads`). The first CPU run also calls
    :func:`reuse_freed_memory`. On a GPU this does nothing.
    """
    threads = checks.positive_int("threads", threads)
    threads = capped_threads(threads)
    if torch.device(device).type != "cpu":
        yield
        return
    reuse_freed_memory()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class Trained:
    """A trained model with its recipe, what was measured and where it is kept (chapter 04).

    ``metrics`` holds what the case measured (dev F1, test errors, a dev curve …); ``seconds`` is
    the wall time training took (for a model loaded from the cache, that of the run that trained
    it); ``trained`` says whether this call trained it; ``path`` is its checkpoint in the model
    cache (None for a model that is not cached); ``history`` is the training history when this
    call trained it; ``vocab`` the vocabulary a text model reads (characters; subwords for a translator).
    """

    model: nn.Module
    recipe: Recipe
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    trained: bool = True
    path: Path | None = None
    history: TrainingHistory | None = None
    vocab: CharVocab | SubwordVocab | None = None


def build_optimizer(model: nn.Module, recipe: Recipe, param_groups: list[dict[str, Any]] | None = None,
                    extra_parameters: Iterable[nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The optimiser of ``recipe`` over ``model`` (chapter 04).

    ``param_groups`` replaces the default groups (AdamW: :func:`adamw_param_groups`; SGD: every
    parameter); ``extra_parameters`` (e.g. the projections of a hidden-state loss) join without
    weight decay.
    """
    if recipe.optimizer == "sgd":
        groups: Any = param_groups or model.parameters()
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    groups = param_groups or adamw_param_groups(model, recipe.weight_decay)
    extra = [p for p in extra_parameters if p.requires_grad]
    if extra:
        groups = [*groups, {"params": extra, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    recipe: Recipe,
    *,
    loss_fn: LossFn,
    dev_loader: Iterable | None = None,
    evaluate_fn: EvaluateFn | None = None,
    monitor: str = "f1",
    mode: str = "max",
    keep_best: bool = True,
    param_groups: list[dict[str, Any]] | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
    after_step: Callable[[], None] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "train",
) -> Trained:
    """Train ``model`` on ``train_loader`` as ``recipe`` says; return it as a :class:`Trained` (chapter 04).

    The optimiser and the warm-up + linear-decay schedule come from the recipe
    (:func:`build_optimizer`), the epochs, patience and gradient clipping too; training runs on
    ``recipe.threads`` CPU threads. ``after_step`` runs after every optimiser step (e.g. a
    max-norm constraint). With ``dev_loader`` and ``evaluate_fn`` the best ``monitor`` epoch is
    kept (unless ``keep_best`` is False). The returned ``metrics`` are empty: the case fills them.

    Inside a ``torch.distributed`` process group (a script started with torchrun), the model is
    trained as a ``DistributedDataParallel`` module on this rank's share of every batch
    (:func:`~course_lib.train.distributed.for_processes`), with a progress bar on rank 0 only; the
    returned model is the plain module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    optimizer = build_optimizer(model, recipe, param_groups, extra_parameters)
    if after_step is not None:
        optimizer.register_step_post_hook(lambda *_: after_step())
    total_steps = len(train_loader) * recipe.epochs  # type: ignore[arg-type]
    scheduler = warmup_linear_schedule(optimizer, int(recipe.warmup_fraction * total_steps), total_steps)
    processes = current_processes(device)
    trained_model, train_loader = for_processes(model, train_loader, processes)
    start = time.perf_counter()
    with cpu_threads(device, recipe.threads):
        history = train(trained_model, train_loader, loss_fn=loss_fn, optimizer=optimizer, epochs=recipe.epochs,
                        dev_loader=dev_loader, evaluate_fn=evaluate_fn, monitor=monitor, mode=mode,
                        patience=recipe.patience, scheduler=scheduler, clip_grad_norm=recipe.clip_grad_norm,
                        device=device, progress=progress and processes.main, desc=desc, keep_best=keep_best)
    return Trained(model=model, recipe=recipe, seconds=time.perf_counter() - start, history=history)
