"""The reference optimizers (tinytorch.optim) against hand-computed updates, step by step."""
import numpy as np
import pytest

from tinytorch import Tensor
from tinytorch.optim import SGD, Adam, AdamW, Optimizer


def param(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True, dtype=np.float64)


def set_grad(p, values):
    p.grad = Tensor(np.array(values, dtype=np.float64), dtype=np.float64)


def test_sgd_plain_three_steps():
    p = param([1.0, -2.0])
    opt = SGD([p], lr=0.1)
    for g, want in [([1.0, 2.0], [0.9, -2.2]), ([0.5, 0.0], [0.85, -2.2]), ([-1.0, 1.0], [0.95, -2.3])]:
        set_grad(p, g)
        opt.step()
        np.testing.assert_allclose(p.data, want, atol=1e-12)


def test_sgd_momentum_buffer_starts_at_first_gradient():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    for want_p, want_buf in [(0.9, 1.0), (0.71, 1.9), (0.439, 2.71)]:
        set_grad(p, [1.0])
        opt.step()
        assert p.data[0] == pytest.approx(want_p, abs=1e-12)
        assert opt.state[p]["momentum_buffer"][0] == pytest.approx(want_buf, abs=1e-12)


def test_sgd_weight_decay_enters_the_gradient():
    # p=1, g=1, lr=0.1, wd=0.5: p <- p - 0.1 * (1 + 0.5 p): 0.85, 0.7075, 0.572125
    p = param([1.0])
    opt = SGD([p], lr=0.1, weight_decay=0.5)
    for want in [0.85, 0.7075, 0.572125]:
        set_grad(p, [1.0])
        opt.step()
        assert p.data[0] == pytest.approx(want, abs=1e-12)


def test_sgd_momentum_and_weight_decay():
    # lr=0.1, momentum=0.5, wd=0.1, p=2, g=1 every step.
    # step1: d=1+0.2=1.2, buf=1.2, p=1.88
    # step2: d=1+0.188=1.188, buf=0.6+1.188=1.788, p=1.88-0.1788=1.7012
    # step3: d=1+0.17012=1.17012, buf=0.894+1.17012=2.06412, p=1.7012-0.206412=1.494788
    p = param([2.0])
    opt = SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    for want in [1.88, 1.7012, 1.494788]:
        set_grad(p, [1.0])
        opt.step()
        assert p.data[0] == pytest.approx(want, abs=1e-12)


def test_adam_bias_correction_three_steps():
    # lr=0.1, betas (0.9, 0.999), g = 2 each step: m_hat = 2, v_hat = 4 every step -> step = 0.1*2/(2+1e-8)
    p = param([1.0])
    opt = Adam([p], lr=0.1)
    step = 0.1 * 2.0 / (2.0 + 1e-8)
    for k in range(1, 4):
        set_grad(p, [2.0])
        opt.step()
        assert p.data[0] == pytest.approx(1.0 - k * step, abs=1e-12)
    assert opt.state[p]["step"] == 3
    # m after 3 steps of g=2: 2 * (1 - 0.9^3) = 0.542; v: 4 * (1 - 0.999^3) = 0.011988004
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.542, abs=1e-12)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.011988004, abs=1e-12)


def test_adam_varying_gradients_by_hand():
    # lr=1, betas (0.5, 0.5), eps=0, p=0; grads 1, -1, 2
    # t1: m=.5 v=.5 mh=1 vh=1 -> p=-1
    # t2: m=.25-.5=-.25 v=.25+.5=.75 mh=-.25/.75=-1/3 vh=.75/.75=1 -> p=-1+1/3=-2/3
    # t3: m=-.125+1=.875 v=.375+2=2.375 mh=.875/.875=1 vh=2.375/.875 -> p=-2/3 - 1/sqrt(2.375/.875)
    p = param([0.0])
    opt = Adam([p], lr=1.0, betas=(0.5, 0.5), eps=0.0)
    wants = [-1.0, -2.0 / 3.0, -2.0 / 3.0 - 1.0 / np.sqrt(2.375 / 0.875)]
    for g, want in zip([1.0, -1.0, 2.0], wants):
        set_grad(p, [g])
        opt.step()
        assert p.data[0] == pytest.approx(want, abs=1e-12)


def test_adam_weight_decay_is_l2_in_the_gradient():
    # g=0, wd=0.5, p=4: effective grad 2 -> first Adam step is lr (bias corrected) -> 3.9
    p = param([4.0])
    opt = Adam([p], lr=0.1, weight_decay=0.5)
    set_grad(p, [0.0])
    opt.step()
    assert p.data[0] == pytest.approx(4.0 - 0.1 * 2.0 / (2.0 + 1e-8), abs=1e-12)


