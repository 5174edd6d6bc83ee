"""`tito mutate`: the mutation operators on small cells, and the grading of mutants end to end
on tiny notebooks written here (one solution cell, one graded cell with hidden tests)."""
import json

import pytest

from course.mutation import Target, candidate_mutants, measure_one, sample_mutants, solution_lines
from course.project import TitoError
from tito.cli import main as tito


def cell(*body, before=(), after=()):
    """A solution cell: `#| export`, a def with a docstring, given lines, then the solution region."""
    return "\n".join(["#| export", "def f(a, b, xs):", '    """Docstring: never mutated."""', *before,
                      "    ### BEGIN SOLUTION", *body, "    ### END SOLUTION", *after])


def mutations(src):
    return [(m.operator, m.after) for m in candidate_mutants(src, "c")]


def test_solution_lines_are_strictly_inside_the_markers():
    assert solution_lines(cell("    y = 1", "    return y", before=["    z = 2"])) == {6, 7}


def test_a_small_region_gives_exactly_its_mutants():
    assert mutations(cell("    return a + 1")) == [
        ("return-none", "return None"), ("binop", "return a - 1"),
        ("constant", "return a + 2"), ("constant", "return a + 0")]


@pytest.mark.parametrize("line, operator, after", [
    ("y = a * b", "binop", "y = a / b"),
    ("y = a @ b", "binop", "y = a * b"),
    ("y = a // b", "binop", "y = a % b"),
    ("y = a // b", "binop", "y = a / b"),
    ("y = a ** 2", "binop", "y = a * 2"),
    ("y += a", "augassign", "y -= a"),
    ("ok = a < b", "compare", "ok = a <= b"),
    ("ok = a < b", "compare", "ok = a >= b"),
    ("ok = a == b", "compare", "ok = a != b"),
    ("ok = xs is None", "compare", "ok = xs is not None"),
    ("ok = a in xs", "compare", "ok = a not in xs"),
    ("ok = a and b", "boolop", "ok = a or b"),
    ("ok = not xs", "not-removal", "ok = xs"),
    ("y = -a", "unary-minus-removal", "y = a"),
    ("y = 0", "constant", "y = 1"),
    ("y = 1", "constant", "y = 0"),
    ("y = 2.5", "constant", "y = 3.5"),
    ("y = 2.5", "constant", "y = 1.5"),
    ("ok = True", "constant", "ok = False"),
    ("y = a", "drop-statement", "pass"),
    ("return a", "return-none", "return None"),
    ("y = max(a, b, 0)", "swap-args", "y = max(b, a, 0)"),
    ("y = xs.sum(axis=0, keepdims=True)", "drop-keyword", "y = xs.sum(axis=0)"),
    ("y = xs.sum(axis=0, keepdims=True)", "drop-keyword", "y = xs.sum(keepdims=True)"),
])
def test_each_operator_produces_its_mutant(line, operator, after):
    assert (operator, after) in mutations(cell(f"    {line}"))


def test_precedence_is_kept_with_parentheses():
    # a ** 2 -> a * 2 inside a division must stay one operand of the division
    assert ("binop", "return b / (a * 2)") in mutations(cell("    return b / a ** 2"))


def test_nothing_outside_the_solution_region_is_mutated():
    src = cell("    y = a + 1", "    return y", before=["    z = a + 2"], after=["", "x = 1 - 2", "g = f(1, 2)"])
    region = solution_lines(src)
    lines = src.split("\n")
    found = candidate_mutants(src, "c")
    assert len(found) == 5  # y = a + 1: dropped, + -> -, 1 -> 2 and 0; return y -> return None; nothing else
    for m in found:
        assert m.line in region
        changed = [n for n, (old, new) in enumerate(zip(lines, m.source.split("\n")), 1) if old != new]
        assert changed == [m.line], f"{m.describe()} changed lines {changed}"


