"""`tito milestone list/run` on scratch milestone directories, and the 1958 perceptron end to end."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tito(root, *args):
    env = {**os.environ, "TINYTORCH_ROOT": str(root), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def scratch(tmp_path):
    d = tmp_path / "milestones"
    d.mkdir()
    (d / "1901_ok.py").write_text('"""Milestone 1901: passes."""\nprint("progress 1")\nprint("done")\n')
    (d / "1902_fails.py").write_text('"""Milestone 1902: fails."""\nimport sys\nprint("trying")\nsys.exit(3)\n')
    (d / "common.py").write_text('"""not a milestone"""\n')
    return tmp_path


def test_list_shows_scripts_in_year_order_with_their_summary(scratch):
    r = tito(scratch, "milestone", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [l.split()[0] for l in lines] == ["1901_ok", "1902_fails"]  # common.py is not listed
    assert "not run" in lines[0] and "Milestone 1901: passes." in lines[0]


@pytest.mark.parametrize("key", ["1901_ok", "1901", "ok", "1901_ok.py"])
def test_run_by_full_name_year_or_name_streams_output_and_returns_status(scratch, key):
    r = tito(scratch, "milestone", "run", key)
    assert r.returncode == 0, r.stderr
    assert "progress 1\ndone" in r.stdout


def test_run_returns_the_scripts_failure_status(scratch):
    r = tito(scratch, "milestone", "run", "1902")
    assert r.returncode == 3 and "trying" in r.stdout


def test_unknown_name_is_a_one_line_error(scratch):
    r = tito(scratch, "milestone", "run", "1999")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "unknown milestone '1999'" in r.stderr and "1901_ok, 1902_fails" in r.stderr


def test_perceptron_milestone_passes_and_writes_its_results(tmp_path):
    shutil.copytree(REPO / "milestones", tmp_path / "milestones", ignore=shutil.ignore_patterns("output", "__pycache__"))
    r = tito(tmp_path, "milestone", "run", "perceptron")
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "milestones" / "output" / "1958_perceptron.json").read_text())
    assert set(result) >= {"milestone", "passed", "metrics", "seconds", "peak_memory_mb"}
    m = result["metrics"]
    assert result["passed"] is True and m["and_accuracy"] == 1.0 and m["or_accuracy"] == 1.0
    assert m["blobs_test_accuracy"] >= 0.95 and m["xor_best_accuracy"] <= 0.75
    png = (tmp_path / "milestones" / "output" / "1958_perceptron.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "AND" in r.stdout and "PASSED" in r.stdout
