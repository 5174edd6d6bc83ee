"""How strong are a module's hidden tests? Mutation testing of its solution cells.

Each mutant is the module's source notebook with one small change in one solution region (the
code a student writes): an operator swapped, a comparison flipped, a constant off by one, a
statement dropped, two arguments swapped, a keyword argument dropped. The mutant is graded
like a submission, against the module's grading package (`autograder.packages`) with the
grading kernel's hardened asserts; it is *killed* when a graded test cell fails (or an earlier
cell raises, or it runs out of time) and *survives* when every graded cell passes. A survivor is
a wrong solution that would earn full marks: either a test to add, or an equivalent mutant (the
change does not alter behaviour) to list in CONTRIBUTING.md.

Speed comes from os.fork, so this maintainer tool is Linux-only (any POSIX with fork works):
one process per module runs the notebook's code cells in order in a plain namespace, and at
each solution cell forks one child per mutant. The child runs the mutated cell and the cells
after it up to the last graded cell, reports through a pipe, and is killed at the timeout;
the parent then runs the original cell and goes on. No kernel starts, and no cell before the
mutated one runs twice.

Modules are measured in separate processes (`python -m course.mutation SPEC`), `workers` at a
time: each needs its own grading package on sys.path, and nothing a notebook prints or
imports may reach the caller.
"""
from __future__ import annotations

import ast
import copy
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .build import SOLUTION_MARKER
from .project import ROOT, Module, TitoError, read_notebook_json

DEFAULT_SEED = 0
DEFAULT_MAX_PER_CELL = 25
DEFAULT_TIMEOUT = 20.0
DEFAULT_MIN_SHARE = 0.9
MEMORY_LIMIT = 4 << 30  # address space of one mutant: an off-by-one in a shape must not take the machine

# --- mutation operators ---------------------------------------------------------------------------

BINOP_SWAPS = {
    ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult, ast.FloorDiv],
    ast.FloorDiv: [ast.Div, ast.Mod], ast.Mod: [ast.FloorDiv], ast.MatMult: [ast.Mult], ast.Pow: [ast.Mult],
    ast.BitAnd: [ast.BitOr], ast.BitOr: [ast.BitAnd], ast.BitXor: [ast.BitOr],
    ast.LShift: [ast.RShift], ast.RShift: [ast.LShift],
}
# each comparison gets its boundary shift and its negation
COMPARE_FLIPS = {
    ast.Lt: [ast.LtE, ast.GtE], ast.LtE: [ast.Lt, ast.Gt], ast.Gt: [ast.GtE, ast.LtE], ast.GtE: [ast.Gt, ast.Lt],
    ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
    ast.In: [ast.NotIn], ast.NotIn: [ast.In],
}
BOOLOP_SWAPS = {ast.And: ast.Or, ast.Or: ast.And}
UNARY_DROPS = {ast.Not: "not-removal", ast.USub: "unary-minus-removal", ast.Invert: "invert-removal"}
OPERATORS = ["binop", "augassign", "compare", "boolop", "not-removal", "unary-minus-removal", "invert-removal",
             "constant", "drop-statement", "return-none", "swap-args", "drop-keyword"]


@dataclass(frozen=True)
class Mutant:
    cell_id: str
    line: int  # 1-based line of the cell where the change starts
    operator: str  # one of OPERATORS
    before: str  # that line, stripped
    after: str  # the same line in the mutant, stripped
    source: str  # the whole mutated cell

    def describe(self) -> str:
        return f"{self.cell_id}:{self.line} {self.operator}: {self.before} -> {self.after}"


def solution_lines(src: str) -> set[int]:
    """1-based numbers of the lines strictly inside `### BEGIN SOLUTION` / `### END SOLUTION` pairs."""
    inside, lines = False, set()
    for n, line in enumerate(src.split("\n"), 1):
        marker = SOLUTION_MARKER.match(line)
        if marker:
            inside = marker.group(1) == "BEGIN"
        elif inside:
            lines.add(n)
    return lines


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _constant_values(value) -> list:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, (int, float)):
        return [value + 1] if value == 0 else [value + 1, value - 1]
    return []  # strings, bytes, None, Ellipsis, complex: no off-by-one


# A site is (node, operator, make) where make(copy_of_node) returns the node to put in its place.
Site = tuple[ast.AST, str, Callable[[ast.AST], ast.AST]]


