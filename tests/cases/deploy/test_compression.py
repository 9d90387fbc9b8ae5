"""Tests for course_lib.cases.deploy.compression: magnitude pruning to a parameter budget and the Table-1 rows."""

from __future__ import annotations

import pytest
import torch

from course_lib.cases.deploy.compression import compression_rows, nonzero_parameters, _prune_to_budget
from course_lib.nn.mlp import MLP, MLPConfig


def mlp() -> MLP:
    torch.manual_seed(0)
    return MLP(MLPConfig(hidden=(32, 16)))


def test_pruning_keeps_exactly_the_budget_and_drops_the_smallest_weights():
    model = mlp()
    total = sum(p.numel() for p in model.parameters())
    pruned = _prune_to_budget(model, total // 3)
    assert nonzero_parameters(pruned) == total // 3
    assert type(pruned) is MLP and not any(name.endswith("_orig") for name, _ in pruned.named_parameters())
    kept = torch.cat([layer.weight.flatten() for layer in [*pruned.hidden, pruned.output]])
    original = torch.cat([layer.weight.flatten() for layer in [*model.hidden, model.output]])
    assert kept[kept != 0].abs().min() >= original[kept == 0].abs().max(), "global magnitude order"
    assert nonzero_parameters(model) == total, "the original is left untouched"


def test_pruning_refuses_a_budget_outside_the_biases_and_the_whole_network():
    model = mlp()
    with pytest.raises(ValueError, match="keep must lie between"):
        _prune_to_budget(model, 10)
    with pytest.raises(ValueError, match="keep must lie between"):
        _prune_to_budget(model, 10**9)
    with pytest.raises(TypeError, match="must be an MLP"):
        _prune_to_budget(torch.nn.Linear(2, 2), 1)


def test_the_four_rows_are_measured_on_real_digits(tiny_deploy_pairs):
    pair, data = tiny_deploy_pairs["pairs"]["mnist"], tiny_deploy_pairs["mnist"]
    rows = {row["method"]: row for row in compression_rows(pair.teacher, pair.student, data, rounds=1,
                                                           seconds_per_round=0.002)}
    assert list(rows) == ["teacher", "pruned", "int8", "distilled"]
    assert rows["pruned"]["nonzero_parameters"] == rows["distilled"]["nonzero_parameters"]
    assert rows["pruned"]["size_bytes"] >= rows["teacher"]["size_bytes"] * 0.99, "dense storage keeps the size"
    assert rows["int8"]["size_bytes"] < rows["teacher"]["size_bytes"] / 2
    assert all(0.0 <= row["accuracy"] <= 1.0 and row["latency_batch1_ms"] > 0 for row in rows.values())
    assert min(rows[name]["accuracy"] for name in ("teacher", "int8", "distilled")) > 0.5, "trained on real digits"
    assert abs(rows["int8"]["accuracy"] - rows["teacher"]["accuracy"]) < 0.02
