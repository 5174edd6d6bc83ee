"""The reference acceleration module (tinytorch.core.acceleration): the tiled matrix product
against np.matmul for many shapes and block sizes, vectorised pairwise distances and the
windowed 1-D convolution against direct references, the fused Linear + GELU against the chain of
Tensor operations, its gradients by finite differences in float64, dtypes kept, and errors.
No test asserts on time: the notebook's systems cells and benchmarks/ print measurements."""
import numpy as np
import pytest

import tinytorch.optimization as opt
from tinytorch import Tensor
from tinytorch.core.acceleration import (LinearGELUFunction, pairwise_sq_dists_loop, sliding_conv1d_copies)
from tinytorch.core.activations import gelu
from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Context

from .gradcheck import numeric_grad


def ref_gelu(z):
    return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


# ---------------------------------------------------------------- matmul_blocked
SHAPES = [(1, 1, 1), (1, 7, 1), (7, 1, 5), (1, 9, 4), (6, 1, 1), (8, 8, 8), (9, 10, 11),
          (33, 17, 65), (64, 64, 64), (65, 63, 31), (3, 100, 2), (0, 3, 2), (2, 0, 3)]


@pytest.mark.parametrize("m, k, n", SHAPES)
@pytest.mark.parametrize("block", [1, 2, 3, 7, 16, 32, 1000])
def test_blocked_matmul_equals_numpy_matmul(m, k, n, block):
    rng = np.random.default_rng(m * 10_000 + k * 100 + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    got = opt.matmul_blocked(a, b, block=block)
    assert got.shape == (m, n)
    np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)


def test_blocked_matmul_adds_every_inner_tile():
    # K = 3 * block + 1: four inner tiles, each contributing; `=` instead of `+=` keeps only the last
    a, b = np.ones((4, 13)), np.ones((13, 5))
    assert np.array_equal(opt.matmul_blocked(a, b, block=4), np.full((4, 5), 13.0))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64])
def test_blocked_matmul_keeps_numpys_result_type(dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((9, 7)) * 4).astype(dtype)
    b = (rng.standard_normal((7, 5)) * 4).astype(dtype)
    got = opt.matmul_blocked(a, b, block=4)
    assert got.dtype == np.result_type(a, b)
    if np.issubdtype(dtype, np.integer):
        assert np.array_equal(got, a @ b)
    else:
        np.testing.assert_allclose(got.astype(np.float64), (a @ b).astype(np.float64), rtol=1e-2 if dtype == np.float16 else 1e-5, atol=0.1 if dtype == np.float16 else 1e-5)
    assert opt.matmul_blocked(a.astype(np.float32), b.astype(np.float64)).dtype == np.float64


def test_blocked_matmul_errors_name_what_was_received():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        opt.matmul_blocked(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        opt.matmul_blocked(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="block.*0"):
        opt.matmul_blocked(np.ones((2, 2)), np.ones((2, 2)), block=0)
    for bad in (2.0, True, "8", None):
        with pytest.raises(TypeError, match="block"):
            opt.matmul_blocked(np.ones((2, 2)), np.ones((2, 2)), block=bad)
    with pytest.raises(TypeError, match="list"):
        opt.matmul_blocked([[1.0]], np.ones((1, 1)))


# ---------------------------------------------------------------- pairwise_sq_dists
@pytest.mark.parametrize("n, m, d", [(1, 1, 1), (5, 4, 3), (1, 9, 2), (12, 1, 7), (20, 30, 16)])
def test_pairwise_distances_match_the_definition(n, m, d):
    rng = np.random.default_rng(n + m + d)
    x, y = rng.standard_normal((n, d)) * 3, rng.standard_normal((m, d)) + 1
    want = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(opt.pairwise_sq_dists(x, y), want, atol=1e-10)
    np.testing.assert_allclose(pairwise_sq_dists_loop(x, y), want, atol=1e-10)


def test_pairwise_distances_are_never_negative_and_keep_float32():
    far = (1000 + np.random.default_rng(1).random((64, 8))).astype(np.float32)
    got = opt.pairwise_sq_dists(far, far)
    assert got.dtype == np.float32 and got.min() >= 0
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4, 3\)"):
        opt.pairwise_sq_dists(np.ones((3, 2)), np.ones((4, 3)))


# ---------------------------------------------------------------- sliding_conv1d
@pytest.mark.parametrize("shape, k", [((5,), 1), ((5,), 5), ((2, 11), 3), ((2, 3, 16), 6)])
def test_sliding_conv1d_is_np_correlate_along_the_last_axis(shape, k):
    rng = np.random.default_rng(k)
    x, w = rng.standard_normal(shape), rng.standard_normal(k)
    want = np.apply_along_axis(lambda r: np.correlate(r, w, mode="valid"), -1, x)
    np.testing.assert_allclose(opt.sliding_conv1d(x, w), want, atol=1e-12)
    np.testing.assert_allclose(sliding_conv1d_copies(x, w), want, atol=1e-12)


