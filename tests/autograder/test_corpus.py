"""The corpus of cheating attempts: each earns nothing for what it fakes, the rest of its work is
credited, and no other submission is disturbed.

Every attempt starts from a complete, correct Module 01 notebook, breaks or removes the code
behind some tests, and then tries to get those tests' points anyway. The whole class (attempts,
an honest student and a blank notebook) is graded in one batch with two workers, so attempts
also run beside honest submissions.
"""
import hashlib
import json
import socket
import subprocess
import threading

import pytest

from course.project import ROOT

from .conftest import add_after, complete, delete, grade, replace, result, rows_by_student, stub, cell_outputs

ALL_CELLS = {"test-tensor-creation": 2, "test-memory-footprint": 1, "test-broadcast-shape": 2, "test-arithmetic": 2,
             "test-matmul-naive": 1, "test-matmul": 2, "test-reductions": 2, "test-reshape-view": 2,
             "test-transpose-permute": 1, "test-indexing": 1, "test-random": 1}

BROKEN_FOOTPRINT = """def _no_footprint(self):
    raise NotImplementedError
Tensor.memory_footprint = _no_footprint
"""
ALWAYS_EQUAL = """class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __sub__(self, other): return AlwaysEqual()
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__
    def __abs__(self): return AlwaysEqual()
    def __array__(self, dtype=None, copy=None):
        raise TypeError("no array here")
    def __repr__(self): return "400"
Tensor.memory_footprint = lambda self: AlwaysEqual()
"""
HIDE_FAILURES = """import sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
sys.excepthook = lambda *a: None
# an input transformer that deletes every assert from the cells that follow
ip.input_transformers_cleanup.append(lambda lines: [l for l in lines if not l.lstrip().startswith("assert")])
"""
PATCH_NUMPY = """import numpy
numpy.allclose = lambda *a, **k: True
numpy.array_equal = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
class _Yes:
    def __getattr__(self, name):
        return (lambda *a, **k: True) if name in ("allclose", "array_equal", "shares_memory") else getattr(numpy, name)
np = _Yes()  # the tests' own `np` name, rebound
"""
WRONG_MATMUL = "Tensor.__matmul__ = lambda self, other: Tensor(np.zeros((self.shape[0], other.shape[-1])))\n"
PATCHING_THREAD = """import threading, time, numpy
def _keep_patching():
    while True:
        numpy.array_equal = lambda *a, **k: True
        time.sleep(0.001)
threading.Thread(target=_keep_patching, daemon=True).start()
"""
SYS_EXIT = """def _transpose_exits(self, *dims):
    import sys
    sys.exit(0)
Tensor.transpose = _transpose_exits
"""
OS_EXIT = """def matmul_naive(a, b):
    import os
    os._exit(0)
"""
KILL_KERNEL = """def _getitem_kills(self, key):
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
Tensor.__getitem__ = _getitem_kills
"""
IGNORE_SIGINT = """def randn(*shape, requires_grad=False):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
"""
NOISY_BUT_CORRECT = """import sys, warnings
_quiet_init = Tensor.__init__
def _noisy_init(self, *args, **kwargs):
    warnings.warn("this Tensor talks a lot", UserWarning)
    print("debug: making a Tensor", file=sys.stderr)
    _quiet_init(self, *args, **kwargs)
Tensor.__init__ = _noisy_init
"""


def steal_reference(root):
    """Copy the reference reductions: from the stub package, from the repository, from source/."""
    return f"""import json
stolen = []
try:
    from tinytorch.core.tensor import Tensor as _Packaged  # the grading package: stubs for Module 01
    for name in ("sum", "mean", "max", "exp", "log", "sqrt"):
        setattr(Tensor, name, getattr(_Packaged, name))
    stolen.append("package")
except Exception as e:
    print("STEAL package:", type(e).__name__)
for path in ["{root}/tinytorch/core/tensor.py", "{root}/source/01_tensor/01_tensor.ipynb"]:
    try:
        text = open(path).read()
        if path.endswith(".ipynb"):
            cell = [c for c in json.loads(text)["cells"] if c["id"] == "reductions-impl"][0]
            exec("".join(cell["source"]))
        stolen.append(path)
        print("STEAL read:", path)
    except Exception as e:
        print("STEAL denied:", type(e).__name__)
"""


