"""Tests for course_lib.kd.teacher: the frozen teacher and the logit cache keyed by dataset index."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from course_lib.kd.distiller import Distiller
from course_lib.kd.teacher import TeacherLogitCache
from tests.kd import classifier, toy_data


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
