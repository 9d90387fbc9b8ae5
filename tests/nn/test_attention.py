"""Tests for course_lib.nn.attention against PyTorch's reference implementations."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.nn.attention import MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention

ATOL = 1e-5


def _qkv(*batch: int, lq: int = 5, lk: int = 7, d_k: int = 8, d_v: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, lq, d_k, generator=gen)
    k = torch.randn(*batch, lk, d_k, generator=gen)
    v = torch.randn(*batch, lk, d_v, generator=gen)
    return q, k, v


# --- scaled_dot_product_attention -------------------------------------------------------


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_sdpa_matches_torch_without_mask(batch):
    q, k, v = _qkv(*batch)
    out, weights = scaled_dot_product_attention(q, k, v)
    expected = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert weights.shape == (*batch, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*batch, 5), atol=ATOL, rtol=0)


def test_sdpa_matches_torch_with_bool_mask():
    q, k, v = _qkv(2, 3)
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 3, 5, 7, generator=gen) > 0.4
    mask[..., 0] = True  # every query keeps at least one key
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(weights[~mask] == 0)


def test_sdpa_matches_torch_with_broadcast_padding_mask():
    q, k, v = _qkv(2, 3)
    lengths = torch.tensor([7, 4])
    mask = padding_mask(lengths)  # (2, 1, 1, 7) broadcasts over heads and queries
    out, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


def test_sdpa_matches_torch_causal():
    q, k, v = _qkv(2, 3, lq=6, lk=6)
    out, weights = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_sdpa_fully_masked_rows_give_zeros_not_nan():
    q, k, v = _qkv(2, lq=4, lk=5)
    q.requires_grad_(True)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, 3] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any()
    assert torch.all(out[0, 1] == 0) and torch.all(weights[1, 3] == 0)
    torch.testing.assert_close(weights[0, 0].sum(), torch.tensor(1.0))
    out.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_sdpa_dropout_only_in_training():
    q, k, v = _qkv(2)
    out_eval, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(out_eval, scaled_dot_product_attention(q, k, v)[0])
    torch.manual_seed(0)
    out_train, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    assert not torch.allclose(out_train, out_eval)
    # the returned weights are the distribution before dropout
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5), atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query": torch.randn(4)}, ValueError, "query must have at least 2 dimensions"),
        ({"key": torch.randn(7, 3)}, ValueError, "query and key must have the same last dimension"),
        ({"value": torch.randn(6, 6)}, ValueError, "key and value must have the same length"),
        ({"mask": torch.ones(5, 7)}, TypeError, "mask must be a boolean tensor"),
        ({"mask": torch.ones(5, 6, dtype=torch.bool)}, ValueError, r"mask of shape \(5, 6\)"),
        ({"mask": torch.ones(3, 5, 7, dtype=torch.bool)}, ValueError, "does not broadcast"),
        ({"dropout_p": 1.0}, ValueError, "dropout_p must be in"),
        ({"query": [[1.0]]}, TypeError, "query must be a torch.Tensor"),
    ],
)
def test_sdpa_rejects_bad_input(kwargs, error, match):
    q, k, v = _qkv()
    args = {"query": q, "key": k, "value": v, **kwargs}
    with pytest.raises(error, match=match):
        scaled_dot_product_attention(**args)


# --- masks ------------------------------------------------------------------------------


def test_padding_mask_from_bool_and_lengths_agree():
    real = torch.tensor([[True, True, True, False], [True, False, False, False]])
    from_bool = padding_mask(real)
    from_lengths = padding_mask(torch.tensor([3, 1]), max_len=4)
    assert from_bool.shape == (2, 1, 1, 4) and from_bool.dtype == torch.bool
    assert torch.equal(from_bool, from_lengths)
    assert padding_mask(torch.tensor([3, 1])).shape == (2, 1, 1, 3)


@pytest.mark.parametrize(
    ("arg", "kwargs", "error", "match"),
    [
        (torch.ones(2, 3, 4, dtype=torch.bool), {}, ValueError, r"shape \(batch, length\)"),
        (torch.ones(2, 3), {}, TypeError, "mask_or_lengths must be a boolean"),
        (torch.ones(2, 3, dtype=torch.long), {}, ValueError, r"shape \(batch,\)"),
        (torch.tensor([3, -1]), {}, ValueError, "lengths must be >= 0"),
        (torch.tensor([5, 2]), {"max_len": 4}, ValueError, "shorter than the longest length 5"),
        (torch.ones(2, 3, dtype=torch.bool), {"max_len": 4}, ValueError, "disagrees"),
    ],
)
def test_padding_mask_rejects_bad_input(arg, kwargs, error, match):
    with pytest.raises(error, match=match):
        padding_mask(arg, **kwargs)


def test_causal_mask():
    mask = causal_mask(4)
    assert mask.shape == (4, 4) and mask.dtype == torch.bool
    assert torch.equal(mask, torch.tril(torch.ones(4, 4)).bool())
    with pytest.raises(ValueError, match="length must be a positive int, got 0"):
        causal_mask(0)


# --- MultiHeadAttention vs torch.nn.MultiheadAttention ----------------------------------


def _pair(d_model: int = 16, num_heads: int = 4, bias: bool = True):
    """Our module and torch's, with identical weights, in eval mode."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(d_model, num_heads, bias=bias).eval()
    ref = nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        w_q, w_k, w_v = ref.in_proj_weight.chunk(3, dim=0)
        ours.q_proj.weight.copy_(w_q)
        ours.k_proj.weight.copy_(w_k)
        ours.v_proj.weight.copy_(w_v)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        if bias:
            # torch initialises these biases to zero; make them non-trivial first
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
            b_q, b_k, b_v = ref.in_proj_bias.chunk(3)
            ours.q_proj.bias.copy_(b_q)
            ours.k_proj.bias.copy_(b_k)
            ours.v_proj.bias.copy_(b_v)
            ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ours, ref


