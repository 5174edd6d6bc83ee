import pytest

from course.project import modules


def pytest_generate_tests(metafunc):
    """Any test that takes `module` runs once for every module present in source/."""
    if "module" in metafunc.fixturenames:
        mods = modules()
        metafunc.parametrize("module", mods, ids=[m.name for m in mods])
