"""Tests for course_lib.kd.layers: layer maps and DistilBERT's initialisation from the teacher."""

from __future__ import annotations

import pytest
import torch

from course_lib.kd.distiller import IntermediateDistiller
from course_lib.kd.layers import LayerMap, init_from_teacher, reduced_embeddings
from tests.kd import tagger


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
    assert report.reduced == ["encoder.embed.weight"], "the token embeddings are reduced to the student's width"
    assert "differs from the teacher's" in report.skipped["encoder.blocks.0.feed_forward.fc1.weight"]
    assert all(torch.equal(before[name], value) for name, value in student.state_dict().items() if name in report.skipped)
    initial_rms = float(before["encoder.embed.weight"].pow(2).mean().sqrt())
    expected = reduced_embeddings(teacher.encoder.embed.weight, 32, initial_rms)
    torch.testing.assert_close(student.encoder.embed.weight, expected)
    partial = init_from_teacher(tagger(3, seed=2), tagger(4), LayerMap(((1, 2), (2, 4))))
    assert "no teacher block" in partial.skipped["encoder.blocks.2.feed_forward.fc1.weight"]
    assert 0 < partial.copied_fraction < 1


def test_reduced_embeddings_keep_the_geometry_of_a_table_no_wider_than_the_student_and_the_students_scale():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(50, 6, generator=generator) @ torch.randn(6, 40, generator=generator)  # rank 6 in 40 columns
    reduced = reduced_embeddings(table, 8, rms=0.125)
    assert reduced.shape == (50, 8)
    assert float(reduced.pow(2).mean().sqrt()) == pytest.approx(0.125, rel=1e-4)
    ratio = torch.cdist(reduced, reduced) / torch.cdist(table, table).clamp(min=1e-6)
    off_diagonal = ratio[~torch.eye(50, dtype=torch.bool)]
    assert float(off_diagonal.max() - off_diagonal.min()) < 1e-3, "every distance shrinks by the same factor"


def test_reduced_embeddings_reject_a_student_wider_than_the_teacher():
    with pytest.raises(ValueError, match="at least 16 wide"):
        reduced_embeddings(torch.randn(10, 8), 16, rms=1.0)
    with pytest.raises(ValueError, match="rms"):
        reduced_embeddings(torch.randn(10, 8), 4, rms=0.0)
