"""Every initializer on a 500x400 matrix against its formula, within sampling error.

n = 200,000 draws: the sample mean of a zero-mean draw has standard error
std/sqrt(n) (we allow 5 of them) and the sample std is within about
1/sqrt(2n) = 0.16% of the true one for a normal (we allow 1.5%).
"""

import math

import numpy as np
import pytest

from nntrain.initializers import INITIALIZERS
from nntrain.network import Network
from nntrain.registry import ConfigError

FAN_IN, FAN_OUT = 500, 400
N = FAN_IN * FAN_OUT

# name -> (kind, reference std, bound or None), each written from the paper or tool cited
REFERENCE = {
    "uniform": (math.sqrt(0.05**2 / 3), 0.05),  # U(-a, a) has variance a^2/3
    "normal": (0.05, None),
    "xavier_uniform": (math.sqrt(2 / (FAN_IN + FAN_OUT)), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "xavier_normal": (math.sqrt(2 / (FAN_IN + FAN_OUT)), None),  # Glorot & Bengio 2010 eq. 12
    "xavier_simple": (math.sqrt(1 / (3 * FAN_IN)), math.sqrt(1 / FAN_IN)),  # the notes' rule
    "he_normal": (math.sqrt(2 / FAN_IN), None),  # He et al. 2015: Var = 2/n_l
    "he_uniform": (math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    "lecun_normal": (math.sqrt(1 / FAN_IN), None),
    "lecun_uniform": (math.sqrt(1 / FAN_IN), math.sqrt(3 / FAN_IN)),
    # default variance_scaling = Keras VarianceScaling(1, fan_in, truncated_normal): cut at 2 std
    "variance_scaling": (math.sqrt(1 / FAN_IN), 2 * math.sqrt(1 / FAN_IN) / 0.87962566103423978),
    # torch/nn/modules/linear.py reset_parameters: kaiming_uniform_(a=sqrt(5)) -> bound 1/sqrt(fan_in)
    "pytorch_default": (math.sqrt(1 / (3 * FAN_IN)), 1 / math.sqrt(FAN_IN)),
    # keras/src/layers/core/dense.py: kernel_initializer="glorot_uniform"
    "keras_default": (math.sqrt(2 / (FAN_IN + FAN_OUT)), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    # sklearn/neural_network/_multilayer_perceptron.py _init_coef: factor 6 (2 for logistic)
    "sklearn_default": (math.sqrt(6 / (FAN_IN + FAN_OUT) / 3), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    # tensorflow/playground src/nn.ts Link: weight = Math.random() - 0.5
    "playground": (math.sqrt(1 / 12), 0.5),
    "orthogonal": (1 / math.sqrt(FAN_IN), None),  # unit columns of length 500
}


def test_every_initializer_has_a_reference():
    # zeros, constant and values are not random: tested by value below
    assert set(REFERENCE) | {"zeros", "constant", "values"} == set(INITIALIZERS.names())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_initializer_statistics(name):
    init = INITIALIZERS.build(name)
    W = init(FAN_IN, FAN_OUT, np.random.default_rng(0))
    std, bound = REFERENCE[name]
    assert W.shape == (FAN_IN, FAN_OUT)
    assert abs(W.mean()) < 5 * std / math.sqrt(N)
    assert W.std() == pytest.approx(std, rel=0.015)
    assert init.target_std(FAN_IN, FAN_OUT) == pytest.approx(std, rel=1e-12)
    if bound is not None:
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.99 * bound  # the bound is reached, not a smaller one
    else:
        assert np.abs(W).max() > 3.5 * std  # unbounded normal tails


def test_zeros_and_constant():
    rng = np.random.default_rng(0)
    assert np.all(INITIALIZERS.build("zeros")(3, 4, rng) == 0)
    assert np.all(INITIALIZERS.build({"name": "constant", "value": 0.5})(3, 4, rng) == 0.5)


def test_gain_scales_xavier_and_orthogonal():
    rng = np.random.default_rng(0)
    W = INITIALIZERS.build({"name": "xavier_normal", "gain": 2.0})(FAN_IN, FAN_OUT, rng)
    assert W.std() == pytest.approx(2 * math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.015)
    Q = INITIALIZERS.build({"name": "orthogonal", "gain": 3.0})(FAN_IN, FAN_OUT, rng)
    np.testing.assert_allclose(Q.T @ Q, 9 * np.eye(FAN_OUT), atol=1e-10)
    wide = INITIALIZERS.build("orthogonal")(40, 50, rng)
    np.testing.assert_allclose(wide @ wide.T, np.eye(40), atol=1e-12)


def test_variance_scaling_general_rule():
    rng = np.random.default_rng(0)
    rule = {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out", "distribution": "uniform"}
    W = INITIALIZERS.build(rule)(FAN_IN, FAN_OUT, rng)
    assert np.abs(W).max() <= math.sqrt(6 / FAN_OUT)
    assert W.std() == pytest.approx(math.sqrt(2 / FAN_OUT), rel=0.015)
    avg = {"name": "variance_scaling", "mode": "fan_avg", "distribution": "normal"}
    assert INITIALIZERS.build(avg)(FAN_IN, FAN_OUT, rng).std() == pytest.approx(
        math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.015)


def test_sklearn_factor_two_for_sigmoid():
    # sklearn: factor = 2 if activation == "logistic"
    net = Network([500, 400, 1], activation="sigmoid", initializer="sklearn_default", seed=0)
    bound = math.sqrt(2 / (500 + 400))
    assert np.abs(net.W[0]).max() <= bound and np.abs(net.W[0]).max() > 0.99 * bound
    assert np.abs(net.b[0]).max() <= bound and np.any(net.b[0] != 0)  # sklearn draws intercepts too
    relu = Network([500, 400, 1], activation="relu", initializer="sklearn_default", seed=0)
    assert np.abs(relu.W[0]).max() > 0.99 * math.sqrt(6 / 900)


def test_preset_biases():
    pt = Network([500, 400], initializer="pytorch_default", seed=0)
    assert np.abs(pt.b[0]).max() <= 1 / math.sqrt(500)
    assert pt.b[0].std() == pytest.approx(1 / math.sqrt(3 * 500), rel=0.15)
    assert np.all(Network([3, 2], initializer="playground").b[0] == 0.1)
    assert np.all(Network([3, 2], initializer="keras_default").b[0] == 0)
    custom = Network([3, 2], initializer="playground", bias_initializer={"name": "constant", "value": 2})
    assert np.all(custom.b[0] == 2)


def test_per_layer_initializers():
    net = Network([4, 3, 2], initializer=["zeros", "he_normal"], seed=0)
    assert np.all(net.W[0] == 0) and np.any(net.W[1] != 0)


VALUES = [{"name": "values", "W": [[0.1, 0.2], [0.3, 0.4]], "b": [0.1, -0.1]},
          {"name": "values", "W": [[0.5], [-0.5]]}]


def test_values_gives_each_layers_W_and_b():
    net = Network([2, 2, 1], initializer=VALUES, seed=0)
    np.testing.assert_array_equal(net.W[0], [[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_array_equal(net.b[0], [0.1, -0.1])
    np.testing.assert_array_equal(net.W[1], [[0.5], [-0.5]])
    np.testing.assert_array_equal(net.b[1], [0.0])  # b left out: zeros
    # an explicit b is kept; a bias_initializer fills only the biases not given
    both = Network([2, 2, 1], initializer=VALUES, bias_initializer={"name": "constant", "value": 3})
    np.testing.assert_array_equal(both.b[0], [0.1, -0.1])
    np.testing.assert_array_equal(both.b[1], [3.0])
    assert INITIALIZERS.build(VALUES[0], fan_in=2, fan_out=2).target_std(2, 2) == pytest.approx(
        np.std([0.1, 0.2, 0.3, 0.4]))


@pytest.mark.parametrize("spec, key, message", [
    ([{"name": "values", "W": [[0.1, 0.2]]}, "zeros"], "model.initializer[0]",
     "W has shape (1, 2), the layer needs (fan_in, fan_out) = (2, 2)"),
    (["zeros", {"name": "values", "W": [[1], [2]], "b": [1, 2]}], "model.initializer[1]",
     "b has shape (2,), the layer needs (fan_out,) = (1,)"),
    (["zeros", {"name": "values", "W": [[1], [2, 3]]}], "model.initializer[1]", "rows of equal length"),
    (["zeros", {"name": "values", "W": [["a"], [2]]}], "model.initializer[1]", "list of numbers"),
    (["zeros", {"name": "values", "W": 1.5}], "model.initializer[1]", "list of numbers"),
    (["zeros", {"name": "values", "W": [[float("nan")], [2]]}], "model.initializer[1]", "NaN"),
    (["zeros", {"name": "values"}], "model.initializer[1]", "needs parameter 'W'"),
    (["zeros", {"name": "values", "W": [[1], [2]], "fan_in": 2}], "model.initializer[1]",
     "no parameter 'fan_in'"),
    ({"name": "values", "W": [[0.1, 0.2], [0.3, 0.4]]}, "model.initializer",
     "W has shape (2, 2), the layer needs (fan_in, fan_out) = (2, 1)"),
])
def test_values_checks_its_shapes(spec, key, message):
    with pytest.raises(ConfigError) as err:
        Network([2, 2, 1], initializer=spec)
    assert err.value.key == key and message in str(err.value)


def test_values_is_not_a_bias_initializer():
    with pytest.raises(ConfigError, match="model.bias_initializer: .*use it in model.initializer"):
        Network([2, 2, 1], bias_initializer={"name": "values", "W": [[1.0]]})


def test_values_is_listed_with_its_form(cli):
    result = cli("list", "initializers")
    line = next(row for row in result.stdout.splitlines() if "\tvalues\t" in row)
    assert "{name: values, W: [[...]], b: [...]}" in line
