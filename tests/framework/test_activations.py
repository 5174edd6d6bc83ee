"""The reference activations (tinytorch.core.activations) against closed forms, at ordinary and extreme inputs."""
import math

import numpy as np
import pytest

import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor

rng = np.random.default_rng(7)
Z = rng.standard_normal((5, 4, 3)) * 4
EXTREME = np.array([-1e4, -800.0, -100.0, -1.0, 0.0, 1.0, 100.0, 800.0, 1e4])


def gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))


def gelu_tanh_scalar(z):  # an independent scalar evaluation, in plain Python
    return 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))


REFERENCES = {
    "ReLU": lambda z: np.maximum(z, 0),
    "Tanh": np.tanh,
    "Sigmoid": lambda z: 0.5 * (1 + np.tanh(z / 2)),
    "GELU": gelu_tanh,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_elementwise_activations_match_closed_forms_in_float64(name):
    got = getattr(nn, name)()(Tensor(Z, dtype=np.float64))
    assert got.dtype == np.float64 and got.shape == Z.shape
    np.testing.assert_allclose(got.data, REFERENCES[name](Z), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid", "GELU", "Softmax", "LogSoftmax"])
def test_extreme_inputs_stay_finite_without_warnings(name):
    # underflow to 0 is expected and silent; overflow, log(0) and nan are not (GELU cubes its input: inf is fine)
    with np.errstate(over="raise" if name != "GELU" else "ignore", divide="raise", invalid="raise"):
        out = getattr(nn, name)()(Tensor(EXTREME.reshape(1, -1), dtype=np.float32))
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out.data)), f"{name} gave {out.data}"


def test_gelu_known_values():
    got = nn.GELU()(Tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0], dtype=np.float64)).data
    np.testing.assert_allclose(got, [gelu_tanh_scalar(v) for v in (-3.0, -1.0, 0.0, 0.5, 1.0, 3.0)], rtol=1e-12)
    assert abs(got[4] - 0.8411919906082768) < 1e-12


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_and_log_softmax_along_every_dim(dim):
    x = Tensor(Z, dtype=np.float64)
    s, ls = F.softmax(x, dim=dim).data, F.log_softmax(x, dim=dim).data
    e = np.exp(Z - Z.max(axis=dim, keepdims=True))
    np.testing.assert_allclose(s, e / e.sum(axis=dim, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(s.sum(axis=dim), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ls, np.log(s), rtol=1e-10, atol=1e-12)


def test_softmax_is_shift_invariant_and_log_softmax_exact_at_large_gaps():
    a = F.softmax(Tensor([[1.0, 2.0, 3.0]], dtype=np.float64)).data
    b = F.softmax(Tensor([[1001.0, 1002.0, 1003.0]], dtype=np.float64)).data
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor([[0.0, 1000.0]], dtype=np.float64)).data, [[-1000.0, 0.0]])


@pytest.mark.parametrize("fn, cls", [(F.relu, nn.ReLU), (F.sigmoid, nn.Sigmoid), (F.tanh, nn.Tanh), (F.gelu, nn.GELU)])
def test_functional_forms_equal_the_classes(fn, cls):
    x = Tensor(Z)
    np.testing.assert_array_equal(fn(x).data, cls()(x).data)


def test_activations_have_no_parameters_and_reject_non_tensors():
    for cls in (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Softmax, nn.LogSoftmax):
        assert cls().parameters() == []
        with pytest.raises(TypeError, match="expected a Tensor, numpy array or number, got list"):
            cls()([1.0])
    assert repr(nn.Softmax(dim=0)) == "Softmax(dim=0)"
