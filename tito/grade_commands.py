"""Instructor commands: `tito grade` (a class, in parallel, sandboxed) and `tito feedback`."""
from __future__ import annotations

from pathlib import Path

from course.project import TitoError


def _grade(args) -> int:
    from autograder.batch import Batch
    from autograder.sandbox import Limits

    if args.workers < 1:
        raise TitoError(f"--workers must be at least 1, got {args.workers}")
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout)
    batch = Batch(args.assignment, Path(args.submissions), Path(args.output), workers=args.workers,
                  scheduler=args.scheduler, limits=limits, progress=lambda line: print(line, flush=True))
    where = f"on the Dask cluster at {args.scheduler}" if args.scheduler else f"with {batch.workers} worker(s)"
    print(f"grading {batch.module.name} from {args.submissions} {where} ...", flush=True)
    summary = batch.run()
    graded = [r for r in summary.rows if r["status"] == "graded"]
    mean = sum(float(r["score"]) for r in graded) / len(graded) if graded else 0.0
    print(f"\n{len(summary.rows)} submission(s): {len(graded)} graded, {summary.count('invalid')} invalid, "
          f"{summary.count('error')} grader error(s); {summary.reused} reused from an earlier run")
    if graded:
        print(f"mean score {mean:.2f} / {batch.total_points:g}")
    if summary.graded_now:
        rate = summary.graded_now / summary.grading_seconds * 60
        print(f"{summary.graded_now} graded in {summary.grading_seconds:.1f} s ({rate:.1f} per minute); "
              f"{summary.seconds:.1f} s in all")
    else:
        print(f"nothing was graded in this run ({summary.seconds:.1f} s)")
    print(f"hand back: {batch.output / 'feedback'}/<student>/ (one feedback page per student, nothing else)")
    print(f"keep: {batch.private}/ (grades.csv, results, executed notebooks with the hidden tests, gradebook)")
    return 1 if summary.count("error") else 0


def _feedback(args) -> int:
    """Re-render feedback and grades.csv from the results, with manual grades from the gradebook."""
    from autograder.batch import Batch

    batch = Batch(args.assignment, None, Path(args.output), progress=print)
    written = batch.rerender_feedback()
    print(f"wrote feedback for {written} submission(s) under {Path(args.output) / 'feedback'}")
    return 0


def register(sub) -> None:
    text = "grade a class's submissions of one module with the hidden tests, in sandboxes, in parallel"
    p = sub.add_parser("grade", help=text, description=text + ". DIR/<student_id>/<ASSIGNMENT>/<ASSIGNMENT>.ipynb "
                       "is nbgrader's submitted layout; a zip of it works too. A re-run grades only what is missing.")
    p.add_argument("assignment", help="the module, e.g. 01_tensor or 01")
    p.add_argument("--submissions", required=True, metavar="DIR", help="submitted layout (a directory or a .zip)")
    p.add_argument("--output", required=True, metavar="DIR", help="where feedback/ (to hand back) and instructor/ (grades, results, gradebook: never to hand back) go")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="submissions graded at once on this machine")
    p.add_argument("--scheduler", metavar="ADDRESS", help="grade on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--cell-timeout", type=float, default=60.0, metavar="S", help="seconds one cell may run (60)")
    p.add_argument("--notebook-timeout", type=float, default=600.0, metavar="S", help="seconds a notebook may run (600)")
    p.set_defaults(run=_grade)
    text = "write the feedback pages again from the results, with manual grades from the formgrader"
    p = sub.add_parser("feedback", help=text, description=text)
    p.add_argument("assignment", help="the module, e.g. 01_tensor or 01")
    p.add_argument("--output", required=True, metavar="DIR", help="the output directory of `tito grade`")
    p.set_defaults(run=_feedback)