def _assert_same(ours_result, ref_result):
    out, weights = ours_result
    ref_out, ref_weights = ref_result
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.mean(dim=1), ref_weights, atol=ATOL, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_mha_matches_torch_self_attention(bias):
    ours, ref = _pair(bias=bias)
    x = torch.randn(3, 6, 16)
    _assert_same(ours(x, x, x), ref(x, x, x))


def test_mha_matches_torch_cross_attention_with_key_padding():
    ours, ref = _pair()
    query, memory = torch.randn(2, 4, 16), torch.randn(2, 7, 16)
    real = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    result = ours(query, memory, memory, mask=real)
    _assert_same(result, ref(query, memory, memory, key_padding_mask=~real))
    assert result[1].shape == (2, 4, 4, 7)
    assert torch.all(result[1][1, :, :, 3:] == 0)
    # the (B, 1, 1, Lk) form from padding_mask gives the same result
    out, weights = ours(query, memory, memory, mask=padding_mask(real))
    torch.testing.assert_close(out, result[0])
    torch.testing.assert_close(weights, result[1])


def test_mha_matches_torch_causal_and_padding():
    ours, ref = _pair()
    x = torch.randn(2, 5, 16)
    causal = causal_mask(5)
    _assert_same(ours(x, x, x, mask=causal[None]), ref(x, x, x, attn_mask=~causal))
    real = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    combined = causal[None, None] & padding_mask(real)
    _assert_same(
        ours(x, x, x, mask=combined),
        ref(x, x, x, attn_mask=~causal, key_padding_mask=~real),
    )


def test_mha_dropout_acts_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, dropout=0.5)
    x = torch.randn(2, 5, 16)
    mha.eval()
    first, second = mha(x, x, x)[0], mha(x, x, x)[0]
    torch.testing.assert_close(first, second)
    mha.train()
    assert not torch.allclose(mha(x, x, x)[0], first)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d_model": 10, "num_heads": 4}, r"d_model \(10\) must be divisible by num_heads \(4\)"),
        ({"d_model": 0, "num_heads": 1}, "d_model must be a positive int"),
        ({"d_model": 8, "num_heads": 2, "dropout": -0.1}, "dropout must be in"),
    ],
)
def test_mha_rejects_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(**kwargs)


@pytest.mark.parametrize(
    ("query", "key", "mask", "error", "match"),
    [
        (torch.randn(6, 16), None, None, ValueError, r"query must have shape \(batch, length"),
        (torch.randn(2, 6, 12), None, None, ValueError, "query must have last dimension d_model=16"),
        (None, torch.randn(3, 6, 16), None, ValueError, "same batch size"),
        (None, None, torch.ones(2, 6), TypeError, "mask must be a boolean tensor"),
        (None, None, torch.ones(2, 5, dtype=torch.bool), ValueError, "padding mask"),
        (None, None, torch.ones(6, 6, dtype=torch.bool), ValueError, r"mask\[None, None\]"),
        (None, None, torch.ones(2, 3, 6, 6, dtype=torch.bool), ValueError, "does not broadcast"),
        (None, None, torch.ones(1, 1, 1, 6, 6, dtype=torch.bool), ValueError, "got 5-D"),
    ],
)
def test_mha_rejects_bad_input(query, key, mask, error, match):
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 6, 16)
    query = x if query is None else query
    key = x if key is None else key
    with pytest.raises(error, match=match):
        mha(query, key, key, mask=mask)
