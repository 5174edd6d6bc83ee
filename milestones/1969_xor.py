"""1969 XOR (Minsky & Papert): one layer cannot learn XOR; a hidden layer trained by backprop can.

Success: the 2-layer MLP classifies all four XOR points (100%); the single layer stays <= 75%.
Runs only on the tinytorch package: Linear/Sequential (03), losses (04), autograd (06), SGD (07), Trainer (08).
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
from tinytorch.nn import BCELoss, Linear, Sequential, Sigmoid, Tanh  # noqa: E402
from tinytorch.optim import SGD  # noqa: E402
from tinytorch.training import Trainer  # noqa: E402
from _local_common import finish  # noqa: E402

if hasattr(autograd, "enable_autograd"):
    autograd.enable_autograd()

X = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
Y = Tensor(np.array([[0], [1], [1], [0]], dtype=np.float32))
BATCHES = [(X, Y)]  # full batch: the whole truth table every step


def train(model, epochs, lr):
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    trainer = Trainer(model, opt, BCELoss(), verbose=False)
    history = trainer.fit(BATCHES, epochs=epochs)
    _, acc = trainer.evaluate(BATCHES)
    return acc, history


def main():
    manual_seed(0)
    single = Sequential(Linear(2, 1), Sigmoid())
    single_acc, _ = train(single, epochs=500, lr=0.5)
    print(f"single layer (perceptron-like) after 500 epochs: accuracy {single_acc:.0%}")

    manual_seed(0)
    mlp = Sequential(Linear(2, 4), Tanh(), Linear(4, 1), Sigmoid())
    mlp_acc, history = train(mlp, epochs=500, lr=0.5)
    for e in range(0, 500, 100):
        print(f"  mlp epoch {e + 1:4d}: loss {history['train_loss'][e]:.4f}  accuracy {history['train_acc'][e]:.0%}")
    print(f"2-layer MLP (2-4-1, tanh) after 500 epochs: accuracy {mlp_acc:.0%}, final loss {history['train_loss'][-1]:.4f}")

    passed = mlp_acc == 1.0 and single_acc <= 0.75
    metrics = {"single_layer_accuracy": single_acc, "mlp_accuracy": mlp_acc,
               "mlp_final_loss": history["train_loss"][-1], "epochs": 500}
    return finish("1969_xor", passed, metrics, history, START)


if __name__ == "__main__":
    sys.exit(main())
