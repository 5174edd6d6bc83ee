"""The grading kernel: an IPython kernel that runs every graded test cell in a clean room.

It runs inside the sandbox (started by `python -m autograder.sandbox`, which calls `main`) and
is started before any of the submission's code, so what it takes at start-up the submission
cannot have touched:

- the instructor's cells (setup, demonstrations, graded tests). The job writes them to a file
  (`CELLS_FILE_ENV`); the kernel reads it, deletes it, and compiles every cell to a code object
  right away, with the asserts of graded cells hardened. The notebook cell that runs one only
  names its index, so nothing between a cell's text and its execution (IPython's transformers
  and compiler, the `ast` module, the message path) is used after the submission starts;
- a snapshot of every module loaded so far (ipykernel, IPython, traitlets, zmq, numpy, ast,
  the standard library...), the classes they define and the code of their functions, the sys
  hooks, signal handlers and import hooks, and the IPython shell and kernel objects.

Before each instructor cell the kernel puts all of that back and the instructor's names too,
refuses to run a graded cell while a thread the submission started is alive, and runs the
cell's own code objects. A hardened assert's condition must be a real bool and every
comparison in it compares plain values (numbers, strings, tuples, dtypes, numpy arrays of
non-object dtype).

Before its end marker a graded cell checks that no library code changed since the reset
(student code the test called could have patched what the asserts after it use).

So a submission that patched `np.allclose`, `print`, the traceback display or IPython's input
transformers, rebound a test helper, or returns objects whose `==` is always True gets no credit
for it, by construction. The grader credits a graded cell only if the random markers at its end
reach the output. What a submission can still do is in CONTRIBUTING.md ("The trust model").
"""
from __future__ import annotations

import ast
import json
import linecache
import math  # noqa: F401  (imported before any submission code, so the guard snapshots it)
import os
import secrets
import signal
import sys
import types
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter as _attrgetter, is_not as _is_not, methodcaller

import numpy as np
import numpy.linalg  # noqa: F401  (snapshotted with numpy)
import numpy.testing  # noqa: F401
from ipykernel.ipkernel import IPythonKernel

from .protocol import CELL_MARK, CELLS_FILE_ENV, THREADS_MESSAGE

# taken at import, before any submission code: the only compile and exec the instructor's cells see
_compile, _exec = compile, exec
_SYS_HOOKS = ("stdout", "stderr", "excepthook", "displayhook", "breakpointhook", "unraisablehook")
_SYS_LISTS = ("meta_path", "path_hooks")  # import hooks: a finder could serve a test a fake module
_UNSETTABLE = {"__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__name__"}
_NoneType = type(None)
_SCALARS = (bool, int, float, complex, str, bytes, _NoneType, slice, range, type(Ellipsis))
_MAX_ITEMS = 1_000_000
_PYTHON_ROOTS = {os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix)} | {sys.prefix + os.sep,
                                                                                        sys.base_prefix + os.sep}
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
# where installed code lives: the interpreter, the virtual environment, the grading package and
# this kernel (in the sandbox under /grader); anything else that runs is the submission's
_LIBRARY_ROOTS = tuple(_PYTHON_ROOTS | {os.path.dirname(_HERE.rstrip(os.sep)) + os.sep, "/grader/"})
# the modules whose state the guard keeps: installed libraries and this package, never the package
# being graded (the notebook's own code extends it) nor the notebook's namespace
_INSTALLED_ROOTS = tuple(_PYTHON_ROOTS | {_HERE, "/grader/lib/"})


