"""The milestones: scripts `milestones/<year>_<name>.py` and the results their last run wrote.

A milestone runs on the `tinytorch` package only; it is unlocked for a student once every
module up to the one it needs holds the student's own code.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .project import ROOT, TitoError, modules

# milestone -> the last module it needs (all modules up to it must hold the student's code)
REQUIREMENTS = {"1958_perceptron": "04", "1969_xor": "08", "1986_mlp": "08", "1998_cnn": "09",
                "2017_transformer": "13", "2018_mlperf": "19"}

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


def summary(script: Path) -> str:
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


def missing_modules(name: str, root: Path = ROOT) -> list[str]:
    """The modules milestone `name` needs that do not hold the student's own code yet (exported
    from modules/); none for a milestone without requirements."""
    from .student import origin  # student imports this module

    last = REQUIREMENTS.get(name)
    if last is None:
        return []
    yours = {m.number for m in modules(root) if origin(m, root) == "modules"}
    return [f"{i:02d}" for i in range(1, int(last) + 1) if f"{i:02d}" not in yours]


def passed_by_student(script: Path) -> bool:
    """Whether the last run of `script` passed on the student's own package (not the reference)."""
    result = last_result(script) or {}
    return bool(result.get("passed")) and result.get("package") == "student"
