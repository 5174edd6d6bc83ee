"""Shared helpers for the milestone scripts: progress lines, timing and memory, results and plots.

A milestone script does:

    from common import Milestone

    run = Milestone("1958_perceptron", "Rosenblatt's perceptron")   # starts the clock and memory tracking
    run.log("AND: epoch 1, 1 error")                                  # one progress line, flushed at once
    run.record("AND", epoch=1, loss=0.25, accuracy=0.75)              # a point of the loss/accuracy curves
    sys.exit(run.finish(passed, {"and_accuracy": 1.0}))               # writes JSON + PNG, prints, returns 0 or 1

`finish` writes `milestones/output/<name>.json` with the keys "milestone", "passed", "metrics",
"seconds", "peak_memory_mb" (plus "peak_rss_mb"), "package" ("reference" or "student": whose
`tinytorch` ran, so `tito status` counts only the student's own runs), and `milestones/output/<name>.png` with one
loss and one accuracy panel holding a curve per recorded series. Memory: `peak_memory_mb` is the
peak of Python and numpy allocations during the run (tracemalloc); `peak_rss_mb` is the process's
peak resident size when `finish` is called (before plotting), interpreter and
libraries included. matplotlib (Agg backend, no display) is
imported only when plotting.
"""
from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

from course.student import package_mode

OUTPUT_DIR = Path(__file__).resolve().parent / "output"


class Milestone:
    def __init__(self, name: str, title: str = "", output_dir: Path | str | None = None, unit: str = "epoch"):
        self.name, self.title, self.unit = name, title or name, unit  # unit: what a curve's x counts
        self.output_dir = Path(output_dir) if output_dir else OUTPUT_DIR
        self.history: dict[str, dict[str, list[float]]] = {}
        self._start = time.perf_counter()
        tracemalloc.start()
        print(f"== {self.title} ==", flush=True)

    def log(self, message: str) -> None:
        """Print one progress line immediately (also when stdout is a pipe)."""
        print(message, flush=True)

    def record(self, series: str, epoch: int, loss: float, accuracy: float) -> None:
        """Add one point (epoch, loss, accuracy) to the curves of `series`."""
        h = self.history.setdefault(series, {"epoch": [], "loss": [], "accuracy": []})
        h["epoch"].append(int(epoch))
        h["loss"].append(float(loss))
        h["accuracy"].append(float(accuracy))

    def finish(self, passed: bool, metrics: dict) -> int:
        """Write the JSON result and the plot, print the verdict; return the exit status (0 passed, 1 failed)."""
        seconds = time.perf_counter() - self._start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = peak_rss_mb()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        result = {"milestone": self.name, "passed": bool(passed), "metrics": metrics,
                  "seconds": round(seconds, 3), "peak_memory_mb": round(peak / 2**20, 2),
                  "peak_rss_mb": None if rss is None else round(rss, 1), "package": package_mode()}
        json_path = self.output_dir / f"{self.name}.json"
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        png_path = self.output_dir / f"{self.name}.png"
        plot_history(self.history, png_path, self.title, self.unit)
        for key, value in metrics.items():
            print(f"  {key}: {value}")
        verdict = "PASSED" if passed else "FAILED"
        print(f"{verdict}: {self.name} in {seconds:.2f} s, peak memory {result['peak_memory_mb']} MB "
              f"(results: {json_path}, plot: {png_path})", flush=True)
        return 0 if passed else 1


def peak_rss_mb() -> float | None:
    """The process's peak resident size in MB; None where the OS does not say (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def plot_history(history: dict, path: Path | str, title: str = "", unit: str = "epoch") -> None:
    """Save a figure with a loss panel and an accuracy panel, one curve per series of `history`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for series, h in history.items():
        ax_loss.plot(h["epoch"], h["loss"], marker="o", markersize=3, label=series)
        ax_acc.plot(h["epoch"], h["accuracy"], marker="o", markersize=3, label=series)
    ax_loss.set(xlabel=unit, ylabel="loss", title="loss")
    ax_acc.set(xlabel=unit, ylabel="accuracy", title="accuracy", ylim=(-0.02, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if history:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check(condition: bool, description: str) -> bool:
    """Print a line marking one success criterion as met or not; return the condition."""
    print(f"  [{'ok' if condition else 'FAIL'}] {description}", flush=True)
    return bool(condition)


if __name__ == "__main__":
    sys.exit("common.py is a helper module; run a milestone script instead")
