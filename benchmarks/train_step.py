"""Train-step time of the reference tinytorch package against PyTorch on the CPU, side by side.

    python benchmarks/train_step.py [--threads 1] [--steps 200] [--repeats 5] [--profile]

Each model takes SGD steps (zero_grad, forward, cross-entropy, backward, step) on one fixed
seeded batch; the time per step is the median over `--repeats` runs of `--steps` steps, after
a warm-up. PyTorch runs the same models with the same initial weights and data, at the same
thread count, when it is importable; it is never a dependency of tinytorch or of the tests
(install it in a separate environment and run this script with that Python, the repository on
PYTHONPATH). `--profile` prints where tinytorch's own step spends its time (cProfile), to see
the framework's overhead beside the BLAS calls.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads for both frameworks (default 1)")
    p.add_argument("--steps", type=int, default=200, help="steps per timed run (default 200)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported (default 5)")
    p.add_argument("--profile", metavar="MODEL", nargs="?", const="MLP 784-256-10, batch 64",
                   help="profile tinytorch's step of MODEL (default the first MLP; any name of MODELS, or a prefix) with cProfile")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ[var] = str(ARGS.threads)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
from tinytorch import nn  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

# name -> (model builder taking an nn namespace, input shape of one batch); the MLPs are issue 9's
# reference measurements, the conv net issue 10's
def mlp(widths):
    """Linear layers with ReLU between them, built from either framework's nn namespace."""
    def build(nn_namespace):
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers += [nn_namespace.Linear(a, b)] + ([nn_namespace.ReLU()] if i < len(widths) - 2 else [])
        return nn_namespace.Sequential(*layers)
    return build


def conv_net(nn_namespace):
    """Two conv (3x3, same padding) + ReLU + 2x2 max-pool blocks and a linear head, for 1x28x28 images."""
    n = nn_namespace
    return n.Sequential(n.Conv2d(1, 16, 3, padding=1), n.ReLU(), n.MaxPool2d(2),
                        n.Conv2d(16, 32, 3, padding=1), n.ReLU(), n.MaxPool2d(2),
                        n.Flatten(), n.Linear(32 * 7 * 7, 10))


MODELS = {"MLP 784-256-10, batch 64": (mlp([784, 256, 10]), (64, 784)),
          "MLP 784-512-512-10, batch 128": (mlp([784, 512, 512, 10]), (128, 784)),
          "CNN 2x(conv+pool)+linear, 32x1x28x28": (conv_net, (32, 1, 28, 28))}
CLASSES = 10


def data(shape):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, CLASSES, shape[0])


def sgd_step(model, optim_namespace, loss_fn, x, y):
    """One training step of either framework: zero_grad, forward, loss, backward, SGD step."""
    opt = optim_namespace.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def tinytorch_step(build, shape):
    tt.manual_seed(0)
    model = build(nn)
    x, y = data(shape)
    return sgd_step(model, tt.optim, nn.CrossEntropyLoss(), tt.Tensor(x), tt.Tensor(y)), \
        [p.data for p in model.parameters()]


def torch_step(build, shape, weights):
    model = build(torch.nn)
    with torch.no_grad():  # the same initial weights as tinytorch's model
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w.copy()))
    x, y = data(shape)
    return sgd_step(model, torch.optim, torch.nn.CrossEntropyLoss(), torch.from_numpy(x), torch.from_numpy(y))


def time_per_step(step, steps, repeats):
    for _ in range(20):
        step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


def main() -> int:
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
    print(f"threads {ARGS.threads}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not importable (tinytorch alone)'}")
    print(f"{'model':<38} {'tinytorch ms':>12} {'pytorch ms':>11} {'ratio':>7}")
    for name, (build, shape) in MODELS.items():
        step, weights = tinytorch_step(build, shape)
        ours = time_per_step(step, ARGS.steps, ARGS.repeats)
        if torch is None:
            print(f"{name:<38} {ours * 1e3:12.3f} {'-':>11} {'-':>7}", flush=True)
            continue
        theirs = time_per_step(torch_step(build, shape, weights), ARGS.steps, ARGS.repeats)
        print(f"{name:<38} {ours * 1e3:12.3f} {theirs * 1e3:11.3f} {ours / theirs:6.2f}x", flush=True)
    if ARGS.profile:
        import cProfile
        import pstats
        name = next(n for n in MODELS if n.startswith(ARGS.profile))
        step, _ = tinytorch_step(*MODELS[name])
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [step() for _ in range(ARGS.steps)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