class Checks:
    """What hardened asserts call. Holds its own references, taken before any submission code."""

    def __init__(self):
        self._asarray, self._ndarray, self._generic, self._dtype = np.asarray, np.ndarray, np.generic, np.dtype
        self._ufunc, self._bool = np.ufunc, np.bool_
        scalars = {t for t in np.sctypeDict.values() if t is not np.object_}
        self._numpy_types = frozenset(scalars | {type(np.dtype(t)) for t in scalars})  # numpy's own classes
        self._type, self._len, self._isinstance = type, len, isinstance
        self._ops = {"Eq": lambda a, b: a == b, "NotEq": lambda a, b: a != b, "Lt": lambda a, b: a < b,
                     "LtE": lambda a, b: a <= b, "Gt": lambda a, b: a > b, "GtE": lambda a, b: a >= b,
                     "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
                     "Is": lambda a, b: a is b, "IsNot": lambda a, b: a is not b}

    def plain(self, x, depth: int = 0) -> bool:
        """True for values whose comparison no submission code can override."""
        t = self._type(x)
        if t in _SCALARS or t is type:
            return True
        if t is self._ndarray:
            return x.dtype.kind != "O"
        if self._isinstance(x, (self._generic, self._dtype)):
            return t in self._numpy_types  # not a subclass of the submission's: its __module__ says anything
        if depth > 20:
            return False
        if t in (tuple, list, set, frozenset):
            return self._len(x) <= _MAX_ITEMS and all(self.plain(e, depth + 1) for e in x)
        if t is dict:
            return self._len(x) <= _MAX_ITEMS and all(self.plain(k, depth + 1) and self.plain(v, depth + 1)
                                                      for k, v in x.items())
        return False

    changed_code = staticmethod(lambda: [])  # set by the Guard: what library code changed since the reset

    def untouched(self) -> None:
        """Called before the end marker of a graded cell: the code the test called must not have changed
        library code while it ran (a `__matmul__` that rebinds `numpy.allclose` for the asserts after it)."""
        changed = self.changed_code()
        if changed:
            raise AssertionError(f"the code this test called changed {', '.join(changed[:3])} while the test ran")

    def _refuse(self, x, what: str):
        raise AssertionError(f"{what} a {self._type(x).__name__} object; a test compares plain values "
                             "(numbers, strings, tuples, numpy arrays)")

    def truth(self, x) -> bool:
        t = self._type(x)
        if t is bool or t is self._bool:
            return bool(x)
        if t in (tuple, list, dict, set, frozenset) or self.plain(x):
            return bool(x)
        self._refuse(x, "a test condition evaluated to")

    def compare(self, left, *chain) -> bool:
        for op, right in zip(chain[::2], chain[1::2]):
            # identity cannot be faked; a test may also ask whether an object is a key of a real dict
            # or set (`p in opt.state`), which hashing decides before any __eq__
            keyed = op in ("In", "NotIn") and self._type(right) in (dict, set, frozenset)
            if op not in ("Is", "IsNot") and not keyed:
                for side in (left, right):
                    if not self.plain(side):
                        self._refuse(side, "a test compared")
            if not self.truth(self._ops[op](left, right)):
                return False
            left = right
        return True

    def call(self, func, *args, **kwargs):
        """Calls to numpy get plain arrays: an object an argument pretends to be is converted first."""
        module = getattr(func, "__module__", None) or ""
        if self._isinstance(func, self._ufunc) or (self._type(module) is str and module.startswith("numpy")):
            args = tuple(self._array(a, func) for a in args)
            kwargs = {k: self._array(v, func) for k, v in kwargs.items()}
        return func(*args, **kwargs)

    def _array(self, x, func):
        if self.plain(x):
            return x
        arr = self._asarray(x)
        if arr.dtype.kind == "O":
            self._refuse(x, f"a test passed numpy.{getattr(func, '__name__', 'function')}")
        return arr


class _Harden(ast.NodeTransformer):
    """Rewrites `assert` conditions to go through a Checks object bound to `name`."""

    def __init__(self, name: str):
        self.name = name

    def _helper(self, attr: str, args: list, like: ast.AST, keywords: list | None = None) -> ast.Call:
        func = ast.Attribute(value=ast.Name(self.name, ast.Load()), attr=attr, ctx=ast.Load())
        return ast.copy_location(ast.Call(func=func, args=args, keywords=keywords or []), like)

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        node.test = self._condition(node.test)
        return ast.fix_missing_locations(node)

    def _condition(self, node: ast.expr) -> ast.expr:
        """A node in boolean position: its value must be a real bool."""
        if isinstance(node, ast.BoolOp):
            node.values = [self._condition(v) for v in node.values]
            return node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            node.operand = self._condition(node.operand)
            return node
        if isinstance(node, ast.Compare):
            parts = [self._calls(node.left)]
            for op, right in zip(node.ops, node.comparators):
                parts += [ast.Constant(type(op).__name__), self._calls(right)]
            return self._helper("compare", parts, node)
        return self._helper("truth", [self._calls(node)], node)

    def _calls(self, node: ast.expr) -> ast.expr:
        return _HardenCalls(self).visit(node)


class _HardenCalls(ast.NodeTransformer):
    def __init__(self, outer: _Harden):
        self.outer = outer

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        return self.outer._helper("call", [node.func, *node.args], node, node.keywords)

    def visit_Lambda(self, node):  # a lambda's body runs later, outside the assert
        return node


