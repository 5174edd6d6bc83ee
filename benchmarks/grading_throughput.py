"""How many Module 01 submissions `tito grade` grades per minute, with 1 and with 2 workers.

    python benchmarks/grading_throughput.py [--count 100] [--workers 1 2]

The class is generated and seeded: 40% complete, 25% partial (a random half of the solution
cells), 20% blank, 15% broken (a syntax error, an exception when a cell runs, a function that
kills the kernel, a truncated file). Each worker count grades the whole class into a fresh
output directory. Printed: the grading phase (first job started to last result written) and
the whole run (including building the grading package and the nbgrader gradebook).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.batch import Batch  # noqa: E402
from autograder.samples import fill_solutions, solution_cell_ids  # noqa: E402
from course.project import find_module, read_notebook_json, skip_slow_optional_imports  # noqa: E402

BREAKAGES = [
    lambda src: src + "\ndef oops(:\n",  # syntax error
    lambda src: src + "\nraise RuntimeError('left in by mistake')\n",  # fails when the cell runs
    lambda src: src + "\nimport os; os._exit(1)\n",  # kills the kernel
]


def make_class(count: int, seed: int = 0) -> dict[str, dict | bytes]:
    rng = random.Random(seed)
    module = find_module("01")
    release, source = read_notebook_json(module.release()), read_notebook_json(module.source())
    ids = solution_cell_ids(release)
    subs = {}
    for i in range(count):
        kind = rng.choices(["complete", "partial", "blank", "broken"], weights=[40, 25, 20, 15])[0]
        if kind == "complete":
            nb = fill_solutions(release, source)
        elif kind == "partial":
            nb = fill_solutions(release, source, rng.sample(ids, len(ids) // 2))
        elif kind == "blank":
            nb = release
        else:
            nb = fill_solutions(release, source)
            how = rng.randrange(len(BREAKAGES) + 1)
            if how == len(BREAKAGES):
                subs[f"{kind}-{i:03d}"] = json.dumps(nb).encode()[:5000]  # truncated in transfer
                continue
            victim = rng.choice(ids)
            target = next(c for c in nb["cells"] if c["id"] == victim)
            target["source"] = BREAKAGES[how]("".join(target["source"]))
        subs[f"{kind}-{i:03d}"] = nb
    return subs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    skip_slow_optional_imports()
    subs = make_class(args.count)
    print(f"{args.count} generated Module 01 submissions: " + ", ".join(
        f"{sum(s.startswith(k) for s in subs)} {k}" for k in ("complete", "partial", "blank", "broken")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "submitted"
        for sid, nb in subs.items():
            path = root / sid / "01_tensor" / "01_tensor.ipynb"
            path.parent.mkdir(parents=True)
            path.write_bytes(nb if isinstance(nb, bytes) else json.dumps(nb).encode())
        print(f"{'workers':>7} {'grading s':>10} {'per minute':>11} {'whole run s':>12} {'per minute':>11}")
        for workers in args.workers:
            started = time.perf_counter()
            summary = Batch("01", root, Path(tmp) / f"out-{workers}", workers=workers, progress=lambda line: None).run()
            whole = time.perf_counter() - started
            assert len(summary.rows) == args.count and not summary.count("error"), "the benchmark class must grade"
            print(f"{workers:>7} {summary.grading_seconds:>10.1f} {args.count / summary.grading_seconds * 60:>11.1f} "
                  f"{whole:>12.1f} {args.count / whole * 60:>11.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
