"""`tito`: one entry point for maintainers, students and instructors.

Each command group lives in its own module and adds its sub-commands through `register`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from course.project import ROOT, TitoError, is_student_distribution, skip_slow_optional_imports

# in the order `tito --help` lists them; a student distribution has only the student groups
COMMAND_GROUPS = ["build_commands", "student_commands", "grade_commands", "milestone_commands", "report_commands",
                  "mutate_commands", "demo"]
STUDENT_GROUPS = {"student_commands", "milestone_commands", "report_commands"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tito", description="TinyTorch course tool.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    student_only = is_student_distribution(ROOT)
    for name in COMMAND_GROUPS:
        if name in STUDENT_GROUPS or not student_only:
            importlib.import_module(f"{__package__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    skip_slow_optional_imports()
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:  # only commands that pass arguments on to another program accept unknown ones
        if not hasattr(args, "passthrough"):
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        args.passthrough += extra
    try:
        return args.run(args) or 0
    except TitoError as e:
        print(f"tito: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print("tito: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