def _tracked(name: str, mod, user_ns: dict) -> bool:
    """Installed library code (and this package), whose state a submission has no business changing."""
    if not isinstance(mod, types.ModuleType) or name == "sys" or vars(mod) is user_ns:
        return False
    path = getattr(mod, "__file__", None)
    return path is None or (type(path) is str and path.startswith(_INSTALLED_ROOTS))  # None: built in


class _Snapshot:
    """A namespace (module or class dict) as it was, and the code of the functions in it.

    Checking compares by identity only, in C (`map(operator.is_not, ...)`), so it is cheap enough to
    run before every instructor cell, and no object's `__eq__` takes part in it."""
    __slots__ = ("owner", "keys", "values", "functions", "code", "defaults", "kwdefaults")

    def __init__(self, owner, namespace):
        self.owner, self.keys, self.values = owner, tuple(namespace), tuple(namespace.values())
        self.functions = tuple(f for f in map(_function, self.values) if f is not None)
        self.code = tuple(map(_code_of, self.functions))
        self.defaults = tuple(map(_defaults_of, self.functions))
        self.kwdefaults = tuple(map(_kwdefaults_of, self.functions))

    def _dict_differs(self) -> bool:
        ns = vars(self.owner)
        return len(ns) != len(self.keys) or any(map(_is_not, ns, self.keys)) or any(map(_is_not, ns.values(), self.values))

    def _code_differs(self) -> bool:
        functions = self.functions
        return (any(map(_is_not, map(_code_of, functions), self.code))
                or any(map(_is_not, map(_defaults_of, functions), self.defaults))
                or any(map(_is_not, map(_kwdefaults_of, functions), self.kwdefaults)))

    def changed_code(self) -> list[str]:
        """Names whose value is or was callable (a function, a class) and changed, or functions whose
        code or defaults changed. A changed piece of data (a cache a library fills in) is not listed."""
        if not (self._dict_differs() or self._code_differs()):
            return []
        ns, owner = vars(self.owner), getattr(self.owner, "__name__", "?")
        saved = dict(zip(self.keys, self.values))
        names = [k for k in set(ns) | set(saved) if type(k) is str and ns.get(k, _MISSING) is not saved.get(k, _MISSING)
                 and (callable(ns.get(k)) or callable(saved.get(k)))
                 and not (isinstance(self.owner, types.ModuleType) and sys.modules.get(f"{owner}.{k}") is ns.get(k))]
        names += [f.__name__ for f, c, d, kw in zip(self.functions, self.code, self.defaults, self.kwdefaults)
                  if f.__code__ is not c or f.__defaults__ is not d or f.__kwdefaults__ is not kw]
        return [f"{owner}.{n}" for n in sorted(set(names))]

    def restore(self) -> bool:
        """Put back what changed. False if the namespace still differs, by what is kept (a submodule the
        import system bound since) or only in the order of its keys: its snapshot is then taken again,
        or the fast check would fail, and every namespace be checked one by one, before every cell."""
        if self._dict_differs():
            _restore_dict(self.owner, dict(zip(self.keys, self.values)),
                          _submodules(self.owner) if isinstance(self.owner, types.ModuleType) else frozenset())
        if self._code_differs():
            for f, code, defaults, kwdefaults in zip(self.functions, self.code, self.defaults, self.kwdefaults):
                f.__code__, f.__defaults__, f.__kwdefaults__ = code, defaults, kwdefaults
        return not self._dict_differs()


_NUMPY_DISPATCHER = type(np.allclose)  # numpy's public functions wrap a Python implementation


def _function(value):
    """The Python function whose code runs when value is called, if it is a plain one."""
    if type(value) in (staticmethod, classmethod, _NUMPY_DISPATCHER):
        value = value.__func__ if type(value) is not _NUMPY_DISPATCHER else value._implementation
    return value if type(value) is types.FunctionType else None


def _submodules(mod) -> set:
    """A submodule imported since the snapshot is bound on its parent by the import system."""
    name = mod.__name__
    return {k for k, v in vars(mod).items() if type(k) is str and sys.modules.get(f"{name}.{k}") is v}


_code_of, _defaults_of, _kwdefaults_of = (_attrgetter(a) for a in ("__code__", "__defaults__", "__kwdefaults__"))
_values = methodcaller("values")


