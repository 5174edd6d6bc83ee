"""A scratch nbgrader course: assignments generated from source/, submissions autograded.

nbgrader keeps its state in a course directory and a gradebook. For grading we build that
directory fresh (never inside the repository), so no run can touch the committed release or
another run's gradebook.
"""
from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from course.build import generate_assignments, nbgrader_api
from course.project import ROOT, Module, TitoError


@dataclass(frozen=True)
class CellGrade:
    grade_id: str
    score: float
    max_score: float


class GradingCourse:
    """An nbgrader course directory at `root` holding the given modules' assignments."""

    def __init__(self, root: Path, module_list: list[Module], source_root: Path = ROOT):
        self.root = Path(root)
        self.db = self.root / "gradebook.db"
        self.modules = {m.name: m for m in module_list}
        for m in module_list:
            shutil.copytree(m.source(source_root).parent, self.root / "source" / m.name, dirs_exist_ok=True)
        self.api = nbgrader_api(self.root, self.db)
        generate_assignments(self.api, module_list)

    def submit(self, student: str, module: Module, notebook: Path | dict) -> Path:
        """Place a notebook (a path or a notebook dict) as the student's submission of module."""
        dest = self.root / "submitted" / student / module.name / module.notebook_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(notebook, dict):
            dest.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        else:
            shutil.copy(notebook, dest)
        return dest

    def autograde(self, student: str, module: Module) -> list[CellGrade]:
        """Autograde a submission; the grade of every graded cell, in notebook order."""
        with warnings.catch_warnings():  # nbgrader's gradebook code trips SQLAlchemy session warnings
            warnings.simplefilter("ignore")
            result = self.api.autograde(module.name, student, force=True, create=True)
        if not result["success"]:
            raise TitoError(f"autograde of {student}/{module.name} failed:\n{result.get('error') or result.get('log')}")
        return self.grades(student, module)

    def grades(self, student: str, module: Module) -> list[CellGrade]:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.db}") as gb:
            nb = gb.find_submission_notebook(module.name, module.name, student)
            return [CellGrade(g.name, float(g.score), float(g.max_score))
                    for g in nb.grades if g.cell_type == "code"]

    def autograded_notebook(self, student: str, module: Module) -> dict:
        """The executed notebook nbgrader wrote for this submission (outputs included)."""
        path = self.root / "autograded" / student / module.name / module.notebook_name
        return json.loads(path.read_text(encoding="utf-8"))
