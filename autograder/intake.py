"""Finding submissions: nbgrader's submitted layout, from a directory or a zip of it.

The layout is `DIR/<student_id>/<ASSIGNMENT>/<ASSIGNMENT>.ipynb`. Every directory in DIR is a
student, and every student gets a row: a submission that cannot be graded says why, and the
batch goes on. A student who renamed their one notebook is graded anyway, with a note.
"""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024**2
MAX_ZIP_BYTES = 2 * 1024**3  # everything a zip may unpack to
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class IntakeError(Exception):
    """The submissions as a whole cannot be read (not a directory, a broken zip)."""


@dataclass
class Submission:
    student_id: str
    assignment: str
    path: Path | None  # the notebook to grade; None when there is nothing gradeable
    problem: str | None = None  # why it cannot be graded
    notes: list[str] = field(default_factory=list)


def notebook_problem(path: Path) -> str | None:
    """Why this file is not a gradeable notebook, or None when it is."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return (f"the notebook is {size / 1024**2:.1f} MB; the limit is {MAX_NOTEBOOK_BYTES // 1024**2} MB "
                "(clear the outputs: Edit > Clear Outputs of All Cells, then save and resubmit)")
    if size == 0:
        return "the notebook file is empty"
    try:
        data = path.read_bytes().decode("utf-8")
        nb = json.loads(data)
    except UnicodeDecodeError:
        return "the notebook is not UTF-8 text (was another kind of file renamed to .ipynb?)"
    except json.JSONDecodeError as e:
        return json_problem(data, e)
    if not isinstance(nb, dict):
        return f"expected a notebook (a JSON object), found a JSON {type(nb).__name__}"
    if nb.get("nbformat") != 4:
        return (f"expected an nbformat 4 notebook, found nbformat {nb.get('nbformat')!r} "
                "(open it in JupyterLab and save it again)")
    if not isinstance(nb.get("cells"), list):
        return "the notebook has no list of cells"
    bad = [i for i, c in enumerate(nb["cells"]) if not isinstance(c, dict) or "cell_type" not in c]
    if bad:
        return f"cells {bad[:5]} are not notebook cells"
    return None


def json_problem(data: str, e: json.JSONDecodeError) -> str:
    """What is wrong with a notebook that is not JSON, in words a student can act on."""
    # json says "Unterminated string starting at" and "Expecting value": a phrase, then where
    what = re.sub(r"\s+(starting )?at$", "", e.msg)
    what = what[0].lower() + what[1:]
    if what.startswith("unterminated") or e.pos >= len(data.rstrip()):  # the text ran out
        return (f"the notebook is not valid JSON: it stops in the middle (line {e.lineno}), as if cut off "
                "while it was saved, copied or uploaded; save it again in Jupyter and resubmit")
    start = data.lstrip()[:20]
    hint = " (it does not start with '{', as a notebook does)" if not start.startswith("{") else ""
    return f"the notebook is not valid JSON: {what} at line {e.lineno}, column {e.colno}{hint}"


def _submission(student_dir: Path, assignment: str, notebook_name: str) -> Submission:
    sid = student_dir.name
    adir = student_dir / assignment
    if not STUDENT_ID.match(sid):
        return Submission(sid, assignment, None, f"student id {sid!r} is not a plain name")
    if not adir.is_dir():
        found = sorted(p.name for p in student_dir.iterdir())[:5]
        return Submission(sid, assignment, None, f"no {assignment}/ directory in the submission (found: "
                                                 f"{', '.join(found) or 'nothing'})")
    expected = adir / notebook_name
    notebooks = sorted(p for p in adir.glob("*.ipynb") if p.is_file())
    notes = []
    if expected.is_file():
        path = expected
    elif len(notebooks) == 1:
        path = notebooks[0]
        notes.append(f"notebook named {path.name}, expected {notebook_name}; graded it anyway")
    elif not notebooks:
        return Submission(sid, assignment, None, f"no notebook in {assignment}/ (expected {notebook_name})")
    else:
        names = ", ".join(p.name for p in notebooks[:5])
        return Submission(sid, assignment, None, f"expected {notebook_name}, found several notebooks: {names}")
    return Submission(sid, assignment, path, notebook_problem(path), notes)


def discover(root: Path, assignment: str, notebook_name: str) -> list[Submission]:
    """Every student directory under root, as a Submission, sorted by student id."""
    if not root.is_dir():
        raise IntakeError(f"submissions directory not found: {root}")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [_submission(d, assignment, notebook_name) for d in students]


def unpack(zip_path: Path, dest: Path, assignment: str) -> Path:
    """Unpack a zip of the submitted layout into dest; returns the directory that holds the students.

    Members that would land outside dest, links and a total size over MAX_ZIP_BYTES are refused.
    A zip made of the folder that holds the students (one top-level folder) is accepted too."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise IntakeError(f"{zip_path} is not a readable zip file: {e}") from None
    with archive:
        total = sum(i.file_size for i in archive.infolist())
        if total > MAX_ZIP_BYTES:
            raise IntakeError(f"{zip_path} unpacks to {total / 1024**3:.1f} GB; the limit is "
                              f"{MAX_ZIP_BYTES / 1024**3:.0f} GB")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for info in archive.infolist():
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root) or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise IntakeError(f"{zip_path}: refusing member {info.filename!r} (outside the archive, or a link)")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    top = dest
    while True:
        entries = [p for p in top.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        if len(entries) == 1 and entries[0].is_dir() and not (entries[0] / assignment).is_dir():
            top = entries[0]
        else:
            return top
