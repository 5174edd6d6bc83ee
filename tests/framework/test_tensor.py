"""The reference Tensor (tinytorch.core.tensor) against numpy: values, dtypes, broadcasting, errors."""
import numpy as np
import pytest

import tinytorch as tt
from tinytorch import Tensor

rng = np.random.default_rng(1234)

BROADCAST_PAIRS = [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((5,), ()), ((1,), (2, 3)), ((0, 3), (3,))]


def arr(shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.0], np.float32), (np.arange(3.0), np.float32), (2.5, np.float32),
    ([1, 2], np.int64), (np.arange(3, dtype=np.int32), np.int32), ([True, False], np.bool_),
])
def test_default_dtypes(data, dtype):
    assert Tensor(data).dtype == dtype


def test_explicit_dtype_wins_and_float32_input_is_not_copied():
    assert Tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    a = np.ones(4, dtype=np.float32)
    assert np.shares_memory(Tensor(a).data, a)
    assert Tensor(Tensor([1.0])).data.dtype == np.float32


def test_non_numeric_data_is_a_type_error_naming_the_dtype():
    with pytest.raises(TypeError, match="<U1"):
        Tensor(["a"])


def test_properties_and_memory():
    t = Tensor(np.zeros((4, 5)))
    assert (t.shape, t.ndim, t.size, t.nbytes) == ((4, 5), 2, 20, 80)
    assert t.memory_footprint() == 80
    t.grad = Tensor(np.zeros((4, 5)))
    assert t.memory_footprint() == 160
    t.zero_grad()
    assert t.grad is None and t.memory_footprint() == 80
    assert np.shares_memory(t.detach().data, t.data) and not t.detach().requires_grad
    assert Tensor([[3.0]]).item() == 3.0
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()


@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "<", "<=", ">", ">=", "==", "!="])
def test_binary_operators_match_numpy_under_broadcasting(op, sa, sb):
    x, y = np.abs(arr(sa)) + 0.5, np.abs(arr(sb)) + 0.5
    want = eval(f"x {op} y")
    got = eval(f"Tensor(x, dtype=np.float64) {op} Tensor(y, dtype=np.float64)")
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got.data, want)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
def test_reflected_operators_with_numbers_and_arrays(op):
    x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose(eval(f"3 {op} Tensor(x)").data, eval(f"3 {op} x"))
    result = eval(f"np.full(3, 2.0, dtype=np.float32) {op} Tensor(x)")
    assert isinstance(result, Tensor)
    np.testing.assert_allclose(result.data, eval(f"np.full(3, 2.0, dtype=np.float32) {op} x"))
    np.testing.assert_allclose((-Tensor(x)).data, -x)


def test_dtype_of_results_follows_numpy():
    f32, i64 = Tensor([1.0, 2.0]), Tensor([1, 2])
    assert (f32 * 2).dtype == np.float32 and (f32 + 0.5).dtype == np.float32
    assert (i64 + 1).dtype == np.int64 and (i64 / 2).dtype == np.float64
    assert (f32 > 1).dtype == np.bool_


@pytest.mark.parametrize("sa, sb", [((2, 3), (2,)), ((4, 3), (2, 1, 4)), ((0,), (3,))])
def test_broadcast_errors_name_both_shapes(sa, sb):
    with pytest.raises(ValueError) as e:
        Tensor(np.ones(sa)) + Tensor(np.ones(sb))
    assert str(sa) in str(e.value) and str(sb) in str(e.value) and "+" in str(e.value)


@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS + [((0,), (1,)), ((), ())])
def test_broadcast_shape_matches_numpy(sa, sb):
    assert tt.broadcast_shape(sa, sb) == np.broadcast_shapes(sa, sb)


def test_operand_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="list"):
        Tensor([1.0]) + [1.0]


@pytest.mark.parametrize("sa, sb", [((2, 3), (3, 4)), ((3,), (3,)), ((3,), (3, 2)), ((4, 3), (3,)),
                                    ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (6, 3, 2))])