def trespass(targets, port):
    """Read the gradebook, the hidden tests and a classmate's work; write into the output; call out."""
    lines = ["import os, socket", "report = []"]
    for name, path in targets["read"].items():
        lines += ["try:", f"    open({path!r}, 'rb').read(1)", f"    report.append('READ {name}: ok')",
                  "except Exception as e:", f"    report.append('READ {name}: denied ' + type(e).__name__)"]
    for name, path in targets["write"].items():
        lines += ["try:", f"    open({path!r}, 'w').write('0')", f"    report.append('WRITE {name}: ok')",
                  "except Exception as e:", f"    report.append('WRITE {name}: denied ' + type(e).__name__)"]
    lines += ["try:", f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hidden tests please')",
              "    report.append('NETWORK: ok')", "except Exception as e:",
              "    report.append('NETWORK: denied ' + type(e).__name__)", "print('\\n'.join(report))"]
    return "\n".join(lines) + "\n"


DAEMON = """import os, subprocess
subprocess.Popen(["sleep", "4242"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "4243"])
    os._exit(0)
"""
RESOURCE_HOGS = """import subprocess, numpy
def _reshape_hogs(self, *shape):
    numpy.ones(3 * 1024**3 // 8)  # 3 GB: more than a submission may use
Tensor.reshape = _reshape_hogs
try:
    with open("big.bin", "wb") as f:
        f.write(b"x" * (100 * 1024**2))
    print("FILE: written")
except OSError as e:
    print("FILE: refused", e.strerror)
spawned = []
try:
    for _ in range(200):
        spawned.append(subprocess.Popen(["sleep", "30"]))
    print("PROCESSES: all 200 started")
except OSError as e:
    print("PROCESSES: refused after", len(spawned))
for p in spawned:
    p.kill()
    p.wait()
"""
# The path from a cell's text to its execution. Each changes a piece of it that the guard did not
# put back before: IPython's input transformer manager, its compiler, the ast module and traitlets
# (which hardened the asserts), the message path, and the code of a library function.
STRIP_ASSERTS_IN_TRANSFORMER = BROKEN_FOOTPRINT + """from IPython.core.inputtransformer2 import TransformerManager
_transform = TransformerManager.transform_cell
def _without_asserts(self, cell):
    return "\\n".join(l[: len(l) - len(l.lstrip())] + "pass" if l.lstrip().startswith("assert ") else l
                     for l in _transform(self, cell).splitlines())
TransformerManager.transform_cell = _without_asserts
"""
DROP_ASSERTS_IN_COMPILER = BROKEN_FOOTPRINT + """import ast
from IPython.core.compilerop import CachingCompiler
class _DropAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)
_parse = CachingCompiler.ast_parse
CachingCompiler.ast_parse = lambda self, *a, **k: ast.fix_missing_locations(_DropAsserts().visit(_parse(self, *a, **k)))
"""
UNHARDEN_WITH_AST = ALWAYS_EQUAL + """import ast
ast.NodeTransformer.visit = lambda self, node: node  # no transformer changes anything any more
"""
UNHARDEN_WITH_TRAITLETS = ALWAYS_EQUAL + """import ast, traitlets
_validate = traitlets.List.validate
def _no_transformers(self, obj, value):
    value = _validate(self, obj, value)
    return [] if value and all(isinstance(v, ast.NodeTransformer) for v in value) else value
traitlets.List.validate = _no_transformers
"""
REWRITE_MESSAGES = BROKEN_FOOTPRINT + """from jupyter_client.session import Session
_deserialize = Session.deserialize
def _without_asserts(self, *args, **kwargs):
    msg = _deserialize(self, *args, **kwargs)
    code = msg.get("content", {}).get("code") if isinstance(msg.get("content"), dict) else None
    if code:
        msg["content"]["code"] = "\\n".join(l[: len(l) - len(l.lstrip())] + "pass" if l.lstrip().startswith("assert ")
                                             else l for l in code.splitlines())
    return msg
Session.deserialize = _without_asserts
"""
OFF_BY_ONE_MATMUL = """_real_matmul = Tensor.__matmul__
def _off_by_one(self, other):  # right shapes, dtypes and errors; wrong values
    out = _real_matmul(self, other)
    return Tensor(out.data + 1, dtype=out.data.dtype)
Tensor.__matmul__ = _off_by_one
"""
SWAP_NUMPY_CODE = """import numpy
for f in (numpy.array_equal, numpy.allclose):  # the same function objects, with other code
    f._implementation.__code__ = (lambda *a, **k: True).__code__
"""
# A numpy scalar whose == is always True, passed off as numpy's own by its __module__
NUMPY_IMPOSTOR = """import numpy
class _Agreeable(numpy.int64):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = numpy.int64.__hash__
_Agreeable.__module__ = "numpy"
Tensor.memory_footprint = lambda self: _Agreeable(0)
"""
# A student's cell that says it is the instructor's: the kernel recorded the names it bound as the
# instructor's and put them back before every test (now a cell runs as the instructor's only with a
# token the student never sees)
POSES_AS_INSTRUCTOR = """# tinytorch-grader: instructor cell
import numpy as _numpy
class _Lenient:
    def __getattr__(self, name):
        return (lambda *a, **k: True) if name in ("allclose", "array_equal") else getattr(_numpy, name)
np = _Lenient()
"""
# Code that a test calls changes what the rest of that test uses (the room is reset before a cell,
# not before each assert): the kernel checks before the end marker that no library code changed.
PATCHES_WHILE_TESTED = """_real_matmul = Tensor.__matmul__
def _off_by_one_and_patching(self, other):
    import numpy
    numpy.array_equal = numpy.allclose = lambda *a, **k: True
    out = _real_matmul(self, other)
    return Tensor(out.data + 1, dtype=out.data.dtype)
Tensor.__matmul__ = _off_by_one_and_patching
"""
FLOOD = """for _ in range(4000):  # 5 MB
    print("flood " * 200)
"""


