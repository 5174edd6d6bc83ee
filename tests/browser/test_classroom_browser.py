"""The classroom in a real browser: a student in JupyterLab (run all, fix a cell, Validate) and an
instructor in the formgrader, each step screenshotted (kept when a test fails)."""
import json
import subprocess
import sys

import pytest

from autograder.samples import fill_solutions
from course.build import SOLUTION_MARKER
from course.project import find_module

from ..workflow.test_student_journey import repo, tito  # noqa: F401  (repo is a fixture)

NOTEBOOK = "modules/01_tensor/01_tensor.ipynb"
IDLE = "document.querySelector('#jp-main-statusbar')?.innerText.includes('| Idle')"


@pytest.fixture
def student(repo):  # noqa: F811
    """A scratch repository in student mode with Module 01 started."""
    tito(repo, "student", "init", check=True)
    tito(repo, "module", "start", "01", check=True)
    return repo


def open_notebook(steps, lab, path, name):
    page = steps.page
    page.goto(lab.url(f"lab/tree/{path}?reset"))
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    page.wait_for_function(IDLE)  # the toolbar says idle before a kernel exists: wait for the status bar
    steps.shot(name)
    return page


def code_cell(page, cell_id):
    """The cell `cell_id` of the open Module 01 notebook, scrolled into view.

    Cells are found by position (the notebook's cell order): CodeMirror renders only the lines
    near the viewport, so a cell's text is not searchable until it has been scrolled to."""
    ids = [c["id"] for c in json.loads(find_module("01").release().read_text())["cells"]]
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(ids.index(cell_id))
    cell.scroll_into_view_if_needed()
    return cell


def run_cell(page, cell):
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-prompt").click()  # select the cell (command mode)
    page.keyboard.press("Control+Enter")          # run it, stay on it
    page.wait_for_function(IDLE)
    page.wait_for_timeout(200)


def output_text(cell):
    area = cell.locator(".jp-OutputArea")
    return area.inner_text() if area.count() else ""


def set_source(page, cell, text):
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)  # as a paste: no auto-indentation


def solution_source(cell_id):
    m = find_module("01")
    src = next(c for c in json.loads(m.source().read_text())["cells"] if c["id"] == cell_id)["source"]
    return SOLUTION_MARKER.sub("", "".join(src))


def test_student_runs_a_release_notebook_then_fixes_a_cell_and_sees_its_test_pass(steps, lab_factory, student):
    lab = lab_factory(student, tinytorch_root=student)
    page = open_notebook(steps, lab, NOTEBOOK, "release-notebook-open")

    page.click("text=Run >> nth=0")
    page.click('[data-command="runmenu:run-all"]')
    creation = code_cell(page, "test-tensor-creation")
    creation.locator(".jp-OutputArea-output").first.wait_for()
    page.wait_for_function(IDLE)
    creation.scroll_into_view_if_needed()
    steps.shot("run-all-on-the-release")
    assert "NotImplementedError" in output_text(creation), output_text(creation)

    impl = code_cell(page, "tensor-class-impl")
    correct = solution_source("tensor-class-impl")
    wrong = correct.replace("return self.nbytes + (self.grad.nbytes if self.grad is not None else 0)", "return self.nbytes")
    assert wrong != correct
    set_source(page, impl, wrong)
    run_cell(page, impl)
    run_cell(page, creation)
    footprint = code_cell(page, "test-memory-footprint")
    run_cell(page, footprint)
    footprint.scroll_into_view_if_needed()
    steps.shot("a-wrong-memory-footprint-fails")
    assert "✓" in output_text(creation), f"Tensor creation should now pass:\n{output_text(creation)}"
    assert "expected 800 bytes, got 400" in output_text(footprint), output_text(footprint)

    set_source(page, impl, correct)
    run_cell(page, impl)
    run_cell(page, footprint)
    footprint.scroll_into_view_if_needed()
    steps.shot("the-fixed-cell-passes")
    assert "✓" in output_text(footprint) and "AssertionError" not in output_text(footprint), output_text(footprint)


def validate(steps, page, name):
    page.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    dialog.locator(".jp-Dialog-content").filter(has_not_text="Validating").first.wait_for()
    page.wait_for_function("!document.querySelector('.jp-Dialog')?.innerText.includes('Validating...')")
    steps.shot(name)
    text = dialog.inner_text()
    page.keyboard.press("Escape")
    return text


def test_validate_reports_success_on_a_finished_notebook_and_the_failing_cell_on_a_blank_one(
        steps, lab_factory, student):
    m = find_module("01")
    finished = fill_solutions(json.loads(m.release().read_text()), json.loads(m.source().read_text()))
    (student / "modules" / "01_tensor" / "finished.ipynb").write_text(json.dumps(finished), encoding="utf-8")
    lab = lab_factory(student, tinytorch_root=student)

    page = open_notebook(steps, lab, "modules/01_tensor/finished.ipynb", "finished-notebook-open")
    text = validate(steps, page, "validate-finished")
    assert "Success" in text and "failed" not in text.lower(), text

    page = open_notebook(steps, lab, NOTEBOOK, "blank-notebook-open")
    text = validate(steps, page, "validate-blank")
    assert "failed" in text.lower() and "# Test: creating Tensors" in text, text


def test_instructor_sees_the_class_scores_in_the_formgrader(steps, lab_factory, tmp_path):
    m = find_module("01")
    release, source = json.loads(m.release().read_text()), json.loads(m.source().read_text())
    for student_id, nb in [("ada", fill_solutions(release, source)), ("alan", release)]:
        path = tmp_path / "submitted" / student_id / m.name / m.notebook_name
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(nb), encoding="utf-8")
    grades = tmp_path / "grades"
    graded = subprocess.run([sys.executable, "-m", "tito.cli", "grade", m.name, "--submissions",
                             str(tmp_path / "submitted"), "--output", str(grades), "--workers", "2"],
                            capture_output=True, text=True, timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr

    lab = lab_factory(grades / "instructor", command=[sys.executable, "-m", "jupyterlab"])  # the nbgrader course
    page = steps.page
    page.goto(lab.url("lab?reset"))
    page.wait_for_selector("#jp-main-statusbar")
    steps.shot("instructor-lab-open")
    page.click("text=Nbgrader >> nth=0")
    page.click('[data-command="nbgrader:open-formgrader"]')
    frame = page.frame_locator("iframe").first
    frame.locator("text=Manage Students").first.click()
    table = frame.locator("table")
    table.locator("text=ada").first.wait_for()
    steps.shot("formgrader-students")
    scores = {}
    for row in table.inner_text().splitlines()[1:]:  # Name, Student ID, Email, Overall Score, ...
        cols = [c.strip() for c in row.split("\t")]
        if len(cols) >= 4:
            scores[cols[1]] = cols[3]
    assert scores == {"ada": "17 / 17", "alan": "0 / 17"}, f"formgrader shows {scores}:\n{table.inner_text()}"
