"""The reference compression tools (tinytorch.core.compression): exact pruning counts and ties,
masks that survive training, sparsity measurement, structured shrinking that keeps the kept units'
outputs, CSR byte counts, the distillation loss against a numpy reference with finite-difference
gradients, low-rank error = discarded singular values (Eckart-Young), errors."""
import copy

import numpy as np
import pytest

import tinytorch.optimization as opt_ns
from tinytorch import Tensor, manual_seed
from tinytorch.core.compression import (DistillationFunction, DistillationLoss, apply_masks, low_rank_factorize,
                                        magnitude_prune, measure_sparsity, structured_prune)
from tinytorch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, ReLU, Sequential
from tinytorch.nn import Parameter
from tinytorch.optim import SGD, Adam

from .gradcheck import numeric_grad


def with_weights(layer, w, b=None):
    layer.weight = Parameter(np.array(w, dtype=np.float64), dtype=np.float64)
    if b is not None:
        layer.bias = Parameter(np.array(b, dtype=np.float64), dtype=np.float64)
    return layer


def mlp(sizes, seed):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(with_weights(Linear(a, b), rng.standard_normal((b, a)), rng.standard_normal(b)))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def test_public_names():
    for name in ["magnitude_prune", "apply_masks", "measure_sparsity", "structured_prune", "DistillationLoss",
                 "low_rank_factorize"]:
        assert hasattr(opt_ns, name)


# ---- magnitude pruning -------------------------------------------------------------------------

@pytest.mark.parametrize("shape, s", [((4, 5), 0.5), ((10, 1), 0.25), ((5, 2), 0.37), ((7, 9), 0.9), ((3, 3), 0.0),
                                      ((20, 30), 0.95)])
def test_magnitude_prune_zeros_exactly_round_s_n_smallest(shape, s):
    w = np.random.default_rng(1).standard_normal(shape)
    model = Sequential(with_weights(Linear(shape[1], shape[0]), w, np.ones(shape[0])))
    masks = magnitude_prune(model, s)
    k = round(s * w.size)
    assert int((model[0].weight.data == 0).sum()) == k
    kept = np.abs(w[model[0].weight.data != 0])
    pruned = np.abs(w[model[0].weight.data == 0])
    if k and kept.size:
        assert pruned.max() <= kept.min()
    assert np.array_equal(masks["0.weight"], model[0].weight.data != 0)
    assert np.array_equal(model[0].bias.data, np.ones(shape[0]))


def test_round_is_pythons_and_ties_go_in_flat_order():
    model = Sequential(with_weights(Linear(5, 2), np.ones((2, 5))))
    magnitude_prune(model, 0.25)                       # round(2.5) == 2
    assert np.argwhere(model[0].weight.data == 0).tolist() == [[0, 0], [0, 1]]
    w = np.random.default_rng(2).integers(-3, 4, (8, 8)).astype(np.float64)
    model = Sequential(with_weights(Linear(8, 8), w))
    magnitude_prune(model, 0.5)
    want = np.ones(64, bool)
    want[np.argsort(np.abs(w).ravel(), kind="stable")[:32]] = False
    assert np.array_equal(model[0].weight_mask.ravel(), want)


def test_global_scope_ranks_all_layers_together():
    rng = np.random.default_rng(3)
    model = Sequential(with_weights(Linear(6, 4), rng.standard_normal((4, 6)) * 10), ReLU(),
                       with_weights(Linear(4, 3), rng.standard_normal((3, 4)) * 1e-3))
    magnitude_prune(model, 0.5, scope="global")
    assert int((model[2].weight.data == 0).sum()) == 12 and int((model[0].weight.data == 0).sum()) == 6
    overall, per_layer = measure_sparsity(model)
    assert overall == 0.5 and per_layer == {"0.weight": 0.25, "2.weight": 1.0}


def test_conv_weights_are_pruned_and_repruning_keeps_old_zeros():
    manual_seed(0)
    model = Sequential(Conv2d(2, 4, 3), Flatten(), Linear(4, 2))
    magnitude_prune(model, 0.5)
    assert int((model[0].weight.data == 0).sum()) == 36 and int((model[2].weight.data == 0).sum()) == 4
    magnitude_prune(model, 0.25)
    assert int((model[0].weight.data == 0).sum()) == 36


def test_masks_survive_training_with_apply_masks_and_not_without():
    manual_seed(0)
    x = Tensor(np.random.default_rng(4).standard_normal((16, 6)).astype(np.float32))
    y = Tensor(np.random.default_rng(5).integers(0, 3, 16))

    def run(masked, optimizer):
        model = Sequential(Linear(6, 8), ReLU(), Linear(8, 3))
        opt = optimizer(model.parameters())
        for _ in range(3):                              # optimizer state from before pruning
            loss = CrossEntropyLoss()(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
        masks = magnitude_prune(model, 0.75)
        for _ in range(5):
            loss = CrossEntropyLoss()(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            if masked:
                apply_masks(model)
        return model, masks

    for optimizer in (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.01)):
        model, masks = run(True, optimizer)
        for i, name in ((0, "0.weight"), (2, "2.weight")):
            assert np.array_equal(model[i].weight.data == 0, ~masks[name])
        model, masks = run(False, optimizer)
        assert measure_sparsity(model)[0] < 0.75     # without the masks, training revives pruned weights


def test_magnitude_prune_errors():
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match="sparsity"):
            magnitude_prune(mlp([3, 2], 0), bad)
    with pytest.raises(TypeError):
        magnitude_prune(mlp([3, 2], 0), "0.5")
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(mlp([3, 2], 0), 0.5, scope="rows")
    with pytest.raises(ValueError):
        magnitude_prune(Sequential(ReLU()), 0.5)
    with pytest.raises(ValueError):
        measure_sparsity(Sequential(ReLU()))