def _with(attr: str, value_fn) -> Callable[[ast.AST], ast.AST]:
    def make(node):
        setattr(node, attr, value_fn(node))
        return node
    return make


def _sites(node: ast.AST) -> Iterator[Site]:
    """Every mutation of this one node, in a fixed order."""
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        name = "binop" if isinstance(node, ast.BinOp) else "augassign"
        for new in BINOP_SWAPS.get(type(node.op), []):
            yield node, name, _with("op", lambda n, new=new: new())
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in COMPARE_FLIPS.get(type(op), []):
                yield node, "compare", _with("ops", lambda n, i=i, new=new: n.ops[:i] + [new()] + n.ops[i + 1:])
    elif isinstance(node, ast.BoolOp):
        yield node, "boolop", _with("op", lambda n: BOOLOP_SWAPS[type(n.op)]())
    elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_DROPS:
        yield node, UNARY_DROPS[type(node.op)], lambda n: n.operand
    elif isinstance(node, ast.Constant):
        for value in _constant_values(node.value):
            yield node, "constant", lambda n, value=value: ast.Constant(value)
    elif isinstance(node, ast.Call):
        positional = node.args[:2]
        if len(positional) == 2 and not any(isinstance(a, ast.Starred) for a in positional):
            yield node, "swap-args", _with("args", lambda n: [n.args[1], n.args[0], *n.args[2:]])
        for i, kw in enumerate(node.keywords):
            if kw.arg is not None:  # `**options` is not one keyword
                yield node, "drop-keyword", _with("keywords", lambda n, i=i: n.keywords[:i] + n.keywords[i + 1:])
    if isinstance(node, ast.stmt) and not isinstance(node, ast.Pass) and not _is_docstring(node):
        if isinstance(node, ast.Return):
            # dropping a return's value is the statement-level mutation of a return; `pass` in
            # its place would be the same mutant for a final return
            if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
                yield node, "return-none", lambda n: ast.Return(ast.Constant(None))
        else:
            yield node, "drop-statement", lambda n: ast.Pass()


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    out = {}
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        out[id(child)] = (parent, name, i)
            elif isinstance(value, ast.AST):
                out[id(value)] = (parent, name, None)
    return out


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    parent, name, index = _parents(tree)[id(old)]
    if index is None:
        setattr(parent, name, new)
    else:
        getattr(parent, name)[index] = new


def _byte_offsets(src: bytes) -> list[int]:
    starts, pos = [0], 0
    for line in src.split(b"\n"):
        pos += len(line) + 1
        starts.append(pos)
    return starts


def _splice(src: str, node: ast.AST, text: str) -> str:
    """src with node's own text replaced (ast columns count UTF-8 bytes, hence the encoding)."""
    raw = src.encode("utf-8")
    starts = _byte_offsets(raw)
    begin = starts[node.lineno - 1] + node.col_offset
    end = starts[node.end_lineno - 1] + node.end_col_offset
    return (raw[:begin] + text.encode("utf-8") + raw[end:]).decode("utf-8")


def candidate_mutants(src: str, cell_id: str) -> list[Mutant]:
    """Every distinct mutant of the cell's solution regions, in source order.

    A mutant is made by putting the unparsed replacement node where the original node's text
    was, so comments, directives and layout around it stay; it is kept only if the result parses
    to exactly the intended tree (parentheses are added when precedence needs them). Mutants
    whose tree equals the original or an earlier mutant are dropped."""
    try:
        original = ast.parse(src)
    except SyntaxError as e:
        raise TitoError(f"solution cell {cell_id} is not plain Python (line {e.lineno}: {e.msg}); "
                        "expected code without IPython magics") from None
    mutable = solution_lines(src)
    lines = src.split("\n")
    seen = {ast.dump(original)}
    found = []
    nodes = list(ast.walk(original))
    for index, node in enumerate(nodes):
        if not hasattr(node, "lineno") or not set(range(node.lineno, node.end_lineno + 1)) <= mutable:
            continue
        for k, (_, operator, make) in enumerate(_sites(node)):
            tree = copy.deepcopy(original)
            target = list(ast.walk(tree))[index]
            new = make(copy.deepcopy(target))
            _replace(tree, target, new)
            wanted = ast.dump(tree)
            if wanted in seen:
                continue
            text = ast.unparse(new)
            mutated = None
            for attempt in ([text] if isinstance(new, ast.stmt) else [text, f"({text})"]):
                candidate = _splice(src, node, attempt)
                try:
                    if ast.dump(ast.parse(candidate)) == wanted:
                        compile(candidate, "<mutant>", "exec")  # scope errors (a nonlocal left unbound) show only here
                        mutated = candidate
                        break
                except SyntaxError:
                    pass
            if mutated is None:  # e.g. dropping a decorated def would leave its decorator dangling, or
                continue         # dropping the assignment a nonlocal names: no code a student could run
            seen.add(wanted)
            after = mutated.split("\n")[node.lineno - 1].strip()
            found.append(((node.lineno, node.col_offset, index, k),
                          Mutant(cell_id, node.lineno, operator, lines[node.lineno - 1].strip(), after, mutated)))
    return [m for _, m in sorted(found, key=lambda pair: pair[0])]


