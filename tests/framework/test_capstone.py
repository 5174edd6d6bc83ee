"""tinytorch.core.capstone (Module 20): storage bytes against hand counts, measurements with a
scripted clock (never real time), reports built from fake measurements that course/report.py
accepts, the claims' arithmetic, the Pareto front, and the errors."""
import copy
import json

import numpy as np
import pytest

from course.report import MLPERF_TARGETS, validate_report
from tinytorch import Tensor, manual_seed
from tinytorch.core.capstone import (TECHNIQUES, Compiled, build_report, cnn, int8_copy, measure, model_size_bytes,
                                     pareto_front)
from tinytorch.nn import Linear, ReLU, Sequential


def clock_for(durations):
    readings = iter([v for i, d in enumerate(durations) for v in (10.0 * i, 10.0 * i + d)])
    return lambda: next(readings)


def fake(name, size, median, acc, techniques=None, spread=0.05):
    m = {"name": name, "parameters": size // 4, "size_bytes": size, "accuracy": acc,
         "latency_ms": {"median": median, "ci_low": median * (1 - spread), "ci_high": median * (1 + spread), "runs": 30}}
    if techniques is not None:
        m["techniques"] = list(techniques)
    return m


ENV = {"python": "3.11.9", "numpy": "2.0.0", "platform": "test", "cpu_count": 2}
TASK = {"dataset": "digits", "metric": "accuracy", "test_examples": 360}


@pytest.mark.parametrize("c1, c2", [(32, 64), (6, 12), (1, 1)])
def test_size_bytes_of_the_capstone_cnns(c1, c2):
    weights = 9 * c1 + 9 * c1 * c2 + 4 * c2 * 10
    biases = c1 + c2 + 10
    model = cnn(c1, c2)
    assert model_size_bytes(model) == 4 * (weights + biases)
    assert model_size_bytes(model, 8) == weights + 3 * 8 + 4 * biases


def test_size_bytes_known_values_and_errors():
    assert model_size_bytes(cnn(32, 64)) == 85544 and model_size_bytes(cnn(6, 12), 8) == 1318
    assert model_size_bytes(Linear(256, 10), 8) == 2608
    assert model_size_bytes(Linear(3, 2, bias=False), 8) == 6 + 8
    for bits in (4, 16, 64):
        with pytest.raises(ValueError, match=str(bits)):
            model_size_bytes(Linear(2, 2), bits)
    with pytest.raises(ValueError):
        model_size_bytes(Sequential(ReLU()))


def test_measure_with_a_scripted_clock():
    manual_seed(0)
    model = Sequential(Linear(4, 3))
    x = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    y = model(Tensor(x)).data.argmax(axis=1).copy()
    y[:5] = (y[:5] + 1) % 3
    m = measure(model, x, y, "lin", 64, runs=6, warmup=1, clock=clock_for([0.006, 0.001, 0.002, 0.003, 0.004, 0.005]))
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["latency_ms"]["median"] == pytest.approx(3.5)
    assert (m["latency_ms"]["ci_low"], m["latency_ms"]["ci_high"]) == pytest.approx((1.0, 6.0))
    assert m["parameters"] == 15 and m["size_bytes"] == 64 and m["latency_ms"]["runs"] == 6
    json.dumps(m)
    assert model.training is True
    with pytest.raises(ValueError):
        measure(model, x, y[:3], "lin", 64)
    with pytest.raises(ValueError):
        measure(model, x, y, "lin", 0)


def test_int8_copy_and_compiled_agree_with_the_model():
    manual_seed(0)
    model = cnn(4, 8)
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    deployed = int8_copy(model)
    model.eval(), deployed.eval()
    w, wq = model[0].weight.data, deployed[0].weight.data
    assert not np.shares_memory(w, wq)
    assert np.abs(w - wq).max() <= (w.max() - min(w.min(), 0)) / 255 / 2 + 1e-6
    assert np.array_equal(model[0].bias.data, deployed[0].bias.data)
    out = deployed(Tensor(x)).data
    assert np.allclose(Compiled(deployed)(Tensor(x)).data, out, atol=1e-5)


def test_report_from_fake_measurements_is_accepted():
    base = fake("base", 85544, 8.0, 0.9972)
    steps = [fake("distilled", 4840, 1.6, 0.9889, ["distillation", "architecture"]),
             fake("int8", 1318, 1.5, 0.9917, ["quantization"])]
    report = build_report("fake", TASK, base, steps, ENV)
    assert validate_report(report, MLPERF_TARGETS) == []
    assert validate_report(json.loads(json.dumps(report)), MLPERF_TARGETS) == []
    c = report["claims"]
    assert c["size_reduction"] == pytest.approx(85544 / 1318)
    assert c["speedup"] == pytest.approx(8.0 / 1.5)
    assert c["accuracy_drop_points"] == pytest.approx(0.55)


def test_claims_arithmetic_and_rejections():
    base = fake("base", 1000, 4.0, 0.95)
    worse = build_report("r", TASK, base, [fake("f", 500, 2.0, 0.90, ["pruning"])], ENV)
    assert worse["claims"] == pytest.approx({"size_reduction": 2.0, "speedup": 2.0, "accuracy_drop_points": 5.0})
    reasons = validate_report(worse, MLPERF_TARGETS)
    assert any(r.startswith("size") for r in reasons) and any(r.startswith("accuracy") for r in reasons)
    tampered = copy.deepcopy(worse)
    tampered["claims"]["accuracy_drop_points"] = 0.05  # the drop as a fraction
    assert any("claims.accuracy_drop_points" in r for r in validate_report(tampered))
    assert validate_report(worse) == []  # no targets: the arithmetic holds


def test_report_errors_and_copies():
    base = fake("base", 1000, 4.0, 0.95)
    step = fake("s", 100, 1.0, 0.95, ["quantization"])
    with pytest.raises(ValueError):
        build_report("r", TASK, base, [], ENV)
    with pytest.raises(ValueError, match="bare"):
        build_report("r", TASK, base, [fake("bare", 100, 1.0, 0.9)], ENV)
    with pytest.raises(ValueError, match="magic"):
        build_report("r", TASK, base, [fake("m", 100, 1.0, 0.9, ["magic"])], ENV)
    report = build_report("r", TASK, base, [step], ENV)
    report["steps"][0]["techniques"].append("pruning")
    assert step["techniques"] == ["quantization"]
    assert set(TECHNIQUES) == {"profiling", "quantization", "pruning", "distillation", "low_rank", "acceleration",
                               "kv_cache", "architecture"}


def test_pareto_front():
    rows = [fake("big", 85544, 8.0, 0.997), fake("small", 4840, 1.6, 0.989), fake("int8", 1318, 1.6, 0.989),
            fake("pruned", 85544, 8.1, 0.980)]
    assert pareto_front(rows) == ["big", "int8"]
    assert pareto_front([fake("a", 1, 1.0, 0.5), fake("b", 1, 1.0, 0.5)]) == ["a", "b"]
    with pytest.raises(ValueError):
        pareto_front([])
