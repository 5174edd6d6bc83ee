"""The reference training tools (tinytorch.training, lr_scheduler, nn.utils) against closed forms."""
import math
import os

import numpy as np
import pytest

from tinytorch import Tensor
from tinytorch.core.tensor import get_rng, manual_seed
from tinytorch.nn.utils import clip_grad_norm_
from tinytorch.optim import SGD, Adam
from tinytorch.optim.lr_scheduler import CosineAnnealingLR, StepLR
from tinytorch.training import EarlyStopping, Trainer, load_checkpoint, save_checkpoint


def param(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True, dtype=np.float64)


class HandLinear:
    """Softmax regression with a hand-written gradient: a model without autograd."""

    def __init__(self, n_in, n_out, seed):
        r = np.random.default_rng(seed)
        self.W = param(r.standard_normal((n_out, n_in)) * 0.1)
        self.b = param(np.zeros(n_out))

    def parameters(self):
        return [self.W, self.b]

    def state_dict(self):
        return {"W": self.W.data.copy(), "b": self.b.data.copy()}

    def load_state_dict(self, sd):
        self.W.data[...] = sd["W"]
        self.b.data[...] = sd["b"]

    def __call__(self, x):
        out = Tensor(x.data @ self.W.data.T + self.b.data, dtype=np.float64)
        out._x = x.data
        return out


class _Loss(Tensor):
    def backward(self, gradient=None):
        model, x, d = self._ctx
        model.W.grad = Tensor(d.T @ x, dtype=np.float64)
        model.b.grad = Tensor(d.sum(0), dtype=np.float64)


def ce(model):
    def loss_fn(logits, y):
        z = logits.data - logits.data.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        t = y.data.astype(int)
        loss = _Loss(-logp[np.arange(len(t)), t].mean(), dtype=np.float64)
        d = np.exp(logp)
        d[np.arange(len(t)), t] -= 1
        loss._ctx = (model, logits._x, d / len(t))
        return loss
    return loss_fn


class Batches:
    def __init__(self, x, y, bs):
        self.x, self.y, self.bs = x, y, bs

    def __iter__(self):
        idx = get_rng().permutation(len(self.y))
        for i in range(0, len(idx), self.bs):
            j = idx[i:i + self.bs]
            yield Tensor(self.x[j], dtype=np.float64), Tensor(self.y[j])


def data(n=120, seed=0):
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    x = r.standard_normal((n, 4)) + 2 * np.eye(3, 4)[y]
    return x, y


def test_step_lr_over_many_epochs():
    opt = SGD([param([1.0])], lr=0.3)
    s = StepLR(opt, step_size=7, gamma=0.3)
    for epoch in range(1, 50):
        s.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.3 * 0.3 ** (epoch // 7), rel=1e-12)
    assert s.get_last_lr() == [opt.param_groups[0]["lr"]]


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (25, 0.001), (3, 0.05)])
def test_cosine_closed_form_over_many_steps(T_max, eta_min):
    opt = SGD([{"params": [param([1.0])]}, {"params": [param([1.0])], "lr": 0.01}], lr=0.1)
    s = CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
    assert s.get_last_lr() == pytest.approx([0.1, 0.01], abs=1e-15)
    for t in range(1, 3 * T_max):
        s.step()
        for g, base in zip(opt.param_groups, [0.1, 0.01]):
            want = eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2
            assert g["lr"] == pytest.approx(want, abs=1e-15)


def test_scheduler_state_round_trip():
    opt = SGD([param([1.0])], lr=0.1)
    s = CosineAnnealingLR(opt, T_max=8)
    for _ in range(3):
        s.step()
    opt2 = SGD([param([1.0])], lr=0.1)
    s2 = CosineAnnealingLR(opt2, T_max=8)
    s2.load_state_dict(s.state_dict())
    s.step(); s2.step()
    assert s.get_last_lr() == s2.get_last_lr()


def test_clip_grad_norm_returns_norm_and_scales():
    r = np.random.default_rng(0)
    ps = [param(r.standard_normal(s)) for s in [(3, 4), (5,), ()]]
    for p in ps:
        p.grad = Tensor(r.standard_normal(p.shape) * 10, dtype=np.float64)
    flat = np.concatenate([p.grad.data.ravel() for p in ps])
    norm = np.linalg.norm(flat)
    got = clip_grad_norm_(ps + [param([1.0])], max_norm=2.0)
    assert got == pytest.approx(norm, rel=1e-12)
    after = np.concatenate([p.grad.data.ravel() for p in ps])
    np.testing.assert_allclose(after, flat * 2.0 / (norm + 1e-6), rtol=1e-12)
    assert np.linalg.norm(after) == pytest.approx(2.0, abs=1e-5)
    again = clip_grad_norm_(ps, max_norm=5.0)           # already below: unchanged
    assert again == pytest.approx(2.0, abs=1e-5)
    np.testing.assert_array_equal(np.concatenate([p.grad.data.ravel() for p in ps]), after)


