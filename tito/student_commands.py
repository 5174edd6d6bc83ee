"""Student commands: module start/test/export/reset, student init, reference, status, lab."""
from __future__ import annotations

import os
import sys

from course import student
from course.project import ROOT, find_module


def _rel(path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _start(args) -> int:
    m = find_module(args.module)
    dest, saved = student.start(m, force=args.force)
    if saved:
        print(f"backed up your previous notebook to {_rel(saved)}")
    print(f"started {m.name}: open {_rel(dest)} (`tito lab` starts JupyterLab)")
    return 0


def _test(args) -> int:
    m = find_module(args.module)
    print(f"running {_rel(student.workspace(m))} in a fresh kernel ...", flush=True)
    results, other_errors = student.run_tests(m, timeout=args.timeout)
    for r in results:
        mark = "PASS" if r.passed else "FAIL"
        print(f"  {mark}  {r.grade_id:<28} {r.points:g} pt{'s' if r.points != 1 else ''}")
        if not r.passed:
            for line in r.message.splitlines():
                print(f"        {line}")
    if other_errors:
        print("  errors in ungraded cells (they may cause the failures above):")
        for e in other_errors:
            print(f"        {e.splitlines()[0]}")
    passed = sum(r.points for r in results if r.passed)
    total = sum(r.points for r in results)
    ok = all(r.passed for r in results)
    print(f"visible tests: {passed:g}/{total:g} points, {sum(r.passed for r in results)}/{len(results)} cells passed"
          + ("" if ok else " (hidden tests are graded by your instructor)"))
    return 0 if ok and results else 1


def _export(args) -> int:
    m = find_module(args.module)
    stubbed = student.export_module(m)
    print(f"exported {_rel(student.workspace(m))} -> {_rel(student.export_target(m))}")
    if stubbed:
        print(f"warning: these still raise NotImplementedError: {', '.join(stubbed)}")
    return 0


def _reset(args) -> int:
    m = find_module(args.module)
    saved = student.reset(m)
    print(f"restored {_rel(student.workspace(m))} from the release; your work is in {_rel(saved)}")
    return 0


def _init(args) -> int:
    for name, kind in student.student_init().items():
        print(f"  {name:<20} {'your exported code' if kind == 'yours' else 'stub from the release'}")
    print("tinytorch/ is in student mode: it holds your exported code and stubs, never the reference")
    return 0


def _reference(args) -> int:
    student.reference()
    print("tinytorch/ holds the reference package again (your notebooks in modules/ are untouched); "
          "`tito student init` switches back")
    return 0


def _status(args) -> int:
    print(f"package: {student.package_mode()} mode\n")
    rows = [("module", "notebook", "visible tests", "package")] + student.module_rows()
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print()
    mrows = [("milestone", "state")] + student.milestone_rows()
    w = max(len(r[0]) for r in mrows)
    for name, state in mrows:
        print(f"{name.ljust(w)}  {state}")
    return 0


def _lab(args) -> int:
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT}", *args.passthrough]
    if os.geteuid() == 0:  # containers and CI often run as root, which jupyter refuses by default
        cmd.append("--allow-root")
    student.build._venv_bin_on_path()
    os.execv(sys.executable, cmd)  # become the server: Ctrl-C and signals reach it directly


def register(sub) -> None:
    mod = sub.add_parser("module", help="work on a module notebook in modules/",
                         description="Start, test, export or reset your copy of a module notebook.")
    msub = mod.add_subparsers(dest="action", metavar="ACTION", required=True)
    specs = [
        ("start", _start, "copy the release notebook into modules/NN_name/ (never overwrites your work)"),
        ("test", _test, "run your notebook in a fresh kernel and report each graded cell"),
        ("export", _export, "export your notebook into tinytorch/, so `import tinytorch` runs your code"),
        ("reset", _reset, "restore the release notebook, keeping a backup of your work"),
    ]
    for name, fn, text in specs:
        p = msub.add_parser(name, help=text, description=text)
        p.add_argument("module", help="module number or name, e.g. 01 or tensor")
        p.set_defaults(run=fn)
        if name == "start":
            p.add_argument("--force", action="store_true", help="start over; your current notebook is backed up first")
        if name == "test":
            p.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell (default 120)")

    stu = sub.add_parser("student", help="switch tinytorch/ to student mode",
                         description="Student mode: tinytorch/ holds your exported code and release stubs.")
    ssub = stu.add_subparsers(dest="action", metavar="ACTION", required=True)
    text = "rebuild tinytorch/ from your exported notebooks and the release stubs (never the reference)"
    ssub.add_parser("init", help=text, description=text).set_defaults(run=_init)

    for name, fn, text in [
        ("reference", _reference, "restore the reference package tinytorch/ from source/ (undoes student init)"),
        ("status", _status, "show each module's progress and the milestones, read from your files"),
    ]:
        sub.add_parser(name, help=text, description=text).set_defaults(run=fn)
    text = "start JupyterLab in the repository, with the nbgrader extension (Validate button)"
    lab = sub.add_parser("lab", help=text, description=text + "; extra arguments go to jupyter lab")
    lab.set_defaults(run=_lab, passthrough=[])  # e.g. tito lab --no-browser --port=8899
