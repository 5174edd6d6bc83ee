"""Milestone commands: `tito milestone list` and `tito milestone run NAME`.

A milestone is a script `milestones/<year>_<name>.py`. `run` accepts the full name
(`1958_perceptron`), the year (`1958`) or the name (`perceptron`), runs the script with the
current Python in a subprocess (its output streams through as it is printed) and returns the
script's exit status: 0 when the milestone's success criterion is met.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course.milestones import find_milestone, last_result, milestones, missing_modules, summary
from course.project import ROOT, TitoError
from course.student import package_mode


def _last_result(script: Path) -> str:
    result = last_result(script)
    if result is None:
        return "not run"
    package = f", {result['package']} package" if "package" in result else ""
    return f"{'passed' if result.get('passed') else 'FAILED'} ({result.get('seconds', '?')} s{package})"


def _list(args) -> int:
    scripts = milestones()
    if not scripts:
        print("no milestones found in milestones/")
        return 0
    width = max(len(p.stem) for p in scripts)
    for p in scripts:
        print(f"{p.stem:<{width}}  {_last_result(p):<36}  {summary(p)}")
    return 0


def _run(args) -> int:
    script = find_milestone(args.name)
    missing = missing_modules(script.stem) if package_mode() == "student" else []  # the reference runs all
    if missing:
        raise TitoError(f"milestone {script.stem} is locked: it runs on your own code, so export your modules "
                        f"{', '.join(missing)} first (`tito module export NN`)")
    print(f"running {script.relative_to(ROOT) if script.is_relative_to(ROOT) else script} ...", flush=True)
    try:
        return subprocess.run([sys.executable, str(script), *args.passthrough], cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130


def register(sub) -> None:
    ms = sub.add_parser("milestone", help="list or run the historical milestones",
                        description="Recreate historical results with your own tinytorch package.")
    msub = ms.add_subparsers(dest="action", metavar="ACTION", required=True)
    text = "list the milestones and the result of their last run"
    msub.add_parser("list", help=text, description=text).set_defaults(run=_list)
    text = "run one milestone script (by full name, year or name) and return its exit status"
    p = msub.add_parser("run", help=text, description=text)
    p.add_argument("name", help="e.g. 1958_perceptron, 1958 or perceptron")
    p.set_defaults(run=_run, passthrough=[])
