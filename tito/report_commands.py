"""`tito report validate FILE`: check an optimization report (Module 20, milestone 2018)."""
from __future__ import annotations

from course.report import MLPERF_TARGETS, load_report, validate_report


def _validate(args) -> int:
    report, reasons = load_report(args.file)
    if report is not None:
        reasons = validate_report(report, MLPERF_TARGETS if args.targets == "mlperf" else None)
    if reasons:
        print(f"{args.file}: rejected")
        for reason in reasons:
            print(f"  - {reason}")
        return 1
    claims = report["claims"]
    print(f"{args.file}: accepted ({claims['size_reduction']:.2f}x smaller, {claims['speedup']:.2f}x faster, "
          f"{claims['accuracy_drop_points']:.2f} accuracy points lost)")
    return 0


def register(sub) -> None:
    rp = sub.add_parser("report", help="validate an optimization report (capstone, milestone 2018)",
                        description="Check an optimization report against its schema and its claims.")
    rsub = rp.add_subparsers(dest="action", metavar="ACTION", required=True)
    text = "accept or reject a report, with every reason"
    p = rsub.add_parser("validate", help=text, description=text)
    p.add_argument("file", help="the report, a JSON file")
    p.add_argument("--targets", choices=["mlperf", "none"], default="mlperf",
                   help="mlperf (default): also require >= 4x smaller, >= 4x faster, <= 1 point lost; "
                        "none: the schema and the arithmetic only")
    p.set_defaults(run=_validate)
