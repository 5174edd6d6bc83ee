"""A student's whole workflow, played in a scratch copy of the repository through the `tito` CLI.

Each test runs tito as a subprocess with TINYTORCH_ROOT pointing at the copy and PYTHONPATH
putting the copy's tinytorch/ first, so `import tinytorch` (in tito, in kernels, in probes)
is the copy's package, and the repository itself is never modified.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.samples import fill_solutions
from course.project import ROOT, find_module

MARKER = "STUDENT_MARKER_7f3a"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, root / name)
    for tree in ("source", "release", "tinytorch"):
        shutil.copytree(ROOT / tree, root / tree, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "modules").mkdir()
    shutil.copy(ROOT / "modules" / "README.md", root / "modules" / "README.md")
    return root


def tito(root, *args, check=None):
    env = {**os.environ, "TINYTORCH_ROOT": str(root), "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    if check is not None:
        assert (result.returncode == 0) == check, \
            f"tito {' '.join(args)}: expected {'success' if check else 'failure'}, got exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def probe(root, code):
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def solved_notebook(marker=True):
    m = find_module("01")
    nb = fill_solutions(json.loads(m.release().read_text()), json.loads(m.source().read_text()))
    if marker:  # something the reference does not have, so the probe can tell whose code runs
        for cell in nb["cells"]:
            if "def broadcast_shape(" in "".join(cell["source"]):
                cell["source"] = "".join(cell["source"]) + f"\n\n{MARKER} = True\n"
    return nb


def test_student_journey_from_init_to_reset(repo):
    nb_path = repo / "modules" / "01_tensor" / "01_tensor.ipynb"

    tito(repo, "student", "init", check=True)
    assert "raise NotImplementedError" in (repo / "tinytorch" / "core" / "tensor.py").read_text(), \
        "student mode must hold the release stubs, not the reference"
    stubbed = probe(repo, "import tinytorch; tinytorch.Tensor([1.0])")
    assert "NotImplementedError" in stubbed.stderr, "before export, the student's package raises NotImplementedError"

    out = tito(repo, "module", "start", "01", check=True)
    assert nb_path.exists() and nb_path.read_bytes() == (repo / "release/01_tensor/01_tensor.ipynb").read_bytes(), out.stdout

    nb_path.write_text(json.dumps(solved_notebook()), encoding="utf-8")
    out = tito(repo, "module", "test", "01", check=True)
    assert "17/17 points" in out.stdout and "FAIL" not in out.stdout, out.stdout
    assert "encryption" not in out.stderr, f"the test kernel should not warn about its transport:\n{out.stderr}"

    out = tito(repo, "module", "export", "01", check=True)
    assert "NotImplementedError" not in out.stdout, f"a finished notebook should export without stub warnings:\n{out.stdout}"
    mine = probe(repo, f"import tinytorch; from tinytorch.core import tensor; print(tensor.{MARKER}, tinytorch.Tensor([1.5]).dtype)")
    assert mine.returncode == 0 and mine.stdout.split() == ["True", "float32"], \
        f"import tinytorch should run the student's exported code:\n{mine.stdout}{mine.stderr}"

    status = tito(repo, "status", check=True).stdout
    assert "tests passing" in status and "yours (exported)" in status and "student mode" in status, status

    # a broken implementation fails `module test` with the assertion's message
    broken = solved_notebook(marker=False)
    for cell in broken["cells"]:
        src = "".join(cell["source"])
        if "def memory_footprint(" in src:
            cell["source"] = src.replace("return self.nbytes + (self.grad.nbytes if self.grad is not None else 0)",
                                         "return self.nbytes")
    nb_path.write_text(json.dumps(broken), encoding="utf-8")
    out = tito(repo, "module", "test", "01", check=False)
    assert "FAIL  test-memory-footprint" in out.stdout, out.stdout
    assert "expected 800 bytes, got 400" in out.stdout, f"the assertion message should be shown:\n{out.stdout}"
    assert "stale" not in tito(repo, "status").stdout

    work = nb_path.read_bytes()
    out = tito(repo, "module", "reset", "01", check=True)
    assert nb_path.read_bytes() == (repo / "release/01_tensor/01_tensor.ipynb").read_bytes(), "reset restores the release"
    backups = list((nb_path.parent / "backups").glob("*.ipynb"))
    assert [b.read_bytes() for b in backups] == [work], "the backup holds the student's work"

    tito(repo, "reference", check=True)
    for f in (ROOT / "tinytorch").rglob("*.py"):
        copy = repo / f.relative_to(ROOT)
        assert copy.read_bytes() == f.read_bytes(), f"tito reference should restore {f.relative_to(ROOT)} exactly"
    assert nb_path.read_bytes() == (repo / "release/01_tensor/01_tensor.ipynb").read_bytes(), "reference leaves modules/ alone"


def test_partial_export_names_the_stubbed_functions(repo):
    tito(repo, "student", "init", check=True)
    tito(repo, "module", "start", "01", check=True)
    out = tito(repo, "module", "export", "01", check=True)
    assert "warning: these still raise NotImplementedError" in out.stdout and "broadcast_shape" in out.stdout \
        and "Tensor.__init__" in out.stdout, out.stdout
    assert "Function.forward" not in out.stdout and "Function.backward" not in out.stdout, \
        f"given abstract methods are not unfinished work:\n{out.stdout}"


def test_init_keeps_exported_modules_and_reference_round_trips(repo):
    tito(repo, "student", "init", check=True)
    tito(repo, "module", "start", "01", check=True)
    (repo / "modules/01_tensor/01_tensor.ipynb").write_text(json.dumps(solved_notebook()), encoding="utf-8")
    tito(repo, "module", "export", "01", check=True)
    out = tito(repo, "student", "init", check=True)
    assert "your exported code" in out.stdout, "student init keeps modules the student exported"
    assert MARKER in (repo / "tinytorch/core/tensor.py").read_text()


def export_solved(repo, number):
    """Start module `number`, write the reference solution into the student's copy, export it."""
    m = find_module(number)
    tito(repo, "module", "start", number, check=True)
    nb = fill_solutions(json.loads(m.release().read_text()), json.loads(m.source().read_text()))
    (repo / "modules" / m.name / m.notebook_name).write_text(json.dumps(nb), encoding="utf-8")
    out = tito(repo, "module", "export", number, check=True)
    assert "NotImplementedError" not in out.stdout, f"module {number} exported with stubs:\n{out.stdout}"


