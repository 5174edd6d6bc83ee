"""Sample submissions made from the release and the source: complete, partial and blank work."""
from __future__ import annotations

import copy

from tito.build import SOLUTION_MARKER


def solution_cell_ids(nb: dict) -> list[str]:
    return [c["id"] for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]


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
