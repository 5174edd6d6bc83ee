"""The reference transformer (tinytorch.core.transformer): LayerNorm against numpy and finite
differences in float64 (input, weight, bias), the pre-norm block and GPT against a numpy
re-implementation driven by a state dict in PyTorch's keys, causality, a tiny GPT that overfits
one sequence with Adam, sampling frequencies and generate (seeding, greedy, cropping, errors)."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optim import Adam
from tinytorch.core.transformer import LayerNormFunction, sample_next_token

from .gradcheck import numeric_grad


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def np_layer_norm(x, w, b, k=1, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def np_block(x, sd, heads, p="", causal=True):
    B, T, E = x.shape
    hd = E // heads
    lin = lambda name, h: h @ sd[p + name + ".weight"].T + sd[p + name + ".bias"]
    split = lambda h: h.reshape(B, T, heads, hd).transpose(0, 2, 1, 3)
    h = np_layer_norm(x, sd[p + "ln1.weight"], sd[p + "ln1.bias"])
    q, k, v = split(lin("attn.q_proj", h)), split(lin("attn.k_proj", h)), split(lin("attn.v_proj", h))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    if causal:
        s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    x = x + lin("attn.out_proj", (np_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(B, T, E))
    h = np_layer_norm(x, sd[p + "ln2.weight"], sd[p + "ln2.bias"])
    return x + lin("mlp.fc2", np_gelu(lin("mlp.fc1", h)))


def np_gpt(ids, sd, heads, layers):
    x = sd["tok_emb.weight"][ids] + sd["pos_emb.weight"][:ids.shape[1]]
    for i in range(layers):
        x = np_block(x, sd, heads, p=f"blocks.{i}.")
    return np_layer_norm(x, sd["ln_f.weight"], sd["ln_f.bias"]) @ sd["head.weight"].T


def random_state(model, rng, scale=0.4):
    return {k: rng.standard_normal(v.shape) * scale + (1.0 if k.split(".")[-2].startswith("ln") and k.endswith("weight") else 0.0)
            for k, v in model.state_dict().items()}


def test_public_names():
    for name in ("LayerNorm", "FeedForward", "TransformerBlock", "GPT"):
        assert hasattr(nn, name)
    assert callable(F.layer_norm)


@pytest.mark.parametrize("x_shape, k, eps", [((4, 6), 1, 1e-5), ((2, 3, 5), 1, 1e-5), ((2, 3, 4, 5), 2, 1e-5),
                                             ((3, 2, 4), 3, 0.5), ((7,), 1, 1e-5), ((2, 8, 64), 1, 1e-5)])
def test_layer_norm_matches_numpy(x_shape, k, eps):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape) * 3 + 1
    ns = x_shape[len(x_shape) - k:]
    w, b = rng.standard_normal(ns), rng.standard_normal(ns)
    out = F.layer_norm(t64(x), ns, t64(w), t64(b), eps=eps)
    np.testing.assert_allclose(out.data, np_layer_norm(x, w, b, k, eps), atol=1e-10)
    plain = F.layer_norm(t64(x), ns, eps=eps)
    np.testing.assert_allclose(plain.data, np_layer_norm(x, 1.0, 0.0, k, eps), atol=1e-10)


def test_layer_norm_eps_inside_the_root_and_biased_variance():
    x = np.array([[0.0, 0.0, 0.0, 2.0]])
    out = F.layer_norm(t64(x), 4, eps=1.0)
    np.testing.assert_allclose(out.data, (x - 0.5) / np.sqrt(0.75 + 1.0))


@pytest.mark.parametrize("x_shape, k", [((3, 5), 1), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 2, 3), 3)])
def test_layer_norm_gradients_by_finite_differences(x_shape, k):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape) * 2 + 1
    ns = x_shape[len(x_shape) - k:]
    w, b = rng.standard_normal(ns), rng.standard_normal(ns)
    G = rng.standard_normal(x_shape)
    X, W, Bb = t64(x, True), t64(w, True), t64(b, True)
    F.layer_norm(X, ns, W, Bb).backward(G)
    f = lambda: float((np_layer_norm(x, w, b, k) * G).sum())
    for T, arr in ((X, x), (W, w), (Bb, b)):
        np.testing.assert_allclose(T.grad.data, numeric_grad(f, arr), atol=1e-6)
    axes = tuple(range(len(x_shape) - k, len(x_shape)))
    np.testing.assert_allclose(X.grad.data.sum(axis=axes), 0, atol=1e-10)
    X0 = t64(x, True)  # with eps = 0, scaling x - mu leaves xhat unchanged: sum(dx * xhat) = 0
    F.layer_norm(X0, ns, t64(w), t64(b), eps=0.0).backward(G)
    np.testing.assert_allclose((X0.grad.data * np_layer_norm(x, 1.0, 0.0, k, eps=0.0)).sum(axis=axes), 0, atol=1e-9)


def test_layer_norm_float32_and_no_grad_for_missing_weight():
    x = Tensor(np.random.default_rng(2).standard_normal((4, 16)).astype(np.float32), requires_grad=True)
    out = F.layer_norm(x, 16)
    assert out.dtype == np.float32
    out.backward(np.ones((4, 16), np.float32))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 0, atol=1e-5)  # d/dx of sum(xhat) is 0


@pytest.mark.parametrize("x_shape, ns, w_shape, b_shape", [((2, 4), 3, (3,), (3,)), ((2, 5), 5, (4,), (5,)),
                                                           ((2, 5), 5, (5,), (4,)), ((3, 2, 5), 5, (2, 5), (2, 5))])
def test_layer_norm_shape_errors_name_both_shapes(x_shape, ns, w_shape, b_shape):
    with pytest.raises(ValueError) as e:
        F.layer_norm(t64(np.ones(x_shape)), ns, t64(np.ones(w_shape)), t64(np.zeros(b_shape)))
    assert "expected" in str(e.value) and "got" in str(e.value)


def test_layer_norm_bad_normalized_shape():
    with pytest.raises(TypeError):
        nn.LayerNorm(2.5)
    with pytest.raises(ValueError):
        nn.LayerNorm(0)
    with pytest.raises(ValueError):
        nn.LayerNorm(())


def test_layernorm_module_has_pytorch_state_dict():
    ln = nn.LayerNorm((3, 4), eps=1e-6)
    sd = ln.state_dict()
    assert list(sd) == ["weight", "bias"] and sd["weight"].shape == (3, 4)
    np.testing.assert_array_equal(sd["weight"], 1)
    np.testing.assert_array_equal(sd["bias"], 0)
    assert ln.weight.dtype == np.float32 and ln.normalized_shape == (3, 4) and ln.eps == 1e-6


def test_feedforward_values_and_keys():
    tt.manual_seed(0)
    ff = nn.FeedForward(6, 24)
    assert [n for n, _ in ff.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    rng = np.random.default_rng(3)
    sd = {k: rng.standard_normal(v.shape) for k, v in ff.state_dict().items()}
    ff.load_state_dict(sd)
    x = rng.standard_normal((2, 5, 6))
    want = np_gelu(x @ sd["fc1.weight"].T + sd["fc1.bias"]) @ sd["fc2.weight"].T + sd["fc2.bias"]
    np.testing.assert_allclose(ff(t64(x)).data, want, atol=1e-5)
    with pytest.raises(ValueError):
        ff(t64(np.ones((2, 12))))


@pytest.mark.parametrize("E, H, T, causal", [(8, 2, 5, True), (12, 3, 7, False), (16, 4, 1, True)])
def test_block_matches_numpy_from_state_dict(E, H, T, causal):
    tt.manual_seed(0)
    blk = nn.TransformerBlock(E, H)
    assert sum(p.size for p in blk.parameters()) == 12 * E * E + 13 * E
    rng = np.random.default_rng(4)
    sd = random_state(blk, rng)
    blk.load_state_dict(sd)
    x = rng.standard_normal((3, T, E))
    np.testing.assert_allclose(blk(t64(x), is_causal=causal).data, np_block(x, sd, H, causal=causal), atol=1e-4)


def test_block_is_the_identity_when_its_branches_output_zero():
    """Zero out_proj and fc2: a pre-norm block returns its input exactly (post-norm would not)."""
    blk = nn.TransformerBlock(8, 2)
    sd = random_state(blk, np.random.default_rng(5))
    for key in ("attn.out_proj.weight", "attn.out_proj.bias", "mlp.fc2.weight", "mlp.fc2.bias"):
        sd[key] = np.zeros_like(sd[key])
    blk.load_state_dict(sd)
    x = np.random.default_rng(6).standard_normal((2, 4, 8)) * 5 + 3
    np.testing.assert_allclose(blk(t64(x)).data, x, atol=1e-12)


def test_block_gradient_by_finite_differences():
    blk = nn.TransformerBlock(8, 2)
    rng = np.random.default_rng(7)
    sd = random_state(blk, rng)
    blk.load_state_dict(sd)
    x = rng.standard_normal((2, 3, 8))
    G = rng.standard_normal((2, 3, 8))
    X = t64(x, True)
    blk(X).backward(G)
    num = numeric_grad(lambda: float((np_block(x, {k: v.astype(np.float32).astype(np.float64) for k, v in sd.items()}, 2) * G).sum()), x)
    np.testing.assert_allclose(X.grad.data, num, atol=1e-4)


def test_block_dropout_acts_on_branches_only():
    blk = nn.TransformerBlock(8, 2, dropout=1.0)
    x = np.random.default_rng(8).standard_normal((2, 3, 8))
    np.testing.assert_allclose(blk(t64(x)).data, x)
    blk.eval()
    assert np.abs(blk(t64(x)).data - x).max() > 1e-3


def test_gpt_shapes_keys_init_and_numpy_reference():
    tt.manual_seed(0)
    model = nn.GPT(13, 16, 2, 4, 10)
    keys = list(model.state_dict())
    assert keys[:2] == ["tok_emb.weight", "pos_emb.weight"] and keys[-3:] == ["ln_f.weight", "ln_f.bias", "head.weight"]
    assert "blocks.1.attn.q_proj.weight" in keys and "blocks.0.mlp.fc2.bias" in keys
    n = sum(p.size for p in model.parameters())
    assert n == 2 * 13 * 16 + 10 * 16 + 2 * (12 * 256 + 13 * 16) + 2 * 16
    assert abs(model.state_dict()["blocks.0.mlp.fc1.weight"].std() - 0.02) < 0.005
    rng = np.random.default_rng(9)
    sd = random_state(model, rng)
    model.load_state_dict(sd)
    ids = rng.integers(0, 13, size=(3, 7))
    logits = model(ids)
    assert logits.shape == (3, 7, 13)
    np.testing.assert_allclose(logits.data, np_gpt(ids, sd, 4, 2), atol=1e-4)


def test_gpt_is_causal():
    tt.manual_seed(1)
    model = nn.GPT(11, 16, 2, 2, 8)
    ids = np.random.default_rng(10).integers(0, 11, size=(2, 8))
    base = model(ids).data
    for t in range(1, 8):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 1) % 11
        out = model(changed).data
        np.testing.assert_allclose(out[:, :t], base[:, :t], atol=1e-6)
        assert np.abs(out[:, t] - base[:, t]).max() > 1e-6


def test_gpt_errors():
    model = nn.GPT(11, 8, 1, 2, 6)
    with pytest.raises(ValueError, match="6.*7|7.*6"):
        model(np.zeros((1, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        model(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError):
        model(np.array([[11]]))
    with pytest.raises(TypeError):
        model(np.array([[1.0]]))
    with pytest.raises(ValueError, match="num_layers"):
        nn.GPT(11, 8, -1, 2, 6)


def test_tiny_gpt_overfits_one_sequence():
    tt.manual_seed(0)
    model = nn.GPT(8, 32, 2, 4, 16)
    seq = np.array([[3, 1, 4, 1, 5, 2, 6, 5, 3, 5, 0, 7, 2, 6, 4, 3, 2]])
    opt, loss_fn = Adam(model.parameters(), lr=1e-2), CrossEntropyLoss()
    first = None
    for _ in range(40):
        logits = model(seq[:, :-1])
        loss = loss_fn(logits.reshape(16, 8), seq[0, 1:])
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 1.8  # about ln(8) = 2.08 at GPT-2's initialisation
    assert loss.item() < 0.05
    assert np.array_equal(model(seq[:, :-1]).data[0].argmax(axis=1), seq[0, 1:])


def test_sample_next_token_frequencies():
    logits = np.array([[2.0, 1.0, 0.0, -1.0, 0.5]])
    for tau, k in [(1.0, None), (0.5, None), (2.0, 3), (1.0, 1), (0.7, 2)]:
        tt.manual_seed(0)
        ids = sample_next_token(np.repeat(logits, 40000, axis=0), temperature=tau, top_k=k)
        z = logits[0] / tau
        if k is not None:
            z = np.where(z < np.sort(z)[-k], -np.inf, z)
        np.testing.assert_allclose(np.bincount(ids, minlength=5) / 40000, np_softmax(z), atol=0.015)


def test_sample_next_token_seeded_and_errors():
    logits = np.random.default_rng(11).standard_normal((64, 20))
    tt.manual_seed(3)
    a = sample_next_token(logits)
    tt.manual_seed(3)
    assert np.array_equal(a, sample_next_token(logits))
    np.testing.assert_array_equal(sample_next_token(logits, top_k=1), logits.argmax(axis=1))
    for kwargs in ({"temperature": 0}, {"temperature": -0.5}, {"top_k": 0}):
        with pytest.raises(ValueError):
            sample_next_token(logits, **kwargs)
    with pytest.raises(ValueError):
        sample_next_token(logits[0])


def test_generate_greedy_crops_context_and_keeps_types():
    tt.manual_seed(2)
    model = nn.GPT(11, 16, 2, 2, 6)
    sd = random_state(model, np.random.default_rng(12))
    model.load_state_dict(sd)
    prompt = np.array([[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1]])
    out = model.generate(prompt, 6, top_k=1)
    want = prompt.copy()
    for _ in range(6):
        nxt = np_gpt(want[:, -6:], model.state_dict(), 2, 2)[:, -1].argmax(axis=1)
        want = np.concatenate([want, nxt[:, None]], axis=1)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    np.testing.assert_array_equal(out, want)
    tout = model.generate(Tensor(prompt), 2, top_k=1)
    assert isinstance(tout, Tensor) and tout.dtype == np.int64
    np.testing.assert_array_equal(tout.data, want[:, :9])


def test_generate_seeded_eval_mode_restored_and_errors():
    tt.manual_seed(4)
    model = nn.GPT(11, 16, 1, 2, 8)
    model.train()
    tt.manual_seed(5)
    a = model.generate(np.array([[1, 2]]), 10)
    tt.manual_seed(5)
    b = model.generate(np.array([[1, 2]]), 10)
    np.testing.assert_array_equal(a, b)
    assert model.training
    # use_cache=True belongs to Module 18: tests/framework/test_kvcache.py
    for kwargs in ({"temperature": 0.0}, {"top_k": 0}):
        with pytest.raises(ValueError):
            model.generate(np.array([[1]]), 1, **kwargs)
    with pytest.raises(ValueError):
        model.generate(np.array([[1]]), -1)
    with pytest.raises(TypeError):
        model.generate(np.array([[1.0]]), 1)
    with pytest.raises(ValueError):
        model.generate(np.zeros((1, 0), np.int64), 1)


def test_layer_norm_function_is_one_graph_node():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    out = LayerNormFunction.apply(x, Tensor(np.ones(3), requires_grad=True), Tensor(np.zeros(3)))
    assert out._ctx.function is LayerNormFunction
