"""1998 CNN (LeCun et al., LeNet-5): convolution's inductive bias beats an MLP of the same size.

Success on the shipped 8x8 digits: the CNN reaches >= 97% test accuracy and >= 2 points more
than an MLP with about as many parameters (6,090 against 6,085), both trained the same way: Adam,
cosine schedule, the same epochs, batches and seed, no early stopping, so nothing is chosen on
the test set (its curve is plotted, never used to decide anything).

`--data DIR` trains on the MNIST IDX files (Module 05's load_mnist) or the CIFAR-10 python
batches (load_cifar10) found in DIR instead, on the first `--limit` training images so that a
run stays short; the CNN must then beat the MLP, and reach >= 97% on MNIST.
Runs only on the tinytorch package: layers (03), losses (04), data (05), autograd (06),
Adam (07), Trainer (08), Conv2d and MaxPool2d (09).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's tinytorch (yours in student mode)

import numpy as np  # noqa: E402

from common import Milestone, check  # noqa: E402
from tinytorch import Tensor, manual_seed  # noqa: E402
from tinytorch.data import DataLoader, TensorDataset, load_cifar10, load_digits, load_mnist  # noqa: E402
from tinytorch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential  # noqa: E402
from tinytorch.optim import Adam  # noqa: E402
from tinytorch.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from tinytorch.training import Trainer  # noqa: E402

MARGIN = 0.02  # "a clear margin": the CNN must get 2% more of the test images right than the MLP


def cnn(channels, size, classes=10):
    """Two conv (3x3, same padding) + ReLU + 2x2 max-pool blocks and a linear head."""
    return Sequential(Conv2d(channels, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                      Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(32 * (size // 4) ** 2, classes))


def mlp_like(model, inputs, classes=10):
    """One hidden layer, as wide as gives about the CNN's parameter count."""
    target = sum(p.size for p in model.parameters())
    hidden = max(1, round((target - classes) / (inputs + 1 + classes)))
    return Sequential(Flatten(), Linear(inputs, hidden), ReLU(), Linear(hidden, classes))


def load(data_dir, limit):
    """((x, y), (x_test, y_test)) as NCHW float32 images, and the dataset's name."""
    if data_dir is None:
        (images, labels), (test_images, test_labels) = load_digits()
        return (images[:, None], labels), (test_images[:, None], test_labels), "digits 8x8"
    d = Path(data_dir).expanduser()
    if (d / "data_batch_1").is_file():
        (x, y), (xt, yt) = load_cifar10(d)
        name = "CIFAR-10"
    else:
        (x, y), (xt, yt) = load_mnist(d, "train"), load_mnist(d, "test")
        x, xt, name = x[:, None], xt[:, None], "MNIST"
    return (x[:limit], y[:limit]), (xt, yt), name


def train(run, label, model, train_loader, test_loader, epochs):
    opt = Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=CosineAnnealingLR(opt, T_max=epochs), verbose=False)
    history = trainer.fit(train_loader, test_loader, epochs=epochs)
    for epoch, (tl, ta, vl, va) in enumerate(zip(history["train_loss"], history["train_acc"],
                                                 history["val_loss"], history["val_acc"]), 1):
        run.record(f"{label} train", epoch, tl, ta)
        run.record(f"{label} test", epoch, vl, va)
    run.log(f"{label}: {sum(p.size for p in model.parameters())} parameters, train accuracy "
            f"{history['train_acc'][-1]:.2%}, test accuracy {history['val_acc'][-1]:.2%}")
    return history["val_acc"][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a directory holding MNIST IDX files or CIFAR-10 python batches")
    parser.add_argument("--limit", type=int, default=10_000, help="training images used with --data (default 10000)")
    parser.add_argument("--epochs", type=int, default=None, help="default 30 on digits, 4 with --data")
    args = parser.parse_args(argv)
    epochs = args.epochs or (30 if args.data is None else 4)

    run = Milestone("1998_cnn", "1998: a convolutional network against an MLP of the same size")
    (x, y), (xt, yt), name = load(args.data, args.limit)
    channels, size = x.shape[1], x.shape[2]
    run.log(f"{name}: {len(x)} train, {len(xt)} test images of {channels}x{size}x{size}; {epochs} epochs each")
    train_loader = DataLoader(TensorDataset(Tensor(x), Tensor(y)), batch_size=32, shuffle=True, seed=0)
    test_loader = DataLoader(TensorDataset(Tensor(xt), Tensor(yt)), batch_size=256)

    manual_seed(0)
    conv = cnn(channels, size)
    cnn_acc = train(run, "CNN", conv, train_loader, test_loader, epochs)
    manual_seed(0)
    mlp = mlp_like(conv, channels * size * size)
    mlp_acc = train(run, "MLP", mlp, train_loader, test_loader, epochs)

    passed = check(cnn_acc - mlp_acc >= MARGIN,
                   f"CNN {cnn_acc:.2%} beats the MLP {mlp_acc:.2%} by >= {MARGIN * 100:.0f} points")
    if name != "CIFAR-10":
        passed &= check(cnn_acc >= 0.97, f"CNN test accuracy {cnn_acc:.2%} >= 97%")
    return run.finish(passed, {"dataset": name, "cnn_test_accuracy": cnn_acc, "mlp_test_accuracy": mlp_acc,
                               "cnn_parameters": sum(p.size for p in conv.parameters()),
                               "mlp_parameters": sum(p.size for p in mlp.parameters()), "epochs": epochs})


if __name__ == "__main__":
    sys.exit(main())
