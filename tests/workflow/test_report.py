"""Optimization reports (course/report.py, `tito report validate`): accepted when the schema, the
arithmetic of the claims and the targets hold; otherwise rejected with every reason."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.report import MLPERF_TARGETS, validate_report

ROOT = Path(__file__).resolve().parents[2]


def measurement(name, size, accuracy, median, spread=0.05):
    return {"name": name, "parameters": size // 4, "size_bytes": size, "accuracy": accuracy,
            "latency_ms": {"median": median, "ci_low": median * (1 - spread), "ci_high": median * (1 + spread), "runs": 20}}


def good_report():
    base = measurement("cnn 32/64 float32", 85_544, 0.9972, 8.0)
    final = dict(measurement("distilled cnn 6/12 int8", 1_500, 0.9889, 1.6), techniques=["distillation", "quantization"])
    return {"schema_version": "1.0", "name": "digits", "task": {"dataset": "digits 8x8", "metric": "accuracy", "test_examples": 360},
            "environment": {"python": "3.11.7", "numpy": "2.4.6", "platform": "Linux", "cpu_count": 2},
            "baseline": base, "steps": [final],
            "claims": {"size_reduction": 85_544 / 1_500, "speedup": 8.0 / 1.6, "accuracy_drop_points": 100 * (0.9972 - 0.9889)}}


def test_a_consistent_report_meeting_the_targets_is_accepted():
    assert validate_report(good_report(), MLPERF_TARGETS) == []


@pytest.mark.parametrize("change, words", [
    (lambda r: r.pop("claims"), "'claims' is a required property"),
    (lambda r: r["baseline"].update(accuracy=99.7), "report['baseline']['accuracy']: 99.7 is greater than the maximum of 1"),
    (lambda r: r["steps"][0]["latency_ms"].update(runs=3), "3 is less than the minimum of 5"),
    (lambda r: r["steps"][0].update(techniques=["magic"]), "'magic' is not one of"),
    (lambda r: r["baseline"]["latency_ms"].update(ci_low=9.0), "does not hold its median 8.0 ms"),
    (lambda r: r["claims"].update(speedup=10.0), "claims.speedup is 10.0, but the measurements give 5"),
    (lambda r: r["claims"].update(accuracy_drop_points=0.1), "claims.accuracy_drop_points is 0.1"),
])
def test_each_defect_is_named(change, words):
    report = good_report()
    change(report)
    reasons = validate_report(report)
    assert any(words in r for r in reasons), reasons


def test_targets_missed_and_overlapping_intervals_are_rejected_only_against_targets():
    report = good_report()
    report["steps"][0].update(measurement("small", 30_000, 0.98, 7.9), techniques=["pruning"])
    report["claims"] = {"size_reduction": 85_544 / 30_000, "speedup": 8.0 / 7.9, "accuracy_drop_points": 100 * (0.9972 - 0.98)}
    assert validate_report(report) == []  # consistent: the arithmetic holds
    reasons = validate_report(report, MLPERF_TARGETS)
    assert [r.split(":")[0] for r in reasons] == ["size", "speed", "speed", "accuracy"], reasons
    assert "overlaps the baseline's" in reasons[2]


def tito(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_cli_accepts_rejects_and_says_why(tmp_path):
    ok, bad, broken = tmp_path / "ok.json", tmp_path / "bad.json", tmp_path / "broken.json"
    ok.write_text(json.dumps(good_report()))
    report = good_report()
    report["claims"]["speedup"] = 50.0
    bad.write_text(json.dumps(report))
    broken.write_text("{not json")
    r = tito("report", "validate", str(ok))
    assert r.returncode == 0 and "accepted (57.03x smaller, 5.00x faster, 0.83 accuracy points lost)" in r.stdout, r.stdout + r.stderr
    r = tito("report", "validate", str(bad))
    assert r.returncode == 1 and "rejected" in r.stdout and "claims.speedup is 50.0" in r.stdout
    r = tito("report", "validate", str(broken))
    assert r.returncode == 1 and "is not JSON" in r.stdout
    r = tito("report", "validate", str(tmp_path / "missing.json"))
    assert r.returncode == 1 and "cannot read" in r.stdout


def test_the_schema_is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator
    from course.report import schema
    Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"] == {"const": "1.0"}