def attempts(out_dir, subs_dir, port):
    """name -> (notebook, the cells that must score 0). Every other cell must score full points."""
    ok = complete()
    return {
        "edits-locked-test": (replace(add_after(ok, "tensor-class-impl", BROKEN_FOOTPRINT), "test-memory-footprint",
                                      'print("✓ memory_footprint counts data and gradient bytes")\n'),
                              {"test-memory-footprint"}),
        "deletes-locked-test": (delete(stub(ok, "matmul-impl"), "test-matmul"), {"test-matmul"}),
        "changes-metadata": (replace(replace(stub(ok, "random-impl"), "test-random", 'print("✓")\n', grade=False,
                                             solution=True, locked=False, points=0),
                                     "test-tensor-creation", points=100), {"test-random"}),
        "hides-failures": (add_after(stub(ok, "reductions-impl"), "imports", HIDE_FAILURES), {"test-reductions"}),
        "patches-numpy": (add_after(add_after(ok, "imports", PATCH_NUMPY), "matmul-impl", WRONG_MATMUL),
                          {"test-matmul"}),
        "patches-from-a-thread": (add_after(add_after(ok, "imports", PATCHING_THREAD), "matmul-impl", WRONG_MATMUL),
                                  {"test-matmul"}),
        "always-equal": (add_after(ok, "tensor-class-impl", ALWAYS_EQUAL), {"test-memory-footprint"}),
        "sys-exit": (add_after(ok, "transpose-impl", SYS_EXIT), {"test-transpose-permute"}),
        "os-exit": (add_after(ok, "matmul-naive-impl", OS_EXIT), {"test-matmul-naive"}),
        "kills-kernel": (add_after(ok, "indexing-impl", KILL_KERNEL), {"test-indexing"}),
        "ignores-sigint": (add_after(ok, "random-impl", IGNORE_SIGINT), {"test-random"}),
        "imports-reference": (add_after(stub(ok, "reductions-impl"), "reductions-impl", steal_reference(ROOT)),
                              {"test-reductions"}),
        "trespasses": (add_after(ok, "imports", trespass({
            "read": {"gradebook": str(out_dir / "instructor/gradebook.db"),
                     "source": str(ROOT / "source/01_tensor/01_tensor.ipynb"),
                     "classmate": str(subs_dir / "honest/01_tensor/01_tensor.ipynb"),
                     "results": str(out_dir / "instructor/results/honest/01_tensor.json")},
            "write": {"grades": str(out_dir / "instructor/grades.csv"), "gradebook": str(out_dir / "instructor/gradebook.db"),
                      "repository": str(ROOT / "pwned.txt")}}, port)), set()),
        "leaves-daemons": (add_after(ok, "imports", DAEMON), set()),
        "hogs-resources": (add_after(add_after(ok, "reshape-impl", FLOOD), "reshape-impl", RESOURCE_HOGS),
                           {"test-reshape-view"}),
        "noisy-but-correct": (add_after(ok, "tensor-class-impl", NOISY_BUT_CORRECT), set()),
        "strips-asserts-in-the-transformer": (add_after(ok, "tensor-class-impl", STRIP_ASSERTS_IN_TRANSFORMER),
                                              {"test-memory-footprint"}),
        "drops-asserts-in-the-compiler": (add_after(ok, "tensor-class-impl", DROP_ASSERTS_IN_COMPILER),
                                          {"test-memory-footprint"}),
        "unhardens-with-ast": (add_after(ok, "tensor-class-impl", UNHARDEN_WITH_AST), {"test-memory-footprint"}),
        "unhardens-with-traitlets": (add_after(ok, "tensor-class-impl", UNHARDEN_WITH_TRAITLETS),
                                     {"test-memory-footprint"}),
        "rewrites-messages": (add_after(ok, "tensor-class-impl", REWRITE_MESSAGES), {"test-memory-footprint"}),
        "swaps-library-code": (add_after(add_after(ok, "imports", SWAP_NUMPY_CODE), "matmul-impl", OFF_BY_ONE_MATMUL),
                               {"test-matmul"}),
        "patches-while-tested": (add_after(ok, "matmul-impl", PATCHES_WHILE_TESTED), {"test-matmul"}),
        "numpy-impostor": (add_after(ok, "tensor-class-impl", NUMPY_IMPOSTOR), {"test-memory-footprint"}),
        "poses-as-instructor": (add_after(add_after(ok, "imports", POSES_AS_INSTRUCTOR), "matmul-impl", OFF_BY_ONE_MATMUL),
                                {"test-matmul"}),
    }