def test_sliding_conv1d_dtype_and_errors():
    x, w = np.ones((2, 8), np.float32), np.ones(3, np.float32)
    assert opt.sliding_conv1d(x, w).dtype == np.float32
    for xs, ws in [((5,), (2, 2)), ((5,), (0,)), ((), (1,)), ((3,), (4,))]:
        with pytest.raises(ValueError):
            opt.sliding_conv1d(np.ones(xs), np.ones(ws))


# ---------------------------------------------------------------- fused Linear + GELU
@pytest.mark.parametrize("x_shape, out_f", [((4, 3), 5), ((3,), 2), ((2, 3, 4), 6), ((1, 1), 1)])
def test_fused_linear_gelu_values_match_the_chain(x_shape, out_f):
    rng = np.random.default_rng(out_f)
    x = rng.standard_normal(x_shape)
    w, b = rng.standard_normal((out_f, x_shape[-1])), rng.standard_normal(out_f)
    got = opt.fused_linear_gelu(t64(x), t64(w), t64(b))
    chain = gelu(t64(x) @ t64(w).T + t64(b))
    assert got.shape == x_shape[:-1] + (out_f,)
    np.testing.assert_allclose(got.data, ref_gelu(x @ w.T + b), atol=1e-12)
    np.testing.assert_allclose(got.data, chain.data, atol=1e-12)


@pytest.mark.parametrize("x_shape, out_f", [((4, 3), 5), ((3,), 2), ((2, 3, 4), 3)])
def test_fused_linear_gelu_gradients_by_finite_differences(x_shape, out_f):
    rng = np.random.default_rng(10 + out_f)
    x = 1.5 * rng.standard_normal(x_shape)
    w, b = rng.standard_normal((out_f, x_shape[-1])), rng.standard_normal(out_f)
    g = rng.standard_normal(x_shape[:-1] + (out_f,))
    X, W, B = t64(x, True), t64(w, True), t64(b, True)
    opt.fused_linear_gelu(X, W, B).backward(g)
    loss = lambda: float((ref_gelu(x @ w.T + b) * g).sum())
    for T, arr in ((X, x), (W, w), (B, b)):
        np.testing.assert_allclose(T.grad.data, numeric_grad(loss, arr), atol=1e-6)


def test_fused_gradients_equal_the_chains_and_skip_unneeded_work():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    g = rng.standard_normal((6, 3))
    chain = [t64(v, True) for v in (x, w, b)]
    gelu(chain[0] @ chain[1].T + chain[2]).backward(g)
    fused = [t64(v, True) for v in (x, w, b)]
    opt.fused_linear_gelu(*fused).backward(g)
    for c, f in zip(chain, fused):
        np.testing.assert_allclose(f.grad.data, c.grad.data, atol=1e-12)
    x32, w32, b32 = (v.astype(np.float32) for v in (x, w, b))
    for needs in [(True, False, False), (False, True, True), (False, False, False)]:
        ops = tuple(Tensor(v, requires_grad=n) for v, n in zip((x32, w32, b32), needs))
        ctx = Context(LinearGELUFunction, ops)
        y = LinearGELUFunction.forward(ctx, x32, w32, b32)
        assert y.dtype == np.float32
        assert len(ctx.saved_tensors) == 3 and ctx.saved_tensors[2].dtype == np.float32
        grads = LinearGELUFunction.backward(ctx, np.ones_like(y))
        assert [gr is None for gr in grads] == [not n for n in needs]
        assert all(gr.dtype == np.float32 for gr in grads if gr is not None)


def test_fused_linear_gelu_errors():
    f = lambda xs, ws, bs, dt=np.float64: opt.fused_linear_gelu(Tensor(np.ones(xs, dt), dtype=dt), Tensor(np.ones(ws, dt), dtype=dt),
                                                             Tensor(np.ones(bs, dt), dtype=dt))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 5\)"):
        f((3, 4), (2, 5), (2,))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        f((3, 4), (2, 4), (3,))
    with pytest.raises(TypeError, match="int64"):
        f((3, 4), (2, 4), (2,), np.int64)
    with pytest.raises(TypeError, match="float32"):
        opt.fused_linear_gelu(Tensor(np.ones((3, 4), np.float32)), t64(np.ones((2, 4))), t64(np.ones(2)))


def test_linear_gelu_module_loads_a_linears_state_and_matches_it():
    lin = Linear(5, 3)
    fused = opt.LinearGELU(5, 3)
    fused.load_state_dict(lin.state_dict())
    assert sorted(dict(fused.named_parameters())) == ["bias", "weight"]
    x = Tensor(np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32))
    np.testing.assert_allclose(fused(x).data, gelu(lin(x)).data, atol=1e-6)
    assert fused(x).dtype == np.float32