def test_measure_sparsity_is_weighted_and_ignores_biases():
    model = Sequential(with_weights(Linear(1, 10), np.zeros((10, 1)), np.zeros(10)), ReLU(),
                       with_weights(Linear(990, 1), np.r_[np.zeros(99), np.ones(891)][None, :], [0.0]))
    overall, per_layer = measure_sparsity(model)
    assert overall == pytest.approx(109 / 1000) and per_layer == {"0.weight": 1.0, "2.weight": 0.1}


# ---- sparse storage ----------------------------------------------------------------------------

def csr_bytes(w):
    nnz = int(np.count_nonzero(w))
    return nnz * 4 + nnz * 4 + (w.shape[0] + 1) * 4


def to_csr(w):
    """Build CSR arrays by hand: values, column indices, row pointers."""
    rows, cols = np.nonzero(w)
    indptr = np.zeros(w.shape[0] + 1, dtype=np.int32)
    np.add.at(indptr, rows + 1, 1)
    return w[rows, cols].astype(np.float32), cols.astype(np.int32), np.cumsum(indptr).astype(np.int32)


def test_csr_bytes_of_a_pruned_layer_and_the_same_dense_bytes():
    manual_seed(0)
    model = Sequential(Linear(1024, 1024))
    dense_before = model[0].weight.nbytes
    magnitude_prune(model, 0.9)
    w = model[0].weight.data
    assert w.nbytes == dense_before == 4 * 1024 * 1024    # zeros in a dense array save no bytes
    values, cols, indptr = to_csr(w)
    assert values.nbytes + cols.nbytes + indptr.nbytes == csr_bytes(w) == 104_858 * 8 + 1025 * 4 == 842_964
    x = np.random.default_rng(0).standard_normal(1024).astype(np.float32)
    y = np.zeros(1024, np.float32)
    nz = np.diff(indptr) > 0
    y[nz] = np.add.reduceat(values * x[cols], indptr[:-1][nz])
    assert np.allclose(y, w @ x, atol=1e-4)


# ---- structured pruning ------------------------------------------------------------------------

def test_structured_prune_shrinks_a_real_mlp_and_keeps_the_kept_units():
    manual_seed(0)
    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
    small = structured_prune(model, 0.5)
    assert (small[0].weight.shape, small[2].weight.shape) == ((64, 64), (10, 64))
    norms = np.linalg.norm(model[0].weight.data, axis=1)
    keep = np.sort(np.argsort(norms, kind="stable")[64:])
    x = Tensor(np.random.default_rng(6).standard_normal((5, 64)).astype(np.float32))
    hidden_full, hidden_small = model[1](model[0](x)).data, small[1](small[0](x)).data
    assert np.array_equal(hidden_small, hidden_full[:, keep])
    # the output equals the full model's with the removed units' contributions taken out
    drop = np.setdiff1d(np.arange(128), keep)
    removed = hidden_full[:, drop] @ model[2].weight.data[:, drop].T
    assert np.allclose(small(x).data, model(x).data - removed, atol=1e-5)
    assert model[0].weight.shape == (128, 64)


def test_structured_prune_of_dead_units_is_exact_and_next_columns_are_sliced():
    model = mlp([5, 8, 6, 3], 7)
    model[0].weight.data[[0, 3, 5, 6]] = 0
    model[0].bias.data[[0, 3, 5, 6]] = 0
    small = structured_prune(model, 0.5)
    assert small[0].weight.shape == (4, 5) and small[2].weight.shape == (3, 4) and small[4].weight.shape == (3, 3)
    assert small[2].in_features == 4
    rows2 = np.sort(np.argsort(np.linalg.norm(model[2].weight.data, axis=1), kind="stable")[3:])
    np.testing.assert_array_equal(small[2].weight.data, model[2].weight.data[np.ix_(rows2, [1, 2, 4, 7])])
    np.testing.assert_array_equal(small[4].weight.data, model[4].weight.data[:, rows2])
    x = Tensor(np.random.default_rng(8).standard_normal((4, 5)), dtype=np.float64)
    assert np.allclose(small[1](small[0](x)).data, model[1](model[0](x)).data[:, [1, 2, 4, 7]])
    # the dead units contributed nothing, so the second hidden layer's kept units are unchanged too
    assert np.allclose(small[3](small[2](small[1](small[0](x)))).data, model[3](model[2](model[1](model[0](x)))).data[:, rows2])


