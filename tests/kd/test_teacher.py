"""Tests for course_lib.kd.teacher: the frozen teacher and the logit cache keyed by dataset index."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_lib.kd.distiller import Distiller
from course_lib.kd.teacher import TeacherLogitCache


class Indexed(Dataset):
    """Examples as dicts that carry their dataset index."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index], "labels": self.labels[index], "index": torch.tensor(index)}


def classifier(seed: int, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def toy_data(n: int = 64) -> Indexed:
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randn(n, 6, generator=generator)
    return Indexed(inputs, (inputs[:, 0] > 0).long() + (inputs[:, 1] > 1).long())


def test_cached_teacher_logits_stay_aligned_under_a_shuffled_loader():
    teacher, data = classifier(0), toy_data()
    cache = TeacherLogitCache.build(teacher, DataLoader(data, batch_size=10, shuffle=False))
    shuffled = DataLoader(data, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(3))
    distiller = Distiller(teacher, temperature=2, alpha=0.0, cache=cache)
    for batch in shuffled:
        with torch.no_grad():
            assert torch.allclose(cache.lookup(batch["index"]), teacher(batch["inputs"]), atol=1e-6)
        assert torch.allclose(distiller.teacher_logits(batch, torch.device("cpu")), teacher(batch["inputs"]), atol=1e-6)
    with pytest.raises(IndexError, match="holds 64 examples"):
        cache.lookup(torch.tensor([64]))
    with pytest.raises(ValueError, match="exactly once"):
        TeacherLogitCache.build(teacher, [{"inputs": data.inputs[:4], "index": torch.tensor([0, 1, 2, 5])}])
