"""Tests for course_lib.layer_distill: layer maps, hidden-state and attention distillation, teacher initialisation."""

from __future__ import annotations

import pytest
import torch

from course_lib.layer_distill import IntermediateDistiller, LayerMap, init_from_teacher
from course_lib.transformer import TokenTagger, TransformerConfig

NUM_LABELS = 7


def tagger(layers: int, d_model: int = 32, heads: int = 4, seed: int = 0) -> TokenTagger:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=50, d_model=d_model, num_heads=heads, num_layers=layers, d_ff=2 * d_model,
                               max_len=32, dropout=0.1)
    return TokenTagger(config, NUM_LABELS)


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 50, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 4:] = False
    input_ids[~mask] = 0
    labels = torch.randint(0, NUM_LABELS, (3, 9), generator=generator).masked_fill(~mask, -100)
    return {"input_ids": input_ids, "mask": mask, "labels": labels}


def test_uniform_maps_follow_tinybert():
    assert LayerMap.uniform(4, 12).pairs == ((0, 0), (1, 3), (2, 6), (3, 9), (4, 12))
    assert LayerMap.uniform(2, 4, embeddings=False).pairs == ((1, 2), (2, 4))
    assert LayerMap.uniform(2, 4).block_pairs == ((1, 2), (2, 4))
    assert LayerMap.uniform(3, 3).pairs == ((0, 0), (1, 1), (2, 2), (3, 3))


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((), "at least one"),
        (((1, 2), (1, 4)), "student indices must be strictly increasing"),
        (((1, 4), (2, 2)), "teacher indices must be strictly increasing"),
        (((-1, 0),), "ints >= 0"),
        ((("a", 0),), "ints >= 0"),
    ],
)
def test_bad_layer_maps_are_rejected(pairs, message):
    with pytest.raises(ValueError, match=message):
        LayerMap(pairs)


def test_layer_maps_are_checked_against_the_models():
    with pytest.raises(ValueError, match="student no deeper than its teacher"):
        LayerMap.uniform(6, 3)
    with pytest.raises(ValueError, match=r"layer pair \(3, 4\) is out of range: the student has hidden states 0..2"):
        IntermediateDistiller(tagger(4), tagger(2), LayerMap(((1, 2), (3, 4))), temperature=2.0, alpha=0.5)


def test_only_the_projections_are_trainable_and_the_teacher_stays_frozen_in_eval_mode():
    teacher, student = tagger(4, d_model=64), tagger(2, d_model=32, seed=1)
    teacher.train()
    distiller = IntermediateDistiller(teacher, student, LayerMap.uniform(2, 4), temperature=2.0, alpha=0.5)
    assert sum(p.numel() for p in distiller.parameters()) == 3 * (32 * 64 + 64)
    student.train()
    distiller(student, batch()).backward()
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in distiller.parameters())
    assert sum(p.grad is not None for p in student.parameters()) == len(list(student.parameters()))


def test_every_term_ignores_what_sits_in_padded_positions():
    teacher, student = tagger(4, seed=0), tagger(2, seed=1)
    distiller = IntermediateDistiller(teacher, student, LayerMap.uniform(2, 4), temperature=3.0, alpha=0.4)
    student.eval()
    first = batch()
    second = {key: value.clone() for key, value in first.items()}
    second["input_ids"][~second["mask"]] = 17  # garbage where the mask says padding
    with torch.no_grad():
        a, b = distiller.terms(student, first), distiller.terms(student, second)
    assert set(a) == {"hard", "soft", "hidden", "attention"}
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_terms_depend_on_the_teacher_and_heads_may_differ():
    student = tagger(2, heads=2, seed=1)
    student.eval()
    losses = []
    for seed in (0, 5):
        distiller = IntermediateDistiller(tagger(4, heads=4, seed=seed), student, LayerMap.uniform(2, 4),
                                          temperature=2.0, alpha=0.0, attention_kind="kl")
        with torch.no_grad():
            losses.append(distiller.terms(student, batch()))
    for name in ("soft", "hidden", "attention"):
        assert not torch.allclose(losses[0][name], losses[1][name]), f"the {name} term ignores the teacher"


def test_a_student_cannot_be_its_own_teacher_and_label_sets_must_match():
    teacher = tagger(2)
    distiller = IntermediateDistiller(teacher, tagger(2, seed=1), LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="is its teacher"):
        distiller(teacher, batch())
    other = TokenTagger(tagger(2).config, NUM_LABELS + 1)
    with pytest.raises(ValueError, match="different label sets"):
        IntermediateDistiller(teacher, other, LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="must be a course_lib.transformer.TokenTagger"):
        IntermediateDistiller(torch.nn.Linear(2, 2), teacher, LayerMap.uniform(2, 2), temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="temperature"):
        IntermediateDistiller(teacher, tagger(2), LayerMap.uniform(2, 2), temperature=0.0, alpha=0.5)
    with pytest.raises(ValueError, match="hidden_weight must be a number >= 0"):
        IntermediateDistiller(teacher, tagger(2), LayerMap.uniform(2, 2), temperature=1.0, alpha=0.5, hidden_weight=-1)


def test_init_from_teacher_copies_mapped_blocks_when_the_widths_match():
    teacher, student = tagger(4, seed=0), tagger(2, seed=1)
    report = init_from_teacher(student, teacher, LayerMap(((0, 0), (1, 2), (2, 4))))
    assert report.copied_fraction == 1.0 and not report.skipped
    torch.testing.assert_close(student.encoder.blocks[0].feed_forward.fc1.weight, teacher.encoder.blocks[1].feed_forward.fc1.weight)
    torch.testing.assert_close(student.encoder.blocks[1].feed_forward.fc1.weight, teacher.encoder.blocks[3].feed_forward.fc1.weight)
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight)


def test_init_from_teacher_reports_what_a_narrower_student_cannot_take():
    teacher, student = tagger(4, d_model=64), tagger(2, d_model=32, seed=1)
    before = {name: value.clone() for name, value in student.state_dict().items()}
    report = init_from_teacher(student, teacher, LayerMap.uniform(2, 4))
    assert report.copied == ["classifier.bias"], "only the label-sized bias fits a narrower student"
    assert "differs from the teacher's" in report.skipped["encoder.embed.weight"]
    assert all(torch.equal(before[name], value) for name, value in student.state_dict().items() if name in report.skipped)
    partial = init_from_teacher(tagger(3, seed=2), tagger(4), LayerMap(((1, 2), (2, 4))))
    assert "no teacher block" in partial.skipped["encoder.blocks.2.feed_forward.fc1.weight"]
    assert 0 < partial.copied_fraction < 1
