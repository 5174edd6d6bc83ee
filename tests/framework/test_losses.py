"""The reference losses (tinytorch.core.losses) against independent float64 references, at ordinary and extreme inputs."""
import math

import numpy as np
import pytest

import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor

rng = np.random.default_rng(11)


def ce_scalar(row, y):  # plain-Python reference with math.fsum, independent of numpy's reductions
    m = max(row)
    return m + math.log(math.fsum(math.exp(v - m) for v in row)) - row[y]


def test_mse_matches_reference_in_float64():
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    got = nn.MSELoss()(Tensor(a, dtype=np.float64), Tensor(b, dtype=np.float64))
    assert got.shape == () and got.dtype == np.float64
    ref = math.fsum(((x - y) ** 2 for x, y in zip(a.ravel(), b.ravel()))) / a.size
    assert abs(float(got.data) - ref) < 1e-13
    assert float(F.mse_loss(Tensor([2.5, 0.0, 2.0]), Tensor([3.0, -0.5, 2.0])).data) == pytest.approx(1 / 6, rel=1e-6)


def test_cross_entropy_matches_reference_in_float64():
    z = rng.standard_normal((9, 6)) * 5
    y = rng.integers(0, 6, 9)
    got = nn.CrossEntropyLoss()(Tensor(z, dtype=np.float64), Tensor(y))
    ref = math.fsum(ce_scalar(list(z[i]), int(y[i])) for i in range(9)) / 9
    assert got.shape == () and got.dtype == np.float64
    assert abs(float(got.data) - ref) < 1e-12
    assert float(F.cross_entropy(Tensor(np.zeros((3, 10))), Tensor([1, 2, 3])).data) == pytest.approx(math.log(10), rel=1e-6)


def test_bce_matches_reference_in_float64():
    p = rng.uniform(0.001, 0.999, 20)
    t = (rng.uniform(size=20) > 0.5).astype(np.float64)
    got = nn.BCELoss()(Tensor(p, dtype=np.float64), Tensor(t, dtype=np.float64))
    ref = -math.fsum(math.log(pi) if ti else math.log(1 - pi) for pi, ti in zip(p, t)) / 20
    assert abs(float(got.data) - ref) < 1e-13
    assert float(F.binary_cross_entropy(Tensor([0.25]), Tensor([1.0])).data) == pytest.approx(math.log(4), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_prediction(dtype):
    assert nn.MSELoss()(Tensor([1.0, 2.0], dtype=dtype), np.array([0.0, 0.0])).dtype == dtype
    assert nn.CrossEntropyLoss()(Tensor([[1.0, 2.0]], dtype=dtype), Tensor([0])).dtype == dtype
    assert nn.BCELoss()(Tensor([0.3], dtype=dtype), np.array([1.0])).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_finite_without_warnings(dtype):
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ce = nn.CrossEntropyLoss()(Tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype), Tensor([1, 1]))
        bce = nn.BCELoss()(Tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype), Tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype))
    assert float(ce.data) == pytest.approx(1e4, rel=1e-6)  # row 0 is wrong by 2e4, row 1 right: mean 1e4
    assert np.isfinite(float(bce.data)) and 7.5 < float(bce.data) < 8.1  # two terms of ~-log(1e-7) = 16.1, mean over 4


def test_bce_clips_at_eps():
    got = float(nn.BCELoss()(Tensor([0.0], dtype=np.float64), Tensor([1.0], dtype=np.float64)).data)
    assert got == pytest.approx(-math.log(1e-7), rel=1e-12)


def test_cross_entropy_gradient_closed_form_by_finite_differences():
    # the loss is the one autograd (Module 06) will differentiate: its finite-difference gradient
    # must equal (softmax - onehot) / N
    z = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    f = lambda zz: float(nn.CrossEntropyLoss()(Tensor(zz, dtype=np.float64), Tensor(y)).data)
    num = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        d = np.zeros_like(z)
        d[i] = 1e-6
        num[i] = (f(z + d) - f(z - d)) / 2e-6
    e = np.exp(z - z.max(axis=1, keepdims=True))
    ana = (e / e.sum(axis=1, keepdims=True) - np.eye(3)[y]) / 4
    np.testing.assert_allclose(num, ana, atol=1e-8)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: nn.MSELoss()(Tensor([[1.0], [2.0]]), Tensor([1.0, 2.0])), ValueError, ["(2, 1)", "(2,)"]),
    (lambda: nn.MSELoss()([1.0], Tensor([1.0])), TypeError, ["Tensor", "list"]),
    (lambda: nn.CrossEntropyLoss()(Tensor(np.zeros((2, 3))), Tensor([0, 3])), ValueError, ["[0, 3)", "3"]),
    (lambda: nn.CrossEntropyLoss()(Tensor(np.zeros((2, 3))), Tensor([0, -1])), ValueError, ["[0, 3)", "-1"]),
    (lambda: nn.CrossEntropyLoss()(Tensor(np.zeros((2, 3))), Tensor([0.0, 1.0])), TypeError, ["integer", "float"]),
    (lambda: nn.CrossEntropyLoss()(Tensor(np.zeros((2, 3))), Tensor([0, 1, 2])), ValueError, ["(2,)", "(3,)"]),
    (lambda: nn.CrossEntropyLoss()(Tensor(np.zeros(3)), Tensor([0])), ValueError, ["(N, C)", "(3,)"]),
    (lambda: nn.CrossEntropyLoss()(Tensor([[1, 2]]), Tensor([0])), TypeError, ["floating", "int"]),
    (lambda: nn.BCELoss()(Tensor([1.5]), Tensor([1.0])), ValueError, ["[0, 1]", "1.5"]),
    (lambda: nn.BCELoss()(Tensor([0.5, 0.5]), Tensor([1.0])), ValueError, ["(2,)", "(1,)"]),
])
def test_errors_name_expected_and_received(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), f"{w!r} not in {info.value}"
