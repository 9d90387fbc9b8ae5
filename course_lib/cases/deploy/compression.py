"""Distillation beside the other ways to shrink a network, measured on MNIST (the deck's Table 1).

At the size of the distilled MNIST student (784-800-800-10, 1.28 M parameters) three routes start
from the same teacher (784-1200-1200-10, 2.40 M):

- **magnitude pruning**: zero the teacher's smallest weights (global L1 over every weight matrix,
  ``torch.nn.utils.prune``) until its non-zero parameters equal the student's; no retraining;
- **int8 quantisation**: the teacher's ONNX export with dynamic int8 weights (chapter 08);
- **distillation**: the student trained on the teacher's soft targets (chapter 08's bundle).

:func:`compression_rows` measures each the same way: test accuracy on the 10,000 MNIST digits,
non-zero parameters, the size of the file that is served, and CPU latency at batch 1 on one
thread (p50 of the quietest interleaved round). A pruned network stored densely keeps the
teacher's file and its latency: zeros are still multiplied unless sparse kernels run them.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

from course_lib.cases.deploy.table import digit_accuracy
from course_lib.data import MnistData, mnist_tensors
from course_lib.serve.bundle import WEIGHTS_FILE, load_bundle
from course_lib.train.latency import interleaved_latency
from course_lib.nn.mlp import MLP
from course_lib.serve.onnx import export_onnx, onnx_session, quantize_int8
from course_lib.serve.predict import DigitPredictor, OnnxRunner, TorchRunner


def nonzero_parameters(model: nn.Module) -> int:
    """How many parameters of ``model`` are not exactly zero (chapter 10)."""
    return int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))


def _prune_to_budget(model: MLP, keep: int) -> MLP:
    """A copy of ``model`` whose smallest-magnitude weights are zeroed until ``keep`` parameters remain non-zero.

    The pruning is global over the weight matrices (biases are kept and counted); the zeros are
    made permanent, so the copy is a plain MLP again.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    layers = [*model.hidden, model.output]
    biases = sum(layer.bias.numel() for layer in layers)
    weights = sum(layer.weight.numel() for layer in layers)
    if not biases <= keep <= weights + biases:
        raise ValueError(f"keep must lie between the {biases:,} biases and all {weights + biases:,} parameters, got {keep:,}")
    pruned = copy.deepcopy(model).cpu().eval()
    targets = [(layer, "weight") for layer in [*pruned.hidden, pruned.output]]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=weights + biases - keep)
    for layer, name in targets:
        prune.remove(layer, name)
    return pruned


def compression_rows(teacher_bundle: Path, student_bundle: Path, data: MnistData, *, rounds: int = 30,
                     seconds_per_round: float = 0.05) -> list[dict[str, Any]]:
    """The four rows of Table 1 (teacher, pruned teacher, int8 teacher, distilled student), measured (chapter 10)."""
    teacher = load_bundle(teacher_bundle).model
    student = load_bundle(student_bundle)
    budget = nonzero_parameters(student.model)
    pruned = _prune_to_budget(teacher, budget)
    one_digit = {"images": mnist_tensors(data, "test")[0][:1].numpy()}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        save_file({k: v.contiguous() for k, v in pruned.state_dict().items()}, str(scratch / "pruned.safetensors"))
        int8_path = quantize_int8(export_onnx(teacher, scratch / "teacher.onnx"), scratch / "teacher.int8.onnx")
        variants = {
            "teacher": ("teacher, PyTorch", TorchRunner(teacher), nonzero_parameters(teacher),
                        (teacher_bundle / WEIGHTS_FILE).stat().st_size),
            "pruned": ("teacher pruned to the student's size (magnitude, dense)", TorchRunner(pruned), nonzero_parameters(pruned),
                       (scratch / "pruned.safetensors").stat().st_size),
            "int8": ("teacher quantised to int8 (ONNX Runtime)", OnnxRunner(onnx_session(int8_path)),
                     nonzero_parameters(teacher), int8_path.stat().st_size),
            "distilled": ("student distilled from the teacher, PyTorch", TorchRunner(student.model), budget,
                          (student_bundle / WEIGHTS_FILE).stat().st_size),
        }
        latency = interleaved_latency(
            {name: ((lambda runner=runner: runner(one_digit)), 1) for name, (_, runner, _, _) in variants.items()},
            rounds=rounds, seconds_per_round=seconds_per_round)
        rows = []
        for name, (title, runner, parameters, size) in variants.items():
            rows.append({
                "method": name,
                "title": title,
                "accuracy": round(digit_accuracy(DigitPredictor(runner, [str(d) for d in range(10)]), data), 5),
                "nonzero_parameters": parameters,
                "size_bytes": size,
                "latency_batch1_ms": round(latency[name].p50_ms, 4),
            })
    return rows