def test_structured_prune_errors():
    with pytest.raises(ValueError, match="amount"):
        structured_prune(mlp([3, 4, 2], 0), 1.0)
    with pytest.raises(TypeError, match="Sequential"):
        structured_prune(Linear(3, 4), 0.5)
    with pytest.raises(ValueError):
        structured_prune(Sequential(Linear(3, 4)), 0.5)
    with pytest.raises(ValueError, match="Flatten"):
        structured_prune(Sequential(Linear(3, 4), Flatten(), Linear(4, 2)), 0.5)


# ---- distillation ------------------------------------------------------------------------------

def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def ref_loss(s, t, y, T, alpha):
    lps, lpt = log_softmax(s / T), log_softmax(t / T)
    kl = (np.exp(lpt) * (lpt - lps)).sum(axis=1).mean()
    return alpha * T * T * kl - (1 - alpha) * log_softmax(s)[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 1.0), (2.0, 0.0), (0.5, 0.3)])
def test_distillation_value_and_gradient(T, alpha):
    rng = np.random.default_rng(9)
    s, t, y = rng.standard_normal((6, 5)) * 2, rng.standard_normal((6, 5)) * 2, rng.integers(0, 5, 6)
    S = Tensor(s.copy(), requires_grad=True, dtype=np.float64)
    teacher = Tensor(t, requires_grad=True, dtype=np.float64)
    loss = DistillationLoss(T, alpha)(S, teacher, Tensor(y))
    assert float(loss.data) == pytest.approx(ref_loss(s, t, y, T, alpha), abs=1e-12)
    loss.backward()
    assert np.allclose(S.grad.data, numeric_grad(lambda: ref_loss(s, t, y, T, alpha), s), atol=1e-7)
    assert teacher.grad is None
    p_s, p_t = np.exp(log_softmax(s / T)), np.exp(log_softmax(t / T))
    onehot = np.eye(5)[y]
    assert np.allclose(S.grad.data, (alpha * T * (p_s - p_t) + (1 - alpha) * (np.exp(log_softmax(s)) - onehot)) / 6)


def test_t_squared_keeps_the_soft_gradient_scale():
    rng = np.random.default_rng(10)
    s, t = rng.standard_normal((50, 10)) * 0.5, rng.standard_normal((50, 10)) * 0.5
    norms = []
    for T in (5.0, 10.0, 20.0):
        S = Tensor(s.copy(), requires_grad=True, dtype=np.float64)
        DistillationLoss(T, 1.0)(S, Tensor(t, dtype=np.float64), Tensor(np.zeros(50, dtype=np.int64))).backward()
        norms.append(np.linalg.norm(S.grad.data))
    assert max(norms) / min(norms) < 1.05   # without T^2 they would fall 16x from T = 5 to T = 20


def test_distillation_errors_and_defaults():
    d = DistillationLoss()
    assert (d.temperature, d.alpha) == (4.0, 0.9)
    for kwargs in ({"temperature": 0}, {"temperature": -2.0}, {"alpha": 1.1}, {"alpha": -0.5}):
        with pytest.raises(ValueError):
            DistillationLoss(**kwargs)
    z = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        d(z, Tensor(np.zeros((2, 4))), Tensor(np.array([0, 1])))
    with pytest.raises(TypeError):
        d(z, z, Tensor(np.array([0.0, 1.0])))
    with pytest.raises(ValueError):
        d(z, z, Tensor(np.array([0, 3])))
    with pytest.raises(ValueError):
        DistillationFunction.apply(np.zeros(3), np.zeros(3), np.array([0]))


# ---- low rank ----------------------------------------------------------------------------------

@pytest.mark.parametrize("out_f, in_f", [(12, 7), (7, 12), (5, 5)])
def test_low_rank_error_is_the_discarded_singular_values(out_f, in_f):
    rng = np.random.default_rng(11)
    w = rng.standard_normal((out_f, in_f))
    lin = with_weights(Linear(in_f, out_f), w, rng.standard_normal(out_f))
    sv = np.linalg.svd(w, compute_uv=False)
    for r in range(1, min(in_f, out_f) + 1):
        f = low_rank_factorize(lin, r)
        product = f[1].weight.data @ f[0].weight.data
        assert np.linalg.norm(w - product) == pytest.approx(np.sqrt((sv[r:] ** 2).sum()), abs=1e-10)
        assert np.linalg.norm(w - product, 2) == pytest.approx(sv[r] if r < len(sv) else 0.0, abs=1e-10)
        assert sum(p.size for p in f.parameters()) == r * (in_f + out_f) + out_f
        assert f[0].bias is None
        x = Tensor(rng.standard_normal((3, in_f)), dtype=np.float64)
        assert np.allclose(f(x).data, x.data @ product.T + lin.bias.data)


def test_low_rank_errors():
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="rank"):
            low_rank_factorize(Linear(5, 8), bad)
    with pytest.raises(TypeError):
        low_rank_factorize(Sequential(Linear(5, 8)), 2)
