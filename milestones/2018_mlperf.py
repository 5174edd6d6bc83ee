"""2018 MLPerf: optimisation is measurable: a model 4x smaller and 4x faster, within 1 point.

The baseline is the 1998 CNN widened to 32 and 64 channels (the most accurate model of the
family on the shipped digits). Each model is measured as in MLPerf's closed division: accuracy
first, then the median inference time of the 360 test images with a 95% confidence interval
(Module 19's Benchmark). Three steps:
1. distillation (Module 16): a CNN of the same shape with 6 and 12 channels learns from the
   baseline's logits (DistillationLoss, T = 4, alpha = 0.9);
2. quantization (Module 15): its weights are stored as int8 codes with one scale and zero point
   per tensor (size = codes + float32 biases + quantization parameters) and dequantized once at
   load: numpy has no int8 BLAS, so int8 arithmetic would be slower here (Module 15 measured it);
3. acceleration (Module 17): the deployed model compiled to plain numpy for inference (no Tensors
   or graph; ReLU after pooling, which it commutes with, so on a quarter of the values).
The report (course/schemas/optimization_report.schema.json) is written to
milestones/output/2018_mlperf_report.json and must be accepted by course/report.py (also
`tito report validate`): >= 4x smaller, >= 4x faster with non-overlapping latency intervals,
<= 1 accuracy point lost. Plots: the training curves, and accuracy against latency and size
(2018_mlperf_tradeoffs.png). Runs only on the tinytorch package: Modules 01-09, 15-17 and 19.
"""
import json
import os
import sys
from pathlib import Path

# one BLAS thread for every model measured (before numpy loads BLAS): on matrices this small a
# second thread costs more than it brings, and the benchmark records the setting
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's tinytorch (yours in student mode)

import numpy as np  # noqa: E402

from common import OUTPUT_DIR, Milestone, check  # noqa: E402
from course.report import MLPERF_TARGETS, validate_report  # noqa: E402
from tinytorch import Tensor, manual_seed, no_grad  # noqa: E402
from tinytorch.benchmarking import Benchmark, environment  # noqa: E402
from tinytorch.data import load_digits  # noqa: E402
from tinytorch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential  # noqa: E402
from tinytorch.optim import Adam  # noqa: E402
from tinytorch.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from tinytorch.core.conv import im2col  # noqa: E402
from tinytorch.optimization import DistillationLoss, dequantize_int8, quantize_int8  # noqa: E402

TEACHER_EPOCHS, STUDENT_EPOCHS, BATCH = 20, 60, 32
RUNS = 30  # timed inferences per model


def cnn(c1, c2):
    return Sequential(Conv2d(1, c1, 3, padding=1), ReLU(), MaxPool2d(2),
                      Conv2d(c1, c2, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(c2 * 4, 10))


def train(run, label, model, x, y, epochs, teacher=None):
    """Adam with a cosine schedule; from the labels, or distilled from the teacher's logits."""
    opt = Adam(model.parameters(), lr=3e-3)
    schedule = CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = CrossEntropyLoss() if teacher is None else DistillationLoss(temperature=4.0, alpha=0.9)
    if teacher is not None:
        teacher.eval()
        with no_grad():
            soft = teacher(Tensor(x)).data
    order_rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            b = order[start:start + BATCH]
            out = model(Tensor(x[b]))
            loss = loss_fn(out, Tensor(y[b])) if teacher is None else loss_fn(out, Tensor(soft[b]), Tensor(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(b), count + len(b)
        schedule.step()
        run.record(label, epoch, total / count, accuracy(model, x, y))
    return model


def accuracy(model, x, y):
    was = model.training
    model.eval()
    with no_grad():
        acc = float((model(Tensor(x)).data.argmax(axis=1) == y).mean())
    model.train(was)
    return acc


def float_bytes(model):
    return sum(p.data.nbytes for p in model.parameters())


def quantized_copy(model):
    """(a float model rebuilt from int8 weight codes, the bytes stored): every weight tensor becomes
    int8 codes + a float32 scale + an int32 zero point; biases stay float32."""
    c1, c2 = getattr(model, "0").weight.shape[0], getattr(model, "3").weight.shape[0]
    deployed, stored = cnn(c1, c2), 0
    for (name, p), (_, q) in zip(model.named_parameters(), deployed.named_parameters()):
        if name.endswith("weight"):
            codes, scale, zero_point = quantize_int8(p)
            q.data[...] = dequantize_int8(codes, scale, zero_point).data
            stored += codes.data.nbytes + 4 + 4
        else:
            q.data[...] = p.data
            stored += p.data.nbytes
    return deployed, stored


class Compiled:
    """Inference-only form of a cnn(): plain numpy on the weights, no Tensors, no graph (what an
    inference runtime does). Each block is conv (im2col and one matmul), then 2x2 max pooling
    as the maximum of four strided views, then ReLU on the pooled values: ReLU and max commute,
    so it touches a quarter of the values."""

    def __init__(self, model):
        layers = [getattr(model, str(i)) for i in (0, 3, 7)]
        self.convs = [(l.weight.data.reshape(l.weight.shape[0], -1), l.bias.data[:, None]) for l in layers[:2]]
        self.head = (layers[2].weight.data.T.copy(), layers[2].bias.data)
        self.training = False

    def __call__(self, x):
        h = x.data
        for w, b in self.convs:
            B, _, H, W = h.shape
            out = np.matmul(w, im2col(np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1))), 3))
            out += b
            out = out.reshape(B, -1, H, W)
            h = np.maximum(np.maximum(out[:, :, 0::2, 0::2], out[:, :, 0::2, 1::2]),
                           np.maximum(out[:, :, 1::2, 0::2], out[:, :, 1::2, 1::2]))
            np.maximum(h, 0, out=h)
        return Tensor(h.reshape(len(h), -1) @ self.head[0] + self.head[1])

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def parameters(self):
        return [Tensor(a) for pair in self.convs + [self.head] for a in pair]


