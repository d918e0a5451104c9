"""Activation values against scalar formulas written with the math module (independent of NumPy code)."""

import math

import numpy as np
import pytest

from nntrain.activations import ACTIVATIONS, erf

SELU_LAMBDA, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772  # Klambauer et al. 2017


def sig(z):
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


SCALAR = {
    "identity": lambda z: z,
    "step": lambda z: 1.0 if z >= 0 else 0.0,
    "sigmoid": sig,
    "tanh": math.tanh,
    "relu": lambda z: max(0.0, z),
    "leaky_relu": lambda z: z if z > 0 else 0.01 * z,
    "prelu": lambda z: z if z > 0 else 0.25 * z,
    "elu": lambda z: z if z > 0 else math.exp(z) - 1,
    "softplus": lambda z: z if z > 20 else math.log1p(math.exp(z)),
    "selu": lambda z: SELU_LAMBDA * (z if z > 0 else SELU_ALPHA * (math.exp(z) - 1)),
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "silu": lambda z: z * sig(z),
}
POINTS = [-30.0, -3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.7, 2.0, 5.0, 25.0]


def test_every_hidden_activation_has_a_reference():
    assert set(SCALAR) | {"softmax"} == set(ACTIVATIONS.names())


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_values_match_scalar_formula(name):
    act = ACTIVATIONS.build(name)
    act.setup(len(POINTS), np.float64)
    z = np.array([POINTS])
    got = act.forward(z.copy())
    np.testing.assert_allclose(got[0], [SCALAR[name](p) for p in POINTS], rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_extreme_inputs_stay_finite(name):
    act = ACTIVATIONS.build(name)
    act.setup(4, np.float64)
    z = np.array([[-1000.0, -50.0, 50.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):
        a = act.forward(z.copy())
        dz = act.backward(np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz))


def test_softmax_rows_sum_to_one_for_huge_logits():
    act = ACTIVATIONS.build("softmax")
    act.setup(3, np.float64)
    o = act.forward(np.array([[1000.0, -1000.0, 0.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(o.sum(axis=1), 1.0)
    assert o[0, 0] == 1.0


def test_erf_matches_math_erf_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 1.9999999, 2.0, 30.0, -30.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=2e-15, atol=1e-300)


def test_float32_stays_float32():
    for name in SCALAR:
        act = ACTIVATIONS.build(name)
        act.setup(3, np.float32)
        z = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
        assert act.forward(z.copy()).dtype == np.float32, name
        assert act.backward(np.ones_like(z)).dtype == np.float32, name
