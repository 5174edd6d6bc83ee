"""Autograd of the reference package: every differentiable operation against central finite
differences in float64, on seeded random inputs, including broadcast shapes."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.core import autograd

from .gradcheck import numeric_grad

RNG = np.random.default_rng(2024)


def numeric_grads(f, arrays, weights, h=1e-6):
    """Central differences of sum(f(*arrays) * weights) with respect to every array."""
    def value():
        return float(np.sum(f(*[Tensor(a, dtype=np.float64) for a in arrays]).data * weights))
    return [numeric_grad(value, a, h) for a in arrays]


def check(f, *shapes, positive=False, atol=1e-6):
    arrays = [np.asarray(RNG.standard_normal(s) + (3.0 if positive else 0.0)) for s in shapes]
    tensors = [Tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]
    out = f(*tensors)
    weights = RNG.standard_normal(out.shape)  # a non-uniform upstream gradient
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    for i, (t, want) in enumerate(zip(tensors, numeric_grads(f, arrays, weights))):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == t.shape and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad.data, want, atol=atol, rtol=1e-5, err_msg=f"input {i}")


BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b]
BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (3,)), ((4, 1), (1, 5)), ((), (2, 3))]


@pytest.mark.parametrize("sa, sb", BROADCAST)
@pytest.mark.parametrize("op", range(4), ids=["add", "sub", "mul", "div"])
def test_binary_operators_under_broadcasting(op, sa, sb):
    check(BINARY[op], sa, sb, positive=True)


@pytest.mark.parametrize("f", [lambda a: 2.5 + a, lambda a: 2.5 - a, lambda a: 2.5 * a, lambda a: 2.5 / a,
                               lambda a: -a, lambda a: a ** 3, lambda a: a ** 0.5, lambda a: 2.0 ** a,
                               lambda a: np.full(a.shape, 1.5) - a],
                         ids=["radd", "rsub", "rmul", "rdiv", "neg", "pow3", "pow-half", "rpow", "array-rsub"])
def test_unary_and_reflected_operators(f):
    check(f, (3, 2), positive=True)


def test_power_with_a_tensor_exponent():
    check(lambda a, b: a ** b, (3,), (3,), positive=True)


@pytest.mark.parametrize("sa, sb", [((2, 3), (3, 4)), ((3,), (3,)), ((3,), (3, 2)), ((4, 3), (3,)),
                                    ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((1, 2, 3), (4, 3, 2))])
def test_matmul_including_vectors_and_batches(sa, sb):
    check(lambda a, b: a @ b, sa, sb)


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(name, axis, keepdims):
    check(lambda a: getattr(a, name)(axis=axis, keepdims=keepdims), (2, 3, 4))


def test_max_splits_the_gradient_among_ties():
    x = Tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("f", [lambda a: a.exp(), lambda a: a.log(), lambda a: a.sqrt()], ids=["exp", "log", "sqrt"])
def test_elementwise_functions(f):
    check(f, (3, 4), positive=True)


@pytest.mark.parametrize("f", [lambda a: a.reshape(4, 6), lambda a: a.reshape(-1), lambda a: a.view(2, 12),
                               lambda a: a.transpose(0, 2), lambda a: a.permute(2, 0, 1), lambda a: a.T,
                               lambda a: a[1], lambda a: a[:, 1:3, ::2], lambda a: a[Tensor([0, 1, 0])],
                               lambda a: a[a > 0]],
                         ids=["reshape", "flatten", "view", "transpose", "permute", "T", "int", "slices",
                              "repeated-index", "mask"])
def test_shape_operations_and_indexing(f):
    check(f, (2, 3, 4))


@pytest.mark.parametrize("cls", [nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Softmax, nn.LogSoftmax])
def test_activations(cls):
    check(lambda a: cls()(a), (4, 5))


@pytest.mark.parametrize("fn", [lambda a: F.softmax(a, dim=0), lambda a: F.log_softmax(a, dim=0)], ids=["softmax0", "logsoftmax0"])
def test_softmax_along_another_dim(fn):
    check(fn, (4, 3))


def test_linear_layers_and_an_mlp():
    tt.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    w1 = model[0].weight
    check(lambda x, w: (x @ w.T + model[0].bias).tanh() if hasattr(Tensor, "tanh") else nn.Tanh()(x @ w.T + model[0].bias),
          (4, 3), (5, 3))
    x = Tensor(RNG.standard_normal((4, 3)), dtype=np.float64)
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    assert w1.grad.dtype == np.float64


def test_one_mechanism_every_differentiable_operation_is_a_function():
    """Tensor ops, activations and losses all record their Function's Context; methods keep signatures."""
    import inspect
    from tinytorch.core import activations, losses, tensor
    x = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    cases = [(x + 1, tensor.Add), (x @ Tensor(np.ones((3, 2))), tensor.MatMul), (x.mean(axis=0), tensor.Mean),
             (nn.ReLU()(x), activations.ReLUFunction), (F.softmax(x), activations.SoftmaxFunction),
             (nn.CrossEntropyLoss()(x, Tensor([0, 2])), losses.CrossEntropyFunction)]
    for out, function in cases:
        assert out._ctx is not None and out._ctx.function is function
        assert issubclass(function, tt.Function) and "backward" in vars(function)
    assert str(inspect.signature(Tensor.mean)) == "(self, axis=None, keepdims=False)"
    assert str(inspect.signature(Tensor.__add__)) == "(self, other)"
    assert str(inspect.signature(Tensor.backward)) == "(self, gradient=None)"
    assert "gradient" in Tensor.backward.__doc__
    assert all(issubclass(c, nn.Module) for c in (nn.ReLU, nn.Softmax, nn.MSELoss, nn.CrossEntropyLoss, nn.BCELoss))


