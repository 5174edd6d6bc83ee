"""The student's workflow: their notebooks in modules/, their code in tinytorch/.

A student works on copies of the release notebooks in modules/NN_name/. The package they
import, tinytorch/, is in one of two modes, read from the nbdev header of each generated file
("File to edit: ../../<origin>/NN_name/NN_name.ipynb"), never from a separate state file:

- reference: every module generated from source/ (the instructor's solution, as committed);
- student:   every module generated from the student's notebook once they export it, and
             from the release (stubs that raise NotImplementedError) until then.

Nothing here ever writes to a student's notebook except `start` and `reset`, and both keep a
backup of whatever they replace.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import build
from .milestones import REQUIREMENTS, milestones, missing_modules, passed_by_student
from .project import CURRICULUM, ROOT, Module, TitoError, is_student_distribution, modules, read_notebook_json

HEADER_RE = re.compile(r"File to edit: (\S+?\.ipynb)")
EXPORT_RE = re.compile(r"^#\|\s*default_exp\s+(\S+)", re.M)
RESULT_FILE = ".test-result.json"



# --- where things are -----------------------------------------------------------------------------

def workspace(module: Module, root: Path = ROOT) -> Path:
    return root / "modules" / module.name / module.notebook_name


def export_target(module: Module, root: Path = ROOT) -> Path:
    """The generated file a module exports to, from its `#| default_exp` directive."""
    nb = read_notebook_json(module.release(root))  # the release keeps the directive, and exists everywhere
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        m = EXPORT_RE.search(src)
        if m:
            return root / "tinytorch" / Path(*m.group(1).split(".")).with_suffix(".py")
    raise TitoError(f"{module.release(root)} has no `#| default_exp` cell")


def origin(module: Module, root: Path = ROOT) -> str | None:
    """Where the package's copy of a module came from: "source", "release", "modules" or None."""
    target = export_target(module, root)
    if not target.exists():
        return None
    m = HEADER_RE.search(target.read_text(encoding="utf-8").split("\n", 1)[0])
    if not m:
        return None
    parts = Path(m.group(1)).parts
    return parts[-3] if len(parts) >= 3 and parts[-3] in ("source", "release", "modules") else None


def package_mode(root: Path = ROOT) -> str:
    """"reference" when every module comes from source/, else "student"."""
    origins = {origin(m, root) for m in modules(root)}
    return "reference" if origins <= {"source"} else "student"


def require_started(module: Module, root: Path = ROOT) -> Path:
    path = workspace(module, root)
    if not path.exists():
        raise TitoError(f"module {module.name} is not started: run `tito module start {module.number}` first")
    read_notebook_json(path)  # one-line error when the notebook is corrupt
    return path


def backup(path: Path) -> Path:
    """Copy a student's notebook to backups/ beside it, with a timestamp; returns the copy."""
    dest_dir = path.parent / "backups"
    dest_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = dest_dir / f"{path.stem}-{stamp}{path.suffix}"
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.stem}-{stamp}-{n}{path.suffix}"
        n += 1
    shutil.copy2(path, dest)
    return dest


# --- start / reset --------------------------------------------------------------------------------

