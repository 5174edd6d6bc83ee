"""The package a module's submission is graded against.

Module N is graded with the reference code of the modules before it and the release stubs of
N and every later module. A submission cannot import the reference solution of the module it
is graded on (it is not in the package), and a mistake in an earlier module of the student's
own does not cost points in a later one.
"""
from __future__ import annotations

from pathlib import Path

from course.build import export_notebooks
from course.project import ROOT, Module, modules


def build_grading_package(module: Module, dest: Path, root: Path = ROOT) -> Path:
    """Export the grading package for `module` into dest/tinytorch; returns dest (for PYTHONPATH)."""
    notebooks = [m.source(root) if int(m.number) < int(module.number) else m.release(root) for m in modules(root)]
    export_notebooks(notebooks, dest / "tinytorch", root)
    return dest
