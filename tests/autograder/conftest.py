"""Building submissions and grading small classes for the autograder's tests."""
import copy
import json
import os
from pathlib import Path

import pytest

from autograder.batch import Batch, instructor_dir, read_grades
from autograder.samples import fill_solutions
from autograder.sandbox import Limits, bwrap_path
from course.project import find_module, read_notebook_json

# short timeouts keep the corpus fast; the reference notebook needs a fraction of them
TEST_LIMITS = Limits(cell_timeout=8, notebook_timeout=120)


def notebooks(module_key):
    m = find_module(module_key)
    return m, read_notebook_json(m.source()), read_notebook_json(m.release())


def complete(module_key="01"):
    """What a student who wrote the reference solution submits."""
    _, source, release = notebooks(module_key)
    return fill_solutions(release, source)


def cell(nb, cell_id):
    return next(c for c in nb["cells"] if c["id"] == cell_id)


def replace(nb, cell_id, source=None, **metadata):
    nb = copy.deepcopy(nb)
    c = cell(nb, cell_id)
    if source is not None:
        c["source"] = source
    c["metadata"].setdefault("nbgrader", {}).update(metadata)
    return nb


def stub(nb, cell_id, module_key="01"):
    """Put a solution cell back as the release has it (not implemented)."""
    _, _, release = notebooks(module_key)
    return replace(nb, cell_id, "".join(cell(release, cell_id)["source"]))


def delete(nb, cell_id):
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if c["id"] != cell_id]
    return nb


def add_after(nb, cell_id, source):
    """A cell the student added after cell_id."""
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb["cells"]) if c["id"] == cell_id)
    new_id = f"mine-{len(nb['cells'])}-{at}"
    nb["cells"].insert(at + 1, {"cell_type": "code", "id": new_id, "metadata": {}, "source": source,
                                "outputs": [], "execution_count": None})
    return nb


def write_class(root: Path, assignment: str, submissions: dict) -> Path:
    """submissions: student id -> notebook dict, or bytes for a file written as is."""
    for sid, nb in submissions.items():
        d = root / sid / assignment
        d.mkdir(parents=True)
        data = nb if isinstance(nb, bytes) else json.dumps(nb).encode()
        (d / f"{assignment}.ipynb").write_bytes(data)
    return root


def grade(tmp: Path, module_key: str, submissions: dict, workers=2, **kwargs):
    m = find_module(module_key)
    subs = write_class(tmp / "submitted", m.name, submissions)
    out = tmp / "out"
    summary = Batch(m.name, subs, out, workers=workers, limits=TEST_LIMITS, progress=lambda line: None,
                    **kwargs).run()
    return summary, out


def result(out: Path, sid: str, assignment: str = "01_tensor") -> dict:
    return json.loads((instructor_dir(out) / "results" / sid / f"{assignment}.json").read_text())


def rows_by_student(out: Path) -> dict:
    return {r["student_id"]: r for r in read_grades(out)}


def cell_outputs(out: Path, sid: str, assignment: str = "01_tensor") -> str:
    nb = json.loads((instructor_dir(out) / "autograded" / sid / assignment / f"{assignment}.ipynb").read_text())
    return "\n".join(o.get("text", "") + o.get("evalue", "") for c in nb["cells"] if c["cell_type"] == "code"
                     for o in c.get("outputs", []))


@pytest.fixture(scope="session")
def sandboxed():
    """The isolation tests need bubblewrap. `make setup` installs it as root, so CI must have it;
    elsewhere they are skipped with the reason."""
    if bwrap_path() is None:
        why = "bubblewrap is not available: run `make setup` as root (or apt-get install bubblewrap)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