def test_matmul_matches_numpy(sa, sb):
    x, y = arr(sa), arr(sb)
    got = Tensor(x, dtype=np.float64) @ Tensor(y, dtype=np.float64)
    np.testing.assert_allclose(got.data, x @ y, rtol=1e-12)
    np.testing.assert_allclose((Tensor(x, dtype=np.float64) @ y).data, x @ y, rtol=1e-12)


def test_naive_matmul_matches_fast_matmul():
    x, y = Tensor(arr((5, 7))), Tensor(arr((7, 3)))
    np.testing.assert_allclose(tt.matmul_naive(x, y).data, (x @ y).data, rtol=1e-5)
    with pytest.raises(ValueError):
        tt.matmul_naive(x, x)


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((4, 2, 3), (5, 3, 2)), ((), (2, 2))])
def test_matmul_shape_errors_name_both_shapes(sa, sb):
    with pytest.raises(ValueError) as e:
        Tensor(np.ones(sa)) @ Tensor(np.ones(sb))
    assert str(sa) in str(e.value) and str(sb) in str(e.value)


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(name, axis, keepdims):
    x = arr((3, 4, 5))
    got = getattr(Tensor(x, dtype=np.float64), name)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got.data, getattr(np, name)(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt"])
def test_elementwise_functions_match_numpy(name):
    x = np.abs(arr((4, 3))) + 0.1
    np.testing.assert_allclose(getattr(Tensor(x, dtype=np.float64), name)().data, getattr(np, name)(x))


def test_reshape_view_transpose_permute():
    x = Tensor(np.arange(24.0))
    assert x.reshape(2, -1, 4).shape == (2, 3, 4) and x.reshape((4, 6)).shape == (4, 6)
    v = x.view(4, 6)
    assert np.shares_memory(v.data, x.data)
    m = x.reshape(4, 6)
    assert m.T.shape == (6, 4) and np.shares_memory(m.T.data, x.data)
    np.testing.assert_array_equal(m.T.reshape(-1).data, m.data.T.reshape(-1))
    with pytest.raises(ValueError, match="reshape"):
        m.T.view(24)
    with pytest.raises(ValueError, match=r"\(24,\).*\(5, 5\)"):
        x.reshape(5, 5)
    with pytest.raises(ValueError):
        x.reshape(-1, -1)
    y = Tensor(np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(y.transpose(0, 2).data, np.swapaxes(y.data, 0, 2))
    np.testing.assert_array_equal(y.permute(2, 0, 1).data, np.transpose(y.data, (2, 0, 1)))
    with pytest.raises(ValueError, match="permutation"):
        y.permute(0, 0, 1)


def test_indexing_views_copies_and_tensor_indices():
    x = Tensor(np.arange(12.0).reshape(3, 4))
    assert np.shares_memory(x[1:, ::2].data, x.data)
    np.testing.assert_array_equal(x[Tensor([2, 0])].data, x.data[[2, 0]])
    np.testing.assert_array_equal(x[x > 5].data, x.data[x.data > 5])
    np.testing.assert_array_equal(x[Tensor([0, 2]), Tensor([1, 3])].data, [1.0, 11.0])
    assert x[1, 2].shape == () and x[1, 2].item() == 6.0


def test_manual_seed_makes_every_constructor_repeatable():
    tt.manual_seed(3)
    a, b = tt.randn(4, 5), tt.rand(6)
    tt.manual_seed(3)
    assert np.array_equal(a.data, tt.randn(4, 5).data) and np.array_equal(b.data, tt.rand((6,)).data)
    assert a.dtype == b.dtype == np.float32


def test_constructors():
    assert tt.zeros(2, 3).dtype == np.float32 and tt.zeros(2, 3).data.sum() == 0
    assert tt.ones((2,), dtype=np.int64).dtype == np.int64
    np.testing.assert_array_equal(tt.arange(5).data, np.arange(5))
    assert tt.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert tt.tensor([1.0], requires_grad=True).requires_grad


def test_tensors_are_hashable_by_identity_and_repr_is_readable():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.], dtype=float32)"
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]) > 0)
