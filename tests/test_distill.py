"""Tests for course_lib.distill; several pin down bugs seen in public knowledge-distillation code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_lib.distill import (
    Distiller,
    HiddenStateLoss,
    TeacherLogitCache,
    attention_map_loss,
    distillation_terms,
    kd_loss,
    model_logits,
    soft_kl,
    soft_targets,
)
from course_lib.training import train


def logits_pair(batch: int = 8, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(batch, classes, generator=generator, dtype=torch.float64),
            3 * torch.randn(batch, classes, generator=generator, dtype=torch.float64))


logit_rows = st.lists(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=4
)


# --- the logit loss ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(rows=logit_rows, temperature=st.floats(0.5, 50))
def test_soft_loss_is_zero_for_equal_logits_and_invariant_to_shifts(rows, temperature):
    logits = torch.tensor(rows, dtype=torch.float64)
    labels = torch.zeros(len(rows), dtype=torch.long)
    assert kd_loss(logits, logits.clone(), labels, T=temperature, alpha=0.0).item() == pytest.approx(0, abs=1e-9)
    shifted = logits + 7.5  # a softmax does not see a constant added to every logit
    assert soft_kl(shifted, logits, temperature).item() == pytest.approx(0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(student=logit_rows, seed=st.integers(0, 10_000), temperature=st.floats(0.5, 50))
def test_soft_loss_is_never_negative(student, seed, temperature):
    student_logits = torch.tensor(student, dtype=torch.float64)
    teacher_logits = 5 * torch.randn(student_logits.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert soft_kl(student_logits, teacher_logits, temperature).item() >= -1e-12


def test_kd_loss_matches_the_formula_with_batchmean():
    student, teacher = logits_pair()
    labels = torch.arange(8) % 10
    T, alpha = 4.0, 0.3
    expected_kl = F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction="batchmean")
    expected = alpha * F.cross_entropy(student, labels) + (1 - alpha) * T**2 * expected_kl
    assert torch.allclose(kd_loss(student, teacher, labels, T=T, alpha=alpha), expected)
    with pytest.warns(UserWarning, match="batchmean"):  # PyTorch itself warns about this reduction
        wrong_mean = F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction="mean")
    assert torch.allclose(soft_kl(student, teacher, T), wrong_mean * 10), "'mean' also divides by the class count"


def test_alpha_one_is_plain_cross_entropy_and_alpha_zero_needs_no_labels():
    student, teacher = logits_pair()
    labels = torch.arange(8) % 10
    assert torch.allclose(kd_loss(student, teacher, labels, T=3, alpha=1.0), F.cross_entropy(student, labels))
    assert torch.allclose(kd_loss(student, teacher, None, T=3, alpha=0.0), 9 * soft_kl(student, teacher, 3))


def test_soft_gradient_is_difference_of_softened_probabilities_over_t():
    student, teacher = logits_pair()
    student.requires_grad_(True)
    T = 3.0
    soft_kl(student, teacher, T).backward()
    expected = (soft_targets(student.detach(), T) - soft_targets(teacher, T)) / (T * student.shape[0])
    assert torch.allclose(student.grad, expected)


def test_t_squared_keeps_the_soft_gradient_size_across_temperatures():
    student, teacher = logits_pair(batch=32)
    with_factor, without_factor = [], []
    for T in (5.0, 10.0, 20.0, 40.0):
        for scaled, store in ((True, with_factor), (False, without_factor)):
            z = student.clone().requires_grad_(True)
            loss = kd_loss(z, teacher, None, T=T, alpha=0.0) if scaled else soft_kl(z, teacher, T)
            loss.backward()
            store.append(z.grad.norm().item())
    assert max(with_factor) / min(with_factor) < 1.5, with_factor
    assert without_factor[0] / without_factor[-1] > 40, "without T**2 the soft gradient shrinks like 1/T**2"


def test_high_temperature_limit_is_logit_matching():
    student, teacher = logits_pair()
    T = 1000.0
    centred = (student - student.mean(-1, keepdim=True)) - (teacher - teacher.mean(-1, keepdim=True))
    matching = (centred**2).sum(-1).mean() / (2 * student.shape[-1])
    assert kd_loss(student, teacher, None, T=T, alpha=0).item() == pytest.approx(matching.item(), rel=1e-3)


def test_token_level_loss_ignores_padding():
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(2, 5, 7, generator=generator)
    teacher = torch.randn(2, 5, 7, generator=generator)
    labels = torch.randint(0, 7, (2, 5), generator=generator)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    loss = kd_loss(student, teacher, labels, T=2, alpha=0.5, mask=mask)
    noisy_student, noisy_teacher, noisy_labels = student.clone(), teacher.clone(), labels.clone()
    noisy_student[1, 3:] = 100 * torch.randn(2, 7)
    noisy_teacher[1, 3:] = -100 * torch.randn(2, 7)
    noisy_labels[1, 3:] = -100
    assert torch.allclose(kd_loss(noisy_student, noisy_teacher, noisy_labels, T=2, alpha=0.5, mask=mask), loss)
    real = mask.flatten()
    flat = kd_loss(student.flatten(0, 1)[real], teacher.flatten(0, 1)[real], labels.flatten()[real], T=2, alpha=0.5)
    assert torch.allclose(loss, flat), "token-level loss = the example-level loss over real tokens"


def test_teacher_logits_receive_no_gradient():
    student, teacher = logits_pair()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    kd_loss(student, teacher, torch.zeros(8, dtype=torch.long), T=2, alpha=0.5).backward()
    assert teacher.grad is None and student.grad is not None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"T": 0}, "temperature must be a finite number > 0"),
        ({"T": -1.0}, "temperature must be a finite number > 0"),
        ({"T": float("nan")}, "temperature must be a finite number > 0"),
        ({"T": "2"}, "temperature must be a number > 0"),
        ({"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha must be a number in \[0, 1\]"),
        ({"alpha": True}, r"alpha must be a number in \[0, 1\]"),
        ({"labels": None}, "labels is None|there are no labels"),
        ({"teacher_logits": torch.zeros(8, 9)}, "student has 10 classes but teacher has 9"),
        ({"teacher_logits": torch.zeros(4, 10)}, "must have the same shape"),
        ({"labels": torch.zeros(3, dtype=torch.long)}, "labels must have shape"),
        ({"mask": torch.ones(8, dtype=torch.bool)}, "mask is only for"),
    ],
)
def test_bad_input_names_the_value(kwargs, match):
    student, teacher = logits_pair()
    arguments = {"student_logits": student.float(), "teacher_logits": teacher.float(),
                 "labels": torch.zeros(8, dtype=torch.long), "T": 2.0, "alpha": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        kd_loss(**arguments)


def test_token_level_logits_need_a_mask_of_the_right_shape():
    student = torch.zeros(2, 5, 7)
    with pytest.raises(ValueError, match="need mask"):
        kd_loss(student, student, None, T=2, alpha=0)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 5\)"):
        kd_loss(student, student, None, T=2, alpha=0, mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no real token"):
        kd_loss(student, student, None, T=2, alpha=0, mask=torch.zeros(2, 5, dtype=torch.bool))


def test_terms_report_both_parts():
    student, teacher = logits_pair()
    labels = torch.arange(8) % 10
    terms = distillation_terms(student, teacher, labels, temperature=2.0)
    assert set(terms) == {"hard", "soft"}
    assert torch.allclose(0.25 * terms["hard"] + 0.75 * terms["soft"], kd_loss(student, teacher, labels, T=2, alpha=0.25))
    assert set(distillation_terms(student, teacher, None, temperature=2.0)) == {"soft"}


# --- hidden states and attention maps ---------------------------------------------------------

def test_hidden_state_loss_projects_ignores_padding_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    loss_fn = HiddenStateLoss(student_dim=4, teacher_dim=6)
    student_hidden = torch.randn(2, 3, 4)
    with torch.no_grad():
        teacher_hidden = loss_fn.projection(student_hidden)
    assert loss_fn(student_hidden, teacher_hidden).item() == pytest.approx(0, abs=1e-12)
    teacher_hidden = torch.randn(2, 3, 6, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    loss = loss_fn(student_hidden, teacher_hidden, mask)
    changed = teacher_hidden.detach().clone()
    changed[1, 1:] = 50.0
    assert torch.allclose(loss_fn(student_hidden, changed, mask), loss)
    loss.backward()
    assert teacher_hidden.grad is None and loss_fn.projection.weight.grad is not None


@pytest.mark.parametrize(
    "student_shape, teacher_shape, match",
    [((2, 3, 5), (2, 3, 6), r"student_hidden must be \(batch, length, 4\)"),
     ((2, 3, 4), (2, 3, 5), r"teacher_hidden must be \(batch, length, 6\)"),
     ((2, 3, 4), (2, 4, 6), "different \\(batch, length\\)")],
)
def test_hidden_state_loss_rejects_mismatched_shapes(student_shape, teacher_shape, match):
    with pytest.raises(ValueError, match=match):
        HiddenStateLoss(4, 6)(torch.zeros(student_shape), torch.zeros(teacher_shape))
    with pytest.raises(ValueError, match="student_dim must be a positive int"):
        HiddenStateLoss(0, 6)


def _attention(seed: int, shape=(2, 3, 4, 4)) -> torch.Tensor:
    return torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.mark.parametrize("kind", ["kl", "mse"])
def test_attention_map_loss(kind):
    student, teacher = _attention(0), _attention(1)
    assert attention_map_loss(teacher, teacher.clone(), kind=kind).item() == pytest.approx(0, abs=1e-7)
    assert attention_map_loss(student, teacher, kind=kind).item() > 0
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    loss = attention_map_loss(student, teacher, mask, kind=kind)
    changed = student.clone()
    changed[1, :, 2:] = _attention(5, (3, 2, 4))  # only padded query rows differ
    assert torch.allclose(attention_map_loss(changed, teacher, mask, kind=kind), loss)


def test_attention_map_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="heads must match"):
        attention_map_loss(_attention(0, (2, 2, 4, 4)), _attention(1))
    with pytest.raises(ValueError, match="kind must be"):
        attention_map_loss(_attention(0), _attention(1), kind="cosine")
    with pytest.raises(ValueError, match="mask must have shape"):
        attention_map_loss(_attention(0), _attention(1), torch.ones(2, 3, dtype=torch.bool))


# --- the distiller and the teacher cache ------------------------------------------------------

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


def test_distiller_keeps_the_teacher_frozen_and_in_eval_mode():
    teacher = classifier(0, dropout=0.5)
    modes: list[bool] = []
    teacher.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    distiller = Distiller(teacher, temperature=4, alpha=0.5)
    teacher.train()  # a caller switching it back must not turn dropout on
    student = classifier(1)
    batch = next(iter(DataLoader(toy_data(), batch_size=16)))
    first = distiller(student, batch)
    second = distiller(student, batch)
    first.backward()
    assert modes == [False, False]
    assert torch.equal(first, second), "a teacher with dropout on would give a different target each call"
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    with pytest.raises(ValueError, match="is its teacher"):
        distiller(teacher, batch)


def test_distiller_loss_depends_on_the_teacher():
    student = classifier(1)
    batch = next(iter(DataLoader(toy_data(), batch_size=16)))
    losses = [Distiller(classifier(seed), temperature=4, alpha=0.0)(student, batch).item() for seed in (0, 2)]
    assert losses[0] != pytest.approx(losses[1])


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


def test_distiller_trains_a_student_towards_its_teacher_with_the_course_loop():
    teacher, data = classifier(0), toy_data(256)
    student = classifier(4)
    loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    distiller = Distiller(teacher, temperature=2, alpha=0.0)
    probe = next(iter(DataLoader(data, batch_size=256)))
    before = soft_kl(model_logits(student, probe), model_logits(teacher, probe), 2).item()
    history = train(student, loader, loss_fn=distiller, optimizer=torch.optim.Adam(student.parameters(), lr=1e-2),
                    epochs=5, progress=False)
    after = soft_kl(model_logits(student, probe), model_logits(teacher, probe), 2).item()
    assert after < 0.2 * before
    assert math.isfinite(history.step_losses[-1])


def test_distiller_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature must be"):
        Distiller(classifier(0), temperature=0, alpha=0.5)
    with pytest.raises(ValueError, match="alpha must be"):
        Distiller(classifier(0), temperature=2, alpha=2)
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        Distiller("teacher", temperature=2, alpha=0.5)
    with pytest.raises(KeyError, match="'input_ids'.*'inputs'"):
        model_logits(classifier(0), {"x": torch.zeros(1, 6)})


def test_tuple_batches_work_like_dicts():
    teacher, student, data = classifier(0), classifier(1), toy_data(16)
    as_dict = {"inputs": data.inputs, "labels": data.labels, "index": torch.arange(16)}
    as_tuple = (data.inputs, data.labels, torch.arange(16))
    distiller = Distiller(teacher, temperature=3, alpha=0.4)
    assert torch.equal(distiller(student, as_dict), distiller(student, as_tuple[:2]))
    cache = TeacherLogitCache.build(teacher, [as_tuple])
    cached = Distiller(teacher, temperature=3, alpha=0.4, cache=cache)
    assert torch.allclose(cached(student, as_tuple), distiller(student, as_dict))
    with pytest.raises(TypeError, match="a batch must be a dict"):
        distiller(student, data.inputs)