def test_cross_entropy_and_bce_rules_match_finite_differences():
    logits, target = RNG.standard_normal((4, 3)), np.array([0, 2, 1, 2])

    def ce(z):
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(4), target])
    (z_t := Tensor(logits, dtype=np.float64, requires_grad=True))
    nn.CrossEntropyLoss()(z_t, Tensor(target)).backward()
    g = z_t.grad.data
    num = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        d = np.zeros_like(logits)
        d[idx] = 1e-6
        num[idx] = (ce(logits + d) - ce(logits - d)) / 2e-6
    np.testing.assert_allclose(g, num, atol=1e-7)
    p, t = np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 1.0])
    bce = lambda q: np.mean(-(t * np.log(q) + (1 - t) * np.log(1 - q)))
    p_t = Tensor(p, dtype=np.float64, requires_grad=True)
    nn.BCELoss()(p_t, Tensor(t, dtype=np.float64)).backward()
    g = p_t.grad.data
    num = [(bce(p + d) - bce(p - d)) / 2e-6 for d in np.eye(3) * 1e-6]
    np.testing.assert_allclose(g, num, atol=1e-6)


def test_accumulation_no_grad_and_leaves():
    x = Tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * 2 * x.data)
    with tt.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None and tt.is_grad_enabled()
    z = x * 2
    (z * z).sum().backward()
    assert z.grad is None


def test_float32_end_to_end_and_enabling_twice():
    assert autograd.enable_autograd() and autograd.enable_autograd()
    w = Tensor(np.ones((3, 2), dtype=np.float32), requires_grad=True)
    loss = (Tensor(np.ones((4, 3))) @ w).mean()
    loss.backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.data, np.full((3, 2), 4 / 8), rtol=1e-6)


def test_function_subclass_adds_an_operation():
    class Cube(tt.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return (3 * x ** 2 * grad,)

    check(lambda a: Cube.apply(a), (2, 3))


def test_backward_needs_a_gradient_for_non_scalars():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))


def test_real_loss_classes_of_module_04():
    target = Tensor(RNG.standard_normal((4, 3)), dtype=np.float64)
    check(lambda p: nn.MSELoss()(p, target), (4, 3))
    labels = Tensor(np.array([2, 0, 1, 2]))
    check(lambda z: nn.CrossEntropyLoss()(z, labels), (4, 3))
    check(lambda z: F.cross_entropy(z * 3.0, labels), (4, 3))
    probs = Tensor(np.array([[0.0], [1.0], [1.0]]), dtype=np.float64)
    check(lambda z: nn.BCELoss()(nn.Sigmoid()(z), probs), (3, 1))
    check(lambda p: F.mse_loss(p, target), (4, 3))


def test_leaf_gradients_never_share_memory():
    """One array can reach two leaves (a + b sends the same gradient to both), and the caller's
    gradient array is theirs: every leaf's .grad must be its own array."""
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(gradient=np.ones(2, dtype=np.float32))
    a.grad.data *= 10
    np.testing.assert_allclose(b.grad.data, [1.0, 1.0])
    given = np.array([2.0, 3.0], dtype=np.float32)
    c = Tensor([0.0, 0.0], requires_grad=True)
    c.backward(gradient=given)
    c.grad.data[:] = 0
    np.testing.assert_allclose(given, [2.0, 3.0])
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    w.sum().backward()  # sum's rule gives a read-only broadcast view
    w.grad.data += 1
    np.testing.assert_allclose(w.grad.data, 2.0)
