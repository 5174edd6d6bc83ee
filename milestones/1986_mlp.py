"""1986 MLP (Rumelhart, Hinton & Williams): backprop trains a multi-layer network on handwritten digits.

Success: >= 95% test accuracy on the shipped 8x8 digits (tinytorch.data.load_digits()). Early
stopping watches a validation split carved from the training set; the test set is used once.
Runs only on the tinytorch package: layers (03), losses (04), data (05), autograd (06), Adam (07), Trainer (08).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's tinytorch (yours in student mode)

import numpy as np  # noqa: E402

from common import Milestone, check  # noqa: E402
from tinytorch import Tensor, manual_seed  # noqa: E402
from tinytorch.data import DataLoader, TensorDataset, load_digits  # noqa: E402
from tinytorch.nn import CrossEntropyLoss, Linear, ReLU, Sequential  # noqa: E402
from tinytorch.optim import Adam  # noqa: E402
from tinytorch.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from tinytorch.training import EarlyStopping, Trainer  # noqa: E402

EPOCHS = 30
VALIDATION = 0.15  # share of the training images held out for early stopping


def loader(x, y, **kwargs):
    return DataLoader(TensorDataset(Tensor(x.reshape(len(x), -1)), Tensor(y.astype(np.int64))), **kwargs)


def main():
    run = Milestone("1986_mlp", "1986: backprop on handwritten digits")
    manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits()
    order = np.random.default_rng(0).permutation(len(x_train))
    n_val = int(len(x_train) * VALIDATION)
    val, train = order[:n_val], order[n_val:]
    run.log(f"digits: {len(train)} train, {n_val} validation, {len(x_test)} test; 64 pixels, 10 classes")
    train_loader = loader(x_train[train], y_train[train], batch_size=32, shuffle=True, seed=0)
    val_loader = loader(x_train[val], y_train[val], batch_size=256)

    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))
    opt = Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=CosineAnnealingLR(opt, T_max=EPOCHS),
                      max_grad_norm=5.0, early_stopping=EarlyStopping(patience=8), verbose=True)
    history = trainer.fit(train_loader, val_loader, epochs=EPOCHS)
    for epoch, values in enumerate(zip(history["train_loss"], history["train_acc"], history["val_loss"], history["val_acc"]), 1):
        run.record("train", epoch, values[0], values[1])
        run.record("validation", epoch, values[2], values[3])
    _, test_acc = trainer.evaluate(loader(x_test, y_test, batch_size=256))
    passed = check(test_acc >= 0.95, f"MLP 64-128-64-10 test accuracy {test_acc:.2%} >= 95%")
    return run.finish(passed, {"test_accuracy": test_acc, "train_accuracy": history["train_acc"][-1],
                               "epochs": len(history["train_loss"]),
                               "parameters": sum(p.size for p in model.parameters())})


if __name__ == "__main__":
    sys.exit(main())
