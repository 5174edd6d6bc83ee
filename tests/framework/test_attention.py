"""The reference attention (tinytorch.core.attention): values against a numpy reference (masks,
cross-attention, a state dict in PyTorch's keys), gradients by finite differences in float64,
causality, padding, numerical stability, dtypes, errors."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.core.attention import AttentionFunction, attention_naive, causal_mask, padding_mask

from .gradcheck import numeric_grad


def ref_attention(q, k, v, mask=None):
    """Direct definition, one query row at a time, in float64 (no code shared with the package)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    L, S = q.shape[-2], k.shape[-2]
    if mask is None:
        mask = np.ones((L, S), dtype=bool)
    mask = np.asarray(mask)
    lead = np.broadcast_shapes(lead, mask.shape[:-2])
    q, k, v = (np.broadcast_to(a, lead + a.shape[-2:]) for a in (q, k, v))
    mask = np.broadcast_to(mask, lead + (L, S))
    out = np.zeros(lead + (L, v.shape[-1]))
    for idx in np.ndindex(*lead):
        for i in range(L):
            s = k[idx] @ q[idx][i] / np.sqrt(q.shape[-1])
            m = mask[idx][i]
            if m.dtype == bool:
                keep = m
            else:
                s = s + m
                keep = np.isfinite(s)
            if not keep.any():
                continue
            w = np.exp(s[keep] - s[keep].max())
            out[idx][i] = (w / w.sum()) @ v[idx][keep]
    return out


def ref_mha(sd, query, key, value, num_heads, mask=None):
    """torch.nn.MultiheadAttention's math (separate q/k/v weights, batch first) in numpy."""
    def proj(x, name):
        return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]
    B, L, E = query.shape
    S, hd = key.shape[1], E // num_heads
    q = proj(query, "q_proj").reshape(B, L, num_heads, hd).transpose(0, 2, 1, 3)
    k = proj(key, "k_proj").reshape(B, S, num_heads, hd).transpose(0, 2, 1, 3)
    v = proj(value, "v_proj").reshape(B, S, num_heads, hd).transpose(0, 2, 1, 3)
    heads = ref_attention(q, k, v, mask).transpose(0, 2, 1, 3).reshape(B, L, E)
    return proj(heads, "out_proj")


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def float64_mha(embed_dim, num_heads, seed):
    """A MultiHeadAttention in float64 loaded from a state dict of numpy arrays (PyTorch's keys)."""
    rng = np.random.default_rng(seed)
    mha = nn.MultiHeadAttention(embed_dim, num_heads)
    sd = {name: 0.5 * rng.standard_normal(p.shape) for name, p in mha.named_parameters()}
    for p in mha.parameters():
        p.data = p.data.astype(np.float64)
    mha.load_state_dict(sd)
    return mha, sd


MASKS = {
    "none": lambda L, S, rng: None,
    "causal": lambda L, S, rng: np.tril(np.ones((L, S), dtype=bool)),
    "random bool": lambda L, S, rng: rng.random((L, S)) > 0.3,
    "padding": lambda L, S, rng: (np.arange(S) < np.array([S, max(S - 2, 1)])[:, None])[:, None, None, :],
    "float": lambda L, S, rng: np.where(rng.random((L, S)) > 0.3, rng.standard_normal((L, S)), -np.inf),
}


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("L, S", [(4, 4), (3, 5), (5, 2)])
def test_sdpa_matches_the_reference(mask_name, L, S):
    rng = np.random.default_rng(L * 10 + S)
    q, k, v = rng.standard_normal((2, 3, L, 4)), rng.standard_normal((2, 3, S, 4)), rng.standard_normal((2, 3, S, 5))
    mask = MASKS[mask_name](L, S, rng)
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=mask)
    assert out.shape == (2, 3, L, 5)
    np.testing.assert_allclose(out.data, ref_attention(q, k, v, mask), atol=1e-12)
    if mask is None or mask.dtype == bool:
        np.testing.assert_allclose(attention_naive(q, k, v, mask), ref_attention(q, k, v, mask), atol=1e-12)


@pytest.mark.parametrize("L, S", [(4, 4), (3, 6), (6, 3)])
def test_is_causal_is_torchs_top_left_tril(L, S):
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, L, 4)), rng.standard_normal((2, S, 4)), rng.standard_normal((2, S, 3))
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True)
    np.testing.assert_allclose(out.data, ref_attention(q, k, v, np.tril(np.ones((L, S), dtype=bool))), atol=1e-12)
    assert causal_mask(L, S).tolist() == np.tril(np.ones((L, S))).astype(bool).tolist()


MASK_CASES = [None, "causal", "random", "float"]


