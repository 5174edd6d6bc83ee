"""The batch's nbgrader course: its gradebook, written by one writer only.

The `instructor/` directory of `tito grade`'s output is an nbgrader course directory: `source/`
(the instructor's notebook), `gradebook.db`, `autograded/` (executed notebooks) and an
`nbgrader_config.py`, so nbgrader's formgrader can open it for manual review. sqlite is
not safe for concurrent writers, so only the batch's main thread calls `record`; workers only
return results. Recording is idempotent: a re-run records every result again, which leaves the
gradebook as the result files say, however the last run ended.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from course.build import generate_assignments, nbgrader_api
from course.project import Module

CONFIG = '''"""nbgrader configuration for reviewing this batch in the formgrader (written by `tito grade`)."""
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.CourseDirectory.course_id = "tinytorch"
'''


class CourseGradebook:
    def __init__(self, output: Path, module: Module, source_root: Path):
        self.output, self.module = output, module
        self.db_url = f"sqlite:///{output / 'gradebook.db'}"
        self.notebook_id = Path(module.notebook_name).stem
        source_copy = output / "source" / module.name / module.notebook_name
        fresh = not source_copy.exists() or source_copy.read_bytes() != module.source(source_root).read_bytes()
        if fresh or not self._has_assignment():
            shutil.copytree(module.source(source_root).parent, source_copy.parent, dirs_exist_ok=True)
            (output / "nbgrader_config.py").write_text(CONFIG.format(root=str(output.resolve())))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generate_assignments(nbgrader_api(output, output / "gradebook.db"), [module])

    def _gradebook(self):
        from nbgrader.api import Gradebook
        return Gradebook(self.db_url)

    def _has_assignment(self) -> bool:
        if not (self.output / "gradebook.db").exists():
            return False
        from nbgrader.api import MissingEntry
        with self._gradebook() as gb:
            try:
                gb.find_assignment(self.module.name)
                return True
            except MissingEntry:
                return False

    def record(self, result: dict) -> None:
        """Put a result's automatic scores in the gradebook (a grader's error records nothing)."""
        if result["status"] == "error":
            return
        from nbgrader.api import MissingEntry
        scores = {c["grade_id"]: c["score"] for c in result["cells"]}
        with warnings.catch_warnings(), self._gradebook() as gb:
            warnings.simplefilter("ignore")
            gb.update_or_create_student(result["student_id"])
            try:
                gb.find_submission(self.module.name, result["student_id"])
            except MissingEntry:
                gb.add_submission(self.module.name, result["student_id"])
            nb = gb.find_submission_notebook(self.notebook_id, self.module.name, result["student_id"])
            for grade in nb.grades:
                if grade.cell_type == "code":
                    grade.auto_score = float(scores.get(grade.name, 0.0))
            gb.db.commit()

    def cell_scores(self, student_id: str) -> dict[str, float]:
        """grade id -> score as the gradebook has it: a manual grade from the formgrader wins."""
        from nbgrader.api import MissingEntry
        with self._gradebook() as gb:
            try:
                nb = gb.find_submission_notebook(self.notebook_id, self.module.name, student_id)
            except MissingEntry:
                return {}
            return {g.name: float(g.score) for g in nb.grades if g.cell_type == "code"}