class _Snapshots(list):
    """All the snapshots, with one flat identity check over all of them (5 ms for the 2,400
    namespaces of a kernel with numpy): only when it finds a change is each one checked."""

    def add(self, owner, namespace) -> None:
        self.append(_Snapshot(owner, namespace))
        self._flat = None

    def _flatten(self) -> tuple:
        functions = tuple(chain.from_iterable(s.functions for s in self))
        return ([vars(s.owner) for s in self], [len(s.keys) for s in self],
                tuple(chain.from_iterable(s.keys for s in self)), tuple(chain.from_iterable(s.values for s in self)),
                functions, tuple(map(_code_of, functions)), tuple(map(_defaults_of, functions)),
                tuple(map(_kwdefaults_of, functions)))

    def unchanged(self) -> bool:
        if self._flat is None:
            self._flat = self._flatten()
        views, lengths, keys, values, functions, code, defaults, kwdefaults = self._flat
        return (list(map(len, views)) == lengths  # ints: no object of the submission's compares here
                and not any(map(_is_not, chain.from_iterable(views), keys))  # a class losing a method inherits another
                and not any(map(_is_not, chain.from_iterable(map(_values, views)), values))
                and not any(map(_is_not, map(_code_of, functions), code))
                and not any(map(_is_not, map(_defaults_of, functions), defaults))
                and not any(map(_is_not, map(_kwdefaults_of, functions), kwdefaults)))

    def restore(self) -> None:
        if self.unchanged():
            return
        for i, snapshot in enumerate(self):
            if not snapshot.restore():
                self[i] = _Snapshot(snapshot.owner, vars(snapshot.owner))
                self._flat = None

    def changed_code(self) -> list[str]:
        return [] if self.unchanged() else [name for snapshot in self for name in snapshot.changed_code()]


class Guard:
    """Snapshots taken before the submission runs, and their restoration before each instructor cell."""

    def __init__(self, kernel: IPythonKernel):
        self.kernel, self.shell = kernel, kernel.shell
        self.checks = Checks()
        self.modules: dict[str, types.ModuleType] = {}
        self.namespaces = _Snapshots()
        self.checks.changed_code = self.namespaces.changed_code
        self.instructor_names: dict[str, object] = {}
        self.sys_hooks = {name: getattr(sys, name, None) for name in _SYS_HOOKS}
        self.sys_lists = {name: list(getattr(sys, name)) for name in _SYS_LISTS}
        self.signals = {s: signal.getsignal(s) for s in signal.valid_signals()
                        if s not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(s) is not None}
        self.gc_callbacks = list(__import__("gc").callbacks)
        self.shell_state = {
            "input_transformers_cleanup": list(self.shell.input_transformers_cleanup),
            "input_transformers_post": list(self.shell.input_transformers_post),
            "ast_transformers": list(self.shell.ast_transformers),
        }
        self.custom_exceptions = self.shell.custom_exceptions
        self.events = {name: list(cbs) for name, cbs in self.shell.events.callbacks.items()}
        self.instances = [(obj, dict(vars(obj))) for obj in (self.shell, self.kernel, self.shell.events)]
        self.classes: set[type] = set()
        self._snapshot_classes({cls for obj in (self.shell, self.kernel, self.shell.events)
                                for cls in type(obj).__mro__ if cls is not object})
        self.snapshot_modules()
        self.threads = self._python_threads()
        self.thread_origin: int | None = None  # In[n] of the cell after which extra threads ran

    # --- snapshots ------------------------------------------------------------------------------
    def snapshot_modules(self, only: set[str] | None = None) -> None:
        """Modules not yet seen (of `only`, if given): namespace, the classes defined in it, their functions' code."""
        user_ns, classes = self.shell.user_ns, set()
        for name, mod in list(sys.modules.items()):
            if name in self.modules or (only is not None and name not in only) or not _tracked(name, mod, user_ns):
                continue
            self.modules[name] = mod
            self.namespaces.add(mod, vars(mod))
            for value in list(vars(mod).values()):
                if isinstance(value, type) and getattr(value, "__module__", None) == name:
                    classes.add(value)
        self._snapshot_classes(classes)

    def _snapshot_classes(self, classes: set[type]) -> None:
        for cls in classes - self.classes:
            self.classes.add(cls)
            self.namespaces.add(cls, cls.__dict__)

    def after_instructor_cell(self, before: dict, modules_before: set[str]) -> None:
        """The names an instructor cell bound are the instructor's, and libraries it loaded are tracked
        (not those the submission loaded first: it may have changed them)."""
        ns = self.shell.user_ns
        for name, obj in ns.items():
            if not name.startswith("_") and (name not in before or before[name] is not obj):
                self.instructor_names[name] = obj
        self.snapshot_modules(only=set(sys.modules) - modules_before)
        self.threads |= self._python_threads()

    @staticmethod
    def _python_threads() -> set[int]:
        return set(sys._current_frames())

    # --- restoration ----------------------------------------------------------------------------
    def restore(self) -> None:
        sys.settrace(None)
        sys.setprofile(None)
        for name, value in self.sys_hooks.items():
            setattr(sys, name, value)
        for name, value in self.sys_lists.items():
            getattr(sys, name)[:] = value
        self._restore_signals()
        gc = self.modules.get("gc") or __import__("gc")
        gc.callbacks[:] = self.gc_callbacks
        for name, mod in self.modules.items():
            sys.modules[name] = mod
        self.namespaces.restore()
        for obj, saved in self.instances:
            _restore_methods(obj, saved)
        for name, value in self.shell_state.items():
            getattr(self.shell, name)[:] = value  # some are properties over the transformer manager
        self.shell.custom_exceptions = self.custom_exceptions
        self.shell.events.callbacks.clear()
        self.shell.events.callbacks.update({k: list(v) for k, v in self.events.items()})
        self.shell.user_ns.update(self.instructor_names)
        self.shell.user_ns["__builtins__"] = self.modules["builtins"]

    def _restore_signals(self) -> None:
        """A handler or a timer of the submission's would run its code in the middle of a test."""
        for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(timer, 0)
        for signum, handler in self.signals.items():
            if signal.getsignal(signum) is not handler:
                try:
                    signal.signal(signum, handler)
                except (OSError, ValueError, TypeError):
                    pass

    def extra_threads(self) -> int:
        """Threads started since the snapshot that are running the submission's code: some frame
        of theirs comes from a notebook cell or exec'd text, not from an installed library (the
        kernel itself starts threads now and then, for example under a flood of output)."""
        count = 0
        for ident, frame in sys._current_frames().items():
            if ident in self.threads:
                continue
            while frame is not None:
                if not frame.f_code.co_filename.startswith(_LIBRARY_ROOTS):
                    count += 1
                    break
                frame = frame.f_back
        return count


