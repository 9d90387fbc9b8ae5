"""Tests for course_lib.kd.losses; several pin down bugs seen in public knowledge-distillation code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.kd.losses import (
    HiddenStateLoss,
    TopLogits,
    attention_map_loss,
    distillation_terms,
    entropy_bits,
    kd_loss,
    soft_kl,
    softmax_with_temperature,
)


def logits_pair(batch: int = 8, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(batch, classes, generator=generator, dtype=torch.float64),
            3 * torch.randn(batch, classes, generator=generator, dtype=torch.float64))


logit_rows = st.lists(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=4
)


def _attention(seed: int, shape=(2, 3, 4, 4)) -> torch.Tensor:
    return torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


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
    expected = (softmax_with_temperature(student.detach(), T) - softmax_with_temperature(teacher, T)) / (T * student.shape[0])
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
        ({"T": 0}, "temperature must be a number > 0"),
        ({"T": -1.0}, "temperature must be a number > 0"),
        ({"T": float("nan")}, "temperature must be a number > 0"),
        ({"T": "2"}, "temperature must be a number > 0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha must be in \[0, 1\]"),
        ({"alpha": True}, r"alpha must be in \[0, 1\]"),
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


def test_temperature_one_is_plain_softmax():
    logits = torch.tensor([2.0, 1.0, -1.0])
    assert torch.allclose(softmax_with_temperature(logits, 1.0), torch.softmax(logits, -1))


def test_higher_temperature_raises_entropy():
    logits = torch.tensor([5.0, 1.0, 0.5, -2.0])
    entropies = [entropy_bits(softmax_with_temperature(logits, t)).item() for t in (0.5, 1, 2, 5, 20)]
    assert entropies == sorted(entropies)
    assert entropies[-1] < 2.0 + 1e-6  # log2(4) is the ceiling


@pytest.mark.parametrize("bad", [0, -1.0, -0.1, True, "2"])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        softmax_with_temperature(torch.zeros(3), bad)


def test_integer_logits_rejected():
    with pytest.raises(TypeError, match="floating point"):
        softmax_with_temperature(torch.tensor([1, 2]), 1.0)


# Awkward inputs: each of these breaks a naive implementation (chapter 05 shows the naive one failing).


def reference_kd(student, teacher, labels, T, alpha):
    """Hinton's loss written out term by term, the way the PyTorch and Keras tutorials write it."""
    soft = F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction="batchmean")
    return alpha * F.cross_entropy(student, labels) + (1 - alpha) * T**2 * soft


