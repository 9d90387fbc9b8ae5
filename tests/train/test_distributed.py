"""Distillation on two CPU processes (gloo) against one: same student, frozen teacher, one writer, no hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset

from course_lib.context import REPO_ROOT
from course_lib.train.distributed import (
    Processes,
    ShardedBatches,
    check_teacher,
    join_processes,
    mean_over_processes,
    on_main_process,
    sharded_loader,
    unwrap,
    wrap_student,
)
from course_lib.train.loop import train

WORKER = "tests.train.ddp_worker"


def _run(out: Path, nproc: int, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    if nproc == 1:
        command = [sys.executable, "-m", WORKER, str(out), *extra]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "-m", WORKER, str(out), *extra]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same distillation run in one process and in two (torchrun, gloo)."""
    outs = {}
    for nproc in (1, 2):
        out = tmp_path_factory.mktemp(f"ddp{nproc}")
        done = _run(out, nproc)
        assert done.returncode == 0, done.stderr[-3000:]
        outs[nproc] = out
    return outs


def test_two_processes_train_the_same_student_as_one_with_the_same_global_batch(runs):
    one, two = (load_file(str(runs[n] / "student.safetensors")) for n in (1, 2))
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6), name
    reports = [json.loads((runs[n] / "report.json").read_text()) for n in (1, 2)]
    assert [r["world_size"] for r in reports] == [1, 2]
    assert reports[1]["backend"] == "gloo" and reports[1]["student_is_ddp"] == "DistributedDataParallel"
    assert reports[0]["steps"] == reports[1]["steps"] == 8  # 64 examples / 16 a global batch × 2 epochs
    assert reports[1]["mean_loss"] == pytest.approx(reports[0]["mean_loss"], rel=1e-5)


def test_fit_distributes_a_plain_model_and_loader_by_itself(runs, tmp_path):
    done = _run(tmp_path, 2, "--via-fit")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["returned_model"] == "Linear", "fit returns the plain module"
    two = load_file(str(tmp_path / "student.safetensors"))
    plain = _run(tmp_path / "one", 1, "--via-fit")
    assert plain.returncode == 0, plain.stderr[-3000:]
    single = load_file(str(tmp_path / "one" / "student.safetensors"))
    for name in single:
        assert torch.allclose(single[name], two[name], atol=1e-6), name


def test_the_teacher_gets_no_gradient_and_only_rank_0_writes(runs):
    report = json.loads((runs[2] / "report.json").read_text())
    assert report["teacher_has_gradients"] is False
    assert sorted(p.name for p in runs[2].iterdir()) == ["report.json", "student.safetensors", "written_by_rank_0"]


def test_a_rank_that_fails_stops_the_whole_job_with_its_error(tmp_path):
    start = time.perf_counter()
    done = _run(tmp_path / "out", 2, "--fail-rank", "1")
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    assert time.perf_counter() - start < 200, "the other rank must not wait for its partner for ever"
    assert not (tmp_path / "out").exists(), "nothing is written when a rank fails"


def test_without_torchrun_everything_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = join_processes(device="cpu")
    assert processes == Processes() and processes.main and not processes.distributed
    assert mean_over_processes(2.5, processes) == 2.5
    assert on_main_process(processes, lambda: "written") == "written"
    model = nn.Linear(2, 2)
    assert wrap_student(model, processes) is model and unwrap(model) is model


def test_bad_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="must divide evenly among 2 processes"):
        sharded_loader(TensorDataset(torch.zeros(8, 1)), 5, Processes(rank=0, world_size=2))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match=r"\$RANK must be an integer set by torchrun"):
        join_processes(device="cpu")


def test_a_sharded_loader_draws_a_new_order_every_epoch_through_the_loop():
    dataset = TensorDataset(torch.arange(32.0)[:, None], torch.zeros(32, dtype=torch.long))
    loader = sharded_loader(dataset, 8, Processes(), seed=4)
    seen = []

    def loss_fn(model, batch):
        seen.append(batch[0].flatten().tolist())
        return model(batch[0]).sum() * 0

    model = nn.Linear(1, 1)
    train(model, loader, loss_fn=loss_fn, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
          progress=False)
    first, second = sum(seen[:4], []), sum(seen[4:], [])
    assert sorted(first) == sorted(second) == list(range(32))
    assert first != second, "set_epoch was not called: every epoch would see the same order"


def test_sharded_batches_deal_every_batch_out_by_rows_and_skip_one_too_small():
    loader = [{"input_ids": torch.arange(10).reshape(5, 2), "index": torch.arange(5), "note": "kept"},
              (torch.arange(3.0), torch.arange(3)), (torch.zeros(1), torch.zeros(1))]
    shares = [list(ShardedBatches(loader, Processes(rank=rank, world_size=2))) for rank in (0, 1)]
    assert len(ShardedBatches(loader, Processes(rank=0, world_size=2))) == 3
    assert [len(share) for share in shares] == [2, 2], "the one-example batch is skipped on both ranks"
    assert shares[0][0]["index"].tolist() == [0, 2, 4] and shares[1][0]["index"].tolist() == [1, 3]
    assert shares[1][0]["input_ids"].tolist() == [[2, 3], [6, 7]] and shares[1][0]["note"] == "kept"
    assert shares[0][1][0].tolist() == [0.0, 2.0] and shares[1][1][1].tolist() == [1]


def test_a_wrapped_or_trainable_teacher_is_refused(tmp_path):
    teacher = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="freeze it"):
        check_teacher(teacher)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with pytest.raises(TypeError, match="must not be wrapped in DistributedDataParallel"):
            check_teacher(DistributedDataParallel(teacher))
        with pytest.raises(TypeError, match="already wrapped"):
            wrap_student(DistributedDataParallel(nn.Linear(2, 2)), Processes())
    finally:
        dist.destroy_process_group()
