"""Sample submissions made from the release and the source: complete, partial and blank work,
and the small class that `tito demo` grades."""
from __future__ import annotations

import copy
import json

from course.build import SOLUTION_MARKER

from .assemble import nbgrader_meta


def solution_cell_ids(nb: dict) -> list[str]:
    return [c["id"] for c in nb["cells"] if nbgrader_meta(c).get("solution")]


def fill_solutions(release_nb: dict, source_nb: dict, cell_ids: list[str] | None = None) -> dict:
    """The release notebook with the chosen solution cells (default: all) written as the source has them.

    This is what a student who wrote the reference solution would submit: their release copy,
    with the solution regions filled in and the instructor's markers gone.
    """
    solutions = {c["id"]: c["source"] for c in source_nb["cells"]}
    wanted = set(solution_cell_ids(release_nb) if cell_ids is None else cell_ids)
    nb = copy.deepcopy(release_nb)
    for cell in nb["cells"]:
        if cell["id"] in wanted:
            src = solutions[cell["id"]]
            src = "".join(src) if isinstance(src, list) else src
            cell["source"] = SOLUTION_MARKER.sub("", src)
    return nb


def sample_class(release_nb: dict, source_nb: dict) -> dict[str, dict | bytes]:
    """Student id -> submitted notebook (or raw bytes): the demo's class.

    ada wrote everything, grace half, alan nothing; mallory wrote half and replaced every test
    cell with a print of success; trent's notebook was cut off in transfer."""
    ids = solution_cell_ids(release_nb)
    half = fill_solutions(release_nb, source_nb, ids[: len(ids) // 2])
    faked = copy.deepcopy(half)
    for cell in faked["cells"]:
        if nbgrader_meta(cell).get("grade"):
            cell["source"] = 'print("✓ all tests passed")\n'
    truncated = json.dumps(fill_solutions(release_nb, source_nb)).encode()
    return {"ada": fill_solutions(release_nb, source_nb), "grace": half, "alan": release_nb,
            "mallory": faked, "trent": truncated[: len(truncated) // 3]}