def sample_mutants(src: str, cell_id: str, seed: int = DEFAULT_SEED,
                   max_per_cell: int = DEFAULT_MAX_PER_CELL) -> list[Mutant]:
    """At most max_per_cell mutants (0: all), drawn with a generator seeded by seed and the cell
    id, so a cell's sample does not change when another cell changes. Source order."""
    everything = candidate_mutants(src, cell_id)
    if max_per_cell <= 0 or len(everything) <= max_per_cell:
        return everything
    chosen = random.Random(f"{seed}:{cell_id}").sample(range(len(everything)), max_per_cell)
    return [everything[i] for i in sorted(chosen)]


# --- grading mutants (inside the per-module process) ----------------------------------------------

@dataclass
class Cell:
    id: str
    kind: str  # "solution", "graded" or "other"
    source: str
    code: object = None  # compiled


@dataclass
class Outcome:
    """What happened to one mutant: killed (by which cell, how) or survived."""
    mutant: Mutant
    killed: bool
    by: str = ""  # the cell that failed, or "" for a timeout or a death
    how: str = ""  # "assert" (a graded cell failed), "error: TypeError", "timeout", "died"


def _cells(nb: dict) -> list[Cell]:
    from autograder.assemble import nbgrader_meta, text

    cells = []
    for c in nb["cells"]:
        if c.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(c)
        kind = "solution" if meta.get("solution") else "graded" if meta.get("grade") else "other"
        cells.append(Cell(c.get("id", f"cell-{len(cells)}"), kind, text(c)))
    graded = [i for i, c in enumerate(cells) if c.kind == "graded"]
    if not graded:
        raise TitoError("the notebook has no graded test cell: expected at least one cell with nbgrader grade: true")
    return cells[: graded[-1] + 1]  # later cells (systems analysis, summary) cannot change a grade


def _compile(cell: Cell, checks_name: str) -> object:
    from autograder.kernel import _Harden

    try:
        tree = ast.parse(cell.source)
    except SyntaxError as e:
        raise TitoError(f"cell {cell.id} is not plain Python (line {e.lineno}: {e.msg}); "
                        "expected code without IPython magics") from None
    if cell.kind == "graded":  # the grading kernel's asserts: a condition must be a real bool, and so on
        tree = ast.fix_missing_locations(_Harden(checks_name).visit(tree))
    return compile(tree, f"<cell {cell.id}>", "exec")


def _run_cells(ns: dict, cells: list[Cell], start: int, first_code, report: Callable[[dict], None]) -> None:
    """Run cells[start:] (the first one as first_code), reporting each graded cell; stop at a failure."""
    for i in range(start, len(cells)):
        cell = cells[i]
        try:
            exec(first_code if i == start else cell.code, ns)
        except BaseException as e:  # SystemExit and KeyboardInterrupt from a mutant count as failures too
            how = "assert" if cell.kind == "graded" and isinstance(e, AssertionError) else f"error: {type(e).__name__}"
            report({"cell": cell.id, "ok": False, "how": how, "message": str(e)[:300]})
            return
        if cell.kind == "graded":
            report({"cell": cell.id, "ok": True})
    report({"done": True})


