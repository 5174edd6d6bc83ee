"""Causal MultiHeadAttention forward + backward time of the reference tinytorch package against
PyTorch on the CPU.

    python benchmarks/attention.py [--threads 1] [--runs 50] [--repeats 5]

Times MultiHeadAttention(128, 4) on an (8, 64, 128) float32 batch with is_causal=True: forward,
then backward of the output's sum, with the input requiring a gradient. The reported time is
the median over `--repeats` runs of `--runs` calls, after a warm-up. PyTorch runs
torch.nn.MultiheadAttention(batch_first=True) with the same weights (q/k/v stacked into its
in_proj_weight) and a causal mask, at the same thread count, when it is importable; the script
also checks that both give the same output. PyTorch is never a dependency of tinytorch or of the
tests (run this script with a Python that has it, the repository on PYTHONPATH).
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

B, L, E, H = 8, 64, 128, 4


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
    mha = nn.MultiHeadAttention(E, H)
    x = np.random.default_rng(0).standard_normal((B, L, E)).astype(np.float32)
    xt = tt.Tensor(x, requires_grad=True)

    def tiny_step():
        xt.grad = None
        mha.zero_grad()
        mha(xt, is_causal=True).sum().backward()

    tiny = median_ms(tiny_step)
    print(f"causal MultiHeadAttention({E}, {H}) on ({B}, {L}, {E}) float32, forward + backward, {ARGS.threads} thread(s)")
    print(f"  tinytorch  {tiny:7.2f} ms")
    try:
        import torch
    except ImportError:
        print("  pytorch    not importable here (see the docstring)")
        return
    torch.set_num_threads(ARGS.threads)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True)
    sd = mha.state_dict()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(np.concatenate([sd[f"{n}_proj.weight"] for n in "qkv"])))
        ref.in_proj_bias.copy_(torch.from_numpy(np.concatenate([sd[f"{n}_proj.bias"] for n in "qkv"])))
        ref.out_proj.weight.copy_(torch.from_numpy(sd["out_proj.weight"]))
        ref.out_proj.bias.copy_(torch.from_numpy(sd["out_proj.bias"]))
    blocked = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)  # nn.MultiheadAttention: True = blocked
    xp = torch.from_numpy(x).requires_grad_(True)

    def torch_out():
        return ref(xp, xp, xp, attn_mask=blocked, need_weights=False)[0]

    diff = np.abs(torch_out().detach().numpy() - mha(tt.Tensor(x), is_causal=True).data).max()

    def torch_step():
        xp.grad = None
        ref.zero_grad()
        torch_out().sum().backward()

    t_ref = median_ms(torch_step)
    print(f"  pytorch    {t_ref:7.2f} ms   (tinytorch / pytorch = {tiny / t_ref:.2f}x; outputs differ by at most {diff:.1e})")


if __name__ == "__main__":
    main()
