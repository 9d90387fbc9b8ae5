"""A small distillation run that the distributed tests start with and without torchrun.

``python -m tests.train.ddp_worker OUT [--fail-rank R]``: a frozen linear teacher, a linear student
distilled for two epochs on 64 examples with a global batch of 16; rank 0 writes the student's
weights and what each rank saw to OUT. ``--fail-rank`` makes that rank raise before training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.files import write_json_atomic
from course_lib.kd.distiller import Distiller
from course_lib.train.distributed import (
    check_teacher,
    join_processes,
    leave_processes,
    mean_over_processes,
    on_main_process,
    sharded_loader,
    unwrap,
    wrap_student,
)
from course_lib.train.fit import fit
from course_lib.train.recipe import Recipe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--fail-rank", type=int, default=None)
    parser.add_argument("--via-fit", action="store_true", help="plain model and loader: fit() distributes them itself")
    args = parser.parse_args()
    processes = join_processes(device="cpu", timeout_s=60)
    if args.fail_rank == processes.rank:
        raise RuntimeError(f"rank {processes.rank} fails on purpose")
    torch.manual_seed(0)
    teacher, student = nn.Linear(8, 4), nn.Linear(8, 4)
    inputs = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(2))
    distiller = Distiller(teacher, temperature=2.0, alpha=0.5)
    check_teacher(distiller.teacher)
    dataset = TensorDataset(inputs, labels, torch.arange(64))
    if args.via_fit:
        model, loader = student, DataLoader(dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(3))
    else:
        model, loader = wrap_student(student, processes), sharded_loader(dataset, 16, processes, seed=3)
    recipe = Recipe(epochs=2, batch_size=16, optimizer="sgd", lr=0.5, momentum=0.0, weight_decay=0.0,
                    clip_grad_norm=None, threads=1)
    trained = fit(model, loader, recipe, loss_fn=distiller, device=processes.device, progress=False)
    report = {
        "world_size": processes.world_size,
        "backend": processes.backend,
        "steps": len(trained.history.step_losses),
        "mean_loss": mean_over_processes(sum(trained.history.step_losses) / len(trained.history.step_losses), processes),
        "teacher_has_gradients": any(p.grad is not None for p in teacher.parameters()),
        "student_is_ddp": type(model).__name__,
        "returned_model": type(trained.model).__name__,
    }

    def write() -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in unwrap(trained.model).state_dict().items()},
                  str(args.out / "student.safetensors"))
        write_json_atomic(args.out / "report.json", report)
        (args.out / f"written_by_rank_{processes.rank}").touch()

    on_main_process(processes, write)
    leave_processes()


if __name__ == "__main__":
    main()
