"""Milestone commands: `tito milestone list` and `tito milestone run NAME`.

A milestone is a script `milestones/<year>_<name>.py`. `run` accepts the full name
(`1958_perceptron`), the year (`1958`) or the name (`perceptron`), runs the script with the
current Python in a subprocess (its output streams through as it is printed) and returns the
script's exit status: 0 when the milestone's success criterion is met.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .project import ROOT, TitoError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.py$")


def milestones(root: Path = ROOT) -> list[Path]:
    """The milestone scripts in milestones/, ordered by year."""
    d = root / "milestones"
    return sorted(p for p in d.glob("*.py") if _NAME.match(p.name)) if d.is_dir() else []


def find_milestone(key: str, root: Path = ROOT) -> Path:
    """The script for `key`: its full name, its year or its name (a trailing .py is ignored)."""
    key = key.strip().removesuffix(".py").lower()
    found = [p for p in milestones(root) if key in (p.stem, *_NAME.match(p.name).groups())]
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.stem for p in milestones(root)) or "none"
    if not found:
        raise TitoError(f"unknown milestone {key!r}; available: {names}")
    raise TitoError(f"milestone {key!r} is ambiguous: {', '.join(p.stem for p in found)}")


def _summary(script: Path) -> str:
    """The first line of the script's docstring."""
    text = script.read_text(encoding="utf-8")
    m = re.search(r'^"""(.*?)$', text, re.M)
    return m.group(1).strip() if m else ""


def last_result(script: Path) -> dict | None:
    """The JSON result the milestone's last run wrote, or None if it has not run."""
    try:
        return json.loads((script.parent / "output" / f"{script.stem}.json").read_text())
    except (OSError, ValueError):
        return None


def _last_result(script: Path) -> str:
    result = last_result(script)
    if result is None:
        return "not run"
    return f"{'passed' if result.get('passed') else 'FAILED'} ({result.get('seconds', '?')} s)"


def _list(args) -> int:
    scripts = milestones()
    if not scripts:
        print("no milestones found in milestones/")
        return 0
    width = max(len(p.stem) for p in scripts)
    for p in scripts:
        print(f"{p.stem:<{width}}  {_last_result(p):<18}  {_summary(p)}")
    return 0


def _run(args) -> int:
    script = find_milestone(args.name)
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