def test_clip_single_tensor_and_hand_value():
    p = param([0.0, 0.0])
    p.grad = Tensor(np.array([3.0, 4.0]), dtype=np.float64)
    assert clip_grad_norm_(p, 1.0) == 5.0
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8], atol=1e-6)


def test_early_stopping_triggers_at_the_right_epoch():
    es = EarlyStopping(patience=3, min_delta=0.1)
    values = [1.0, 0.85, 0.8, 0.79, 0.7, 0.74, 0.66, 0.65]
    flags = [es.step(v) for v in values]
    # improvements: 1.0, 0.85 (by 0.15); 0.8, 0.79 no; 0.7 (0.15 below 0.85) yes; 0.74, 0.66, 0.65 no -> stop at 8th
    assert flags == [False] * 7 + [True]
    assert es.best == 0.7


def test_checkpoint_round_trip_without_pickle(tmp_path):
    m = HandLinear(4, 3, seed=0)
    opt = Adam(m.parameters(), lr=0.1)
    sch = StepLR(opt, 2, 0.5)
    x, y = data()
    for _ in range(3):
        ce(m)(m(Tensor(x, dtype=np.float64)), Tensor(y)).backward()
        opt.step()
        sch.step()
    path = str(tmp_path / "c.npz")
    save_checkpoint(path, m, opt, epoch=3, scheduler=sch, extra={"k": [1, 2]})
    with np.load(path, allow_pickle=False) as z:        # loads without pickle
        assert set(z.files) >= {"model/W", "model/b", "meta", "optim/state/0/exp_avg", "optim/state/1/exp_avg_sq"}
    m2 = HandLinear(4, 3, seed=1)
    opt2 = Adam(m2.parameters(), lr=0.1)
    sch2 = StepLR(opt2, 2, 0.5)
    meta = load_checkpoint(path, m2, opt2, sch2)
    assert meta["epoch"] == 3 and meta["extra"] == {"k": [1, 2]}
    assert opt2.state[m2.W]["step"] == 3 and sch2.last_epoch == 3
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for mm, oo in [(m, opt), (m2, opt2)]:
        ce(mm)(mm(Tensor(x, dtype=np.float64)), Tensor(y)).backward()
        oo.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def _trainer(path, seed=3):
    m = HandLinear(4, 3, seed=seed)
    opt = SGD(m.parameters(), lr=0.5, momentum=0.9)
    return m, Trainer(m, opt, ce(m), scheduler=CosineAnnealingLR(opt, T_max=8), max_grad_norm=1.0,
                      checkpoint_path=path, early_stopping=EarlyStopping(patience=20), verbose=False)


def test_resume_equals_uninterrupted(tmp_path):
    x, y = data()
    manual_seed(11)
    m_full, t_full = _trainer(str(tmp_path / "full.npz"))
    h_full = t_full.fit(Batches(x, y, 10), Batches(x, y, 40), epochs=8)
    manual_seed(11)
    _, t_a = _trainer(str(tmp_path / "part.npz"))
    t_a.fit(Batches(x, y, 10), Batches(x, y, 40), epochs=5)
    manual_seed(999)
    m_b, t_b = _trainer(str(tmp_path / "part.npz"), seed=42)
    h_b = t_b.fit(Batches(x, y, 10), Batches(x, y, 40), epochs=8, resume_from=str(tmp_path / "part.npz"))
    for p, q in zip(m_full.parameters(), m_b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    for k in ["train_loss", "train_acc", "val_loss", "val_acc", "lr"]:
        assert h_b[k] == h_full[k]
    assert h_full["val_acc"][-1] > 0.8 and h_full["train_loss"][-1] < h_full["train_loss"][0]


def test_trainer_early_stopping_and_progress_line(capsys, tmp_path):
    x, y = data()
    m = HandLinear(4, 3, seed=0)
    opt = SGD(m.parameters(), lr=0.0)
    t = Trainer(m, opt, ce(m), early_stopping=EarlyStopping(patience=3), verbose=True)
    h = t.fit(Batches(x, y, 30), Batches(x, y, 60), epochs=20)
    assert len(h["val_loss"]) == 4        # epoch 1 sets the best; 3 more without improvement
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch   1/20") and "early stop" in lines[-1]