def test_a_call_outside_the_region_keeps_its_arguments_and_a_docstring_is_never_dropped():
    src = "\n".join(["def f(a, b):", "    ### BEGIN SOLUTION", '    """not a statement to drop"""',
                     "    return g(a, b)", "    ### END SOLUTION", "h(1, 2)"])
    assert mutations(src) == [("return-none", "return None"), ("swap-args", "return g(b, a)")]


def test_a_mutant_that_cannot_compile_is_dropped_not_run():
    """Dropping the assignment a nonlocal names parses but does not compile: no mutant, no crash."""
    src = cell("    total = 0", "    def add(x):", "        nonlocal total", "        total += x", "    add(a)", "    return total")
    found = mutations(src)
    assert ("drop-statement", "pass") in found  # other statements can still be dropped
    for m in candidate_mutants(src, "c"):
        compile(m.source, "<mutant>", "exec")


def test_mutants_equal_to_the_original_or_to_each_other_are_dropped():
    # swapping equal arguments changes nothing; removing either `not` gives the same `not x`
    assert mutations(cell("    return max(a, a)")) == [("return-none", "return None")]
    assert mutations(cell("    return not not xs")) == [("return-none", "return None"), ("not-removal", "return not xs")]


def test_sampling_is_seeded_capped_and_in_source_order():
    src = cell(*[f"    y{i} = a + {i} * b" for i in range(10)])
    everything = candidate_mutants(src, "c")
    assert len(everything) == 49  # per line: dropped, + -> -, * -> /, i -> i+1 and i-1 (0 -> 1 only)
    first, again = sample_mutants(src, "c", seed=0, max_per_cell=8), sample_mutants(src, "c", seed=0, max_per_cell=8)
    assert first == again and len(first) == 8
    assert [everything.index(m) for m in first] == sorted(everything.index(m) for m in first)
    assert sample_mutants(src, "c", seed=1, max_per_cell=8) != first
    assert sample_mutants(src, "other-cell", seed=0, max_per_cell=8) != first  # the cell id is part of the seed
    assert sample_mutants(src, "c", seed=0, max_per_cell=0) == everything


def test_a_cell_that_is_not_python_is_refused_by_name():
    with pytest.raises(TitoError, match=r"solution cell c is not plain Python .*IPython magics"):
        candidate_mutants("%timeit f()\n    ### BEGIN SOLUTION\nx = 1\n    ### END SOLUTION", "c")


# --- end to end on a tiny notebook ----------------------------------------------------------------

PASS_MARK = """\
def passed(score):
    \"\"\"'pass' from 50 points on.\"\"\"
    ### BEGIN SOLUTION
    return "pass" if score >= 50 else "fail"
    ### END SOLUTION"""
WEAK_TEST = """\
assert passed(80) == "pass", f"80 points: expected pass, got {passed(80)}"
### BEGIN HIDDEN TESTS
assert passed(10) == "fail", f"10 points: expected fail, got {passed(10)}"
### END HIDDEN TESTS
print("ok")"""
STRONG_TEST = WEAK_TEST.replace("### END HIDDEN TESTS", 'assert passed(50) == "pass" and passed(49) == "fail"\n'
                                "### END HIDDEN TESTS")
COUNTDOWN = """\
def countdown(n):
    \"\"\"Steps from n down to 0.\"\"\"
    ### BEGIN SOLUTION
    steps = 0
    while n > 0:
        n -= 1
        steps += 1
    return steps
    ### END SOLUTION"""


def notebook(tmp_path, solution, test, name="tiny"):
    def code(cid, src, meta):
        return {"cell_type": "code", "id": cid, "metadata": {"nbgrader": meta}, "source": src,
                "outputs": [], "execution_count": None}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# A tiny module"},
        code("setup", "import numpy as np", {"grade": False, "solution": False, "locked": True}),
        code("impl", solution, {"grade": False, "solution": True, "locked": False}),
        code("test", test, {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": "test"}),
        code("after", "raise RuntimeError('cells after the last graded cell are not run')",
             {"grade": False, "solution": False, "locked": True}),
    ]}
    path = tmp_path / f"{name}.ipynb"
    path.write_text(json.dumps(nb))
    return Target(name, path, root=tmp_path)


