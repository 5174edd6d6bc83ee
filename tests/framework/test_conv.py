"""The reference convolutions (tinytorch.core.conv): values against a direct numpy reference,
gradients by finite differences in float64, padding/stride variants, pooling, errors."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.core.conv import Conv2dFunction, conv2d_naive, conv_output_shape, im2col
from tinytorch.core.tensor import Context

from .gradcheck import numeric_grad


def pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def ref_conv(x, w, b=None, stride=1, padding=0):
    """Direct definition: one dot product per output element (no im2col, no shared code)."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty((x.shape[0], w.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out if b is None else out + b[None, :, None, None]


def ref_pool(x, k, s, reduce):
    (kh, kw) = pair(k)
    (sh, sw) = (kh, kw) if s is None else pair(s)
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = reduce(x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


CASES = [  # x shape, weight shape, stride, padding, bias
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0, True),
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1, True),
    ((1, 2, 7, 7), (3, 2, 3, 3), 2, 1, False),
    ((2, 2, 5, 8), (2, 2, 2, 3), (2, 1), (1, 2), True),
    ((1, 1, 4, 4), (2, 1, 4, 4), 1, 0, True),
    ((1, 2, 5, 5), (1, 2, 1, 1), 3, 0, True),
]


@pytest.mark.parametrize("xs, ws, stride, padding, bias", CASES)
def test_fast_and_naive_conv_match_the_direct_reference(xs, ws, stride, padding, bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    want = ref_conv(x, w, b, stride, padding)
    assert conv_output_shape(xs, ws, stride, padding) == want.shape
    np.testing.assert_allclose(conv2d_naive(x, w, b, stride, padding), want, atol=1e-12)
    got = F.conv2d(t64(x), t64(w), None if b is None else t64(b), stride=stride, padding=padding)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got.data, want, atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding, bias", CASES)
def test_conv_gradients_match_finite_differences(xs, ws, stride, padding, bias):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    g = rng.standard_normal(ref_conv(x, w, b, stride, padding).shape)
    X, W = t64(x, True), t64(w, True)
    B = None if b is None else t64(b, True)
    F.conv2d(X, W, B, stride=stride, padding=padding).backward(g)
    loss = lambda: float((ref_conv(x, w, b, stride, padding) * g).sum())
    np.testing.assert_allclose(X.grad.data, numeric_grad(loss, x), atol=1e-6)
    np.testing.assert_allclose(W.grad.data, numeric_grad(loss, w), atol=1e-6)
    if b is not None:
        np.testing.assert_allclose(B.grad.data, numeric_grad(loss, b), atol=1e-6)


def test_backward_skips_operands_that_need_no_gradient():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    ctx = Context(Conv2dFunction, (x, t64(w, True), t64(b, True)))
    out = Conv2dFunction.forward(ctx, x, w, b, stride=1, padding=1)
    dx, dw, db = Conv2dFunction.backward(ctx, np.ones_like(out))
    assert dx is None and dw.shape == w.shape and np.allclose(db, 25.0)
    images = Tensor(x)  # the first layer of a network: the input needs no gradient
    W = t64(w, True)
    F.conv2d(images, W).sum().backward()
    assert images.grad is None and W.grad.shape == w.shape


def test_im2col_columns_are_windows_in_weight_order_as_torch_unfold():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert im2col(x, 2).tolist() == [[[0, 1, 2, 4, 5, 6], [1, 2, 3, 5, 6, 7], [4, 5, 6, 8, 9, 10], [5, 6, 7, 9, 10, 11]]]
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 7)).astype(np.float32)
    cols = im2col(x, (3, 2), (2, 1))  # H_out 2, W_out 6: column 7 is the window at corner (2, 1)
    assert cols.shape == (2, 3 * 3 * 2, 2 * 6) and cols.dtype == np.float32
    np.testing.assert_array_equal(cols[1, :, 7], x[1, :, 2:5, 1:3].ravel())


