"""How many Module 01 submissions `tito grade` grades per minute, with 1 and with 2 workers.

    python benchmarks/grading_throughput.py [--count 100] [--workers 1 2]

The class is generated and seeded: 40% complete, 25% partial (a random half of the solution
cells), 20% blank, 15% broken (a syntax error, an exception when a cell runs, a function that
kills the kernel, a truncated file). Each worker count grades the whole class into a fresh
output directory, with a progress line every 10 submissions. Printed: the grading phase (first
job started to last result written) and the whole run (including building the grading package
and the nbgrader gradebook), the load average before each run (other work on the machine slows
it down), and where a submission's time went: the mean wall time of the job's phases, from the
result files. Everything is written to a temporary directory, removed also on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.batch import Batch, instructor_dir  # noqa: E402
from autograder.samples import fill_solutions, solution_cell_ids  # noqa: E402
from course.project import find_module, read_notebook_json, skip_slow_optional_imports  # noqa: E402

BREAKAGES = [
    lambda src: src + "\ndef oops(:\n",  # syntax error
    lambda src: src + "\nraise RuntimeError('left in by mistake')\n",  # fails when the cell runs
    lambda src: src + "\nimport os; os._exit(1)\n",  # kills the kernel
]
PHASES = ("kernel start", "cells", "kernel stop")


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


def where_the_time_went(output: Path) -> str:
    """Mean wall seconds per graded submission: the job's phases, and the rest of the job (forked
    from its worker's job server, reading, assembling, scoring, writing the executed notebook)."""
    results = [json.loads(p.read_text()) for p in (instructor_dir(output) / "results").glob("*/*.json")]
    graded = [r for r in results if r["status"] == "graded" and r.get("phases")]
    if not graded:
        return "no graded submission"
    mean = {k: sum(r["phases"].get(k, 0.0) for r in graded) / len(graded) for k in PHASES}
    total = sum(r["seconds"] for r in graded) / len(graded)
    parts = [f"{k} {v:.2f}" for k, v in mean.items()] + [f"rest of the job {total - sum(mean.values()):.2f}"]
    return f"per graded submission (mean wall s, n={len(graded)}): " + ", ".join(parts) + f"; job {total:.2f}"


def progress(workers: int, started: float):
    def report(line: str) -> None:
        if not line.startswith("["):
            print(f"  {line}", flush=True)
            return
        done, total = (int(n) for n in line[1:].split("]", 1)[0].split("/"))  # "[done/total] student: ..."
        if done % 10 == 0 or done == total:
            rate = done / (time.perf_counter() - started) * 60
            print(f"  {workers} worker(s): {done}/{total} graded, {rate:.0f} per minute so far", flush=True)
    return report


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    skip_slow_optional_imports()
    signal.signal(signal.SIGTERM, _interrupted)  # cleaned up like Ctrl-C
    subs = make_class(args.count)
    print(f"{args.count} generated Module 01 submissions: " + ", ".join(
        f"{sum(s.startswith(k) for s in subs)} {k}" for k in ("complete", "partial", "blank", "broken")), flush=True)
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="tinytorch-benchmark-") as tmp:
            root = Path(tmp) / "submitted"
            for sid, nb in subs.items():
                path = root / sid / "01_tensor" / "01_tensor.ipynb"
                path.parent.mkdir(parents=True)
                path.write_bytes(nb if isinstance(nb, bytes) else json.dumps(nb).encode())
            for workers in args.workers:
                load = os.getloadavg()[0]
                print(f"grading with {workers} worker(s); load average {load:.2f} on {os.cpu_count()} cores", flush=True)
                started = time.perf_counter()
                out = Path(tmp) / f"out-{workers}"
                summary = Batch("01", root, out, workers=workers, progress=progress(workers, started)).run()
                whole = time.perf_counter() - started
                assert len(summary.rows) == args.count and not summary.count("error"), "the benchmark class must grade"
                lines.append(f"{workers:>7} {summary.grading_seconds:>10.1f} "
                             f"{summary.graded_now / summary.grading_seconds * 60:>11.1f} {whole:>12.1f} "
                             f"{args.count / whole * 60:>11.1f} {load:>9.2f}")
                print(f"  {where_the_time_went(out)}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; the temporary files are removed", file=sys.stderr)
        return 130
    print(f"\n{'workers':>7} {'grading s':>10} {'per minute':>11} {'whole run s':>12} {'per minute':>11} {'load avg':>9}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
