"""Optimization reports: what Module 20's capstone submits and milestone 2018 writes.

A report (schema: course/schemas/optimization_report.schema.json) holds a baseline model's
measurements, the optimization steps applied to it (the last step is the final model), and three
claims: how many times smaller and faster the final model is, and how many accuracy points it
lost. `validate_report` checks the schema with the jsonschema library, then what a schema cannot:
that each latency's confidence interval holds its median, that the claims are the arithmetic of
the measurements, and, against targets such as MLPERF_TARGETS, that they are met and that the
speedup is not noise (the two latency intervals do not overlap).
"""
from __future__ import annotations

import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "optimization_report.schema.json"
# milestone 2018: >= 4x smaller, >= 4x faster, at most 1 accuracy point lost
MLPERF_TARGETS = {"size_reduction": 4.0, "speedup": 4.0, "accuracy_drop_points": 1.0}


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _where(path) -> str:
    return "report" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in path)


def validate_report(report, targets: dict | None = None) -> list[str]:
    """Every reason `report` is not acceptable (an empty list when it is)."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema()).iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:  # the arithmetic below needs a well-formed report
        return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]
    reasons = []
    measured = [("baseline", report["baseline"])] + [(f"steps[{i}]", s) for i, s in enumerate(report["steps"])]
    for where, m in measured:
        lat = m["latency_ms"]
        if not lat["ci_low"] <= lat["median"] <= lat["ci_high"]:
            reasons.append(f"{where} ({m['name']}): the latency interval [{lat['ci_low']}, {lat['ci_high']}] ms "
                           f"does not hold its median {lat['median']} ms")
    base, final = report["baseline"], report["steps"][-1]
    actual = {"size_reduction": base["size_bytes"] / final["size_bytes"],
              "speedup": base["latency_ms"]["median"] / final["latency_ms"]["median"],
              "accuracy_drop_points": 100 * (base["accuracy"] - final["accuracy"])}
    claims = report["claims"]
    for key, value in actual.items():
        if abs(claims[key] - value) > 1e-3 * max(1.0, abs(value)):
            reasons.append(f"claims.{key} is {claims[key]}, but the measurements give {value:.6g} "
                           f"(baseline {base['name']!r} against the last step {final['name']!r})")
    if targets:
        if "size_reduction" in targets and actual["size_reduction"] < targets["size_reduction"]:
            reasons.append(f"size: {actual['size_reduction']:.2f}x smaller, the target is >= {targets['size_reduction']}x")
        if "speedup" in targets:
            if actual["speedup"] < targets["speedup"]:
                reasons.append(f"speed: {actual['speedup']:.2f}x faster, the target is >= {targets['speedup']}x")
            if final["latency_ms"]["ci_high"] >= base["latency_ms"]["ci_low"]:
                reasons.append("speed: the final model's latency interval overlaps the baseline's, "
                               "so the speedup could be noise")
        if "accuracy_drop_points" in targets and actual["accuracy_drop_points"] > targets["accuracy_drop_points"]:
            reasons.append(f"accuracy: {actual['accuracy_drop_points']:.2f} points lost, "
                           f"the target is <= {targets['accuracy_drop_points']}")
    return reasons


def load_report(path: Path | str) -> tuple[dict | None, list[str]]:
    """(the report, []) or (None, [the reason it cannot be read])."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), []
    except OSError as e:
        return None, [f"cannot read {path}: {e.strerror}"]
    except ValueError as e:
        return None, [f"{path} is not JSON: {e}"]