def test_conv2d_layer_init_parameters_and_float32():
    tt.manual_seed(0)
    layer = nn.Conv2d(3, 32, 3)
    assert sum(p.size for p in layer.parameters()) == 896
    assert layer.weight.shape == (32, 3, 3, 3) and layer.weight.dtype == np.float32
    bound = 1 / np.sqrt(27)
    w = layer.weight.data
    assert np.abs(w).max() <= bound and np.abs(layer.bias.data).max() <= bound
    tt.manual_seed(0)
    assert np.array_equal(w, nn.Conv2d(3, 32, 3).weight.data)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Conv2d(3, 8, (3, 5), bias=False).bias is None
    out = layer(Tensor(np.zeros((2, 3, 8, 8), np.float32)))
    assert out.shape == (2, 32, 6, 6) and out.dtype == np.float32
    out = nn.Conv2d(3, 4, 3, stride=2, padding=1)(Tensor(np.zeros((1, 3, 9, 9), np.float32)))
    assert out.shape == (1, 4, 5, 5)


def test_a_small_cnn_trains_end_to_end():
    tt.manual_seed(0)
    conv, fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 4 * 4, 2)
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), fc)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("k, s, xs", [(2, None, (2, 3, 6, 6)), (3, 2, (1, 2, 7, 7)), ((2, 3), (1, 2), (2, 1, 6, 7)),
                                      (2, 1, (1, 1, 5, 5)), (3, None, (1, 1, 7, 5))])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_values_and_gradients(kind, k, s, xs):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(xs)
    fn, module, reduce = ((F.max_pool2d, nn.MaxPool2d, np.max) if kind == "max" else
                          (F.avg_pool2d, nn.AvgPool2d, np.mean))
    want = ref_pool(x, k, s, reduce)
    X = t64(x, True)
    out = module(k, s)(X)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.data, want, atol=1e-12)
    g = rng.standard_normal(want.shape)
    out.backward(g)
    loss = lambda: float((ref_pool(x, k, s, reduce) * g).sum())
    np.testing.assert_allclose(X.grad.data, numeric_grad(loss, x), atol=1e-6)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    X = t64(np.ones((1, 1, 2, 4)), True)
    F.max_pool2d(X, 2).backward(np.array([[[[1.0, 2.0]]]]))
    assert X.grad.data[0, 0].tolist() == [[1, 0, 2, 0], [0, 0, 0, 0]]
    X = t64([[[[0, 5, 0], [0, 0, 0], [0, 0, 0]]]], True)  # overlapping windows add up
    F.max_pool2d(X, 2, 1).backward(np.ones((1, 1, 2, 2)))
    assert X.grad.data[0, 0].tolist() == [[0, 2, 0], [1, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.conv2d(Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((4, 3, 3, 3)))), ValueError, r"3 input channels.*\(1, 2, 5, 5\)"),
    (lambda: F.conv2d(Tensor(np.ones((2, 5, 5))), Tensor(np.ones((4, 3, 3, 3)))), ValueError, r"\(B, C, H, W\).*\(2, 5, 5\)"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 3, 3)))), ValueError, r"\(4, 3, 3\)"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 2, 2))), Tensor(np.ones((4, 3, 3, 3)))), ValueError, r"larger than the padded input \(2, 2\)"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 3, 3, 3))), Tensor(np.ones(3))), ValueError, r"\(4,\).*\(3,\)"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 3, 3, 3))), stride=0), ValueError, "stride >= 1"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 3, 3, 3))), padding=-1), ValueError, "padding >= 0"),
    (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 3, 3, 3))), stride=1.5), TypeError, "stride.*1.5"),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), Tensor(np.ones((4, 3, 3, 3)))), TypeError, "ndarray"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels.*0"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, r"kernel_size.*\(3, 3, 3\)"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3)(Tensor(np.ones((1, 2, 5, 5)))), ValueError, r"\(B, 3, H, W\).*\(1, 2, 5, 5\)"),
    (lambda: F.max_pool2d(Tensor(np.ones((4, 4))), 2), ValueError, r"\(4, 4\)"),
    (lambda: F.max_pool2d(Tensor(np.ones((1, 1, 1, 4))), 2), ValueError, "larger than the input"),
    (lambda: F.avg_pool2d(Tensor(np.ones((1, 1, 4, 4))), 2, 0), ValueError, "stride >= 1"),
    (lambda: nn.MaxPool2d(2.0)(Tensor(np.ones((1, 1, 4, 4)))), TypeError, "kernel_size"),
])
def test_bad_input_names_expected_and_received(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
