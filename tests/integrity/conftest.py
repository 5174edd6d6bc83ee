"""One scratch nbgrader course for the whole integrity suite.

Every module is graded twice: the source notebook submitted as it is ("reference") and the
unmodified release ("blank"). The tests then read the grades and the executed notebooks.
"""
import json
import warnings

import pytest

from autograder.course import GradingCourse
from tito.project import modules

REFERENCE, BLANK = "reference", "blank"


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    warnings.filterwarnings("ignore", module="sqlalchemy")
    mods = modules()
    course = GradingCourse(tmp_path_factory.mktemp("course"), mods)
    grades = {}
    for m in mods:
        course.submit(REFERENCE, m, m.source())
        course.submit(BLANK, m, m.release())
        grades[(REFERENCE, m.name)] = course.autograde(REFERENCE, m)
        grades[(BLANK, m.name)] = course.autograde(BLANK, m)
    course.grade_table = grades
    return course


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))