def test_adamw_decouples_weight_decay():
    # g=0, wd=0.5, lr=0.1: p *= 0.95 each step, the Adam part is 0/(0+eps)=0
    p = param([4.0])
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    for k in range(1, 4):
        set_grad(p, [0.0])
        opt.step()
        assert p.data[0] == pytest.approx(4.0 * 0.95 ** k, abs=1e-12)
    # g=2 each step: p <- p*0.95 - 0.1*2/(2+eps)
    q = param([1.0])
    opt = AdamW([q], lr=0.1, weight_decay=0.5)
    x = 1.0
    for _ in range(3):
        set_grad(q, [2.0])
        opt.step()
        x = x * 0.95 - 0.1 * 2.0 / (2.0 + 1e-8)
        assert q.data[0] == pytest.approx(x, abs=1e-12)


def test_defaults_match_pytorch():
    g = AdamW([param([1.0])]).param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 0.01)
    g = Adam([param([1.0])]).param_groups[0]
    assert g["weight_decay"] == 0.0
    g = SGD([param([1.0])], lr=0.1).param_groups[0]
    assert (g["momentum"], g["weight_decay"]) == (0.0, 0.0)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.1),
                                  lambda ps: AdamW(ps, lr=0.1)])
def test_grad_none_is_skipped_and_updates_are_in_place(make):
    frozen, live = param([5.0, 5.0]), param([1.0, 1.0])
    opt = make([frozen, live])
    arr = live.data
    set_grad(live, [1.0, -1.0])
    opt.step()
    np.testing.assert_array_equal(frozen.data, [5.0, 5.0])
    assert frozen not in opt.state
    assert live.data is arr and not np.array_equal(arr, [1.0, 1.0])


def test_param_groups_with_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
    set_grad(a, [1.0]); set_grad(b, [1.0])
    opt.step()
    assert (a.data[0], b.data[0]) == (pytest.approx(0.9), pytest.approx(0.99))
    opt.zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("cls, kw", [(SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)), (Adam, dict(lr=0.1)),
                                     (AdamW, dict(lr=0.05, weight_decay=0.1))])
def test_state_dict_round_trip_reproduces_the_next_step(cls, kw):
    rng = np.random.default_rng(0)
    p = param(rng.standard_normal(4))
    opt = cls([p], **kw)
    for _ in range(3):
        set_grad(p, rng.standard_normal(4))
        opt.step()
    sd = opt.state_dict()
    p2 = param(p.data.copy())
    opt2 = cls([p2], lr=123.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    g = rng.standard_normal(4)
    set_grad(p, g); set_grad(p2, g)
    opt.step(); opt2.step()
    np.testing.assert_array_equal(p.data, p2.data)


def test_state_dict_copies_and_checks_sizes():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, [1.0]); opt.step()
    sd = opt.state_dict()
    opt.state[p]["momentum_buffer"] += 10
    assert sd["state"][0]["momentum_buffer"][0] == 1.0
    with pytest.raises(ValueError, match="2"):
        SGD([param([1.0]), param([1.0])], lr=0.1).load_state_dict(sd)


def test_state_bytes_is_0x_1x_2x_parameters():
    shapes = [(64, 32), (64,), (10, 64), (10,)]
    def params():
        ps = [Tensor(np.ones(s, dtype=np.float32), requires_grad=True) for s in shapes]
        for p in ps:
            p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
        return ps
    nbytes = sum(int(np.prod(s)) * 4 for s in shapes)
    for make, factor in [(lambda ps: SGD(ps, lr=0.1), 0), (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 1),
                         (lambda ps: Adam(ps), 2), (lambda ps: AdamW(ps), 2)]:
        opt = make(params())
        assert opt.state_bytes() == 0
        opt.step()
        assert opt.state_bytes() == factor * nbytes


@pytest.mark.parametrize("bad", [dict(lr=-0.1), dict(lr=0.1, momentum=-1), dict(lr=0.1, weight_decay=-1)])
def test_sgd_bad_hyperparameters(bad):
    with pytest.raises(ValueError, match="expected"):
        SGD([param([1.0])], **bad)


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ndarray"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        Adam([param([1.0])], betas=(0.9, 1.0))
    p = param([1.0])
    set_grad(p, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(2,\).*\(1,\)"):
        SGD([p], lr=0.1).step()
    assert issubclass(AdamW, Optimizer)
