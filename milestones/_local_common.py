"""Milestone helpers used by 1969_xor.py and 1986_mlp.py until milestones/common.py (branch m04-05)
is on main; then these scripts should import the same-purpose helpers from common instead.

finish(name, passed, metrics, history, start) writes milestones/output/<name>.json
({"milestone", "passed", "metrics", "seconds", "peak_memory_mb"}) and a .png of loss and
accuracy per epoch (a dependency-free PNG written with zlib), prints the result and returns
the exit code (0 when passed).
"""
import json
import resource
import struct
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "milestones" / "output"


def peak_memory_mb():
    """Peak resident memory of this process in MB (Linux reports ru_maxrss in KB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _png(path, width, height, pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def plot_curves(path, series, width=480, height=240):
    """Line plot of several series (name -> (values, (r, g, b))), each scaled to its own range."""
    img = [[255] * (3 * width) for _ in range(height)]
    for x in range(width):
        for y in (0, height - 1):
            img[y][3 * x:3 * x + 3] = [0, 0, 0]
    for values, color in series.values():
        vals = [v for v in values if v == v]
        if len(vals) < 2:
            continue
        lo, hi = min(vals), max(vals)
        span = (hi - lo) or 1.0
        pts = [(int(i * (width - 1) / (len(vals) - 1)), int((height - 5) - (v - lo) / span * (height - 10)))
               for i, v in enumerate(vals)]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for s in range(steps + 1):
                x, y = x0 + (x1 - x0) * s // steps, y0 + (y1 - y0) * s // steps
                img[y][3 * x:3 * x + 3] = list(color)
    _png(path, width, height, img)


def finish(name, passed, metrics, history, start):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    seconds = time.perf_counter() - start
    result = {"milestone": name, "passed": bool(passed), "metrics": metrics,
              "seconds": round(seconds, 2), "peak_memory_mb": round(peak_memory_mb(), 1)}
    (OUTPUT / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot_curves(OUTPUT / f"{name}.png", {"loss": (history.get("train_loss", []), (200, 30, 30)),
                                         "accuracy": (history.get("train_acc", []), (30, 30, 200))})
    print(f"{name}: {'PASSED' if passed else 'FAILED'}  {json.dumps(metrics)}  "
          f"{result['seconds']} s, peak {result['peak_memory_mb']} MB  -> {OUTPUT / (name + '.json')}")
    return 0 if passed else 1
