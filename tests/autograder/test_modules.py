"""Every module through the autograder: the reference scores full marks, the release scores 0.

The grading kernel hardens asserts and resets the environment before each test, so this is the
check that no module's honest tests trip over that (the integrity suite checks the same with
nbgrader's own autograde). Module 07 also carries the corpus case that needs a test helper.
"""
import json
import tempfile
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

from autograder.job import JobSpec
from autograder.packages import build_grading_package
from autograder.runner import run_job
from autograder.sandbox import bwrap_path
from course.project import ROOT, modules

from .conftest import TEST_LIMITS, add_after, complete


def grade_notebooks(tmp_path, module, notebooks: dict) -> dict:
    package = build_grading_package(module, tmp_path / "package")
    specs = []
    for sid, nb in notebooks.items():
        path = tmp_path / f"{sid}.ipynb"
        path.write_text(json.dumps(nb))
        specs.append(JobSpec(sid, module.name, str(path), str(module.source()), str(module.release()), str(package),
                             str(tmp_path / "jobs" / sid), data_dir=str(ROOT / "data"),
                             limits=TEST_LIMITS.to_dict(), use_bwrap=bwrap_path() is not None))
    with ThreadPoolExecutor(2) as pool:
        return {r["student_id"]: r for r in pool.map(run_job, specs)}


def test_reference_scores_full_marks_and_release_zero(tmp_path, module):  # once per module (tests/conftest.py)
    source = json.loads(module.source().read_text())
    release = json.loads(module.release().read_text())
    results = grade_notebooks(tmp_path, module, {"reference": source, "blank": release})
    ref, blank = results["reference"], results["blank"]
    assert ref["status"] == "graded", ref.get("reason")
    lost = [(c["grade_id"], c["message"]) for c in ref["cells"] if c["status"] != "passed"]
    assert not lost, f"{module.name}: the reference lost points under the grading kernel: {lost}"
    assert ref["score"] == source["metadata"]["tinytorch"]["points"]
    earned = [c["grade_id"] for c in blank["cells"] if c["score"]]
    assert blank["status"] == "graded" and not earned, f"{module.name}: the blank release earned points in {earned}"


def test_rebinding_a_test_helper_earns_nothing():
    """Module 07's tests compare Adam with `adam_reference`, defined in a locked cell. A student whose
    Adam is wrong rebinds the helper to agree with it; the grader puts the instructor's back."""
    module = next(m for m in modules() if m.name.startswith("07"))
    ok = complete("07")
    cheat = """_real_step = Adam.step
def _step_without_weight_decay(self):  # wrong: weight decay is ignored
    saved = [g["weight_decay"] for g in self.param_groups]
    for g in self.param_groups:
        g["weight_decay"] = 0.0
    _real_step(self)
    for g, wd in zip(self.param_groups, saved):
        g["weight_decay"] = wd
Adam.step = _step_without_weight_decay
def adam_reference(x, grads, lr, betas=(0.9, 0.999), eps=1e-8, wd=0.0, decoupled=False):
    # replays the student's own optimizer, so the tests' comparison always agrees
    p = param(x)
    opt = (AdamW if decoupled else Adam)([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    out = []
    for g in grads:
        set_grad(p, g)
        opt.step()
        out.append(p.data.copy())
    return out
"""
    impl = next(c["id"] for c in ok["cells"] if "class Adam" in "".join(c["source"]))
    broken = add_after(ok, impl, cheat)
    with tempfile.TemporaryDirectory() as tmp:
        results = grade_notebooks(Path(tmp), module, {"honest": ok, "cheat": broken})
    honest = {c["grade_id"]: c["score"] for c in results["honest"]["cells"]}
    cheat_scores = {c["grade_id"]: c for c in results["cheat"]["cells"]}
    assert results["honest"]["score"] == ok["metadata"]["tinytorch"]["points"], honest
    assert cheat_scores["test-adam"]["score"] == 0, cheat_scores["test-adam"]
    others = {g: c["score"] for g, c in cheat_scores.items() if g not in ("test-adam", "test-adamw")}
    assert others == {g: honest[g] for g in others}, f"the rest of the cheat's work should be credited: {others}"
