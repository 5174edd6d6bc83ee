"""Module 18: the KV cache's bookkeeping and memory, and generation with it giving exactly the
uncached tokens (also past max_seq_len), against the reference package."""
import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn
from tinytorch.optimization import KVCache, cached_attention, forward_cached, generate_cached


def random_gpt(vocab, dim, layers, heads, max_len, seed, scale=0.5):
    tt.manual_seed(seed)
    model = nn.GPT(vocab, dim, layers, heads, max_len)
    rng = np.random.default_rng(seed)
    model.load_state_dict({k: (rng.standard_normal(v.shape) * scale).astype(np.float32)
                           for k, v in model.state_dict().items()})
    return model


def test_cache_bookkeeping_views_reset_and_memory():
    c = KVCache(2, 3, 4, 10, 5)
    assert c.nbytes == 2 * 2 * 3 * 4 * 10 * 5 * 4 == sum(a.nbytes for a in c.keys + c.values)
    k = np.arange(3 * 4 * 2 * 5, dtype=np.float32).reshape(3, 4, 2, 5)
    keys, values = c.append(0, k, -k)
    np.testing.assert_array_equal(keys, k)
    np.testing.assert_array_equal(values, -k)
    assert np.shares_memory(keys, c.keys[0]) and c.lengths == [2, 0] and len(c) == 2
    keys, _ = c.append(0, k[:, :, :1], k[:, :, :1])
    assert keys.shape == (3, 4, 3, 5) and c.get(0)[0].shape == (3, 4, 3, 5) and c.get(1)[0].shape == (3, 4, 0, 5)
    arrays = list(c.keys)
    c.reset()
    assert c.lengths == [0, 0] and all(a is b for a, b in zip(arrays, c.keys))
    gpt2 = KVCache(12, 1, 12, 1024, 64, dtype=np.float16)
    assert gpt2.nbytes == 37_748_736 == sum(a.nbytes for a in gpt2.keys + gpt2.values)
    assert KVCache(12, 1, 12, 1024, 64).nbytes == 75_497_472


def test_cache_errors_leave_it_unchanged():
    c = KVCache(1, 1, 2, 3, 4)
    c.append(0, np.ones((1, 2, 3, 4)), np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="3"):
        c.append(0, np.ones((1, 2, 1, 4)), np.ones((1, 2, 1, 4)))
    with pytest.raises(ValueError, match=r"\(1, 2, 1, 5\)"):
        KVCache(1, 1, 2, 3, 4).append(0, np.ones((1, 2, 1, 5)), np.ones((1, 2, 1, 5)))
    with pytest.raises(IndexError):
        c.append(-1, np.ones((1, 2, 1, 4)), np.ones((1, 2, 1, 4)))
    assert c.lengths == [3]
    with pytest.raises(ValueError, match="max_len"):
        KVCache(1, 1, 1, 0, 1)
    with pytest.raises(TypeError):
        KVCache(1, 1, 1, 1, 1, dtype=np.int8)


def test_cached_attention_and_forward_match_the_full_model():
    model = random_gpt(13, 16, 2, 4, 8, seed=0)
    ids = np.random.default_rng(0).integers(0, 13, size=(2, 8))
    full = model(ids).data
    cache = KVCache(2, 2, 4, 8, 4)
    parts = [forward_cached(model, ids[:, :3], cache).data]
    parts += [forward_cached(model, ids[:, t:t + 1], cache).data for t in range(3, 8)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="8"):
        forward_cached(model, ids[:, :1], cache)
    mha = model.blocks[0].attn
    x = tt.Tensor(np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32))
    c = KVCache(1, 2, 4, 5, 4)
    a = cached_attention(mha, x[:, :2], c, 0).data
    b = cached_attention(mha, x[:, 2:], c, 0).data
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), mha(x, is_causal=True).data, atol=1e-5)


@pytest.mark.parametrize("batch, prompt_len, new, temperature, top_k", [
    (1, 1, 10, 1.0, 1), (2, 3, 5, 1.0, None), (3, 2, 15, 0.8, 3), (2, 11, 4, 1.2, None), (1, 8, 6, 1.0, 1)])
def test_generate_with_cache_gives_exactly_the_uncached_tokens(batch, prompt_len, new, temperature, top_k):
    model = random_gpt(17, 16, 2, 4, 8, seed=3)
    prompt = np.random.default_rng(prompt_len).integers(0, 17, size=(batch, prompt_len))
    tt.manual_seed(42)
    plain = model.generate(prompt, new, temperature=temperature, top_k=top_k)
    tt.manual_seed(42)
    cached = model.generate(prompt, new, temperature=temperature, top_k=top_k, use_cache=True)
    np.testing.assert_array_equal(cached, plain)
    tt.manual_seed(42)
    np.testing.assert_array_equal(generate_cached(model, prompt, new, temperature, top_k), plain)


def test_generate_reuses_a_dirty_cache_and_checks_it():
    model = random_gpt(17, 16, 2, 4, 8, seed=5)
    prompt = np.array([[1, 2, 3]])
    cache = KVCache(2, 1, 4, 8, 4)
    cache.append(0, np.ones((1, 4, 5, 4)), np.ones((1, 4, 5, 4)))
    want = model.generate(prompt, 12, top_k=1)
    np.testing.assert_array_equal(generate_cached(model, prompt, 12, 1.0, 1, cache=cache), want)
    assert cache.lengths == [8, 8]
    with pytest.raises(ValueError):
        generate_cached(model, prompt, 1, cache=KVCache(2, 2, 4, 8, 4))
    out = model.generate(tt.Tensor(prompt), 2, top_k=1, use_cache=True)
    assert isinstance(out, tt.Tensor) and out.dtype == np.int64