@pytest.mark.parametrize("mask_kind", MASK_CASES)
def test_attention_gradients_by_finite_differences(mask_kind):
    rng = np.random.default_rng(7)
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 3))
    mask = {None: None, "causal": np.tril(np.ones((3, 5), dtype=bool)), "random": rng.random((2, 1, 3, 5)) > 0.4,
            "float": rng.standard_normal((3, 5))}[mask_kind]
    G = rng.standard_normal((2, 2, 3, 3))
    Q, K, V = t64(q, True), t64(k, True), t64(v, True)
    F.scaled_dot_product_attention(Q, K, V, attn_mask=mask).backward(G)

    def loss():
        return float((F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=mask).data * G).sum())
    for T, arr in ((Q, q), (K, k), (V, v)):
        np.testing.assert_allclose(T.grad.data, numeric_grad(loss, arr), atol=1e-7)


def test_broadcast_key_and_value_receive_summed_gradients():
    rng = np.random.default_rng(8)
    q, k, v = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((1, 1, 5, 2)), rng.standard_normal((5, 3))
    G = rng.standard_normal((2, 3, 4, 3))
    Q, K, V = t64(q, True), t64(k, True), t64(v, True)
    F.scaled_dot_product_attention(Q, K, V).backward(G)

    def loss():
        return float((F.scaled_dot_product_attention(t64(q), t64(k), t64(v)).data * G).sum())
    assert K.grad.shape == (1, 1, 5, 2) and V.grad.shape == (5, 3)
    np.testing.assert_allclose(K.grad.data, numeric_grad(loss, k), atol=1e-7)
    np.testing.assert_allclose(V.grad.data, numeric_grad(loss, v), atol=1e-7)


def test_causal_output_ignores_future_tokens():
    rng = np.random.default_rng(2)
    tt.manual_seed(0)
    mha = nn.MultiHeadAttention(16, 4)
    x = rng.standard_normal((2, 6, 16)).astype(np.float32)
    base = mha(Tensor(x), is_causal=True).data
    for t in range(6):
        x2 = x.copy()
        x2[:, t] += 10 * rng.standard_normal(16)
        out = mha(Tensor(x2), is_causal=True).data
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert not np.allclose(out[:, t], base[:, t])


def test_padding_masks_of_different_lengths_in_one_batch():
    rng = np.random.default_rng(3)
    lengths = [5, 2, 4]
    q, k, v = rng.standard_normal((3, 2, 4, 6)), rng.standard_normal((3, 2, 5, 6)), rng.standard_normal((3, 2, 5, 6))
    mask = padding_mask(lengths, 5)
    assert mask.shape == (3, 1, 1, 5)
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=mask).data
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(out[b], ref_attention(q[b], k[b, :, :n], v[b, :, :n]), atol=1e-12)
    # what the padding holds (finite) does not matter
    k2, v2 = k.copy(), v.copy()
    k2[1, :, 2:] = 1e6
    v2[1, :, 2:] = -1e6
    out2 = F.scaled_dot_product_attention(t64(q), t64(k2), t64(v2), attn_mask=mask).data
    np.testing.assert_allclose(out2[1], out[1], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_no_overflow_or_nan_with_large_scores_and_dtypes_kept(dtype):
    rng = np.random.default_rng(4)
    scale = 3.0 if dtype == np.float16 else 300.0
    q, k, v = (scale * rng.standard_normal((2, 5, 4))).astype(dtype), (scale * rng.standard_normal((2, 5, 4))).astype(dtype), rng.standard_normal((2, 5, 3)).astype(dtype)
    Q, K, V = (Tensor(a, requires_grad=True, dtype=dtype) for a in (q, k, v))
    out = F.scaled_dot_product_attention(Q, K, V, is_causal=True)
    assert out.dtype == dtype and np.all(np.isfinite(out.data))
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(out.data, ref_attention(q, k, v, causal_mask(5)), atol=tol, rtol=tol)
    out.backward(np.ones(out.shape, dtype=dtype))
    for T in (Q, K, V):
        assert T.grad.dtype == dtype and np.all(np.isfinite(T.grad.data))


def test_fully_masked_rows_give_zeros_and_no_gradient():
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 2))
    for mask in (np.array([[True, False, True, False], [False] * 4, [True] * 4]),
                 np.array([[0.0, -np.inf, 0.0, -np.inf], [-np.inf] * 4, [0.0] * 4])):
        Q, K, V = t64(q, True), t64(k, True), t64(v, True)
        out = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        assert np.all(out.data[:, 1] == 0) and np.all(np.isfinite(out.data))
        np.testing.assert_allclose(out.data, ref_attention(q, k, v, mask), atol=1e-12)
        out.backward(np.ones(out.shape))
        assert np.all(Q.grad.data[:, 1] == 0)
        assert all(np.all(np.isfinite(T.grad.data)) for T in (Q, K, V))