GRADIENT_PROBE = """
import tinytorch as tt
x = tt.Tensor([1.0, 2.0], requires_grad=True)
loss = (tt.nn.Tanh()(x * x)).sum()
print(loss.backward(), tt.is_grad_enabled(), None if x.grad is None else x.grad.data.round(6).tolist())
"""


def test_backward_is_a_no_op_until_module_06_is_exported(repo):
    """Progressive disclosure in student mode: autograd stays dormant while 06 is a stub."""
    tito(repo, "student", "init", check=True)
    for number in ["01", "02"]:
        export_solved(repo, number)
    before = probe(repo, GRADIENT_PROBE)
    assert before.returncode == 0 and before.stdout.split() == ["None", "False", "None"], \
        f"before Module 06, backward() should do nothing and raise nothing:\n{before.stdout}{before.stderr}"
    for number in ["03", "04", "05", "06"]:
        export_solved(repo, number)
    after = probe(repo, GRADIENT_PROBE)
    want = [round(2 * v * (1 - np.tanh(v * v) ** 2), 6) for v in (1.0, 2.0)]  # d/dx tanh(x^2)
    assert after.returncode == 0 and after.stdout.split()[:2] == ["None", "True"], after.stdout + after.stderr
    got = json.loads(after.stdout.split(None, 2)[2])
    assert np.allclose(got, want, atol=1e-5), f"after Module 06: expected gradients {want}, got {got}"


def test_locked_milestone_names_the_modules_to_export_and_reference_results_do_not_count(repo):
    shutil.copytree(ROOT / "milestones", repo / "milestones", ignore=shutil.ignore_patterns("output", "__pycache__"))
    tito(repo, "milestone", "run", "1958", check=True)          # the reference package: the demo's run
    assert "passed (" in tito(repo, "milestone", "list", check=True).stdout
    assert "reference package" in tito(repo, "milestone", "list").stdout
    tito(repo, "student", "init", check=True)
    export_solved(repo, "01")
    out = tito(repo, "milestone", "run", "1958", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "export your modules 02, 03, 04" in out.stderr, out.stderr
    status = tito(repo, "status", check=True).stdout
    assert "1958_perceptron" in status and "locked: export your modules 02, 03, 04" in status, status