def start(module: Module, force: bool = False, root: Path = ROOT) -> tuple[Path, Path | None]:
    release = module.release(root)
    read_notebook_json(release)
    dest = workspace(module, root)
    saved = None
    if dest.exists():
        if not force:
            raise TitoError(f"{dest.relative_to(root)} already exists: keep working in it, or use "
                            f"`tito module start {module.number} --force` to start over (your work is backed up)")
        saved = backup(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(release, dest)
    return dest, saved


def reset(module: Module, root: Path = ROOT) -> Path:
    path = workspace(module, root)
    if not path.exists():
        raise TitoError(f"module {module.name} is not started, so there is nothing to reset: "
                        f"run `tito module start {module.number}`")
    saved = backup(path)  # a corrupt notebook is backed up too: it is still the student's work
    shutil.copy(module.release(root), path)
    (path.parent / RESULT_FILE).unlink(missing_ok=True)
    return saved


# --- test -----------------------------------------------------------------------------------------

@dataclass
class CellResult:
    grade_id: str
    points: float
    passed: bool
    message: str = ""


def notebook_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_tests(module: Module, root: Path = ROOT, timeout: int = 120) -> tuple[list[CellResult], list[str]]:
    """Execute the student's notebook in a fresh kernel; each graded cell's result, plus errors
    raised by ungraded cells (as "cell-id: Error: message")."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    path = require_started(module, root)
    nb = nbformat.read(path, as_version=4)
    build._venv_bin_on_path()
    # IPC sockets where the OS has them: a TCP kernel warns on stderr that it is unencrypted
    with tempfile.TemporaryDirectory(prefix="tito-kernel-") as sockets:
        # IPC sockets where the OS has them: a TCP kernel warns on stderr that it is unencrypted
        transport = {"transport": "ipc", "ip": os.path.join(sockets, "kernel")} if os.name == "posix" else {}
        client = NotebookClient(nb, config=Config({"KernelManager": transport}), timeout=timeout,
                                kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    results, other_errors = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        message = ""
        if errors:
            first = (errors[0].evalue or "").strip().splitlines()
            message = f"{errors[0].ename}: {first[0] if first else ''}".rstrip(": ")
            if len(first) > 1:  # multi-line assertion messages: keep them whole
                message += "\n" + "\n".join(first[1:])
        if meta.get("grade"):
            results.append(CellResult(meta.get("grade_id", cell.get("id", "?")), float(meta.get("points", 0)),
                                      not errors, message))
        elif errors:
            other_errors.append(f"{cell.get('id', '?')}: {message}")
    record = {"notebook_sha256": notebook_hash(path), "passed": sum(r.points for r in results if r.passed),
              "total": sum(r.points for r in results), "failed": [r.grade_id for r in results if not r.passed],
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    (path.parent / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return results, other_errors


def last_test(module: Module, root: Path = ROOT) -> dict | None:
    """The stored result of the last `module test`, marked stale when the notebook changed since."""
    path = workspace(module, root)
    result_path = path.parent / RESULT_FILE
    if not (path.exists() and result_path.exists()):
        return None
    try:
        record = json.loads(result_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    record["stale"] = record.get("notebook_sha256") != notebook_hash(path)
    return record


# --- export / student mode / reference ------------------------------------------------------------

def stubbed_functions(py_file: Path) -> list[str]:
    """Functions (as Class.method or name) whose body still raises NotImplementedError."""
    tree = ast.parse(py_file.read_text(encoding="utf-8"))
    found = []

    def raises_not_implemented(fn) -> bool:
        # nbgrader's stub is a bare `raise NotImplementedError()`; a given abstract method
        # (Module.forward, Function.backward) raises with a message and is not unfinished work
        for node in ast.walk(fn):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc
                if isinstance(exc, ast.Call) and not exc.args and not exc.keywords:
                    exc = exc.func
                if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                    return True
        return False

    def visit(body, prefix=""):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and raises_not_implemented(node):
                name = prefix + node.name
                if any(isinstance(d, ast.Name) and d.id == "_tensor_method" for d in node.decorator_list):
                    # attached to Tensor by Module 01's decorator, which drops one leading underscore
                    name = "Tensor." + (node.name if node.name.startswith("__") else node.name.removeprefix("_"))
                found.append(name)

    visit(tree.body)
    return found


def export_module(module: Module, root: Path = ROOT) -> list[str]:
    """Export the student's notebook into tinytorch/; returns the functions still stubbed."""
    path = require_started(module, root)
    if package_mode(root) == "reference":
        raise TitoError("tinytorch/ holds the reference solution: run `tito student init` first, "
                        "so your package holds only your code and stubs")
    build.export_notebooks([path], root / "tinytorch", root)
    return stubbed_functions(export_target(module, root))


def student_init(root: Path = ROOT) -> dict[str, str]:
    """Rebuild tinytorch/ in student mode; returns module name -> "yours" or "stub"."""
    mods = modules(root)
    keep = {m.name for m in mods if origin(m, root) == "modules" and workspace(m, root).exists()}
    lib = root / "tinytorch"
    shutil.rmtree(lib, ignore_errors=True)
    chosen = [workspace(m, root) if m.name in keep else m.release(root) for m in mods]
    build.export_notebooks(chosen, lib, root)
    return {m.name: ("yours" if m.name in keep else "stub") for m in mods}


def reference(root: Path = ROOT) -> None:
    if is_student_distribution(root):
        raise TitoError("this is a student distribution: it has no reference solution to switch to")
    build.export(root)


# --- status ---------------------------------------------------------------------------------------

def module_rows(root: Path = ROOT) -> list[tuple[str, str, str, str]]:
    """(module, notebook, visible tests, package) for every module, read from the files."""
    rows = []
    for m in modules(root):
        path = workspace(m, root)
        notebook = "not started" if not path.exists() else "in progress"
        record = last_test(m, root)
        if record is None:
            tests = "-" if not path.exists() else "not run"
        else:
            verdict = "passing" if not record["failed"] else "failing"
            tests = f"{record['passed']:g}/{record['total']:g} {verdict}" + (" (stale: edited since)" if record["stale"] else "")
            if not record["failed"] and not record["stale"]:
                notebook = "tests passing"
        package = {"modules": "yours (exported)", "release": "stub", "source": "reference", None: "missing"}[origin(m, root)]
        rows.append((m.name, notebook, tests, package))
    present = {m.name for m in modules(root)}
    rows += [(name, "not in this course yet", "-", "-") for name in CURRICULUM if name not in present]
    return sorted(rows)


def milestone_rows(root: Path = ROOT) -> list[tuple[str, str]]:
    scripts = {p.stem: p for p in milestones(root)}
    rows = []
    for name in REQUIREMENTS:
        missing = missing_modules(name, root)
        if name not in scripts:
            state = "not in this checkout yet"
        elif missing:
            state = f"locked: export your modules {', '.join(missing)}"
        elif passed_by_student(scripts[name]):
            state = "passed"
        else:
            state = f"unlocked: `tito milestone run {name.split('_')[0]}`"
        rows.append((name, state))
    return rows
