"""The reference layers (tinytorch.core.layers): values, parameter discovery, dropout statistics, state."""
import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn as nn
from tinytorch import Tensor


def test_linear_matches_the_affine_map_in_float64():
    tt.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = np.random.default_rng(0).standard_normal((4, 2, 5))
    got = layer(Tensor(x, dtype=np.float64))
    np.testing.assert_allclose(got.data, x @ layer.weight.data.T.astype(np.float64) + layer.bias.data, rtol=1e-6)
    assert (layer.weight.shape, layer.bias.shape) == ((3, 5), (3,))


def test_linear_init_is_pytorch_default_and_seeded():
    tt.manual_seed(5)
    w = nn.Linear(256, 512).weight.data
    bound = 1 / 16
    assert np.abs(w).max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 1e-3
    tt.manual_seed(5)
    assert np.array_equal(w, nn.Linear(256, 512).weight.data)


@pytest.mark.parametrize("shape", [(2, 4), (4,), ()])
def test_linear_input_errors_name_the_layer_and_the_shape(shape):
    with pytest.raises(ValueError, match=r"Linear\(3, 2\).*" + "".join("\\" + c if c in "()" else c for c in str(shape))):
        nn.Linear(3, 2)(Tensor(np.ones(shape)))


def test_parameters_found_once_through_nesting_in_definition_order():
    class Block(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            self.act = nn.ReLU()

    class Model(nn.Module):
        def __init__(self):
            self.blocks = [Block(), Block()]
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(2, 1))
            self.tied = self.blocks[0].fc.weight

    names = [n for n, _ in Model().named_parameters()]
    assert names == ["blocks.0.fc.weight", "blocks.0.fc.bias", "blocks.1.fc.weight", "blocks.1.fc.bias",
                     "head.1.weight", "head.1.bias"]


def test_dropout_statistics_train_and_eval():
    tt.manual_seed(11)
    d = nn.Dropout(0.3)
    x = Tensor(np.full(100_000, 2.0))
    y = d(x).data
    assert abs((y == 0).mean() - 0.3) < 0.006
    np.testing.assert_allclose(np.unique(y), [0.0, 2.0 / 0.7], rtol=1e-6)
    assert abs(y.mean() - 2.0) < 0.03
    d.eval()
    assert d(x) is x


def test_state_dict_round_trip_and_errors():
    tt.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    tt.manual_seed(1)
    b = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = Tensor(np.ones((2, 3)))
    assert not np.allclose(a(x).data, b(x).data)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).data, b(x).data)
    with pytest.raises(ValueError, match="missing keys"):
        b.load_state_dict({})
    state = a.state_dict()
    state["2.weight"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 4\)"):
        b.load_state_dict(state)


def test_init_functions_hit_their_target_variance():
    tt.manual_seed(2)
    w = nn.Linear(400, 600).weight
    nn.kaiming_normal_(w)
    assert abs(w.data.var() - 2 / 400) < 2e-4
    nn.xavier_uniform_(w)
    assert abs(w.data.var() - 2 / 1000) < 1e-4 and np.abs(w.data).max() <= np.sqrt(6 / 1000)


def test_flatten_and_sequential_indexing():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    assert model(Tensor(np.ones((4, 2, 3)))).shape == (4, 2) and len(model) == 2 and isinstance(model[1], nn.Linear)
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_state_dict_of_numpy_arrays_keyed_and_shaped_as_pytorch_writes_it():
    """Keys and layouts as torch.nn writes them: `0.weight` in a Sequential, `fc1.bias` for an attribute."""
    class MLP(nn.Module):
        def __init__(self):
            self.fc1 = nn.Linear(4, 3)
            self.body = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))

    rng = np.random.default_rng(5)
    torch_state = {"fc1.weight": rng.standard_normal((3, 4)).astype(np.float32),   # (out_features, in_features)
                   "fc1.bias": rng.standard_normal(3).astype(np.float32),
                   "body.1.weight": rng.standard_normal((2, 3)).astype(np.float32),
                   "body.1.bias": rng.standard_normal(2).astype(np.float32)}
    model = MLP()
    assert list(model.state_dict()) == list(torch_state)
    model.load_state_dict(torch_state)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    hidden = np.maximum(x @ torch_state["fc1.weight"].T + torch_state["fc1.bias"], 0)
    want = hidden @ torch_state["body.1.weight"].T + torch_state["body.1.bias"]
    got = model.body(model.fc1(Tensor(x)))
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-6)


def test_call_passes_keyword_arguments_to_forward():
    class Scale(nn.Module):
        def forward(self, x, *, factor=1.0, shift=0.0):
            return x * factor + shift

    np.testing.assert_allclose(Scale()(Tensor([1.0, 2.0]), factor=3.0, shift=1.0).data, [4.0, 7.0])
