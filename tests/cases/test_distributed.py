"""The MNIST distillation of course_lib.cases.distributed in one process, and its command line."""

from __future__ import annotations

import pytest
import torch

from course_lib.cases.distributed import (
    ddp_student_recipe,
    distil_mt_on_processes,
    distil_ner_on_processes,
    distil_on_processes,
    main,
    ner_student_recipe,
)
from course_lib.cases.mnist.models import MnistRecipe, fit_mnist_mlp
from course_lib.data import load_mnist
from course_lib.train.distributed import Processes


@pytest.fixture(scope="module")
def small_teacher():
    recipe = MnistRecipe(hidden=(64,), train_size=2_000, epochs=1, batch_size=64, threads=1)
    return fit_mnist_mlp(load_mnist(), recipe, progress=False).model


def test_one_process_distils_the_student_and_reports_its_figures(small_teacher):
    result = distil_on_processes(Processes(), mode="fast", epochs=1, threads=1, teacher=small_teacher)
    assert result["world_size"] == 1 and result["backend"] == "none"
    assert result["steps"] == 10_000 // 128 and result["global_batch"] == 128
    assert result["samples_per_second"] == pytest.approx(result["steps"] * 128 / result["seconds"])
    assert 0 <= result["test_errors"] < 5_000, "one epoch of distillation learns something"
    assert all(not p.requires_grad for p in small_teacher.parameters()), "the teacher stays frozen"


def test_one_process_distils_the_ner_student_from_the_shipped_teacher():
    result = distil_ner_on_processes(Processes(), mode="fast", epochs=1, threads=1)
    assert result["world_size"] == 1 and result["epochs"] == 1 and result["global_batch"] == 32
    assert result["steps"] > 0 and result["samples_per_second"] > 0
    assert 0.0 < result["test_f1"] < 1.0, "one epoch on the teacher's soft targets finds some entities"


def test_one_process_distils_the_translation_student_word_by_word():
    result = distil_mt_on_processes(Processes(), mode="fast", epochs=1, threads=1)
    assert result["world_size"] == 1 and result["epochs"] == 1
    assert result["steps"] > 0 and result["samples_per_second"] > 0 and result["train_loss"] > 0
    assert 0.0 <= result["test_bleu"] <= 100.0


def test_the_recipe_shares_the_cpu_among_the_processes(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ddp_student_recipe("fast", Processes(world_size=4, rank=1)).threads == 2
    assert ddp_student_recipe("fast", Processes(), epochs=3, threads=5).threads == 5
    assert ddp_student_recipe("fast", Processes(), epochs=3).epochs == 3
    assert ner_student_recipe("fast", Processes(world_size=2, rank=0)).threads == 4
    assert ner_student_recipe("fast", Processes()).method == "logits"


def test_the_command_line_refuses_a_bad_process_count():
    with pytest.raises(ValueError, match="nproc"):
        main(["--nproc", "0"])
    assert torch.distributed.is_available()