class Listener:
    """A loopback server that records whether anything connected to it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.sock.settimeout(0.5)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sandboxed):
    tmp = tmp_path_factory.mktemp("corpus")
    listener = Listener()
    try:
        cases = attempts(tmp / "out", tmp / "submitted", listener.port)
        subs = {name: nb for name, (nb, _) in cases.items()}
        subs["honest"], subs["blank"] = complete(), json.loads(
            (ROOT / "release/01_tensor/01_tensor.ipynb").read_text())
        summary, out = grade(tmp, "01", subs)
    finally:
        listener.close()
    return {"cases": cases, "out": out, "summary": summary, "connections": listener.connections,
            "subs": tmp / "submitted"}


CASES = list(attempts(ROOT, ROOT, 0))


@pytest.mark.parametrize("name", CASES)
def test_attempt_earns_nothing_for_what_it_fakes_and_keeps_the_rest(corpus, name):
    _, must_fail = corpus["cases"][name]
    res = result(corpus["out"], name)
    assert res["status"] == "graded", f"{name}: expected it graded, got {res['status']}: {res['reason']}"
    scores = {c["grade_id"]: c["score"] for c in res["cells"]}
    assert set(scores) == set(ALL_CELLS), f"{name}: graded cells {sorted(scores)} are not the notebook's"
    wrong = {gid: (scores[gid], 0 if gid in must_fail else pts) for gid, pts in ALL_CELLS.items()
             if scores[gid] != (0 if gid in must_fail else pts)}
    assert not wrong, f"{name}: (got, expected) points per cell: {wrong}; notes: {res['notes']}"
    assert res["max_score"] == 17, f"{name}: expected max_score 17 from the instructor's notebook, got {res['max_score']}"


def test_honest_and_blank_submissions_are_undisturbed(corpus):
    rows = rows_by_student(corpus["out"])
    assert rows["honest"]["score"] == "17" and rows["blank"]["score"] == "0", \
        f"expected honest 17 and blank 0 beside the attempts, got {rows['honest']} and {rows['blank']}"
    assert len(rows) == len(CASES) + 2, f"expected one row per submission, got {len(rows)}"


def test_trespassing_reads_writes_and_connects_nothing(corpus):
    text = cell_outputs(corpus["out"], "trespasses")
    report = [line for line in text.splitlines() if line.startswith(("READ", "WRITE", "NETWORK"))]
    assert len(report) == 8, f"expected 8 report lines from the trespassing cell, got {report}"
    allowed = [line for line in report if line.endswith(": ok")]
    assert not allowed, f"the sandbox let these through: {allowed}"
    assert corpus["connections"] == 0, "a submission connected to a server on the grading machine"
    assert not (ROOT / "pwned.txt").exists(), "a submission wrote into the repository"


def test_reference_solution_cannot_be_imported_or_read(corpus):
    text = cell_outputs(corpus["out"], "imports-reference")
    assert "STEAL read:" not in text, f"a submission read the reference solution:\n{text[-800:]}"


def test_no_process_outlives_its_submission(corpus):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    left = [line for line in ps.splitlines() if line.startswith(("sleep 4242", "sleep 4243", "sleep 30"))]
    assert not left, f"processes a submission started are still running: {left}"


def test_limits_stop_memory_files_processes_and_output(corpus):
    text = cell_outputs(corpus["out"], "hogs-resources")
    assert "FILE: refused" in text, "a 100 MB file should exceed the file-size limit"
    assert "PROCESSES: refused after" in text, "200 processes should exceed the process limit"
    assert "[output truncated by the grader" in text, "5 MB of output should be truncated"
    executed = corpus["out"] / "instructor/autograded/hogs-resources/01_tensor/01_tensor.ipynb"
    assert executed.stat().st_size < 4 * 1024**2, f"executed notebook is {executed.stat().st_size} bytes"
    cells = {c["grade_id"]: c for c in result(corpus["out"], "hogs-resources")["cells"]}
    assert "MemoryError" in cells["test-reshape-view"]["message"], cells["test-reshape-view"]


def test_stopped_cells_are_explained(corpus):
    cells = {n: {c["grade_id"]: c for c in result(corpus["out"], n)["cells"]} for n in ("os-exit", "ignores-sigint")}
    assert cells["os-exit"]["test-matmul-naive"]["status"] == "died", cells["os-exit"]["test-matmul-naive"]
    assert cells["ignores-sigint"]["test-random"]["status"] == "timeout", cells["ignores-sigint"]["test-random"]


def test_feedback_reveals_no_hidden_test(corpus):
    source = json.loads((ROOT / "source/01_tensor/01_tensor.ipynb").read_text())
    hidden = []
    for c in source["cells"]:
        src = "".join(c["source"])
        if "### BEGIN HIDDEN TESTS" in src:
            block = src.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            hidden += [line.strip() for line in block.splitlines() if len(line.strip()) > 20]
    assert hidden, "expected hidden tests in the source notebook"
    for page in (corpus["out"] / "feedback").rglob("*.html"):
        html = page.read_text()
        leaked = [line for line in hidden if line in html or line.replace('"', "&quot;") in html]
        assert not leaked, f"{page} shows hidden-test code: {leaked[:2]}"
        # the messages of hidden asserts carry expected values; they must not be shown either
        assert "expected 120" not in html and "a float64 array should become float32" not in html, page


def test_only_feedback_pages_are_outside_instructor(corpus):
    """What may go back to students is feedback/ alone; hidden tests and solutions are under instructor/."""
    out = corpus["out"]
    assert sorted(p.name for p in out.iterdir()) == ["feedback", "instructor"], sorted(p.name for p in out.iterdir())
    other = [str(p) for p in (out / "feedback").rglob("*") if p.is_file() and p.suffix != ".html"]
    assert not other, f"feedback/ should hold only feedback pages, found {other[:3]}"
    assert (out / "instructor/source/01_tensor/01_tensor.ipynb").exists(), "the nbgrader course is under instructor/"


def test_gradebook_matches_results(corpus):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{corpus['out'] / 'instructor/gradebook.db'}") as gb:
        totals = {s.student.id: float(s.score) for s in gb.find_assignment("01_tensor").submissions}
    for sid in list(corpus["cases"]) + ["honest", "blank"]:
        assert totals[sid] == result(corpus["out"], sid)["score"], \
            f"{sid}: gradebook has {totals[sid]}, the result file {result(corpus['out'], sid)['score']}"


def test_results_of_others_are_intact(corpus):
    honest = corpus["out"] / "instructor/results/honest/01_tensor.json"
    assert json.loads(honest.read_text())["score"] == 17
    digest = hashlib.sha256((corpus["subs"] / "honest/01_tensor/01_tensor.ipynb").read_bytes()).hexdigest()
    assert json.loads(honest.read_text())["submission_sha256"] == digest
