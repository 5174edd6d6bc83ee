"""Quantization (Module 15): int8 codes and qparams against their definitions, round-trip bounds,
exact zero, constant tensors, int32 accumulation on the worst case, quantized layers against
float references, quantize_model on nested models and on the digits."""
import numpy as np
import pytest

from tinytorch import Tensor, manual_seed, no_grad
from tinytorch.core.conv import conv2d_naive
from tinytorch.data import DataLoader, TensorDataset, load_digits
from tinytorch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from tinytorch.optim import Adam
from tinytorch.optimization import (MinMaxObserver, QuantizedConv2d, QuantizedLinear, choose_qparams,
                                    dequantize_int8, matmul_int8, quantize_int8, quantize_model,
                                    quantize_per_tensor)


def codes(x, scale, zp):
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, -128, 127).astype(np.int8)


@pytest.mark.parametrize("lo, hi, want", [(-1.0, 3.0, (4 / 255, -64)), (0.5, 2.0, (2 / 255, -128)),
                                          (-2.0, -0.5, (2 / 255, 127)), (0.0, 0.0, (1.0, -128))])
def test_affine_qparams(lo, hi, want):
    scale, zp = choose_qparams(lo, hi)
    assert np.isclose(scale, want[0]) and zp == want[1] and isinstance(zp, int)


def test_symmetric_qparams():
    assert choose_qparams(-2.54, 1.0, symmetric=True) == pytest.approx((0.02, 0))
    assert choose_qparams(0.0, 0.0, symmetric=True) == (1.0, 0)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("lo, hi", [(-3.0, 1.0), (0.0, 6.0), (0.2, 0.9), (-5.0, -4.0)])
def test_round_trip_within_half_a_step_and_zero_exact(symmetric, lo, hi):
    x = np.random.default_rng(0).uniform(lo, hi, 1000).astype(np.float32)
    x[0] = 0.0 if lo <= 0 <= hi else x[0]
    q, scale, zp = quantize_int8(Tensor(x), symmetric=symmetric)
    assert q.dtype == np.int8 and np.array_equal(q.data, codes(x, scale, zp))
    back = dequantize_int8(q, scale, zp)
    assert back.dtype == np.float32
    assert np.abs(back.data - x).max() <= scale / 2 * (1 + 1e-5) + 1e-7
    assert dequantize_int8(quantize_per_tensor(np.zeros(1, np.float32), scale, zp), scale, zp).data[0] == 0.0


def test_constant_tensors_do_not_divide_by_zero():
    q, scale, zp = quantize_int8(np.zeros((3, 3), np.float32))
    assert scale == 1.0 and np.all(dequantize_int8(q, scale, zp).data == 0.0)
    q, scale, zp = quantize_int8(np.full(5, 2.0, np.float32))
    assert np.isclose(scale, 2 / 255) and np.allclose(dequantize_int8(q, scale, zp).data, 2.0)


def test_int32_accumulation_worst_case():
    a = np.full((4, 1024), -128, np.int8)
    out = matmul_int8(a, a.T)
    assert out.dtype == np.int32 and np.all(out == 128 * 128 * 1024)
    # what int8 accumulation would have given: wrapped around
    assert np.matmul(a, a.T)[0, 0] != 128 * 128 * 1024


def test_observer_running_range():
    obs = MinMaxObserver()
    for b in (np.array([1.0, 2.0]), np.array([-0.5, 1.5]), np.array([0.0, 3.0])):
        assert obs(b) is b
    assert (obs.min_val, obs.max_val) == (-0.5, 3.0)
    assert obs.calculate_qparams() == choose_qparams(-0.5, 3.0)
    with pytest.raises(RuntimeError):
        MinMaxObserver().calculate_qparams()


def test_quantized_linear_by_hand_and_against_float():
    lin = Linear(2, 2)
    lin.weight.data[...] = [[1.27, -0.5], [0.25, 0.03]]
    lin.bias.data[...] = [0.1, -0.2]
    ql = QuantizedLinear.from_linear(lin, 0.1, -10)
    assert ql.weight_q.data.tolist() == [[127, -50], [25, 3]]
    assert np.allclose(ql(Tensor([[0.5, -1.0]])).data, [[1.235, -0.105]], atol=1e-6)
    manual_seed(0)
    lin = Linear(64, 32)
    x = np.random.default_rng(1).uniform(0, 1, (16, 64)).astype(np.float32)
    s, z = choose_qparams(0.0, 1.0)
    ql = QuantizedLinear.from_linear(lin, s, z)
    xh = (codes(x, s, z).astype(np.float64) - z) * s
    wh = ql.weight_q.data.astype(np.float64) * ql.weight_scale
    assert np.allclose(ql(Tensor(x)).data, xh @ wh.T + lin.bias.data, atol=1e-5)
    assert np.abs(ql(Tensor(x)).data - lin(Tensor(x)).data).max() < 0.02


