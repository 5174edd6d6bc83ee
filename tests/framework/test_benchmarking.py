"""The reference benchmarking module (tinytorch.core.benchmarking): statistics against numpy on
fixed timing lists, the order-statistics interval against exact binomial ranks and its coverage
on seeded synthetic data, Benchmark with a fake clock (never real time), the published JSON
Schema (the file equals RESULT_SCHEMA and is a valid draft 2020-12 schema), validate_result
agreeing with the jsonschema library on valid and invalid results, the relations JSON Schema
cannot express, compare, the suite's accuracy gate with fake tasks, and JSON round trips.
No test asserts on time."""
import copy
import json
from fractions import Fraction
from math import comb
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import tinytorch.benchmarking as tb
from tinytorch.core.benchmarking import THREAD_VARS

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "course" / "schemas" / "benchmark_result.schema.json"


class FakeClock:
    """Stands still except when work() is called, which advances it by the next duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations[self.calls]
        self.calls += 1


def exact_ranks(n, confidence):
    """1-based (k, n - k + 1) of the order-statistics interval, by exact integer arithmetic."""
    k = 1
    total = 0
    for cand in range(1, (n + 1) // 2 + 1):
        total += comb(n, cand - 1)  # total = sum_{j < cand} C(n, j)
        if 2 * total > Fraction(1 - confidence) * 2 ** n:
            break
        k = cand
    return k, n - k + 1


# ---------------------------------------------------------------- statistics
@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 10, 11, 20, 29, 64, 101, 400])
@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_median_ci_uses_the_exact_binomial_ranks(n, confidence):
    values = np.arange(1.0, n + 1.0)
    np.random.default_rng(n).shuffle(values)
    lo, hi = exact_ranks(n, confidence)
    assert tb.median_ci(values, confidence) == (float(lo), float(hi))


def test_median_ci_worked_example_and_large_n():
    ten = [4.8, 1.02, 1.03, 1.03, 1.04, 1.05, 1.05, 1.07, 1.09, 1.31]
    assert tb.median_ci(ten) == (1.03, 1.31)
    big = np.random.default_rng(0).lognormal(size=5000)
    lo, hi = tb.median_ci(big)
    s = np.sort(big)
    k, _ = exact_ranks(5000, 0.95)
    assert (lo, hi) == (s[k - 1], s[5000 - k])
    assert lo <= np.median(big) <= hi


@pytest.mark.parametrize("n", [6, 10, 25, 60])
def test_median_ci_covers_the_true_median_on_synthetic_data(n):
    rng = np.random.default_rng(19 + n)
    k, _ = exact_ranks(n, 0.95)
    promised = 1 - 2 * sum(comb(n, j) for j in range(k)) / 2 ** n  # n <= 60: floats suffice
    trials = 3000
    draws = rng.exponential(1.0, (trials, n))  # true median ln 2
    hits = sum(lo <= np.log(2) <= hi for lo, hi in map(tb.median_ci, draws))
    # the promised coverage (>= 95%) within 4 binomial standard errors
    assert hits / trials >= promised - 4 * np.sqrt(promised * (1 - promised) / trials)
    assert promised >= 0.95


@pytest.mark.parametrize("seed", range(5))
def test_summarize_against_numpy(seed):
    rng = np.random.default_rng(seed)
    t = rng.lognormal(-6, 0.7, 3 + 7 * seed)
    s = tb.summarize(list(t), confidence=0.9)
    assert s["runs"] == len(t) and s["times"] == [float(v) for v in t]
    np.testing.assert_allclose([s["median"], s["mean"], s["std"], s["min"], s["iqr"]],
                               [np.median(t), t.mean(), t.std(ddof=1), t.min(),
                                np.percentile(t, 75) - np.percentile(t, 25)], rtol=1e-12)
    assert (s["ci_low"], s["ci_high"]) == tb.median_ci(t, 0.9)
    assert s["ci_low"] <= s["median"] <= s["ci_high"]
    assert all(type(v) in (int, float, list) for v in s.values())


def test_summarize_median_not_mean_and_errors():
    s = tb.summarize([1.0, 1.0, 1.0, 1.0, 100.0])
    assert s["median"] == 1.0 and s["mean"] == 20.8
    assert tb.summarize([0.5])["std"] == 0.0
    for bad in ([], [1.0, 0.0], [1.0, -1.0], [np.nan], [np.inf], [[1.0]]):
        with pytest.raises(ValueError):
            tb.summarize(bad)
    with pytest.raises(ValueError):
        tb.median_ci([1.0], confidence=1.0)


# ---------------------------------------------------------------- Benchmark with a fake clock
def test_benchmark_warms_up_untimed_and_times_blocks():
    clock = FakeClock([7.0, 7.0] + [0.5, 0.5, 1.0, 1.0, 2.0, 2.0])
    res = tb.Benchmark(clock.work, runs=3, warmup=2, number=2, clock=clock, name="f").run()
    assert clock.calls == 8
    assert res.timing["times"] == [0.5, 1.0, 2.0]
    assert res.median == 1.0 and res.ci == (0.5, 2.0) and res.name == "f" and res.status == "valid"
    assert (res.timing["warmup"], res.timing["number"], res.timing["unit"]) == (2, 2, "s")
    assert tb.validate_result(res) == []


def test_benchmark_argument_errors():
    with pytest.raises(TypeError):
        tb.Benchmark(3)
    for kwargs in ({"runs": 0}, {"warmup": -1}, {"number": 0}, {"runs": 2.5}, {"runs": True}, {"confidence": 1.0}):
        with pytest.raises(ValueError):
            tb.Benchmark(lambda: None, **kwargs)


def test_environment_reads_thread_variables_at_call_time(monkeypatch):
    for name in THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    env = tb.environment()
    assert env["threads"] == {name: ("1" if name == "OPENBLAS_NUM_THREADS" else None) for name in THREAD_VARS}
    assert env["numpy"] == np.__version__ and env["cpu_count"] >= 1
    assert env["timestamp"].endswith("+00:00")


# ---------------------------------------------------------------- the published schema
def test_schema_file_is_the_modules_schema_and_a_valid_draft_2020_12_schema():
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == tb.RESULT_SCHEMA
    assert published["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(published)


def good():
    clock = FakeClock([0.004, 0.001, 0.002, 0.003, 0.005, 0.002])
    res = tb.Benchmark(clock.work, runs=5, warmup=1, clock=clock, name="demo").run()
    return json.loads(res.to_json())


def invalid():
    r = good()
    r.update(status="invalid", reason="invalid: target not reached", timing=None,
             task={"metric": "accuracy", "target": 0.95, "score": 0.5, "train_seconds": 0.1})
    return r


def change(base, fn):
    r = copy.deepcopy(base)
    fn(r)
    return r


# (description, result) pairs; the schema alone decides each (no relation is broken)
CASES = [
    ("valid", good()),
    ("valid with task", change(good(), lambda r: r.update(task={"metric": "accuracy", "target": 0.9, "score": 0.9, "train_seconds": 1}))),
    ("invalid with reason", invalid()),
    ("integral float as integer", change(good(), lambda r: r["timing"].update(warmup=1.0))),
    ("empty threads", change(good(), lambda r: r["environment"].update(threads={}))),
    ("missing environment", change(good(), lambda r: r.pop("environment"))),
    ("missing timing", change(good(), lambda r: r.pop("timing"))),
    ("missing median", change(good(), lambda r: r["timing"].pop("median"))),
    ("missing cpu_count", change(good(), lambda r: r["environment"].pop("cpu_count"))),
    ("missing task score", change(invalid(), lambda r: r["task"].pop("score"))),
    ("invalid without reason", change(invalid(), lambda r: r.pop("reason"))),
    ("invalid with timing", change(invalid(), lambda r: r.update(timing=good()["timing"]))),
    ("valid without timing", change(good(), lambda r: r.update(timing=None))),
    ("status unknown", change(good(), lambda r: r.update(status="ok"))),
    ("schema_version 2", change(good(), lambda r: r.update(schema_version=2))),
    ("empty name", change(good(), lambda r: r.update(name=""))),
    ("extra top-level key", change(good(), lambda r: r.update(meadian=1.0))),
    ("extra timing key", change(good(), lambda r: r["timing"].update(p99=1.0))),
    ("unit ms", change(good(), lambda r: r["timing"].update(unit="ms"))),
    ("negative median", change(good(), lambda r: r["timing"].update(median=-0.003))),
    ("zero time", change(good(), lambda r: r["timing"]["times"].__setitem__(1, 0.0))),
    ("string time", change(good(), lambda r: r["timing"]["times"].__setitem__(1, "0.001"))),
    ("empty times", change(good(), lambda r: r["timing"].update(times=[]))),
    ("fractional warmup", change(good(), lambda r: r["timing"].update(warmup=1.5))),
    ("bool runs", change(good(), lambda r: r["timing"].update(runs=True))),
    ("confidence 1", change(good(), lambda r: r["timing"].update(confidence=1))),
    ("negative std", change(good(), lambda r: r["timing"].update(std=-1.0))),
    ("cpu_count 0", change(good(), lambda r: r["environment"].update(cpu_count=0))),
    ("thread value int", change(good(), lambda r: r["environment"]["threads"].update(OMP_NUM_THREADS=4))),
    ("target above 1", change(invalid(), lambda r: r["task"].update(target=1.5))),
    ("negative train time", change(invalid(), lambda r: r["task"].update(train_seconds=-0.1))),
    ("task extra key", change(invalid(), lambda r: r["task"].update(epochs=3))),
    ("not an object", [1, 2, 3]),
]


@pytest.mark.parametrize("description, result", CASES, ids=[c[0] for c in CASES])
def test_validator_agrees_with_jsonschema(description, result):
    reference = jsonschema.Draft202012Validator(tb.RESULT_SCHEMA).is_valid(result)
    ours = tb.validate_result(result)
    assert (ours == []) == reference, f"{description}: jsonschema says valid={reference}, validate_result says {ours}"


def test_the_cases_include_both_verdicts():
    verdicts = [jsonschema.Draft202012Validator(tb.RESULT_SCHEMA).is_valid(r) for _, r in CASES]
    assert sum(verdicts) >= 5 and len(verdicts) - sum(verdicts) >= 25


RELATIONS = [
    ("runs", lambda r: r["timing"].update(runs=4)),
    ("min", lambda r: r["timing"].update(min=r["timing"]["min"] / 2)),
    ("median", lambda r: r["timing"].update(median=r["timing"]["median"] * 1.01)),
    ("ci", lambda r: r["timing"].update(ci_low=r["timing"]["median"] * 1.1)),
    ("gate", lambda r: r.update(task={"metric": "accuracy", "target": 0.95, "score": 0.94, "train_seconds": 1.0})),
]


@pytest.mark.parametrize("name, fn", RELATIONS, ids=[r[0] for r in RELATIONS])
def test_relations_beyond_the_schema_are_rejected(name, fn):
    broken = change(good(), fn)
    assert jsonschema.Draft202012Validator(tb.RESULT_SCHEMA).is_valid(broken), "the schema alone accepts it"
    assert tb.validate_result(broken) != []


# ---------------------------------------------------------------- compare
def timed(durations, name):
    clock = FakeClock(durations)
    return tb.Benchmark(clock.work, runs=len(durations), warmup=0, clock=clock, name=name).run()


def test_compare_reports_ratio_and_overlap():
    a = timed([1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98, 1.01, 0.99], "a")
    b = timed([2.0, 2.1, 1.9, 2.05, 1.95, 2.0, 2.02, 1.98, 2.01, 1.99], "b")
    c = timed([1.01, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98, 1.01, 0.99], "c")
    ab = tb.compare(a, b)
    assert ab["ratio"] == pytest.approx(2.0) and not ab["overlap"] and "slower" in ab["verdict"]
    assert tb.compare(b, a)["ratio"] == pytest.approx(0.5) and "faster" in tb.compare(b, a)["verdict"]
    ac = tb.compare(a, c.to_dict())
    assert ac["overlap"] and "no significant difference" in ac["verdict"]
    c.environment = dict(c.environment, cpu_count=c.environment["cpu_count"] + 1)
    assert not tb.compare(a, c)["same_environment"] and "different environments" in tb.compare(a, c)["verdict"]
    with pytest.raises(ValueError):
        tb.compare(a, tb.BenchmarkResult.from_dict(invalid()))


# ---------------------------------------------------------------- the suite's gate
def fake_task(score, target, log):
    return tb.SuiteTask(f"task-{score}", "accuracy", target, train=lambda: log.append("train") or "m",
                        score=lambda m: log.append("score") or score,
                        infer=lambda m: log.append("infer") or (lambda: log.append("fn")))


def test_suite_times_only_tasks_that_reached_their_targets():
    log_hit, log_miss = [], []
    results = tb.run_suite([fake_task(0.97, 0.97, log_hit), fake_task(0.5, 0.97, log_miss)], runs=4, warmup=2)
    hit, miss = results
    assert hit.status == "valid" and hit.timing["runs"] == 4 and log_hit.count("fn") == 6
    assert miss.status == "invalid" and miss.timing is None and miss.reason.startswith("invalid: target not reached")
    assert log_miss == ["train", "score"]
    assert miss.task["score"] == 0.5 and miss.task["target"] == 0.97
    for r in results:
        assert tb.validate_result(r) == []
        assert jsonschema.Draft202012Validator(tb.RESULT_SCHEMA).is_valid(r.to_dict())
    forged = miss.to_dict()
    forged.update(status="valid", timing=hit.to_dict()["timing"])
    forged.pop("reason")
    assert tb.validate_result(forged) != []
    assert "target not reached" in tb.suite_table(results) or "invalid" in tb.suite_table(results)


def test_run_task_refuses_scores_outside_zero_one():
    for bad in (1.2, -0.1, float("nan")):
        with pytest.raises(ValueError):
            tb.run_task(fake_task(bad, 0.5, []), runs=2)


def test_mlperf_tasks_are_three_gated_tasks():
    tasks = tb.mlperf_tasks()
    assert [(t.name, t.metric, t.target) for t in tasks] == [
        ("mlp-1986", "accuracy", 0.95), ("cnn-1998", "accuracy", 0.97), ("gpt-2017", "exact match", 0.95)]


def test_an_undertrained_mlp_misses_its_target_and_has_no_timing():
    res = tb.run_task(tb.mlperf_tasks(mlp_epochs=1)[0], runs=3, warmup=1)
    assert res.status == "invalid" and res.timing is None and res.task["score"] < 0.95
    assert tb.validate_result(res) == []


# ---------------------------------------------------------------- JSON round trip
def test_json_round_trip():
    for result in (tb.BenchmarkResult.from_dict(good()), tb.BenchmarkResult.from_dict(invalid())):
        text = result.to_json()
        back = tb.BenchmarkResult.from_json(text)
        assert back.to_dict() == result.to_dict() == json.loads(text)
        assert tb.validate_result(back) == []
