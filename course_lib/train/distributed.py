"""Training on several processes with PyTorch's own engine, ``torch.distributed`` (chapter 08).

``torchrun --nproc_per_node N script.py`` starts N copies of a script and tells each its rank in the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`join_processes` turns that into a :class:`Processes` — gloo on a CPU, NCCL on CUDA, with a
timeout so that a rank that fails stops the others instead of leaving them waiting — and the rest
of this module holds the parts a distillation run needs:

- :func:`wrap_student`: only the student is a ``DistributedDataParallel`` module; the frozen teacher
  runs in eval mode under ``torch.no_grad`` on every rank and is refused if wrapped (a wrapped
  teacher all-reduces gradients it never has);
- :func:`sharded_loader`: a ``DistributedSampler`` that gives each rank its share of every global
  batch; the training loop calls its ``set_epoch`` so that every epoch has a new order;
- :func:`mean_over_processes`, :func:`sum_over_processes`: a number averaged or summed over every
  rank, not read on rank 0 alone;
- :func:`on_main_process`: rank 0 alone writes checkpoints and results, and the others wait for it.

:func:`course_lib.train.fit.fit` uses these by itself when it runs inside a process group
(:func:`current_processes`): it wraps the student in DDP and, unless the loader already has a
``DistributedSampler``, gives each rank its share of every batch the loader yields
(:class:`ShardedBatches`). Every recipe of the course that trains through ``fit`` therefore runs
under torchrun unchanged. Without torchrun (no ``WORLD_SIZE`` in the environment) everything
degrades to one process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from course_lib import checks

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Processes:
    """Where this process stands in a run: its rank, how many there are, its device and backend (chapter 08)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def main(self) -> bool:
        """True on rank 0, the one process that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _environment_int(name: str) -> int:
    value = os.environ.get(name)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"${name} must be an integer set by torchrun, got {value!r}: start the script with "
                         "torchrun --nproc_per_node N") from None


def join_processes(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Processes:
    """Join the process group that torchrun set up, or stand alone without it (chapter 08).

    ``device`` "auto" takes this rank's GPU (``cuda:LOCAL_RANK``) when CUDA is there, else the CPU;
    the backend follows: NCCL for CUDA, gloo for the CPU. ``timeout_s`` bounds every collective, so
    a rank that dies does not leave the others waiting for ever.
    """
    timeout_s = checks.positive_number("timeout_s", timeout_s)
    checks.one_of("device", device, ("auto", "cpu", "cuda"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if "WORLD_SIZE" not in os.environ:
        return Processes(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, world_size, local_rank = (_environment_int(name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Processes(rank=rank, world_size=world_size, local_rank=local_rank, device=target, backend=backend)


def current_processes(device: torch.device | str = "cpu") -> Processes:
    """This process's place in the process group it has joined, on ``device``; one process when it has joined none (chapter 08)."""
    device = torch.device(device)
    if not (dist.is_available() and dist.is_initialized()):
        return Processes(device=device)
    return Processes(rank=dist.get_rank(), world_size=dist.get_world_size(),
                     local_rank=int(os.environ.get("LOCAL_RANK", 0)), device=device, backend=dist.get_backend())