def test_quantized_layers_are_inference_only():
    ql = QuantizedLinear.from_linear(Linear(3, 2), 0.01, 0)
    assert ql.parameters() == []
    x = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    with pytest.raises(RuntimeError):
        ql(x)
    with no_grad():
        assert ql(x).shape == (1, 2)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), ((1, 2), (2, 1))])
def test_quantized_conv_against_float_reference(stride, padding):
    manual_seed(0)
    conv = Conv2d(3, 4, 3, stride=stride, padding=padding)
    x = np.random.default_rng(2).uniform(0, 1, (2, 3, 7, 7)).astype(np.float32)
    s, z = choose_qparams(0.0, 1.0)
    qc = QuantizedConv2d.from_conv(conv, s, z)
    xh = (codes(x, s, z).astype(np.float64) - z) * s
    wh = qc.weight_q.data.astype(np.float64) * qc.weight_scale
    want = conv2d_naive(xh, wh, conv.bias.data.astype(np.float64), stride=stride, padding=padding)
    assert np.allclose(qc(Tensor(x)).data, want, atol=1e-5)


def test_quantize_model_replaces_layers_and_keeps_the_original():
    class Net(Module):
        def __init__(self):
            self.body = Sequential(Conv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2))
            self.heads = [Linear(8, 3)]

        def forward(self, x):
            return self.heads[0](self.body(x).reshape(x.shape[0], -1))

    manual_seed(0)
    net = Net()
    x = np.random.default_rng(3).uniform(0, 1, (5, 1, 4, 4)).astype(np.float32)
    qnet = quantize_model(net, DataLoader(TensorDataset(Tensor(x), Tensor(np.zeros(5, np.int64))), batch_size=2))
    assert isinstance(qnet.body[0], QuantizedConv2d) and isinstance(qnet.heads[0], QuantizedLinear)
    assert isinstance(net.body[0], Conv2d) and isinstance(net.heads[0], Linear)
    assert np.abs(qnet(Tensor(x)).data - net(Tensor(x)).data).max() < 0.05


def test_errors():
    with pytest.raises(TypeError):
        quantize_int8(np.array([1, 2]))
    with pytest.raises(ValueError):
        quantize_int8(np.zeros(0, np.float32))
    with pytest.raises(ValueError):
        choose_qparams(1.0, 0.0)
    with pytest.raises(ValueError):
        quantize_per_tensor(np.ones(2), 0.0, 0)
    with pytest.raises(TypeError):
        dequantize_int8(np.ones(2), 0.1, 0)
    with pytest.raises(TypeError):
        matmul_int8(np.ones((2, 2), np.int16), np.ones((2, 2), np.int8))
    with pytest.raises(TypeError):
        quantize_model("model", np.ones((1, 2), np.float32))
    with pytest.raises(ValueError):
        quantize_model(Sequential(ReLU()), np.ones((1, 2), np.float32))
    with pytest.raises(ValueError):
        quantize_model(Sequential(Linear(2, 2)), [])


@pytest.mark.parametrize("conv", [False, True])
def test_digits_accuracy_within_one_point(conv):
    (x, y), (xt, yt) = load_digits()
    manual_seed(0)
    if conv:
        x, xt = x[:, None], xt[:, None]
        model = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10))
    else:
        model = Sequential(Flatten(), Linear(64, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))
    opt, loss_fn = Adam(model.parameters(), lr=3e-3), CrossEntropyLoss()
    for epoch in range(5):
        for xb, yb in DataLoader(TensorDataset(Tensor(x), Tensor(y)), batch_size=32, shuffle=True, seed=epoch):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    with no_grad():
        acc_f = float((model(Tensor(xt)).data.argmax(1) == yt).mean())
    acc_q = float((quantize_model(model, x[:256])(Tensor(xt)).data.argmax(1) == yt).mean())
    assert acc_f > 0.9 and acc_q >= acc_f - 0.01
