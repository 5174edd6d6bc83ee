"""`tito dist`: the student repository holds no solution and no hidden test, the whole student
workflow runs in it, and a course update reaches a student's clone by `git pull` without conflict."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from autograder.samples import fill_solutions
from course.project import ROOT, find_module, modules
from tests.integrity.test_curriculum import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION,
                                             expected_release_cell, regions)

from .test_student_journey import probe

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def run(cwd, *cmd, check=True):
    env = {**os.environ, "TINYTORCH_ROOT": str(cwd), "PYTHONPATH": str(cwd), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    result = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def tito(cwd, *args, check=True):
    return run(cwd, sys.executable, "-m", "tito.cli", *args, check=check)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    dest = tmp_path_factory.mktemp("dist") / "tinytorch-student"
    tito(ROOT, "dist", str(dest))
    return dest


def text_files(root):
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".gz":
            yield path, path.read_text(encoding="utf-8", errors="replace")


def test_the_distribution_holds_no_solution_and_no_hidden_test(dist):
    assert not (dist / "source").exists() and not (dist / "autograder").exists()
    assert not (dist / "course" / "mutation.py").exists()
    notebooks = [json.loads(m.source().read_text()) for m in modules()]
    cells = [("".join(c["source"]), c["cell_type"]) for nb in notebooks for c in nb["cells"]]
    # what the course shows students anyway (in any module): a secret line repeating it is no leak
    public = "\n".join(expected_release_cell(src) if kind == "code" else src for src, kind in cells)
    secrets = {line.strip() for src, _ in cells
               for _, lines in regions(src, BEGIN_SOLUTION, END_SOLUTION) + regions(src, BEGIN_HIDDEN, END_HIDDEN)
               for line in lines if len(line.strip()) > 25 and line.strip() not in public}
    assert len(secrets) > 100, "the leak check should have solution lines to look for"
    for path, text in text_files(dist):
        for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
            assert marker not in text, f"{path.relative_to(dist)} holds the marker {marker!r}"
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path.relative_to(dist)} holds solution or hidden-test lines: {leaked[:3]}"


def test_the_student_path_uses_nothing_posix_only(dist):
    # a module-level import of a POSIX-only module (one inside a function, behind `try`, is guarded)
    posix_only = re.compile(r"^(import|from) (fcntl|resource|pwd|grp|termios)\b|os\.fork\(|/bin/(ba)?sh", re.M)
    for path in dist.rglob("*.py"):
        assert not posix_only.search(path.read_text()), f"{path.relative_to(dist)} uses a POSIX-only call"
    help_text = tito(dist, "--help").stdout
    assert "module" in help_text and "milestone" in help_text and "status" in help_text
    for maintainer in ("export", "release", "grade", "mutate", "demo", "dist"):
        assert not re.search(rf"^\s+{maintainer}\b", help_text, re.M), f"`tito {maintainer}` has no place in it"
    assert "no reference solution" in tito(dist, "reference", check=False).stderr


@needs_git
def test_student_workflow_in_a_clone_and_course_updates_by_git_pull(dist, tmp_path):
    upstream = tmp_path / "course"
    shutil.copytree(dist, upstream)
    run(upstream, "git", "init", "-q", "-b", "main")
    run(upstream, "git", "add", "-A")
    run(upstream, "git", "commit", "-qm", "course")
    tracked = run(upstream, "git", "ls-files").stdout.split()
    assert "tinytorch/__init__.py" in tracked and not any(t.startswith("tinytorch/core/") for t in tracked)
    clone = tmp_path / "student"
    run(tmp_path, "git", "clone", "-q", str(upstream), str(clone))

    tito(clone, "student", "init")
    tito(clone, "module", "start", "01")
    m = find_module("01")
    solved = fill_solutions(json.loads(m.release().read_text()), json.loads(m.source().read_text()))
    (clone / "modules" / m.name / m.notebook_name).write_text(json.dumps(solved), encoding="utf-8")
    assert "17/17 points" in tito(clone, "module", "test", "01").stdout
    tito(clone, "module", "export", "01")
    mine = probe(clone, "import tinytorch; print(tinytorch.Tensor([1.5]).dtype)")
    assert mine.returncode == 0 and mine.stdout.strip() == "float32", mine.stderr
    status = tito(clone, "status").stdout
    assert "yours (exported)" in status and "locked: export your modules 02, 03, 04" in status, status
    locked = tito(clone, "milestone", "run", "1958", check=False)
    assert locked.returncode == 1 and "export your modules 02, 03, 04" in locked.stderr

    assert run(clone, "git", "status", "--porcelain", "--untracked-files=no").stdout == "", \
        "the student's work must leave every file the course ships unmodified"
    notebook = upstream / "release" / "02_activations" / "02_activations.ipynb"
    nb = json.loads(notebook.read_text())
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"]) + "\n\n(Updated by the course.)"
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    run(upstream, "git", "commit", "-qam", "a course update")
    run(clone, "git", "pull", "-q", "--ff-only")
    assert "(Updated by the course.)" in (clone / "release" / "02_activations" / "02_activations.ipynb").read_text()
    tito(clone, "student", "init")
    assert "yours (exported)" in tito(clone, "status").stdout, "student init after a pull keeps the student's export"
