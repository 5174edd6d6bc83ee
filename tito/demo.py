"""`tito demo`: the end-to-end course demo that `make demo` runs.

Builds the package and the student release from source/, then plays an instructor: a sample
class of Module 01 (complete, partial and blank work, a submission that faked its tests, and a
truncated file) is graded by `tito grade` with two workers, in sandboxes, with the hidden
tests; grades.csv, feedback and the gradebook land in .nbgrader/demo/. Then it runs every
milestone on the package and prints whether each met its historical success criterion.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

from course import build
from .milestone_commands import milestones
from course.project import ROOT, find_module, read_notebook_json

DEMO_OUTPUT = ROOT / ".nbgrader" / "demo"


def write_sample_class(module, dest) -> None:
    """The sample class in nbgrader's submitted layout under dest."""
    import json

    from autograder.samples import sample_class

    for sid, nb in sample_class(read_notebook_json(module.release()), read_notebook_json(module.source())).items():
        path = dest / sid / module.name / module.notebook_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nb if isinstance(nb, bytes) else json.dumps(nb, indent=1).encode())


def _demo(args) -> int:
    from autograder.batch import read_grades

    t0 = time.perf_counter()
    print("== build: source/ -> tinytorch/ (nbdev) and release/ (nbgrader)")
    build.export()
    build.release()
    print(f"   done in {time.perf_counter() - t0:.1f} s")

    module = find_module("01")
    shutil.rmtree(DEMO_OUTPUT, ignore_errors=True)
    write_sample_class(module, DEMO_OUTPUT / "submitted")
    print(f"\n== grade: a sample class of {module.name} with `tito grade` (hidden tests, sandboxed, 2 workers)",
          flush=True)
    graded = subprocess.run([sys.executable, "-m", "tito.cli", "grade", module.name,
                             "--submissions", str(DEMO_OUTPUT / "submitted"), "--output", str(DEMO_OUTPUT / "grades"),
                             "--workers", "2"], cwd=ROOT)
    print()
    print(f"{'student':<10}{'score':>8}  {'status':<9} reason")
    for row in read_grades(DEMO_OUTPUT / "grades"):
        print(f"{row['student_id']:<10}{row['score'] + '/' + row['max_score']:>8}  {row['status']:<9} {row['reason'][:70]}")
    print(f"feedback pages: {(DEMO_OUTPUT / 'grades' / 'feedback').relative_to(ROOT)}/<student>/...")

    print("\n== milestones: historical results, run on the package built above")
    outcomes = []
    for script in milestones():
        start = time.perf_counter()
        run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True)
        outcomes.append((script.stem, run.returncode == 0, time.perf_counter() - start, _verdict(run.stdout)))
        print(f"   {script.stem:<18} {'passed' if run.returncode == 0 else 'FAILED'} in {outcomes[-1][2]:.1f} s")
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
    print()
    for name, _, _, verdict in outcomes:
        print(f"{name:<18} {verdict}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 0 if graded.returncode == 0 and all(ok for _, ok, _, _ in outcomes) else 1


def _verdict(stdout: str) -> str:
    """The criteria lines a milestone prints ("[ok] ..."), joined."""
    return "; ".join(line.strip() for line in stdout.splitlines() if line.strip().startswith(("[ok]", "[FAIL]")))


def register(sub) -> None:
    text = "build everything and autograde sample submissions (the end-to-end course demo)"
    sub.add_parser("demo", help=text, description=text).set_defaults(run=_demo)