def _restore_methods(obj, saved: dict) -> None:
    """An instance's state changes as it works; only the methods set on it are put back."""
    current = vars(obj)
    for key in [k for k in current if callable(current[k]) and not callable(saved.get(k))]:
        delattr(obj, key)
    for key, value in saved.items():
        if callable(value) and current.get(key, _MISSING) is not value:
            setattr(obj, key, value)


def _restore_dict(obj, saved: dict, keep: set = frozenset()) -> None:
    """Make obj's namespace saved again (keys in keep stay): a module's dict directly, a class's with
    type's own setattr, so that a __setattr__ the submission gave its type cannot refuse."""
    current = vars(obj)
    if isinstance(obj, types.ModuleType):
        def put(key, value):
            current[key] = value

        def drop(key):
            current.pop(key, None)
    else:
        def put(key, value):
            type.__setattr__(obj, key, value)

        def drop(key):
            type.__delattr__(obj, key)
    for key in [k for k in current if k not in saved and k not in keep]:
        if key not in _UNSETTABLE:
            try:
                drop(key)
            except (AttributeError, TypeError):
                pass
    for key, value in saved.items():
        if key not in _UNSETTABLE and current.get(key, _MISSING) is not value:
            try:
                put(key, value)
            except (AttributeError, TypeError):
                pass


_MISSING = object()


@dataclass
class TrustedCell:
    """An instructor cell, compiled when the kernel started."""
    graded: bool
    codes: tuple = ()  # run in order: the body, then a last expression (displayed, as IPython does)
    checks_name: str = ""  # the name hardened asserts reach their Checks by (graded cells)
    error: BaseException | None = None  # the cell does not compile: raised when it runs
    imports: tuple = ()  # the modules its import statements name


