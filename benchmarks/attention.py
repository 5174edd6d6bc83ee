"""Causal multi-head self-attention, forward + backward, of the reference tinytorch package against PyTorch on the CPU.

    python benchmarks/attention.py [--threads 1] [--runs 20] [--repeats 5]

Times MultiHeadAttention(embed_dim=128, num_heads=4) on a (8, 64, 128) float32 input with
is_causal=True: forward, then backward of the output's sum, the input requiring a gradient (so
the gradients of the input and of all four projections are computed). PyTorch runs the same
computation written as a PyTorch user would: four nn.Linear with the same weights around
torch.nn.functional.scaled_dot_product_attention(is_causal=True), at the same thread count,
when it is importable; it is never a dependency of tinytorch or of the tests (run this script
with a Python that has it, the repository on PYTHONPATH). The median over `--repeats` runs of
`--runs` calls is reported, after a warm-up. Longer sequences show the O(L^2) part.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads for both frameworks (default 1)")
    p.add_argument("--runs", type=int, default=20, help="calls per timed run (default 20)")
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

try:
    import torch
except ImportError:
    torch = None

BATCH, EMBED, HEADS = 8, 128, 4
LENGTHS = (64, 128, 256)  # the first is the reference measurement


def median_ms(step):
    step()
    times = []
    for _ in range(ARGS.repeats):
        t0 = time.perf_counter()
        for _ in range(ARGS.runs):
            step()
        times.append((time.perf_counter() - t0) / ARGS.runs * 1e3)
    return statistics.median(times)


def tinytorch_step(x):
    tt.manual_seed(0)
    mha = nn.MultiHeadAttention(EMBED, HEADS)
    xt = tt.Tensor(x, requires_grad=True)

    def step():
        xt.grad = None
        mha.zero_grad()
        mha(xt, is_causal=True).sum().backward()
    return step, mha


def torch_step(x, mha):
    """The same attention in PyTorch, from tinytorch's weights."""
    projections = {}
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        ours = getattr(mha, name)
        layer = torch.nn.Linear(EMBED, EMBED)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(ours.weight.data))
            layer.bias.copy_(torch.from_numpy(ours.bias.data))
        projections[name] = layer
    xp = torch.from_numpy(x).requires_grad_(True)
    B, L, head_dim = x.shape[0], x.shape[1], EMBED // HEADS

    def heads(t):
        return t.view(B, L, HEADS, head_dim).transpose(1, 2)

    def forward():
        q, k, v = (heads(projections[n](xp)) for n in ("q_proj", "k_proj", "v_proj"))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return projections["out_proj"](out.transpose(1, 2).reshape(B, L, EMBED))

    def step():
        xp.grad = None
        for layer in projections.values():
            layer.zero_grad()
        forward().sum().backward()
    return step, forward


def main():
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
    print(f"causal MultiHeadAttention({EMBED}, {HEADS}) forward + backward, batch {BATCH}, float32, "
          f"{ARGS.threads} thread(s); torch {torch.__version__ if torch else 'not importable (tinytorch alone)'}")
    print(f"{'input':<16} {'tinytorch ms':>12} {'pytorch ms':>11} {'ratio':>7}")
    for length in LENGTHS:
        x = np.random.default_rng(0).standard_normal((BATCH, length, EMBED)).astype(np.float32)
        step, mha = tinytorch_step(x)
        ours = median_ms(step)
        name = f"({BATCH}, {length}, {EMBED})"
        if torch is None:
            print(f"{name:<16} {ours:12.3f} {'-':>11} {'-':>7}", flush=True)
            continue
        step, forward = torch_step(x, mha)
        theirs = median_ms(step)
        diff = np.abs(forward().detach().numpy() - mha(tt.Tensor(x), is_causal=True).data).max()
        print(f"{name:<16} {ours:12.3f} {theirs:11.3f} {ours / theirs:6.2f}x   (outputs differ by at most {diff:.1e})",
              flush=True)


if __name__ == "__main__":
    main()
