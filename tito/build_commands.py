"""Maintainer commands: export, release, clean, check, dist."""
from __future__ import annotations

import time
from pathlib import Path

from course import build
from course.project import ROOT


def _export(args) -> int:
    t = time.perf_counter()
    lib = build.export()
    print(f"exported source/ -> {lib.relative_to(ROOT)}/ in {time.perf_counter() - t:.1f} s")
    return 0


def _release(args) -> int:
    t = time.perf_counter()
    out = build.release()
    print(f"released source/ -> {out.relative_to(ROOT)}/ in {time.perf_counter() - t:.1f} s")
    return 0


def _clean(args) -> int:
    changed = build.clean()
    for p in changed:
        print(f"cleaned {p.relative_to(ROOT)}")
    print(f"{len(changed)} notebook(s) changed")
    return 0


def _check(args) -> int:
    problems = build.check()
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s): run `tito export`, `tito release` and `tito clean`, then commit")
        return 1
    print("no drift: tinytorch/ and release/ match a fresh build of source/, notebooks are clean")
    return 0


def _dist(args) -> int:
    from course.dist import build_distribution

    dest = build_distribution(Path(args.dest))
    print(f"wrote the student distribution to {dest}: release notebooks, the student CLI, milestones and data; "
          f"no source/, no reference package, no hidden test")
    return 0


def register(sub) -> None:
    for name, fn, text in [
        ("export", _export, "regenerate the reference package tinytorch/ from source/ (nbdev)"),
        ("release", _release, "regenerate the student notebooks release/ from source/ (nbgrader)"),
        ("clean", _clean, "store every source and release notebook clean (no outputs, nbgrader metadata kept)"),
        ("check", _check, "rebuild into a scratch copy and report any drift from what is committed"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(run=fn)
    text = "build the repository to hand to students (no solutions, no hidden tests) into a new directory"
    p = sub.add_parser("dist", help=text, description=text)
    p.add_argument("dest", help="a new or empty directory")
    p.set_defaults(run=_dist)