def measure(name, model, size_bytes, x, y):
    model.eval()
    xt = Tensor(x)

    def infer():
        with no_grad():
            model(xt)
    timing = Benchmark(infer, runs=RUNS, warmup=3, name=name).run()
    ms = {key: 1e3 * value for key, value in zip(("median", "ci_low", "ci_high"), (timing.median, *timing.ci))}
    return {"name": name, "parameters": sum(p.size for p in model.parameters()), "size_bytes": int(size_bytes),
            "accuracy": accuracy(model, x, y), "latency_ms": dict(ms, runs=RUNS)}


def plot_tradeoffs(measured, path):
    """Accuracy against latency, one point per model, its area proportional to the bytes stored."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    biggest = max(m["size_bytes"] for m in measured)
    for i, m in enumerate(measured):
        lat = m["latency_ms"]
        ax.errorbar(lat["median"], 100 * m["accuracy"], xerr=[[lat["median"] - lat["ci_low"]], [lat["ci_high"] - lat["median"]]],
                    fmt="none", ecolor="gray")
        ax.scatter(lat["median"], 100 * m["accuracy"], s=40 + 1500 * m["size_bytes"] / biggest, alpha=0.6)
        ax.annotate(f"{m['name']}\n{m['size_bytes']:,} B", (lat["median"], 100 * m["accuracy"]),
                    textcoords="offset points", xytext=(8, -22 if i % 2 else 8), fontsize=8)
    ax.set(xlabel="latency of 360 images, median ms (95% CI)", ylabel="test accuracy (%)", xscale="log",
           title="2018: accuracy against latency; area = bytes stored")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    run = Milestone("2018_mlperf", "2018: a model 4x smaller and 4x faster within 1 point")
    (x, y), (x_test, y_test) = load_digits()
    x, x_test = x[:, None], x_test[:, None]
    run.log(f"digits: {len(x)} train, {len(x_test)} test images; inference timed on all test images in one batch")

    manual_seed(0)
    teacher = train(run, "baseline 32/64 (labels)", cnn(32, 64), x, y, TEACHER_EPOCHS)
    baseline = measure("CNN 32/64, float32", teacher, float_bytes(teacher), x_test, y_test)
    manual_seed(0)
    student = train(run, "student 6/12 (distilled)", cnn(6, 12), x, y, STUDENT_EPOCHS, teacher=teacher)
    distilled = dict(measure("CNN 6/12 distilled, float32", student, float_bytes(student), x_test, y_test),
                     techniques=["distillation", "architecture"])
    deployed, stored = quantized_copy(student)
    quantized = dict(measure("CNN 6/12 distilled, int8 weights", deployed, stored, x_test, y_test),
                     techniques=["quantization"])
    compiled = Compiled(deployed)
    final = dict(measure("CNN 6/12 int8 weights, compiled", compiled, stored, x_test, y_test), techniques=["acceleration"])
    for m in (baseline, distilled, quantized, final):
        lat = m["latency_ms"]
        run.log(f"{m['name']:<34} {m['parameters']:>6} params {m['size_bytes']:>7} B  accuracy {m['accuracy']:.2%}  "
                f"latency {lat['median']:.3f} ms [{lat['ci_low']:.3f}, {lat['ci_high']:.3f}]")

    report = {"schema_version": "1.0", "name": "2018 MLPerf-style: digits CNN",
              "task": {"dataset": "digits 8x8 (shipped)", "metric": "accuracy", "test_examples": int(len(y_test))},
              "environment": environment(), "baseline": baseline, "steps": [distilled, quantized, final],
              "claims": {"size_reduction": baseline["size_bytes"] / final["size_bytes"],
                         "speedup": baseline["latency_ms"]["median"] / final["latency_ms"]["median"],
                         "accuracy_drop_points": 100 * (baseline["accuracy"] - final["accuracy"])}}
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    plot_tradeoffs([baseline, distilled, quantized, final], OUTPUT_DIR / "2018_mlperf_tradeoffs.png")
    report_path = OUTPUT_DIR / "2018_mlperf_report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    reasons = validate_report(report, MLPERF_TARGETS)
    for reason in reasons:
        run.log(f"  report rejected: {reason}")
    claims = report["claims"]
    passed = check(claims["size_reduction"] >= 4, f"{claims['size_reduction']:.1f}x smaller (>= 4x)")
    passed &= check(claims["speedup"] >= 4, f"{claims['speedup']:.1f}x faster (>= 4x)")
    passed &= check(claims["accuracy_drop_points"] <= 1, f"{claims['accuracy_drop_points']:.2f} accuracy points lost (<= 1)")
    passed &= check(not reasons, f"the report {report_path.name} is accepted by the validator")
    return run.finish(passed, dict(claims, baseline_accuracy=baseline["accuracy"], final_accuracy=final["accuracy"],
                                   report=str(report_path)))


if __name__ == "__main__":
    sys.exit(main())