def leave_processes() -> None:
    """Leave the process group, if this process joined one (chapter 08)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_student(student: nn.Module, processes: Processes) -> nn.Module:
    """The student on this rank's device, as a ``DistributedDataParallel`` module when there are several ranks (chapter 08)."""
    if isinstance(student, DistributedDataParallel):
        raise TypeError("the student is already wrapped in DistributedDataParallel: wrap it once")
    student = student.to(processes.device)
    if not processes.distributed:
        return student
    device_ids = [processes.device.index] if processes.device.type == "cuda" else None
    return DistributedDataParallel(student, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper, or ``model`` itself (chapter 08)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def check_teacher(teacher: nn.Module) -> nn.Module:
    """``teacher`` if it is a plain frozen module; TypeError for a DDP-wrapped or trainable teacher (chapter 08)."""
    if isinstance(teacher, DistributedDataParallel):
        raise TypeError("the teacher must not be wrapped in DistributedDataParallel: it is frozen, has no gradients "
                        "to all-reduce, and every rank runs it under torch.no_grad; pass the plain module")
    if any(parameter.requires_grad for parameter in teacher.parameters()):
        raise ValueError("the teacher has trainable parameters: freeze it (course_lib.kd.teacher.frozen) first")
    return teacher


def sharded_loader(dataset: Dataset, batch_size: int, processes: Processes, *, seed: int = 0,
                   shuffle: bool = True, collate_fn: Callable[[list], Any] | None = None) -> DataLoader:
    """A loader that gives this rank its share of every global batch of ``batch_size`` examples (chapter 08).

    Each epoch a ``DistributedSampler`` shuffles all indices with ``seed`` + epoch — the same order on
    every rank — and deals them out in turn, so the ranks' shares of one step together are the global
    batch a single process would take. The last incomplete global batch is dropped, so every rank
    takes the same number of steps of the same size.
    """
    batch_size = checks.positive_int("batch_size", batch_size)
    if batch_size % processes.world_size:
        raise ValueError(f"the global batch_size {batch_size} must divide evenly among {processes.world_size} "
                         f"processes: choose a multiple of {processes.world_size}")
    sampler = DistributedSampler(dataset, num_replicas=processes.world_size, rank=processes.rank,
                                 shuffle=shuffle, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size=batch_size // processes.world_size, sampler=sampler,
                      drop_last=True, collate_fn=collate_fn)


def _share(value: Any, rank: int, world_size: int, rows: int) -> Any:
    """This rank's rows (``rank``, ``rank + world_size``, …) of every tensor in ``value`` with ``rows`` rows."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == rows:
        return value[rank::world_size]
    if isinstance(value, dict):
        return {key: _share(item, rank, world_size, rows) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_share(item, rank, world_size, rows) for item in value)
    return value


def _rows(batch: Any) -> int:
    """The number of examples in ``batch``: the first dimension of its first tensor."""
    if isinstance(batch, Tensor):
        return batch.shape[0]
    items = batch.values() if isinstance(batch, dict) else batch
    return next(_rows(item) for item in items if isinstance(item, (Tensor, dict, tuple, list)))


class ShardedBatches:
    """Each batch of ``loader`` cut into this rank's share: rows ``rank``, ``rank + world_size``, … (chapter 08).

    Every rank iterates the same loader in the same order (its shuffling is seeded, not drawn per
    rank), so the shares of one step together are the batch one process would take — with the
    loader's own length bucketing and dataset indices (``batch["index"]``, which a teacher-logit
    cache looks up) intact. A batch with fewer examples than ranks is skipped on every rank, so all
    ranks take the same number of steps.
    """

    def __init__(self, loader: Any, processes: Processes) -> None:
        self.loader = loader
        self.processes = processes

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            rows = _rows(batch)
            if rows >= self.processes.world_size:
                yield _share(batch, self.processes.rank, self.processes.world_size, rows)


def for_processes(model: nn.Module, loader: Any, processes: Processes) -> tuple[nn.Module, Any]:
    """The student and the loader a training run on ``processes`` needs: DDP-wrapped and sharded when distributed (chapter 08)."""
    if not processes.distributed:
        return model, loader
    if not isinstance(model, DistributedDataParallel):
        model = wrap_student(model, processes)
    if not isinstance(getattr(loader, "sampler", None), DistributedSampler):
        loader = ShardedBatches(loader, processes)
    return model, loader


def mean_over_processes(value: float, processes: Processes) -> float:
    """``value`` averaged over every rank (each rank passes its own) (chapter 08)."""
    if not processes.distributed:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64,
                          device=processes.device if processes.backend == "nccl" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.item() / processes.world_size


def sum_over_processes(value: float, processes: Processes) -> float:
    """``value`` summed over every rank, e.g. errors counted on each rank's share of a test set (chapter 08)."""
    return mean_over_processes(value, processes) * processes.world_size


def on_main_process(processes: Processes, write: Callable[[], T]) -> T | None:
    """Run ``write`` on rank 0 only, then hold every rank until it is done; rank 0 gets its result (chapter 08)."""
    result = write() if processes.main else None
    if processes.distributed:
        dist.barrier()
    return result