def _in_child(ns: dict, cells: list[Cell], start: int, code, timeout: float) -> list[dict]:
    """Fork; the child runs the cells and writes one JSON line per event to a pipe. Returns the events."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read_end)
            os.setpgid(0, 0)  # its own group, so the timeout kills whatever it started too
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            cpu = int(timeout) + 10  # the kernel ends a spinning child even if this process dies first
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
            out = os.fdopen(write_end, "w", buffering=1)
            _run_cells(ns, cells, start, code, lambda event: out.write(json.dumps(event) + "\n"))
            out.flush()
        finally:
            os._exit(0)
    os.close(write_end)
    try:  # also here, so that the group exists before the parent might kill it
        os.setpgid(pid, pid)
    except OSError:  # the child got there first, or has already exited
        pass
    buffer, deadline, timed_out = b"", time.monotonic() + timeout, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                buffer += chunk
    finally:  # on a timeout, and on Ctrl-C: nothing the mutant started outlives it
        os.close(read_end)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    events = []
    for line in buffer.decode("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut off by the kill
            pass
    if timed_out:
        events.append({"timeout": True})
    return events


def _verdict(events: list[dict]) -> tuple[bool, str, str, str]:
    """(killed, by, how, message) from a child's events."""
    for e in events:
        if e.get("ok") is False:
            return True, e["cell"], e["how"], e.get("message", "")
    if any(e.get("timeout") for e in events):
        return True, "", "timeout", ""
    if not any(e.get("done") for e in events):
        return True, "", "died", ""
    return False, "", "", ""


def grade_mutants(nb: dict, seed: int, max_per_cell: int, timeout: float) -> dict:
    """Measure one notebook in this process (which it changes: run it in a process of its own).

    Returns {"status": "measured" | "broken", "reason", "baseline_seconds", "timeout", "outcomes": [...]}."""
    import numpy  # noqa: F401  (imported once here; every child inherits it)
    from autograder.kernel import Checks

    cells = _cells(nb)
    checks_name = "_tt_mutation_checks"
    for cell in cells:
        cell.code = _compile(cell, checks_name)
    mutants = {c.id: sample_mutants(c.source, c.id, seed, max_per_cell) for c in cells if c.kind == "solution"}

    def fresh_namespace() -> dict:
        return {"__name__": "__main__", "__builtins__": __builtins__, checks_name: Checks()}

    # the unmutated notebook must pass every graded cell, or no kill means anything
    started = time.monotonic()
    baseline = _in_child(fresh_namespace(), cells, 0, cells[0].code, max(timeout, 600.0))
    baseline_seconds = time.monotonic() - started
    killed, by, how, message = _verdict(baseline)
    result = {"status": "measured", "reason": "", "baseline_seconds": round(baseline_seconds, 2), "outcomes": []}
    if killed:
        where = f"cell {by}" if by else "the notebook"
        result.update(status="broken", reason=f"the unmutated notebook fails: {where}: {how} {message}".strip())
        return result
    # a mutant runs at most the whole notebook: a slow machine must not turn slowness into kills
    timeout = max(timeout, 5 * baseline_seconds)
    result["timeout"] = round(timeout, 1)
    ns = fresh_namespace()
    for i, cell in enumerate(cells):
        for mutant in mutants.get(cell.id, []):
            killed, by, how, message = _verdict(_in_child(ns, cells, i, compile(mutant.source, f"<cell {cell.id}>", "exec"),
                                                          timeout))
            result["outcomes"].append(asdict(Outcome(mutant, killed, by, how)))
        try:
            exec(cell.code, ns)
        except BaseException as e:  # passed in the baseline: the notebook is not deterministic
            result.update(status="broken", reason=f"cell {cell.id} raised {type(e).__name__} on its second run: {e}")
            return result
    return result


def _child_main(spec_path: str) -> int:
    """Entry of the per-module process: python -m course.mutation SPEC (a JSON file)."""
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["result"])
    # nothing a notebook prints may reach the caller's terminal: all output goes to the log
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        root = Path(spec["root"])
        if spec.get("module"):
            from autograder.packages import build_grading_package

            package = build_grading_package(Module(spec["module_number"], spec["module"]),
                                            Path(spec["work"]) / "package", root)
            sys.path.insert(0, str(package))
        data = root / "data"
        if data.is_dir():
            os.environ["TINYTORCH_DATA"] = str(data)
        scratch = Path(spec["work"]) / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        os.chdir(scratch)  # a mutant that saves a checkpoint writes here
        nb = read_notebook_json(Path(spec["notebook"]))
        result = grade_mutants(nb, spec["seed"], spec["max_per_cell"], spec["timeout"])
    except TitoError as e:
        result = {"status": "broken", "reason": str(e), "outcomes": []}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return 0


