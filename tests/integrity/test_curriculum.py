"""The curriculum checks itself: the seven properties of every module in source/.

1. the source notebook executes with no error; graded cells write nothing to stderr
2. autograding the source notebook scores full marks
3. autograding the unmodified release scores 0 on every graded cell
4. the release holds no solution code and no hidden-test code
5. tinytorch/ and release/ equal a fresh regeneration; notebooks are clean
6. the release exports to a stub package that imports
7. grade_ids are unique and points add up to the module's declared total
"""
import re
import subprocess
import sys

import pytest

from autograder.assemble import nbgrader_meta, text
from autograder.samples import solution_cell_ids
from course import build
from course.project import modules, namespaces

from .conftest import BLANK, REFERENCE, load

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def graded_cells(nb):
    return [c for c in nb["cells"] if nbgrader_meta(c).get("grade")]


def regions(src, begin, end):
    """Lines strictly between each begin/end marker pair, as (indent, [lines]) tuples."""
    out, current = [], None
    for line in src.splitlines():
        if line.strip() == begin:
            current = (line[: len(line) - len(line.lstrip())], [])
        elif line.strip() == end:
            out.append(current)
            current = None
        elif current is not None:
            current[1].append(line)
    return out


def expected_release_cell(src):
    """What nbgrader must make of a source cell: solutions stubbed, hidden tests removed."""
    lines, out, skipping = src.splitlines(), [], None
    for line in lines:
        s = line.strip()
        if s == BEGIN_SOLUTION:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
            skipping = END_SOLUTION
        elif s == BEGIN_HIDDEN:
            skipping = END_HIDDEN
        elif skipping and s == skipping:
            skipping = None
        elif not skipping:
            out.append(line)
    return "\n".join(out)


# 1 ------------------------------------------------------------------------------------------------
def test_source_executes_without_error_or_stderr_in_graded_cells(graded, module):
    nb = graded.notebook(REFERENCE, module)
    errors = [(c["id"], o.get("ename"), o.get("evalue")) for c in nb["cells"]
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"cells raised while executing the source notebook: {errors}"
    stderr = [(c["id"], "".join(o["text"])[:300]) for c in graded_cells(nb)
              for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not stderr, f"graded cells wrote to stderr (nbgrader fails such a cell): {stderr}"


# 2 ------------------------------------------------------------------------------------------------
def test_source_scores_full_marks(graded, module):
    grades = graded.grades(REFERENCE, module)
    lost = [(g.grade_id, g.score, g.max_score) for g in grades if g.score != g.max_score]
    assert grades and not lost, f"reference solution lost points in (cell, score, max): {lost}"


# 3 ------------------------------------------------------------------------------------------------
def test_blank_release_scores_zero_everywhere(graded, module):
    grades = graded.grades(BLANK, module)
    earned = [(g.grade_id, g.score) for g in grades if g.score != 0]
    assert grades and not earned, f"the unmodified release earned points in: {earned}"


# 4 ------------------------------------------------------------------------------------------------
def test_release_has_no_solution_or_hidden_test_code(module):
    source, release = load(module.source()), load(module.release())
    release_text = "\n".join(text(c) for c in release["cells"])
    for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        assert marker not in release_text, f"release still contains the marker {marker!r}"
    by_id = {c["id"]: c for c in release["cells"]}
    assert [c["id"] for c in source["cells"]] == [c["id"] for c in release["cells"]], \
        "release cells are not the source cells, in the same order"
    # what the source shows students anyway: a secret line repeating one of these is no leak
    public = "\n".join(expected_release_cell(text(c)) if c["cell_type"] == "code" else text(c) for c in source["cells"])
    for cell in source["cells"]:
        src = text(cell)
        secret = regions(src, BEGIN_SOLUTION, END_SOLUTION) + regions(src, BEGIN_HIDDEN, END_HIDDEN)
        for _, lines in secret:
            for line in lines:
                if len(line.strip()) > 25 and line.strip() not in public:  # specific to the secret
                    assert line.strip() not in release_text, \
                        f"cell {cell['id']}: solution or hidden-test line leaked into the release: {line.strip()!r}"
        if cell["cell_type"] == "code":
            got = text(by_id[cell["id"]])
            assert got == expected_release_cell(src), \
                f"cell {cell['id']}: release is not the source with solutions stubbed and hidden tests removed"


def test_solution_markers_sit_inside_bodies(module):
    """A solution cell must keep its scaffolding: some code outside the markers, markers paired."""
    for cell in load(module.source())["cells"]:
        if not nbgrader_meta(cell).get("solution"):
            continue
        src = text(cell)
        assert src.count(BEGIN_SOLUTION) == src.count(END_SOLUTION) >= 1, \
            f"cell {cell['id']}: expected paired solution markers, got {src.count(BEGIN_SOLUTION)} BEGIN and {src.count(END_SOLUTION)} END"
        outside = expected_release_cell(src).replace("# YOUR CODE HERE", "").replace("raise NotImplementedError()", "")
        assert re.search(r"\b(def|class)\b", outside), \
            f"cell {cell['id']}: markers wrap the whole cell; put them inside the function bodies"


# 5 ------------------------------------------------------------------------------------------------
def test_generated_artifacts_do_not_drift():
    problems = build.check()
    assert not problems, "generated files drift from source/ (run tito export, release, clean):\n" + "\n".join(problems)


def test_notebooks_are_stored_clean_as_nbformat_4_5(module):
    for path in (module.source(), module.release()):
        nb = load(path)
        assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5), f"{path}: expected nbformat 4.5"
        dirty = [c["id"] for c in nb["cells"] if c.get("outputs") or c.get("execution_count")]
        assert not dirty, f"{path}: cells stored with outputs or execution counts: {dirty}"
        ids = [c.get("id") for c in nb["cells"]]
        assert all(ids) and len(set(ids)) == len(ids), f"{path}: cell ids missing or repeated"


# 6 ------------------------------------------------------------------------------------------------
def test_release_exports_to_an_importable_stub_package(tmp_path):
    build.export_notebooks([m.release() for m in modules()], tmp_path / "tinytorch")
    probe = "; ".join(f"import {ns}" for ns in namespaces()) + "; print(tinytorch.__file__)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, f"the release's stub package does not import:\n{result.stderr[-2000:]}"
    assert result.stdout.strip().startswith(str(tmp_path)), \
        f"imported {result.stdout.strip()} instead of the stub package in {tmp_path}"
    exported = "".join(p.read_text() for p in (tmp_path / "tinytorch").rglob("*.py"))
    assert "raise NotImplementedError()" in exported, "the stub package holds no stubs: solutions leaked?"


# 7 ------------------------------------------------------------------------------------------------
def test_grade_ids_unique_and_points_add_up(module):
    nb = load(module.source())
    ids = [nbgrader_meta(c)["grade_id"] for c in nb["cells"] if nbgrader_meta(c)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"grade_ids used more than once: {dupes}"
    declared = nb["metadata"]["tinytorch"]["points"]
    points = sum(nbgrader_meta(c).get("points", 0) for c in graded_cells(nb))
    assert points == declared, f"graded cells carry {points} points, the notebook declares {declared}"
    for c in graded_cells(nb):
        meta = nbgrader_meta(c)
        assert meta.get("locked") and not meta.get("solution") and meta.get("points", 0) > 0, \
            f"graded cell {c['id']} must be locked, not a solution cell, and worth points: {meta}"
    assert solution_cell_ids(nb), "a module with no solution cells teaches nothing to build"