@pytest.mark.parametrize("T, alpha", [(1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (4.0, 0.3), (20.0, 0.9), (3.0, 1.0)])
def test_value_and_gradient_equal_the_reference_formula_on_random_logits(T, alpha):
    """(1.0, 0.5) is the case where both terms share one log-softmax of the student."""
    generator = torch.Generator().manual_seed(int(10 * T))
    student = (3 * torch.randn(16, 10, generator=generator, dtype=torch.float64)).requires_grad_(True)
    teacher = 3 * torch.randn(16, 10, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (16,), generator=generator)
    ours = kd_loss(student, teacher, labels, T=T, alpha=alpha)
    (ours_grad,) = torch.autograd.grad(ours, student)
    reference = reference_kd(student, teacher, labels, T, alpha)
    (reference_grad,) = torch.autograd.grad(reference, student)
    assert torch.allclose(ours, reference) and torch.allclose(ours_grad, reference_grad)


def test_a_teacher_logit_of_minus_infinity_adds_nothing_instead_of_nan():
    student, teacher = logits_pair(batch=4, classes=6)
    teacher[:, 2] = float("-inf")  # a class the teacher rules out (a masked vocabulary entry)
    student.requires_grad_(True)
    loss = kd_loss(student, teacher, None, T=2.0, alpha=0.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    log_p = F.log_softmax(teacher / 2.0, -1)[:, [0, 1, 3, 4, 5]]
    log_q = F.log_softmax(student.detach() / 2.0, -1)[:, [0, 1, 3, 4, 5]]
    expected = 4.0 * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize("garbage", [float("nan"), float("-inf"), float("inf")])
def test_what_sits_in_padded_positions_never_reaches_the_loss_or_its_gradient(garbage):
    generator = torch.Generator().manual_seed(3)
    student = torch.randn(2, 5, 7, generator=generator)
    teacher = torch.randn(2, 5, 7, generator=generator)
    labels = torch.randint(0, 7, (2, 5), generator=generator)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    clean = kd_loss(student, teacher, labels, T=2.0, alpha=0.5, mask=mask)
    student_dirty, teacher_dirty = student.clone(), teacher.clone()
    student_dirty[1, 2:] = garbage
    teacher_dirty[1, 2:] = garbage
    student_dirty.requires_grad_(True)
    dirty = kd_loss(student_dirty, teacher_dirty, labels, T=2.0, alpha=0.5, mask=mask)
    dirty.backward()
    assert torch.allclose(dirty, clean) and torch.isfinite(student_dirty.grad).all()
    assert torch.equal(student_dirty.grad[1, 2:], torch.zeros(3, 7)), "padding gets no gradient"


def test_a_term_whose_weight_is_zero_is_not_computed():
    student, teacher = logits_pair(batch=4, classes=5)
    student[:, 3] = float("-inf")  # the student rules out a class the teacher likes: KL is infinite
    labels = torch.tensor([0, 1, 2, 4])
    student.requires_grad_(True)
    loss = kd_loss(student, teacher, labels, T=2.0, alpha=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert torch.allclose(loss, F.cross_entropy(student.detach(), labels))
    assert torch.isinf(kd_loss(student.detach(), teacher, labels, T=2.0, alpha=0.5)), "with weight on it, it counts"


def test_the_attention_loss_of_a_sentence_does_not_depend_on_the_padding_of_its_batch():
    generator = torch.Generator().manual_seed(5)
    length = 4

    def maps(padded: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = [torch.randn(1, 2, length, length, generator=torch.Generator().manual_seed(seed)) for seed in (1, 2)]
        student, teacher = (torch.softmax(s, -1) for s in scores)
        mask = torch.ones(1, length + padded, dtype=torch.bool)
        mask[0, length:] = False
        pad = lambda a: F.pad(a, (0, padded, 0, padded))  # noqa: E731
        return pad(student), pad(teacher), mask

    del generator
    for kind in ("mse", "kl"):
        alone = attention_map_loss(*maps(0), kind=kind)
        in_a_long_batch = attention_map_loss(*maps(12), kind=kind)
        assert torch.allclose(alone, in_a_long_batch), kind


def test_a_mask_without_a_real_token_is_refused_by_every_loss():
    empty = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="no real token"):
        kd_loss(torch.randn(2, 3, 5), torch.randn(2, 3, 5), None, T=2.0, alpha=0.0, mask=empty)
    with pytest.raises(ValueError, match="no real token"):
        HiddenStateLoss(4, 6)(torch.randn(2, 3, 4), torch.randn(2, 3, 6), empty)
    with pytest.raises(ValueError, match="no real token"):
        attention_map_loss(torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3), empty, kind="mse")


def test_half_precision_logits_are_computed_in_float32():
    generator = torch.Generator().manual_seed(7)
    student = 12 * torch.randn(8, 30, generator=generator)
    teacher = 12 * torch.randn(8, 30, generator=generator)
    labels = torch.randint(0, 30, (8,), generator=generator)
    half = student.half().requires_grad_(True)
    loss = kd_loss(half, teacher.half(), labels, T=1.0, alpha=0.5)
    loss.backward()
    expected = kd_loss(student.half().float(), teacher.half().float(), labels, T=1.0, alpha=0.5)
    assert loss.dtype == torch.float32 and torch.allclose(loss, expected)
    assert half.grad.dtype == torch.float16 and torch.isfinite(half.grad).all()


GOLDEN = Path(__file__).with_name("golden_losses.json")


def golden_values() -> dict[str, float]:
    """The losses at fixed seeds, as :file:`golden_losses.json` records them."""
    generator = torch.Generator().manual_seed(2024)
    student = 2 * torch.randn(3, 5, 7, generator=generator, dtype=torch.float64)
    teacher = 2 * torch.randn(3, 5, 7, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 7, (3, 5), generator=generator)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    maps = [torch.softmax(torch.randn(3, 2, 5, 5, generator=generator, dtype=torch.float64), -1) for _ in range(2)]
    torch.manual_seed(2024)
    hidden = HiddenStateLoss(4, 6).double()
    hidden_student = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64)
    hidden_teacher = torch.randn(3, 5, 6, generator=generator, dtype=torch.float64)
    return {
        "kd_loss_T2_alpha0.5": kd_loss(student, teacher, labels, T=2.0, alpha=0.5, mask=mask).item(),
        "kd_loss_T4_alpha0": kd_loss(student, teacher, None, T=4.0, alpha=0.0, mask=mask).item(),
        "attention_map_loss_kl": attention_map_loss(*maps, mask=mask, kind="kl").item(),
        "attention_map_loss_mse": attention_map_loss(*maps, mask=mask, kind="mse").item(),
        "hidden_state_loss": hidden(hidden_student, hidden_teacher, mask).item(),
    }


def test_the_losses_keep_their_pinned_values():
    pinned = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden_values() == pytest.approx(pinned, rel=1e-9)


def test_a_teachers_top_logits_give_the_same_loss_and_gradient_as_full_rows_with_the_rest_ruled_out():
    generator = torch.Generator().manual_seed(5)
    student = torch.randn(3, 4, 11, generator=generator, requires_grad=True)
    teacher = torch.randn(3, 4, 11, generator=generator)
    labels, mask = torch.randint(0, 11, (3, 4), generator=generator), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1] * 4])
    values, classes = teacher.topk(3, dim=-1)
    ruled_out = torch.full_like(teacher, float("-inf")).scatter(-1, classes, values)
    sparse = kd_loss(student, TopLogits(values, classes), labels, 2.0, 0.4, mask.bool())
    (sparse_grad,) = torch.autograd.grad(sparse, student)
    dense = kd_loss(student, ruled_out, labels, 2.0, 0.4, mask.bool())
    (dense_grad,) = torch.autograd.grad(dense, student)
    torch.testing.assert_close(sparse, dense)
    torch.testing.assert_close(sparse_grad, dense_grad)
    with pytest.raises(ValueError, match="must cover the student's rows"):
        kd_loss(student, TopLogits(values[:, :3], classes[:, :3]), labels, 2.0, 0.4, mask.bool())
    with pytest.raises(ValueError, match="integer classes"):
        TopLogits(values, classes.float())