def survivors(report):
    return sorted((s["operator"], s["after"]) for s in report.survivors)


def test_a_weak_hidden_test_lets_the_boundary_mutants_survive(tmp_path):
    report = measure_one(notebook(tmp_path, PASS_MARK, WEAK_TEST))
    assert report.status == "measured", report.reason
    assert report.mutants == 5  # return None, >= -> > and <, 50 -> 51 and 49
    assert survivors(report) == [("compare", 'return "pass" if score > 50 else "fail"'),
                                 ("constant", 'return "pass" if score >= 49 else "fail"'),
                                 ("constant", 'return "pass" if score >= 51 else "fail"')]
    assert report.killed == 2 and report.share == 0.4
    killed = {(o["mutant"]["after"], o["by"], o["how"]) for o in report.outcomes if o["killed"]}
    assert ('return "pass" if score < 50 else "fail"', "test", "assert") in killed


def test_a_strong_hidden_test_kills_them(tmp_path):
    report = measure_one(notebook(tmp_path, PASS_MARK, STRONG_TEST))
    assert report.status == "measured", report.reason
    assert (report.mutants, report.killed, report.share, report.survivors) == (5, 5, 1.0, [])


def test_a_mutant_that_never_ends_is_killed_at_the_timeout(tmp_path):
    test = "assert countdown(3) == 3\n### BEGIN HIDDEN TESTS\nassert countdown(0) == 0\n### END HIDDEN TESTS"
    report = measure_one(notebook(tmp_path, COUNTDOWN, test), max_per_cell=0, timeout=1.0)
    assert report.status == "measured", report.reason
    # n never changes or grows: the loop never ends
    hung = sorted((o["mutant"]["line"], o["mutant"]["after"]) for o in report.outcomes if o["how"] == "timeout")
    assert hung == [(6, "n += 1"), (6, "n -= 0"), (6, "pass")]
    assert report.timeouts == 3 and report.share == 1.0


def test_a_notebook_whose_own_tests_fail_is_broken_not_measured(tmp_path):
    report = measure_one(notebook(tmp_path, PASS_MARK, 'assert passed(50) == "fail", "expected fail"'))
    assert report.status == "broken" and report.share is None and report.outcomes == []
    assert "the unmutated notebook fails: cell test: assert expected fail" in report.reason


def test_the_command_measures_a_module_and_writes_json(tmp_path, capsys):
    out = tmp_path / "mutation.json"
    assert tito(["mutate", "02", "--max-per-cell", "1", "--min-share", "0", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (m,) = data["modules"]
    assert (m["module"], m["status"], data["seed"], data["max_per_cell"]) == ("02_activations", "measured", 0, 1)
    assert m["mutants"] == len(m["outcomes"]) >= 1 and m["killed"] + m["survived"] == m["mutants"]
    assert "02_activations" in capsys.readouterr().out


def test_the_command_names_an_unknown_module(capsys):
    assert tito(["mutate", "99"]) == 1
    assert "unknown module '99': expected one of 01_tensor" in capsys.readouterr().err


def test_every_module_kills_at_least_90_percent_of_its_mutants():
    """The bar of CONTRIBUTING's module template, on every module in source/ (about 40 s)."""
    from course.mutation import measure, module_targets
    from course.project import modules

    reports = measure(module_targets(modules()))
    weak = {r.name: (r.status, r.share, [f"{s['cell_id']}:{s['line']} {s['operator']}: {s['after']}"
                                          for s in r.survivors])
            for r in reports if r.share is None or r.share < 0.9}
    assert not weak, f"modules under 90% killed (status, share, survivors): {weak}"
