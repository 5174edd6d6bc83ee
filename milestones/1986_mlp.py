"""1986 MLP (Rumelhart, Hinton & Williams): backprop trains a multi-layer network on handwritten digits.

Success: >= 95% test accuracy on the shipped 8x8 digits (tinytorch.data.load_digits()).
Runs only on the tinytorch package: layers (03), losses (04), data (05), autograd (06), Adam (07), Trainer (08).
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
START = time.perf_counter()

import numpy as np  # noqa: E402

import tinytorch.core.autograd as autograd  # noqa: E402
from tinytorch import Tensor, manual_seed  # noqa: E402
from tinytorch.data import DataLoader, TensorDataset, load_digits  # noqa: E402
from tinytorch.nn import CrossEntropyLoss, Linear, ReLU, Sequential  # noqa: E402
from tinytorch.optim import Adam  # noqa: E402
from tinytorch.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from tinytorch.training import EarlyStopping, Trainer  # noqa: E402
from _local_common import finish  # noqa: E402

EPOCHS = 30

if hasattr(autograd, "enable_autograd"):
    autograd.enable_autograd()


def main():
    manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits()
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32)
    print(f"digits: {len(x_train)} train, {len(x_test)} test, {x_train.shape[1]} pixels, 10 classes")
    train_loader = DataLoader(TensorDataset(Tensor(x_train), Tensor(y_train.astype(np.int64))),
                              batch_size=32, shuffle=True, seed=0)
    test_loader = DataLoader(TensorDataset(Tensor(x_test), Tensor(y_test.astype(np.int64))), batch_size=256)

    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))
    opt = Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=CosineAnnealingLR(opt, T_max=EPOCHS),
                      max_grad_norm=5.0, early_stopping=EarlyStopping(patience=8), verbose=True)
    history = trainer.fit(train_loader, test_loader, epochs=EPOCHS)
    _, test_acc = trainer.evaluate(test_loader)
    print(f"MLP 64-128-64-10 test accuracy: {test_acc:.2%}")
    metrics = {"test_accuracy": test_acc, "train_accuracy": history["train_acc"][-1],
               "epochs": len(history["train_loss"]), "parameters": sum(p.size for p in model.parameters())}
    return finish("1986_mlp", test_acc >= 0.95, metrics, history, START)


if __name__ == "__main__":
    sys.exit(main())
