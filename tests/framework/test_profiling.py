"""tinytorch.profiling: FLOPs and parameters against hand counts, memory of a known allocation,
latency call counts (never times), the Profiler's table and its restoring of forwards."""
import tracemalloc

import numpy as np
import pytest

from tinytorch import Tensor, manual_seed
from tinytorch.nn import (AvgPool2d, Conv2d, Flatten, GELU, Linear, MaxPool2d, MultiHeadAttention, ReLU, Sequential)
from tinytorch.profiling import (Profiler, count_flops, count_parameters, layer_flops, measure_latency, measure_memory,
                                 named_modules)


def wrapped(model):
    return [name for name, m in named_modules(model) if "forward" in vars(m)]


@pytest.mark.parametrize("layer, shape, want", [
    (Linear(784, 256), (1, 784), 2 * 784 * 256 + 256),
    (Linear(784, 256, bias=False), (1, 784), 2 * 784 * 256),
    (Linear(4, 5), (2, 3, 4), 6 * (40 + 5)),
    (Conv2d(3, 16, 3), (1, 3, 32, 32), 16 * 30 * 30 * (2 * 27 + 1)),
    (Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 32, 32), 2 * 8 * 16 * 16 * 55),
    (Conv2d(3, 64, 7, stride=2, padding=3), (1, 3, 224, 224), 64 * 112 * 112 * (2 * 3 * 49 + 1)),
    (MaxPool2d(2), (2, 3, 8, 8), 2 * 3 * 16 * 3),
    (MaxPool2d(3, stride=1), (1, 1, 5, 5), 9 * 8),
    (AvgPool2d(2), (1, 3, 6, 6), 27 * 4),
    (ReLU(), (2, 3, 4), 24),
    (GELU(), (5,), 5),
    (MultiHeadAttention(16, 4), (1, 5, 16), 4 * 5 * 5 * 16),
    (Flatten(), (2, 3, 4), 0),
])
def test_layer_flops_match_hand_counts(layer, shape, want):
    assert layer_flops(layer, shape) == want


def test_attention_flops_cross_attention_and_whole_layer():
    mha = MultiHeadAttention(16, 4)
    assert layer_flops(mha, (2, 5, 16), (2, 3, 16)) == 4 * 2 * 5 * 3 * 16
    projections = 4 * 10 * (2 * 16 * 16 + 16)
    assert count_flops(mha, (2, 5, 16)) == projections + 4 * 2 * 5 * 5 * 16


def test_count_flops_composed_cnn_by_hand():
    manual_seed(0)
    cnn = Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))
    B = 32
    hand = (B * 6 * 28 * 28 * 51 + B * 6 * 28 * 28 + B * 6 * 14 * 14 * 3
            + B * 16 * 10 * 10 * 301 + B * 16 * 10 * 10 + B * 16 * 5 * 5 * 3
            + B * 96120 + B * 120 + B * 20244 + B * 84 + B * 1690)
    assert count_flops(cnn, (B, 1, 28, 28)) == hand == 27_225_408
    assert count_parameters(cnn) == 61_706
    assert wrapped(cnn) == []


def test_nested_and_repeated_modules_are_counted_exactly():
    assert count_flops(Sequential(Sequential(Linear(3, 4))), (1, 3)) == 28
    relu = ReLU()
    assert count_flops(Sequential(Linear(4, 4), relu, Linear(4, 4), relu), (3, 4)) == 2 * 3 * 36 + 2 * 12


def test_gpt_flops_and_parameters():
    transformer = pytest.importorskip("tinytorch.core.transformer")
    manual_seed(0)
    E, V, L, T = 16, 11, 2, 6
    gpt = transformer.GPT(vocab_size=V, embed_dim=E, num_layers=L, num_heads=2, max_seq_len=8)
    per_block = (4 * T * (2 * E * E + E) + 4 * T * T * E        # attention: projections and core
                 + T * (2 * E * 4 * E + 4 * E) + T * 4 * E + T * (2 * 4 * E * E + E))  # feed-forward with GELU
    assert count_flops(gpt, (1, T), dtype=np.int64) == L * per_block + T * 2 * E * V
    assert count_parameters(gpt) == sum(p.size for p in gpt.parameters())


def test_parameters_shared_and_frozen():
    shared = Linear(5, 5)
    assert count_parameters(Sequential(shared, ReLU(), shared)) == 30
    net = Sequential(Linear(4, 8), Linear(8, 2))
    net[0].weight.requires_grad = False
    assert count_parameters(net) == 58 and count_parameters(net, trainable_only=True) == 26


def test_memory_of_a_known_allocation():
    arr, peak = measure_memory(lambda: np.ones(10**6))
    assert arr.shape == (10**6,) and 8_000_000 <= peak < 8_100_000
    _, peak = measure_memory(lambda: [np.ones(10**6) for _ in range(1)] and np.ones(10))
    assert 8_000_000 <= peak < 8_100_000
    assert not tracemalloc.is_tracing()


def test_latency_calls_fn_warmup_plus_runs_times():
    calls = []
    stats = measure_latency(lambda: calls.append(1), warmup=4, runs=6)
    assert len(calls) == 10 and len(stats["times"]) == 6
    assert all(t > 0 for t in stats["times"]) and stats["min"] <= stats["median"] <= stats["max"]


def test_latency_median_and_warmup_with_a_fake_clock():
    now = [0.0]
    durations = iter([100.0, 5.0, 1.0, 3.0, 2.0, 40.0])
    def fn():
        now[0] += next(durations)
    stats = measure_latency(fn, warmup=1, runs=5, clock=lambda: now[0])
    assert stats["times"] == [5.0, 1.0, 3.0, 2.0, 40.0] and stats["median"] == 3.0 and stats["mean"] == 10.2


def test_profiler_covers_every_leaf_and_restores_forwards():
    manual_seed(0)
    net = Sequential(Linear(8, 16), ReLU(), Sequential(Linear(16, 4), ReLU()))
    prof = Profiler(net)
    out = prof.run(Tensor(np.ones((3, 8), dtype=np.float32)))
    leaves = {"0", "1", "2.0", "2.1"}
    assert leaves <= set(prof.stats) and out.shape == (3, 4) and wrapped(net) == []
    assert prof.stats["2.0"]["flops"] == 3 * (2 * 16 * 4 + 4)
    assert abs(sum(s["self_time"] for s in prof.stats.values()) - prof.stats[""]["total_time"]) < 1e-9
    assert prof.bottleneck() == prof.table()[0][0] and "bottleneck" in prof.report()
    with pytest.raises(ValueError):
        prof.run(Tensor(np.ones((3, 5), dtype=np.float32)))
    assert wrapped(net) == []


def test_errors():
    with pytest.raises(TypeError, match="str"):
        count_parameters("net")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        layer_flops(Linear(4, 5), (2, 3))
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(Linear(3, 2), (1, 0))
    with pytest.raises(ValueError, match="0"):
        measure_latency(lambda: None, runs=0)
    with pytest.raises(TypeError, match="int"):
        measure_memory(42)
    with pytest.raises(RuntimeError):
        Profiler(Linear(2, 2)).bottleneck()
    with pytest.raises(TypeError, match="list"):
        Profiler([Linear(2, 2)])
