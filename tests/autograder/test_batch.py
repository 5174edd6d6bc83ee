"""A class as the instructor hands it in: malformed submissions, zips, a killed batch, a Dask
cluster, the sandbox missing, the formgrader and feedback after manual grading."""
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder.batch import read_grades
from course.project import ROOT

from .conftest import complete, grade, result, rows_by_student, write_class

RELEASE_01 = json.loads((ROOT / "release/01_tensor/01_tensor.ipynb").read_text())


def partial():
    from autograder.samples import fill_solutions, solution_cell_ids
    source = json.loads((ROOT / "source/01_tensor/01_tensor.ipynb").read_text())
    return fill_solutions(RELEASE_01, source, solution_cell_ids(RELEASE_01)[:5])


def processes_under(path) -> list[str]:
    """Processes whose command line names path or whose working directory is in it (a forked job's is)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(path) in args or cwd.startswith(str(path)):
            found.append(f"{proc.name}: {args[:120]} (in {cwd})")
    return found


def tito(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    text = json.dumps(complete())
    big = complete()
    big["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * (50 * 1024**2)}]
    old = complete()  # saved by an older Jupyter: nbformat 4.4, no cell ids
    old["nbformat_minor"] = 4
    for c in old["cells"]:
        del c["id"]
    subs = {"good": complete(), "nbformat-4.4": old, "not-json": b"this is not a notebook", "truncated": text[: len(text) // 2].encode(),
            "nbformat-3": json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": []}).encode(),
            "json-list": b"[1, 2, 3]", "huge": json.dumps(big).encode(), "empty-file": b""}
    write_class(tmp / "submitted", "01_tensor", subs)
    renamed = tmp / "submitted/renamed/01_tensor"
    renamed.mkdir(parents=True)
    (renamed / "tensor-final.ipynb").write_text(text)
    (tmp / "submitted/no-notebook/01_tensor").mkdir(parents=True)
    (tmp / "submitted/empty-directory").mkdir()
    two = tmp / "submitted/two-notebooks/01_tensor"
    two.mkdir(parents=True)
    (two / "a.ipynb").write_text(text)
    (two / "b.ipynb").write_text(text)
    summary, out = grade(tmp, "01", {})
    return out


@pytest.mark.parametrize("student, status, needle", [
    ("not-json", "invalid", "not valid JSON: expecting value at line 1, column 1 (it does not start with '{'"),
    ("truncated", "invalid", "not valid JSON: it stops in the middle (line 1), as if cut off"),
    ("nbformat-3", "invalid", "nbformat 3"),
    ("json-list", "invalid", "JSON list"),
    ("huge", "invalid", "the limit is 20 MB"),
    ("empty-file", "invalid", "empty"),
    ("no-notebook", "invalid", "no notebook in 01_tensor/"),
    ("empty-directory", "invalid", "no 01_tensor/ directory"),
    ("two-notebooks", "invalid", "found several notebooks: a.ipynb, b.ipynb"),
    ("renamed", "graded", "named tensor-final.ipynb, expected 01_tensor.ipynb"),
    ("nbformat-4.4", "graded", ""),
])
def test_malformed_submission_gets_a_row_and_the_batch_goes_on(malformed, student, status, needle):
    rows = rows_by_student(malformed)
    row = rows[student]
    assert row["status"] == status and needle in row["reason"], \
        f"{student}: expected status {status} with a reason naming {needle!r}, got {row}"
    assert row["max_score"] == "17"
    assert rows["good"]["score"] == "17" and rows["good"]["status"] == "graded", rows["good"]
    if status == "graded":
        assert row["score"] == "17", row
    assert (malformed / "feedback" / student / "01_tensor/01_tensor.html").exists()


def test_grades_csv_has_one_row_per_student_and_the_columns(malformed):
    rows = read_grades(malformed)
    assert list(rows[0]) == ["student_id", "assignment", "score", "max_score", "status", "reason"]
    students = [r["student_id"] for r in rows]
    assert len(students) == len(set(students)) == 12, f"expected 12 distinct rows, got {students}"


def test_a_zip_of_the_layout_is_graded_like_the_directory(tmp_path):
    subs = write_class(tmp_path / "submitted", "01_tensor", {"ann": complete(), "ben": RELEASE_01})
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in subs.rglob("*.ipynb"):
            z.write(path, f"submitted/{path.relative_to(subs)}")  # one top-level folder, as zip tools make
    run = tito("grade", "01", "--submissions", str(archive), "--output", str(tmp_path / "out"), "--workers", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = rows_by_student(tmp_path / "out")
    assert (rows["ann"]["score"], rows["ben"]["score"]) == ("17", "0"), rows
    assert "2 submission(s): 2 graded" in run.stdout, run.stdout


def test_a_zip_that_escapes_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../outside.ipynb", "{}")
    run = tito("grade", "01", "--submissions", str(archive), "--output", str(tmp_path / "out"))
    assert run.returncode == 1 and "refusing member '../../outside.ipynb'" in run.stderr, run.stderr
    assert not (tmp_path.parent / "outside.ipynb").exists()


def test_bad_arguments_get_one_line_errors(tmp_path):
    run = tito("grade", "99", "--submissions", str(tmp_path), "--output", str(tmp_path / "out"))
    assert run.returncode == 1 and "unknown module '99'" in run.stderr, run.stderr
    run = tito("grade", "01", "--submissions", str(tmp_path / "missing"), "--output", str(tmp_path / "out"))
    assert run.returncode == 1 and "submissions directory not found" in run.stderr, run.stderr
    assert run.stdout == "" and not (tmp_path / "out").exists(), \
        f"a missing submissions directory should fail before anything is printed or created: {run.stdout!r}"
    run = tito("grade", "01", "--submissions", str(tmp_path), "--output", str(tmp_path / "out"), "--workers", "0")
    assert run.returncode == 1 and "--workers must be at least 1, got 0" in run.stderr, run.stderr


def test_killed_batch_resumes_without_duplicates_or_losses(tmp_path):
    """Kill `tito grade` after two results, run it again: everything graded once, gradebook consistent."""
    students = {f"s{i}": (complete() if i % 3 == 0 else partial() if i % 3 == 1 else RELEASE_01) for i in range(6)}
    subs = write_class(tmp_path / "submitted", "01_tensor", students)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "tito.cli", "grade", "01", "--submissions", str(subs), "--output", str(out)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list((out / "instructor/results").glob("*/*.json"))) < 2 and time.monotonic() < deadline \
            and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = sorted(p.parent.name for p in (out / "instructor/results").glob("*/*.json"))
    assert 2 <= len(first) < 6, f"expected the kill to land mid-batch, got results for {first}"
    time.sleep(1)  # the killed batch's jobs die with it (PDEATHSIG); give the kernel a moment
    left = processes_under(out)
    assert not left, f"processes of the killed batch are still running: {left}"

    run = tito("grade", "01", "--submissions", str(subs), "--output", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(first)} submission(s) already graded" in run.stdout, run.stdout
    rows = read_grades(out)
    assert sorted(r["student_id"] for r in rows) == sorted(students), rows
    expected = {"s0": "17", "s3": "17", "s1": "10", "s4": "10", "s2": "0", "s5": "0"}
    assert {r["student_id"]: r["score"] for r in rows} == expected
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{out / 'instructor/gradebook.db'}") as gb:
        subs_db = gb.find_assignment("01_tensor").submissions
        totals = {s.student.id: f"{float(s.score):g}" for s in subs_db}
    assert len(subs_db) == 6 and totals == expected, f"gradebook: {totals}"

    again = tito("grade", "01", "--submissions", str(subs), "--output", str(out))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all 6 submission(s) already graded and unchanged; nothing to grade" in again.stdout, again.stdout
    assert "per minute" not in again.stdout, again.stdout


def test_dask_cluster_grades_the_same_jobs(tmp_path):
    from distributed import LocalCluster

    subs = {"d0": complete(), "d1": partial(), "d2": RELEASE_01}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        summary, out = grade(tmp_path, "01", subs, scheduler=cluster.scheduler_address)
    assert {r["student_id"]: r["score"] for r in summary.rows} == {"d0": "17", "d1": "10", "d2": "0"}
    assert result(out, "d1")["cells"][0]["status"] == "passed"


def test_without_bubblewrap_it_warns_and_still_grades(tmp_path):
    subs = write_class(tmp_path / "submitted", "01_tensor", {"solo": complete()})
    run = tito("grade", "01", "--submissions", str(subs), "--output", str(tmp_path / "out"),
               env={**os.environ, "TINYTORCH_SANDBOX": "limits"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning: bubblewrap (`bwrap`) is not available" in run.stdout, run.stdout
    assert rows_by_student(tmp_path / "out")["solo"]["score"] == "17"
    assert result(tmp_path / "out", "solo")["sandbox"] == "limits only"


def test_formgrader_sees_the_batch_and_manual_grades_reach_feedback(tmp_path):
    from nbgrader.api import Gradebook

    summary, out = grade(tmp_path, "01", {"fay": partial()})
    config = (out / "instructor/nbgrader_config.py").read_text()
    assert str(out / "instructor") in config and "gradebook.db" in config
    assert (out / "instructor/autograded/fay/01_tensor/01_tensor.ipynb").exists(), "formgrader needs the executed notebook"
    with Gradebook(f"sqlite:///{out / 'instructor/gradebook.db'}") as gb:
        grade_row = gb.find_grade("test-random", "01_tensor", "01_tensor", "fay")
        assert grade_row.auto_score == 0
        grade_row.manual_score = 1  # the instructor gives the point by hand in the formgrader
        gb.db.commit()
    run = tito("feedback", "01", "--output", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert rows_by_student(out)["fay"]["score"] == "11", read_grades(out)
    assert "<b>11 / 17</b>" in (out / "feedback/fay/01_tensor/01_tensor.html").read_text()


def test_module_is_graded_against_earlier_references_and_its_own_stubs(tmp_path):
    from autograder.packages import build_grading_package
    from course.project import find_module

    pkg = build_grading_package(find_module("03"), tmp_path)
    tensor = (pkg / "tinytorch/core/tensor.py").read_text()
    layers = (pkg / "tinytorch/core/layers.py").read_text()
    assert "raise NotImplementedError()" not in tensor, "module 01 should be the reference when grading 03"
    assert "raise NotImplementedError()" in layers, "module 03 itself must be stubs when grading 03"
    assert "/source/01_tensor/" in tensor.splitlines()[0] and "/release/03_layers/" in layers.splitlines()[0]