def compile_cell(shell, index: int, source: str, graded: bool) -> TrustedCell:
    filename = f"<instructor cell {index}>"
    cell = TrustedCell(graded, checks_name=f"_tt_checks_{secrets.token_hex(8)}" if graded else "")
    try:
        try:
            text, tree = source, _compile(source, filename, "exec", ast.PyCF_ONLY_AST)
        except SyntaxError:  # magics and the like: IPython's rules (untouched at start-up) make it Python
            text = shell.transform_cell(source)
            tree = _compile(text, filename, "exec", ast.PyCF_ONLY_AST)
        cell.imports = tuple({a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
                             | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                                and not n.level})
        if graded and tree.body:
            harden = _Harden(cell.checks_name)
            tree = harden.visit(tree)
            # the end marker's print is the cell's last statement (assemble._marked): just before it,
            # the check that the code the test called changed no library code (5 ms, so only there)
            last = tree.body[-1]
            tree.body.insert(-1, ast.fix_missing_locations(ast.copy_location(
                ast.Expr(harden._helper("untouched", [], last)), last)))
        body, last = tree.body, []
        if body and isinstance(body[-1], ast.Expr):
            body, last = body[:-1], body[-1:]
        codes = [_compile(ast.Module(body=body, type_ignores=[]), filename, "exec")]
        if last:
            codes.append(_compile(ast.Interactive(body=last), filename, "single"))
        cell.codes = tuple(codes)
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)  # for tracebacks
    except SyntaxError as e:
        cell.error = e
    return cell


def _preimport(cells: list[TrustedCell]) -> None:
    """Import the installed libraries the instructor's cells import, so that they are snapshotted
    as they are, before the submission could import and change them first."""
    import importlib
    import importlib.util

    for name in sorted({m for c in cells for m in c.imports}):
        try:
            spec = importlib.util.find_spec(name.partition(".")[0])
            if spec is not None and (spec.origin in (None, "built-in", "frozen")
                                     or str(spec.origin).startswith(_INSTALLED_ROOTS)):
                importlib.import_module(name)
        except Exception:  # the cell itself will say what is wrong with it
            pass


def _load_cells(shell) -> tuple[str | None, list[TrustedCell]]:
    """The token and the instructor's cells from the file the job wrote; the file is deleted, so
    only this kernel (not the submission it runs) ever reads the hidden tests and their markers."""
    path = os.environ.pop(CELLS_FILE_ENV, None)
    if not path:
        return None, []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    os.unlink(path)
    return data["token"], [compile_cell(shell, i, c["source"], c["graded"]) for i, c in enumerate(data["cells"])]


class GradingKernel(IPythonKernel):
    implementation = "tinytorch-grader"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Python's own traceback format: the colored, in-context one costs 15 ms per failed test
        self.shell.InteractiveTB.set_mode("Plain")
        self.token, self.cells = _load_cells(self.shell)
        _preimport(self.cells)
        self.guard = Guard(self)

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                         **kwargs):
        index, _, token = code.split("\n", 1)[0].strip().removeprefix(CELL_MARK).partition(" ")
        if code.startswith(CELL_MARK) and index.isdigit() and self.token is not None and token == self.token:
            return self._run_instructor_cell(int(index))  # otherwise it is a student's cell like any other
        number, guard = self.shell.execution_count, self.guard
        try:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin, **kwargs)
        finally:
            if guard.thread_origin is None and guard.extra_threads() > 0:
                guard.thread_origin = number

    def _run_instructor_cell(self, index: int) -> dict:
        """Reset the room and run the cell's own code objects: neither IPython's transformers and
        compiler nor anything else the submission could have changed stands between them."""
        shell, guard = self.shell, self.guard
        number = shell.execution_count
        cell = self.cells[index] if index < len(self.cells) else None
        ns = shell.user_ns
        before = None
        reply = {"status": "ok", "execution_count": number, "user_expressions": {}, "payload": []}
        try:
            guard.restore()
            if cell is None:
                raise RuntimeError(f"the grading kernel has no instructor cell {index}")
            if cell.error is not None:
                raise cell.error
            if cell.graded and guard.extra_threads() > 0:
                raise RuntimeError(THREADS_MESSAGE.format(number=guard.thread_origin))
            if cell.graded:
                ns[cell.checks_name] = guard.checks
            else:
                before, modules_before = dict(ns), set(sys.modules)
            for code in cell.codes:  # get_ipython and display are in the namespace and builtins already
                _exec(code, ns)
        except BaseException as e:  # a failed test; a reply must always go back
            shell.showtraceback(tb_offset=1)
            reply.update(status="error", ename=type(e).__name__, evalue="", traceback=[])
        finally:
            shell.execution_count += 1  # after the cell, as IPython counts (its Out[n] is this In[n])
            if cell is not None and cell.graded:
                ns.pop(cell.checks_name, None)
            if before is not None:
                guard.after_instructor_cell(before, modules_before)
            elif guard.thread_origin is None and guard.extra_threads() > 0:
                guard.thread_origin = number
        return reply


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=GradingKernel)


if __name__ == "__main__":
    main()
