"""The notebook that is graded: the instructor's notebook with the student's answers put in.

This is nbgrader's model (locked cells restored, hidden tests restored) made strict: every
cell comes from the instructor's source notebook, cell metadata and points included, except
the solution cells, whose code is the student's. So an edited or deleted test cell, changed
points or grade flags, or a removed hidden test change nothing. Cells the student added keep
their place after the instructor cell they followed. A solution cell the student deleted is
graded as its release stub.

Each graded test cell gets random markers: one printed where the hidden tests begin (the
visible asserts passed) and one at its end (every assert passed). The grader credits a cell
only if its end marker is in the output, so hiding a failure, exiting early or killing the
kernel earns nothing: the code after a failed assert never runs.

The instructor's code cells are not sent as text: `Assembled.trusted` holds them (graded ones
with their markers), and the notebook cell that runs one holds only `CELL_MARK`, its index and
a token of this assembly, which a student's cell cannot know (see `protocol.py`).
"""
from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field

from .protocol import CELL_MARK, MARKER_PREFIX

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"


def text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    return meta.get("nbgrader", {}) if isinstance(meta, dict) and isinstance(meta.get("nbgrader", {}), dict) else {}


@dataclass
class GradedCell:
    grade_id: str
    points: float
    index: int  # position in the assembled notebook
    visible_marker: str
    end_marker: str


@dataclass
class Assembled:
    notebook: dict
    graded: list[GradedCell] = field(default_factory=list)
    student_cells: list[int] = field(default_factory=list)  # indices of code the student wrote
    trusted: list[dict] = field(default_factory=list)  # the instructor's cells: {"graded": bool, "source": str}
    token: str = field(default_factory=lambda: secrets.token_hex(16))  # in the mark of each trusted cell
    notes: list[str] = field(default_factory=list)

    @property
    def last_graded(self) -> int:
        """Cells after the last graded cell (systems analysis, summary) cannot change a grade: not run."""
        return self.graded[-1].index if self.graded else -1


def _student_cells_by_key(submission: dict) -> tuple[dict, dict]:
    by_id, by_grade_id = {}, {}
    for cell in submission.get("cells", []):
        if not isinstance(cell, dict):
            continue
        if isinstance(cell.get("id"), str):
            by_id.setdefault(cell["id"], cell)
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str):
            by_grade_id.setdefault(gid, cell)
    return by_id, by_grade_id


def _added_cells(submission: dict, known_ids: set[str]) -> dict[str | None, list[dict]]:
    """Code cells the student added, keyed by the id of the instructor cell before them."""
    added: dict[str | None, list[dict]] = {}
    last = None
    for cell in submission.get("cells", []):
        if not isinstance(cell, dict):
            continue
        cid = cell.get("id")
        if cid in known_ids:
            last = cid
        elif cell.get("cell_type") == "code" and not nbgrader_meta(cell) and text(cell).strip():
            added.setdefault(last, []).append(cell)
    return added


def _marked(src: str, visible: str, end: str) -> str:
    lines = src.split("\n")
    out = []
    for line in lines:
        if line.strip() == BEGIN_HIDDEN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}print({visible!r})")
        out.append(line)
    if BEGIN_HIDDEN not in src:
        out.append(f"print({visible!r})")
    out.append(f"print({end!r})")
    return "\n".join(out)


def _code_cell(cell_id: str, source: str, metadata: dict) -> dict:
    return {"cell_type": "code", "id": cell_id, "metadata": copy.deepcopy(metadata),
            "source": source, "outputs": [], "execution_count": None}


def assemble(source_nb: dict, release_nb: dict, submission: dict, skip: set[str] = frozenset()) -> Assembled:
    """The notebook to execute. `skip` holds ids of cells to neutralise (they hung or killed the
    kernel in an earlier run): a solution cell becomes its stub, any other cell is emptied."""
    stubs = {c["id"]: text(c) for c in release_nb["cells"] if "id" in c}
    by_id, by_grade_id = _student_cells_by_key(submission)
    known = {c["id"] for c in source_nb["cells"]}
    added = _added_cells(submission, known)
    out = Assembled(notebook={"cells": [], "metadata": copy.deepcopy(source_nb.get("metadata", {})),
                              "nbformat": 4, "nbformat_minor": 5})
    cells = out.notebook["cells"]

    def put(cell: dict, student: bool = False) -> None:
        if student:
            out.student_cells.append(len(cells))
        cells.append(cell)

    def by_index(source: str, graded: bool) -> str:
        out.trusted.append({"graded": graded, "source": source})
        return f"{CELL_MARK}{len(out.trusted) - 1} {out.token}"

    def put_added(after: str | None) -> None:
        for n, cell in enumerate(added.get(after, [])):
            cid = f"student-added-{after}-{n}"
            put(_code_cell(cid, "" if cid in skip else text(cell), {}), student=True)

    put_added(None)
    for cell in source_nb["cells"]:
        cid, meta = cell["id"], nbgrader_meta(cell)
        if cell["cell_type"] != "code":
            cells.append(copy.deepcopy(cell))
        elif meta.get("solution"):
            mine = by_id.get(cid) or by_grade_id.get(meta.get("grade_id"))
            if cid in skip:  # the job's notes say why
                src = stubs.get(cid, "raise NotImplementedError()")
            elif mine is None or mine.get("cell_type") != "code":
                src = stubs.get(cid, "raise NotImplementedError()")
                out.notes.append(f"solution cell {cid} is missing from the submission; graded as not implemented")
            else:
                src = text(mine)
            put(_code_cell(cid, src, cell.get("metadata", {})), student=True)
        elif meta.get("grade"):
            visible, end = (f"{MARKER_PREFIX}{secrets.token_hex(16)}" for _ in range(2))
            src = "raise RuntimeError('this test stopped the kernel in an earlier run')" if cid in skip \
                else by_index(_marked(text(cell), visible, end), graded=True)
            out.graded.append(GradedCell(meta.get("grade_id", cid), float(meta.get("points", 0)), len(cells),
                                         visible, end))
            cells.append(_code_cell(cid, src, cell.get("metadata", {})))
        else:
            src = "" if cid in skip or not text(cell).strip() else by_index(text(cell), graded=False)
            cells.append(_code_cell(cid, src, cell.get("metadata", {})))
        put_added(cid)
    return out
