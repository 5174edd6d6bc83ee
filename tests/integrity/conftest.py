"""Grading for the integrity suite, done once per module and only for the modules a run selects.

Every module is graded twice: the source notebook submitted as it is ("reference") and the
unmodified release ("blank"). The tests then read the grades and the executed notebooks.
"""
import json

import pytest

from tests.grading_course import GradingCourse

REFERENCE, BLANK = "reference", "blank"


class GradedModules:
    """Autogrades a module's reference and blank submissions the first time a test asks."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.courses = {}

    def course(self, module) -> GradingCourse:
        if module.name not in self.courses:
            course = GradingCourse(self.scratch / module.name, [module])
            for student, notebook in ((REFERENCE, module.source()), (BLANK, module.release())):
                course.submit(student, module, notebook)
                course.autograde(student, module)
            self.courses[module.name] = course
        return self.courses[module.name]

    def grades(self, student, module):
        return self.course(module).grades(student, module)

    def notebook(self, student, module):
        return self.course(module).autograded_notebook(student, module)


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    return GradedModules(tmp_path_factory.mktemp("courses"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))
