"""Maintainer command: `tito mutate`, how many seeded mutants of the solutions the hidden tests kill."""
from __future__ import annotations

import json
import time
from pathlib import Path

from course.project import TitoError, find_module, modules


def _share(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _line(r) -> str:
    if r.status != "measured":
        return f"{r.name:<16} {r.status.upper()}: {r.reason}"
    return (f"{r.name:<16} {r.mutants:4d} mutants  {r.killed:4d} killed  {r.mutants - r.killed:3d} survived  "
            f"{_share(r.share):>6}  ({r.seconds:.0f} s)")


def _mutate(args) -> int:
    from course.mutation import measure, module_targets

    if args.max_per_cell < 0:
        raise TitoError(f"--max-per-cell must be 0 (no cap) or more, got {args.max_per_cell}")
    if not 0 <= args.min_share <= 1:
        raise TitoError(f"--min-share is a fraction between 0 and 1, got {args.min_share}")
    mods = list(dict.fromkeys(find_module(key) for key in args.modules)) if args.modules else modules()  # `1 tensor`: once
    cap = args.max_per_cell or "all"
    print(f"mutating {len(mods)} module(s): seed {args.seed}, {cap} mutants per solution cell, "
          f"{args.workers} worker(s), {args.timeout:g} s per mutant ...", flush=True)

    def done(r) -> None:
        print(_line(r), flush=True)
        if args.show_survivors:
            for s in r.survivors:
                print(f"    survived {s['cell_id']}:{s['line']} {s['operator']}: {s['before']}  ->  {s['after']}")

    started = time.monotonic()
    reports = measure(module_targets(mods), args.seed, args.max_per_cell, args.timeout, args.workers, done)
    seconds = time.monotonic() - started

    print(f"\n{'module':<16} {'mutants':>7} {'killed':>7} {'survived':>8} {'timeouts':>8} {'share':>7}")
    for r in reports:
        survived = r.mutants - r.killed
        print(f"{r.name:<16} {r.mutants:7d} {r.killed:7d} {survived:8d} {r.timeouts:8d} {_share(r.share):>7}"
              + ("" if r.status == "measured" else f"  {r.status}"))
    total, killed = sum(r.mutants for r in reports), sum(r.killed for r in reports)
    print(f"{'all':<16} {total:7d} {killed:7d} {total - killed:8d} {sum(r.timeouts for r in reports):8d} "
          f"{_share(killed / total if total else None):>7}")
    weak = [r.name for r in reports if r.share is None or r.share < args.min_share]
    print(f"{seconds:.0f} s in all. " + (f"under {_share(args.min_share)} killed (or not measured): {', '.join(weak)}"
                                          if weak else f"every module kills at least {_share(args.min_share)}"))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"seed": args.seed, "max_per_cell": args.max_per_cell, "timeout": args.timeout,
             "min_share": args.min_share, "seconds": round(seconds, 1),
             "modules": [r.to_json() for r in reports]}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 1 if weak else 0


def register(sub) -> None:
    text = "measure the hidden tests: seeded mutants of every solution cell, graded; share killed per module"
    p = sub.add_parser("mutate", help=text, description=text + ". A survivor is a wrong solution that earns "
                       "full marks. Linux only (uses os.fork).")
    p.add_argument("modules", nargs="*", metavar="MODULE", help="modules by number or name (default: all in source/)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mutant sample (0)")
    p.add_argument("--max-per-cell", type=int, default=25, metavar="N",
                   help="mutants drawn per solution cell, 0 for all of them (25)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="modules measured at once (2)")
    p.add_argument("--timeout", type=float, default=20.0, metavar="S",
                   help="seconds a mutant may run before it counts as killed (20; at least 5x the notebook's own time)")
    p.add_argument("--min-share", type=float, default=0.9, metavar="F",
                   help="exit status 1 if a module kills less than this fraction (0.9)")
    p.add_argument("--json", metavar="FILE", help="also write the results, every mutant included, as JSON")
    p.add_argument("--show-survivors", action="store_true", help="list every surviving mutant")
    p.set_defaults(run=_mutate)
