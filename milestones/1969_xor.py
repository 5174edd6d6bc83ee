"""1969 XOR (Minsky & Papert): one layer cannot learn XOR; a hidden layer trained by backprop can.

Success: the 2-layer MLP classifies all four XOR points (100%); the single layer stays <= 75%.
Runs only on the tinytorch package: Linear/Sequential (03), losses (04), autograd (06), SGD (07), Trainer (08).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's tinytorch (yours in student mode)

import numpy as np  # noqa: E402

from common import Milestone, check  # noqa: E402
from tinytorch import Tensor, manual_seed  # noqa: E402
from tinytorch.nn import BCELoss, Linear, Sequential, Sigmoid, Tanh  # noqa: E402
from tinytorch.optim import SGD  # noqa: E402
from tinytorch.training import Trainer  # noqa: E402

X = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
Y = Tensor(np.array([[0], [1], [1], [0]], dtype=np.float32))
BATCHES = [(X, Y)]  # full batch: the whole truth table every step
EPOCHS = 500


def train(run, series, model, lr=0.5):
    opt = SGD(model.parameters(), lr=lr, momentum=0.9)
    trainer = Trainer(model, opt, BCELoss(), verbose=False)
    history = trainer.fit(BATCHES, epochs=EPOCHS)
    for epoch, (loss, acc) in enumerate(zip(history["train_loss"], history["train_acc"]), start=1):
        run.record(series, epoch, loss, acc)
        if epoch % 100 == 0:
            run.log(f"  {series:<13} epoch {epoch:4d}: loss {loss:.4f}  accuracy {acc:.0%}")
    return trainer.evaluate(BATCHES)[1], history["train_loss"][-1]


def main():
    run = Milestone("1969_xor", "1969: XOR needs a hidden layer")
    manual_seed(0)
    single_acc, _ = train(run, "single layer", Sequential(Linear(2, 1), Sigmoid()))
    manual_seed(0)
    mlp_acc, mlp_loss = train(run, "2-4-1 MLP", Sequential(Linear(2, 4), Tanh(), Linear(4, 1), Sigmoid()))
    passed = check(single_acc <= 0.75, f"a single layer cannot learn XOR: accuracy {single_acc:.0%} <= 75%")
    passed &= check(mlp_acc == 1.0, f"a 2-layer MLP trained by backprop learns it: accuracy {mlp_acc:.0%} == 100%")
    return run.finish(passed, {"single_layer_accuracy": single_acc, "mlp_accuracy": mlp_acc,
                               "mlp_final_loss": mlp_loss, "epochs": EPOCHS})


if __name__ == "__main__":
    sys.exit(main())
