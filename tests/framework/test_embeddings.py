"""The reference embeddings (tinytorch.core.embeddings): lookups against numpy, gradients of the
table by finite differences in float64 (repeated indices included), the sinusoidal table against
values computed by hand, the positional modules, and errors."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.core.embeddings import EmbeddingFunction, sinusoidal_table

from .gradcheck import numeric_grad


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def test_public_names():
    assert nn.Embedding is tt.nn.Embedding
    assert callable(F.embedding)
    for name in ("Embedding", "PositionalEncoding", "LearnedPositionalEmbedding"):
        assert hasattr(nn, name)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 2, 3), (0,), (4, 0)])
def test_lookup_equals_numpy_fancy_indexing_and_one_hot_matmul(shape):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 4))
    idx = rng.integers(0, 7, size=shape)
    out = F.embedding(idx, t64(w))
    assert out.shape == shape + (4,)
    np.testing.assert_array_equal(out.data, w[idx])
    one_hot = np.eye(7)[idx]
    np.testing.assert_allclose(out.data, one_hot @ w)


def test_ids_as_tensor_list_array_and_int():
    tt.manual_seed(0)
    emb = nn.Embedding(6, 3)
    ids = np.array([[5, 0], [0, 3]])
    for form in (ids, ids.tolist(), Tensor(ids), ids.astype(np.int32)):
        np.testing.assert_array_equal(emb(form).data, emb.weight.data[ids])
    np.testing.assert_array_equal(emb(4).data, emb.weight.data[4])


@pytest.mark.parametrize("V, d, idx", [
    (5, 3, [1, 3, 1, 1]),
    (4, 2, [[0, 0], [0, 3]]),
    (6, 1, [[[2, 2, 2]], [[5, 2, 0]]]),
    (3, 4, 2),
])
def test_table_gradient_matches_finite_differences_with_repeated_ids(V, d, idx):
    rng = np.random.default_rng(1)
    idx = np.asarray(idx)
    w = rng.standard_normal((V, d))
    G = rng.standard_normal(idx.shape + (d,))
    W = t64(w, True)
    F.embedding(idx, W).backward(G)
    num = numeric_grad(lambda: float((F.embedding(idx, t64(w)).data * G).sum()), w)
    np.testing.assert_allclose(W.grad.data, num, atol=1e-6)
    unused = np.setdiff1d(np.arange(V), idx)
    assert np.all(W.grad.data[unused] == 0)


def test_repeated_ids_add_up_not_overwrite():
    W = t64(np.zeros((4, 1)), True)
    EmbeddingFunction.apply(np.array([1, 3, 1]), W).backward(np.array([[10.0], [20.0], [30.0]]))
    np.testing.assert_array_equal(W.grad.data.ravel(), [0, 40, 0, 20])


def test_gradient_keeps_float32_and_skips_a_frozen_table():
    emb = nn.Embedding(5, 3)
    emb([4, 0, 4]).backward(np.ones((3, 3), dtype=np.float32))
    assert emb.weight.grad.dtype == np.float32
    np.testing.assert_array_equal(emb.weight.grad.data[:, 0], [1, 0, 0, 0, 2])
    from tinytorch.core.tensor import Context
    ctx = Context(EmbeddingFunction, (np.array([0]), Tensor(np.zeros((2, 2)))))
    EmbeddingFunction.forward(ctx, np.array([0]), np.zeros((2, 2)))
    assert EmbeddingFunction.backward(ctx, np.ones((1, 2))) == (None, None)


def test_embedding_initialisation_is_seeded_standard_normal_float32():
    tt.manual_seed(3)
    a = nn.Embedding(300, 40).weight.data.copy()
    tt.manual_seed(3)
    b = nn.Embedding(300, 40).weight.data
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    assert [name for name, _ in nn.Embedding(3, 2).named_parameters()] == ["weight"]


@pytest.mark.parametrize("bad, exc, words", [
    (np.array([0.0, 1.0]), TypeError, ["float64"]),
    (np.array([True]), TypeError, ["bool"]),
    (np.array([0, 7]), ValueError, ["[0, 7)", "7"]),
    (np.array([-1, 2]), ValueError, ["[0, 7)", "-1"]),
])
def test_bad_ids_name_what_was_expected_and_received(bad, exc, words):
    with pytest.raises(exc) as info:
        F.embedding(bad, t64(np.zeros((7, 2))))
    for word in words:
        assert word in str(info.value)


def test_bad_tables_and_sizes():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        F.embedding([0], t64(np.zeros((2, 3, 4))))
    with pytest.raises(TypeError, match="ndarray"):
        F.embedding([0], np.zeros((2, 2)))
    for args in [(0, 3), (3, 0), (2.0, 3), (True, 3)]:
        with pytest.raises(ValueError):
            nn.Embedding(*args)


def test_sinusoidal_values_by_hand():
    pe = sinusoidal_table(3, 4)
    assert pe.dtype == np.float32 and pe.shape == (3, 4)
    np.testing.assert_allclose(pe[0], [0, 1, 0, 1])
    # d = 4: frequencies 1 and 1/100
    np.testing.assert_allclose(pe[1], [np.sin(1), np.cos(1), np.sin(0.01), np.cos(0.01)], atol=1e-7)
    np.testing.assert_allclose(pe[2], [np.sin(2), np.cos(2), np.sin(0.02), np.cos(0.02)], atol=1e-7)
    # odd d = 5 ends with an unpaired sine of frequency 1 / 10000^(4/5)
    pe5 = sinusoidal_table(4, 5)
    np.testing.assert_allclose(pe5[3], [np.sin(3), np.cos(3), np.sin(3 / 10000 ** 0.4), np.cos(3 / 10000 ** 0.4),
                                        np.sin(3 / 10000 ** 0.8)], atol=1e-7)
    big = sinusoidal_table(1000, 512)
    np.testing.assert_allclose(big[999, 510], np.sin(999 / 10000 ** (510 / 512)), atol=1e-6)
    np.testing.assert_allclose(big[999, 1], np.cos(999), atol=1e-6)


def test_positional_encoding_is_a_buffer_and_passes_gradients():
    pos = nn.PositionalEncoding(10, 4)
    assert pos.parameters() == [] and not pos.pe.requires_grad
    x = t64(np.random.default_rng(2).standard_normal((2, 3, 4)), True)
    out = pos(x)
    np.testing.assert_allclose(out.data, x.data + sinusoidal_table(10, 4)[:3], atol=1e-6)
    G = np.random.default_rng(3).standard_normal((2, 3, 4))
    out.backward(G)
    np.testing.assert_allclose(x.grad.data, G)


def test_learned_positions_train_only_the_rows_used():
    tt.manual_seed(0)
    lp = nn.LearnedPositionalEmbedding(6, 4)
    assert abs(lp.weight.data.std() - 0.02) < 0.01
    w = lp.weight.data.astype(np.float64)
    x = t64(np.zeros((2, 3, 4)), True)
    out = lp(x)
    np.testing.assert_allclose(out.data, np.broadcast_to(w[:3], (2, 3, 4)), atol=1e-7)
    G = np.random.default_rng(4).standard_normal((2, 3, 4))
    out.backward(G)
    want = np.zeros((6, 4))
    want[:3] = G.sum(axis=0)
    np.testing.assert_allclose(lp.weight.grad.data, want, atol=1e-5)
    np.testing.assert_allclose(x.grad.data, G)


@pytest.mark.parametrize("layer", [nn.PositionalEncoding(5, 4), nn.LearnedPositionalEmbedding(5, 4)])
@pytest.mark.parametrize("shape, words", [((1, 6, 4), ["5", "6"]), ((1, 2, 3), ["4", "(1, 2, 3)"]),
                                          ((2, 3, 1), ["(2, 3, 1)"]), ((4, 4), ["(4, 4)"])])
def test_positional_errors_name_expected_and_received(layer, shape, words):
    with pytest.raises(ValueError) as info:
        layer(t64(np.zeros(shape)))
    for word in words:
        assert word in str(info.value)
