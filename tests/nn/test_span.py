"""Tests for course_lib.nn.span: shapes, the passage mask, padding, bad inputs."""

import pytest
import torch

from course_lib.nn.span import NOT_AN_ANSWER, SpanExtractor, SpanOutput
from course_lib.nn.transformer import TransformerConfig


def _model() -> SpanExtractor:
    torch.manual_seed(0)
    return SpanExtractor(TransformerConfig(vocab_size=20, d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=12,
                                           dropout=0.0)).eval()


def _ids() -> torch.Tensor:
    return torch.randint(1, 20, (2, 8), generator=torch.Generator().manual_seed(0))


def test_start_and_end_logits_are_one_per_token_and_stacked_as_logits():
    output = _model()(_ids())
    assert isinstance(output, SpanOutput)
    assert output.start_logits.shape == output.end_logits.shape == (2, 8)
    assert output.logits.shape == (2, 8, 2)
    assert torch.equal(output.logits[..., 0], output.start_logits) and torch.equal(output.logits[..., 1], output.end_logits)
    assert len(output.hidden) == 2 and len(output.attention) == 1


def test_positions_outside_the_passage_can_never_be_answers():
    passage = torch.zeros(2, 8, dtype=torch.bool)
    passage[:, 3:] = True
    output = _model()(_ids(), passage_mask=passage)
    assert bool((output.start_logits[:, :3] == NOT_AN_ANSWER).all())
    assert bool((torch.sigmoid(output.end_logits[:, :3]) == 0).all())
    assert bool((output.start_logits[:, 3:] != NOT_AN_ANSWER).all())


def test_padding_does_not_change_the_real_positions():
    model = _model()
    ids = _ids()[:1, :5]
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = padded != 0
    alone, with_pad = model(ids), model(padded, mask=mask)
    assert torch.allclose(alone.logits, with_pad.logits[:, :5], atol=1e-5)
    assert bool((with_pad.start_logits[:, 5:] == NOT_AN_ANSWER).all()), "padding is never an answer"


def test_bad_passage_masks_are_refused():
    model, ids = _model(), _ids()
    with pytest.raises(TypeError, match="boolean"):
        model(ids, passage_mask=torch.ones(2, 8))
    with pytest.raises(ValueError, match="shape"):
        model(ids, passage_mask=torch.ones(2, 7, dtype=torch.bool))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[:, -1] = False
    with pytest.raises(ValueError, match="padding"):
        model(ids, mask=mask, passage_mask=torch.ones(2, 8, dtype=torch.bool))
