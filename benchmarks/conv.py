"""Conv2d forward + backward time of the reference tinytorch package against PyTorch on the CPU.

    python benchmarks/conv.py [--threads 1] [--runs 50] [--repeats 5]

Times Conv2d(3 -> 16, kernel 3) on a 32x3x32x32 float32 batch: forward, then backward of the
output's sum, with the input requiring a gradient (so all three gradients are computed). The
reported time is the median over `--repeats` runs of `--runs` calls, after a warm-up. PyTorch
runs the same layer with the same weights, at the same thread count, when it is importable; it
is never a dependency of tinytorch or of the tests (run this script with a Python that has it,
the repository on PYTHONPATH).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads for both frameworks (default 1)")
    p.add_argument("--runs", type=int, default=50, help="calls per timed run (default 50)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported (default 5)")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ[var] = str(ARGS.threads)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
import tinytorch.nn as nn  # noqa: E402


def median_ms(step):
    step()
    times = []
    for _ in range(ARGS.repeats):
        t0 = time.perf_counter()
        for _ in range(ARGS.runs):
            step()
        times.append((time.perf_counter() - t0) / ARGS.runs * 1e3)
    return statistics.median(times)


def main():
    tt.manual_seed(0)
    layer = nn.Conv2d(3, 16, 3)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    xt = tt.Tensor(x, requires_grad=True)

    def tiny_step():
        xt.grad = None
        layer.zero_grad()
        layer(xt).sum().backward()

    tiny = median_ms(tiny_step)
    print(f"Conv2d(3->16, k=3) on 32x3x32x32 float32, forward + backward, {ARGS.threads} thread(s)")
    print(f"  tinytorch  {tiny:7.2f} ms")
    try:
        import torch
    except ImportError:
        print("  pytorch    not importable here (see the docstring)")
        return
    torch.set_num_threads(ARGS.threads)
    conv = torch.nn.Conv2d(3, 16, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(layer.weight.data))
        conv.bias.copy_(torch.from_numpy(layer.bias.data))
    xp = torch.from_numpy(x).requires_grad_(True)

    def torch_step():
        xp.grad = None
        conv.zero_grad()
        conv(xp).sum().backward()

    ref = median_ms(torch_step)
    print(f"  pytorch    {ref:7.2f} ms   (tinytorch / pytorch = {tiny / ref:.2f}x)")


if __name__ == "__main__":
    main()
