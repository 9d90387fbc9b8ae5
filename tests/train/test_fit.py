"""Tests for course_lib.train.fit: the schedule, the optimiser's groups, CPU threads and fit itself."""

from __future__ import annotations

import ctypes
import platform

import pytest
import torch
from torch import nn

from course_lib.nn.transformer import TokenTagger, TransformerConfig
from course_lib.train.fit import (
    Trained,
    adamw_param_groups,
    build_optimizer,
    cpu_threads,
    fit,
    reuse_freed_memory,
    warmup_linear_schedule,
)
from course_lib.train.recipe import Recipe


def test_warmup_linear_schedule_values():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_linear_schedule(optimizer, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(7):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0])


@pytest.mark.parametrize(
    ("warmup", "total", "error", "message"),
    [(3, 2, ValueError, "must not exceed total_steps"),
     (-1, 5, ValueError, "warmup_steps must be an int >= 0"),
     (0, 0, ValueError, "total_steps must be a positive int"),
     (1.5, 5, ValueError, "warmup_steps must be an int >= 0")],
)
def test_warmup_schedule_rejects_bad_arguments(warmup, total, error, message):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(error, match=message):
        warmup_linear_schedule(optimizer, warmup, total)


def test_adamw_param_groups_exempt_biases_and_norms():
    model = TokenTagger(TransformerConfig(vocab_size=20, d_model=16, num_heads=2, num_layers=1, d_ff=32), num_labels=3)
    decay, no_decay = adamw_param_groups(model, weight_decay=0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    norm_ids = {id(p) for p in model.encoder.final_norm.parameters()}
    assert norm_ids <= {id(p) for p in no_decay["params"]}
    optimizer = torch.optim.AdamW(adamw_param_groups(model, 0.1), lr=1e-3)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]


def test_adamw_param_groups_reject_bad_input():
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0"):
        adamw_param_groups(nn.Linear(2, 2), weight_decay=-0.1)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        adamw_param_groups(frozen, weight_decay=0.01)


def test_cpu_threads_sets_and_restores_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with cpu_threads("cpu", 1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with cpu_threads(torch.device("cpu"), 1):
            raise RuntimeError("the body failed")
    assert torch.get_num_threads() == before
    with cpu_threads("meta", 1):
        assert torch.get_num_threads() == before, "only a CPU device changes the thread count"
    with pytest.raises(ValueError, match="threads must be a positive int"):
        with cpu_threads("cpu", 0):
            pass


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                    reason="mallopt and mallinfo2 (glibc 2.33 and later) are glibc's")
def test_reuse_freed_memory_keeps_large_blocks_in_the_heap():
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    with cpu_threads("cpu", 1):
        assert reuse_freed_memory() is True
    mapped = mallinfo2().hblkhd
    block = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB: glibc would map it from the kernel by default
    assert mallinfo2().hblkhd - mapped < 64 << 20, "the block came from the heap, not from fresh kernel pages"
    del block
    assert mallinfo2().fordblks >= 64 << 20, "the freed block stays in the heap for the next step"


def test_reuse_freed_memory_does_nothing_off_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert reuse_freed_memory.__wrapped__() is False


def test_cpu_threads_never_exceeds_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with cpu_threads("cpu", 2):
        assert torch.get_num_threads() == 1, "two workers of make test share two cores, one thread each"
    assert torch.get_num_threads() == before


def test_fit_builds_the_recipes_optimiser_and_schedule_and_times_the_run():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(5)]
    recipe = Recipe(epochs=2, lr=0.1, warmup_fraction=0.2, threads=1)
    constrained = []
    trained = fit(model, data, recipe, loss_fn=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
                  after_step=lambda: constrained.append(1), progress=False)
    assert isinstance(trained, Trained) and trained.model is model and trained.recipe is recipe
    assert len(trained.history.step_losses) == 10 and len(constrained) == 10, "after_step runs after every step"
    assert trained.seconds > 0 and trained.metrics == {} and trained.path is None
    assert trained.history.epochs[-1].lr == pytest.approx(0.0), "the learning rate decays to zero"


class ProjectedLoss(nn.Module):
    """A loss with a weight of its own, like TinyBERT's hidden-state projection; it records where it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(2, 2)
        self.sent_to: list[str] = []

    def to(self, *args, **kwargs):
        self.sent_to.append(str(args[0] if args else kwargs.get("device")))
        return super().to(*args, **kwargs)

    def forward(self, model, batch):
        return nn.functional.cross_entropy(self.projection(model(batch[0])), batch[1])


def test_a_loss_with_weights_moves_to_the_training_device_and_trains():
    # On a GPU, a projection left on the CPU fails at the first step ("Expected all tensors to be
    # on the same device"): fit sends the loss module where the model goes.
    torch.manual_seed(0)
    model, loss = nn.Linear(4, 2), ProjectedLoss()
    before = loss.projection.weight.detach().clone()
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
    fit(model, data, Recipe(epochs=1, lr=0.1, threads=1), loss_fn=loss, extra_parameters=loss.parameters(),
        device="cpu", progress=False)
    assert loss.sent_to == ["cpu"]
    assert not torch.equal(before, loss.projection.weight), "the projection is trained with the model"


def test_build_optimizer_follows_the_recipe():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    sgd = build_optimizer(model, Recipe(optimizer="sgd", lr=0.5, momentum=0.8, weight_decay=0.0))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.8
    extra = nn.Parameter(torch.zeros(3))
    adamw = build_optimizer(model, Recipe(weight_decay=0.1), extra_parameters=[extra])
    assert isinstance(adamw, torch.optim.AdamW)
    assert [group["weight_decay"] for group in adamw.param_groups] == [0.1, 0.0, 0.0]
    assert adamw.param_groups[-1]["params"] == [extra], "extra parameters join without weight decay"
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit("model", [], Recipe(), loss_fn=lambda m, b: None)
