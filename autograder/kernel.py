"""The grading kernel: an IPython kernel that runs every graded test cell in a clean room.

It runs inside the sandbox (`python -m autograder.kernel -f CONNECTION_FILE`) and is started
before any of the submission's code, so it can take snapshots the submission cannot have
touched. The grader marks the cells it sends with a first-line comment:

- an instructor cell (setup, demonstration, test): after it runs, the names it bound in the
  notebook's namespace are recorded as the instructor's;
- a graded test cell: before it runs, the kernel puts back numpy, builtins, the sys hooks,
  the IPython shell and kernel classes and the instructor's names as they were snapshotted,
  refuses to run while a thread the submission started is alive, and rewrites the cell's
  `assert` statements so that a condition must be a real bool and every comparison in it
  compares plain values (numbers, strings, tuples, dtypes, numpy arrays of non-object dtype).

So a submission that patched `np.allclose`, `print` or the traceback display, rebound a test
helper, or returns objects whose `==` is always True gets no credit for it, by construction.
The grader credits a graded cell only if the random markers at its end reach the output.
"""
from __future__ import annotations

import ast
import math  # noqa: F401  (imported before any submission code, so the guard snapshots it)
import os
import secrets
import sys
import types

import numpy as np
import numpy.linalg  # noqa: F401  (snapshotted with numpy)
import numpy.testing  # noqa: F401
from ipykernel.ipkernel import IPythonKernel

from .protocol import GRADED_MARK, INSTRUCTOR_MARK, THREADS_MESSAGE

PROTECTED_MODULES = ("numpy", "math", "builtins")
_SYS_HOOKS = ("stdout", "stderr", "excepthook", "displayhook", "breakpointhook", "unraisablehook")
_UNSETTABLE = {"__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__name__"}
_NoneType = type(None)
_SCALARS = (bool, int, float, complex, str, bytes, _NoneType, slice, range, type(Ellipsis))
_MAX_ITEMS = 1_000_000
# where installed code lives: the interpreter, the virtual environment, the grading package and
# this kernel (in the sandbox under /grader); anything else that runs is the submission's
_LIBRARY_ROOTS = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix)}
                       | {sys.prefix + os.sep, sys.base_prefix + os.sep,
                          os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
                          "/grader/"})


def _protected(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PROTECTED_MODULES)


class Checks:
    """What hardened asserts call. Holds its own references, taken before any submission code."""

    def __init__(self):
        self._asarray, self._ndarray, self._generic, self._dtype = np.asarray, np.ndarray, np.generic, np.dtype
        self._ufunc, self._bool = np.ufunc, np.bool_
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
            return t.__module__.startswith("numpy") and t.__name__ != "object_"
        if depth > 20:
            return False
        if t in (tuple, list, set, frozenset):
            return self._len(x) <= _MAX_ITEMS and all(self.plain(e, depth + 1) for e in x)
        if t is dict:
            return self._len(x) <= _MAX_ITEMS and all(self.plain(k, depth + 1) and self.plain(v, depth + 1)
                                                      for k, v in x.items())
        return False

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


class Guard:
    """Snapshots taken before the submission runs, and their restoration before each graded cell."""

    def __init__(self, kernel: IPythonKernel):
        self.kernel, self.shell = kernel, kernel.shell
        self.checks = Checks()
        self.modules: dict[str, tuple[types.ModuleType, dict]] = {}
        self.instructor_names: dict[str, object] = {}
        self.sys_hooks = {name: getattr(sys, name, None) for name in _SYS_HOOKS}
        self.shell_state = {
            "input_transformers_cleanup": list(self.shell.input_transformers_cleanup),
            "input_transformers_post": list(self.shell.input_transformers_post),
            "ast_transformers": list(self.shell.ast_transformers),
        }
        self.custom_exceptions = self.shell.custom_exceptions
        self.events = {name: list(cbs) for name, cbs in self.shell.events.callbacks.items()}
        self.instances = [(obj, dict(vars(obj))) for obj in (self.shell, self.kernel, self.shell.events)]
        self.classes = [(cls, dict(vars(cls))) for obj in (self.shell, self.kernel, self.shell.events)
                        for cls in type(obj).__mro__ if cls is not object]
        self.snapshot_modules()
        self.threads = self._python_threads()
        self.thread_origin: int | None = None  # In[n] of the cell after which extra threads ran

    # --- snapshots ------------------------------------------------------------------------------
    def snapshot_modules(self) -> None:
        for name, mod in list(sys.modules.items()):
            if _protected(name) and name not in self.modules and isinstance(mod, types.ModuleType):
                self.modules[name] = (mod, dict(vars(mod)))

    def after_instructor_cell(self, before: dict) -> None:
        ns = self.shell.user_ns
        for name, obj in ns.items():
            if not name.startswith("_") and (name not in before or before[name] is not obj):
                self.instructor_names[name] = obj
        self.snapshot_modules()
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
        for name, (mod, saved) in self.modules.items():
            sys.modules[name] = mod
            # a submodule imported since the snapshot is bound on its parent by the import system
            keep = {k for k, v in vars(mod).items() if sys.modules.get(f"{name}.{k}") is v}
            _restore_dict(mod, saved, keep)
        for obj, saved in self.instances:
            _restore_methods(obj, saved)
        for cls, saved in self.classes:
            _restore_dict(cls, saved)
        for name, value in self.shell_state.items():
            getattr(self.shell, name)[:] = value  # some are properties over the transformer manager
        self.shell.custom_exceptions = self.custom_exceptions
        self.shell.events.callbacks.clear()
        self.shell.events.callbacks.update({k: list(v) for k, v in self.events.items()})
        self.shell.user_ns.update(self.instructor_names)
        self.shell.user_ns["__builtins__"] = self.modules["builtins"][0]

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
    current = vars(obj)
    for key in [k for k in current if k not in saved and k not in keep]:
        if key not in _UNSETTABLE:
            try:
                delattr(obj, key)
            except (AttributeError, TypeError):
                pass
    for key, value in saved.items():
        if key not in _UNSETTABLE and current.get(key, _MISSING) is not value:
            try:
                setattr(obj, key, value)
            except (AttributeError, TypeError):
                pass


_MISSING = object()


class GradingKernel(IPythonKernel):
    implementation = "tinytorch-grader"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.guard = Guard(self)

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                         **kwargs):
        first, guard = code.split("\n", 1)[0].strip(), self.guard
        number = self.shell.execution_count  # the In[n] this cell runs as
        before = dict(self.shell.user_ns) if first == INSTRUCTOR_MARK else None
        name = f"_tt_checks_{secrets.token_hex(8)}"
        if first == GRADED_MARK:
            code = self._prepare_graded(code, name)
        try:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin, **kwargs)
        finally:
            self.shell.ast_transformers = []
            self.shell.user_ns.pop(name, None)
            if before is not None:
                guard.after_instructor_cell(before)
            elif guard.thread_origin is None and guard.extra_threads() > 0:
                guard.thread_origin = number

    def _prepare_graded(self, code: str, name: str) -> str:
        """Reset the room and harden the asserts; the code to run instead when that is impossible."""
        guard = self.guard
        try:
            guard.restore()
            if guard.extra_threads() > 0:
                return f"raise RuntimeError({THREADS_MESSAGE.format(number=guard.thread_origin)!r})"
            self.shell.user_ns[name] = guard.checks
            self.shell.ast_transformers = [_Harden(name)]
            return code
        except Exception as e:  # a reply must always go back; this cell then fails
            return f"raise RuntimeError({f'the grading kernel could not reset: {e!r}'!r})"


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=GradingKernel)


if __name__ == "__main__":
    main()