# --- measuring modules (the caller's side) --------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A notebook to measure; with a module, against that module's grading package."""
    name: str
    notebook: Path
    module: Module | None = None
    root: Path = ROOT


@dataclass
class ModuleReport:
    name: str
    status: str  # "measured", "broken" or "error" (the measuring process itself failed)
    reason: str = ""
    seconds: float = 0.0
    timeout: float = 0.0
    outcomes: list[dict] = field(default_factory=list)

    @property
    def mutants(self) -> int:
        return len(self.outcomes)

    @property
    def killed(self) -> int:
        return sum(o["killed"] for o in self.outcomes)

    @property
    def timeouts(self) -> int:
        return sum(o["how"] == "timeout" for o in self.outcomes)

    @property
    def share(self) -> float | None:
        """Killed / mutants; None when not measured (a broken module is not 100 %)."""
        if self.status != "measured" or not self.outcomes:
            return None
        return self.killed / self.mutants

    @property
    def survivors(self) -> list[dict]:
        return [o["mutant"] for o in self.outcomes if not o["killed"]]

    def to_json(self) -> dict:
        return {"module": self.name, "status": self.status, "reason": self.reason, "mutants": self.mutants,
                "killed": self.killed, "survived": self.mutants - self.killed, "timeouts": self.timeouts,
                "share": self.share, "seconds": round(self.seconds, 1), "mutant_timeout": self.timeout,
                "survivors": [{k: s[k] for k in ("cell_id", "line", "operator", "before", "after")}
                              for s in self.survivors],
                "outcomes": [{**{k: o["mutant"][k] for k in ("cell_id", "line", "operator", "before", "after")},
                              "killed": o["killed"], "by": o["by"], "how": o["how"]} for o in self.outcomes]}


def measure_one(target: Target, seed: int = DEFAULT_SEED, max_per_cell: int = DEFAULT_MAX_PER_CELL,
                timeout: float = DEFAULT_TIMEOUT) -> ModuleReport:
    """Measure one target in a fresh Python process; never raises for what happens inside it."""
    if not hasattr(os, "fork"):
        raise TitoError("tito mutate needs os.fork (Linux or another POSIX system)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"tito-mutate-{target.name}-") as work:
        work = Path(work)
        spec = {"notebook": str(Path(target.notebook).resolve()), "root": str(Path(target.root).resolve()),
                "module": target.module.name if target.module else None,
                "module_number": target.module.number if target.module else None,
                "seed": seed, "max_per_cell": max_per_cell, "timeout": timeout, "work": str(work),
                "result": str(work / "result.json"), "log": str(work / "log.txt")}
        (work / "spec.json").write_text(json.dumps(spec))
        lib = str(Path(__file__).resolve().parent.parent)  # course/ and autograder/, never the reference tinytorch first
        env = {**os.environ, "PYTHONPATH": lib, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        proc = subprocess.run([sys.executable, "-m", "course.mutation", str(work / "spec.json")], cwd=work, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result_file = work / "result.json"
        if proc.returncode != 0 or not result_file.is_file():
            log = (work / "log.txt").read_text(errors="replace") if (work / "log.txt").exists() else ""
            tail = " | ".join(log.strip().splitlines()[-3:])
            return ModuleReport(target.name, "error", f"the measuring process exited with {proc.returncode}: {tail}",
                                time.monotonic() - started)
        result = json.loads(result_file.read_text())
    return ModuleReport(target.name, result["status"], result.get("reason", ""), time.monotonic() - started,
                        result.get("timeout", 0.0), result.get("outcomes", []))


def measure(targets: list[Target], seed: int = DEFAULT_SEED, max_per_cell: int = DEFAULT_MAX_PER_CELL,
            timeout: float = DEFAULT_TIMEOUT, workers: int = 2,
            done: Callable[[ModuleReport], None] = lambda report: None) -> list[ModuleReport]:
    """Measure every target, `workers` at a time; reports in the targets' order."""
    if workers < 1:
        raise TitoError(f"--workers must be at least 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(measure_one, t, seed, max_per_cell, timeout) for t in targets]
        for f in futures:  # in order, so the progress lines read like the final table
            done(f.result())
        return [f.result() for f in futures]


def module_targets(mods: list[Module], root: Path = ROOT) -> list[Target]:
    return [Target(m.name, m.source(root), m, root) for m in mods]


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
