"""`tito demo`: the end-to-end course demo that `make demo` runs.

Builds the package and the student release from source/, then plays an instructor: three
sample submissions of Module 01 (complete, partial, blank) are autograded with the hidden
tests, and a score table is printed. Then it runs every milestone on the package and prints
whether each met its historical success criterion.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import build
from .milestone_commands import milestones
from .project import ROOT, find_module, read_notebook_json


def sample_submissions(module) -> dict[str, dict]:
    """complete = every solution filled in, partial = the first half, blank = the release as is."""
    from autograder.samples import fill_solutions, solution_cell_ids

    release_nb = read_notebook_json(module.release())
    source_nb = read_notebook_json(module.source())
    ids = solution_cell_ids(release_nb)
    return {
        "complete": fill_solutions(release_nb, source_nb),
        "partial": fill_solutions(release_nb, source_nb, ids[: len(ids) // 2]),
        "blank": release_nb,
    }


def _demo(args) -> int:
    from autograder.course import GradingCourse

    t0 = time.perf_counter()
    print("== build: source/ -> tinytorch/ (nbdev) and release/ (nbgrader)")
    build.export()
    build.release()
    print(f"   done in {time.perf_counter() - t0:.1f} s")

    module = find_module("01")
    print(f"== grade: three sample submissions of {module.name}, with hidden tests")
    with tempfile.TemporaryDirectory() as tmp:
        course = GradingCourse(Path(tmp), [module])
        rows = []
        for student, nb in sample_submissions(module).items():
            course.submit(student, module, nb)
            grades = course.autograde(student, module)
            score = sum(g.score for g in grades)
            total = sum(g.max_score for g in grades)
            passed = sum(g.score == g.max_score for g in grades)
            rows.append((student, score, total, passed, len(grades)))
            print(f"   graded {student}")
    print()
    print(f"{'submission':<12}{'score':>12}{'cells passed':>16}")
    for student, score, total, passed, n in rows:
        print(f"{student:<12}{f'{score:g}/{total:g}':>12}{f'{passed}/{n}':>16}")
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
    return 0 if all(ok for _, ok, _, _ in outcomes) else 1


def _verdict(stdout: str) -> str:
    """The criteria lines a milestone prints ("[ok] ..."), joined."""
    return "; ".join(line.strip() for line in stdout.splitlines() if line.strip().startswith(("[ok]", "[FAIL]")))


def register(sub) -> None:
    text = "build everything and autograde sample submissions (the end-to-end course demo)"
    sub.add_parser("demo", help=text, description=text).set_defaults(run=_demo)