def test_multihead_attention_matches_numpy_from_a_state_dict():
    mha, sd = float64_mha(12, 3, seed=10)
    assert [n for n, _ in mha.named_parameters()] == ["q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias",
                                                       "v_proj.weight", "v_proj.bias", "out_proj.weight", "out_proj.bias"]
    rng = np.random.default_rng(11)
    x, mem, val = rng.standard_normal((2, 5, 12)), rng.standard_normal((2, 7, 12)), rng.standard_normal((2, 7, 12))
    np.testing.assert_allclose(mha(t64(x)).data, ref_mha(sd, x, x, x, 3), atol=1e-10)
    np.testing.assert_allclose(mha(t64(x), is_causal=True).data, ref_mha(sd, x, x, x, 3, causal_mask(5)), atol=1e-10)
    np.testing.assert_allclose(mha(t64(x), t64(mem), t64(val)).data, ref_mha(sd, x, mem, val, 3), atol=1e-10)
    np.testing.assert_allclose(mha(t64(x), t64(mem)).data, ref_mha(sd, x, mem, mem, 3), atol=1e-10)
    pm = padding_mask([7, 3], 7)
    np.testing.assert_allclose(mha(t64(x), t64(mem), t64(val), attn_mask=pm).data, ref_mha(sd, x, mem, val, 3, pm), atol=1e-10)
    fm = rng.standard_normal((5, 5))
    np.testing.assert_allclose(mha(t64(x), attn_mask=Tensor(fm, dtype=np.float64)).data, ref_mha(sd, x, x, x, 3, fm), atol=1e-10)


def test_multihead_attention_gradients_by_finite_differences():
    mha, _ = float64_mha(8, 2, seed=12)
    rng = np.random.default_rng(13)
    x, mem = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 4, 8))
    G = rng.standard_normal((2, 3, 8))
    X, M = t64(x, True), t64(mem, True)
    mha(X, M, attn_mask=padding_mask([4, 2], 4)).backward(G)

    def loss():
        return float((mha(t64(x), t64(mem), attn_mask=padding_mask([4, 2], 4)).data * G).sum())
    for name, p in mha.named_parameters():
        np.testing.assert_allclose(p.grad.data, numeric_grad(loss, p.data), atol=1e-6, err_msg=name)
    np.testing.assert_allclose(X.grad.data, numeric_grad(loss, x), atol=1e-6)
    np.testing.assert_allclose(M.grad.data, numeric_grad(loss, mem), atol=1e-6)


def test_multihead_attention_float32_by_default():
    tt.manual_seed(0)
    mha = nn.MultiHeadAttention(32, 4)
    assert mha.head_dim == 8 and sum(p.size for p in mha.parameters()) == 4 * (32 * 32 + 32)
    x = Tensor(np.random.default_rng(0).standard_normal((3, 7, 32)), requires_grad=True)
    out = mha(x, is_causal=True)
    assert out.shape == (3, 7, 32) and out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in mha.parameters())


def test_backward_skips_operands_without_gradients():
    rng = np.random.default_rng(6)
    q, k, v = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    Q = Tensor(q, requires_grad=True)
    out = F.scaled_dot_product_attention(Q, Tensor(k), Tensor(v))
    grads = AttentionFunction.backward(out._ctx, np.ones(out.shape, dtype=np.float32))
    assert grads[0] is not None and grads[1] is None and grads[2] is None


def test_errors_name_what_was_expected_and_received():
    x = t64(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(2, 3, 5\)"):
        F.scaled_dot_product_attention(x, t64(np.ones((2, 3, 5))), x)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(2, 6, 4\)"):
        F.scaled_dot_product_attention(x, x, t64(np.ones((2, 6, 4))))
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(2, 3, 3\)"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=np.ones((3, 3), dtype=bool), is_causal=True)
    with pytest.raises(TypeError, match="ndarray"):
        F.scaled_dot_product_attention(np.ones((2, 3, 4)), x, x)
    with pytest.raises(TypeError, match="int64"):
        F.scaled_dot_product_attention(Tensor(np.ones((2, 3, 4), dtype=np.int64)), x, x)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match=r"\(2, 5, 6\)"):
        nn.MultiHeadAttention(8, 2)(Tensor(np.zeros((2, 5, 6))))
    with pytest.raises(ValueError, match=r"\(2, 4, 8\)"):
        nn.MultiHeadAttention(8, 2)(Tensor(np.zeros((2, 5, 8))), Tensor(np.zeros((2, 3, 8))), Tensor(np.zeros((2, 4, 8))))
    with pytest.raises(ValueError, match="0"):
        causal_mask(0)
    with pytest.raises(ValueError, match="5"):
        padding_mask([5], 4)
