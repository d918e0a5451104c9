"""Every loss against values worked out by hand (or with math, independently of nntrain).

PyTorch equivalents from DESIGN.md, e.g. CrossEntropyLoss()([[1, 2, 3]], [2]) = 0.4076.
"""

import math

import numpy as np
import pytest

from nntrain.losses import LOSSES

O = np.array([[0.2, 0.8], [0.5, -1.0]])
Y = np.array([[0.0, 1.0], [1.5, 0.0]])
# differences o - y: [0.2, -0.2, -1.0, -1.0]; squares 0.04, 0.04, 1, 1 (sum 2.08); N = 2, K = 2


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("sse", 2.08 / 2 / 2),  # (1/N) sum 1/2 sum_k d^2
        ("mse", 2.08 / 4),
        ("mae", 2.4 / 4),
        ("huber", (0.02 + 0.02 + 0.5 + 0.5) / 4),  # all |d| <= 1: d^2/2
        ({"name": "huber", "delta": 0.5}, (0.02 + 0.02 + 0.5 * 0.75 * 2) / 4),  # 0.5(|d| - 0.25)
        ("gaussian_nll", (4 * 0.5 * math.log(2 * math.pi) + 2.08 / 2) / 2),
        ({"name": "gaussian_nll", "sigma": 2.0},
         (4 * (math.log(2) + 0.5 * math.log(2 * math.pi)) + 2.08 / 8) / 2),
    ],
    ids=str,
)
def test_regression_losses_by_hand(spec, expected):
    assert LOSSES.build(spec).value(O, Y) == pytest.approx(expected, rel=1e-12)


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def test_bce_from_logits_by_hand():
    z = np.array([[0.0], [2.0], [-1.0]])
    y = np.array([[1.0], [0.0], [0.3]])
    expected = (
        -math.log(0.5)
        - math.log(1 - sigmoid(2.0))
        - 0.3 * math.log(sigmoid(-1.0)) - 0.7 * math.log(1 - sigmoid(-1.0))
    ) / 3
    bce = LOSSES.build("bce")
    assert bce.value(z, y) == pytest.approx(expected, rel=1e-12)
    grad = [(sigmoid(0) - 1) / 3, sigmoid(2) / 3, (sigmoid(-1) - 0.3) / 3]
    np.testing.assert_allclose(bce.grad(z, y).ravel(), grad, rtol=1e-12)


def test_cross_entropy_by_hand():
    ce = LOSSES.build("cross_entropy")
    z = np.array([[1.0, 2.0, 3.0]])
    assert ce.value(z, np.array([[0.0, 0.0, 1.0]])) == pytest.approx(
        math.log(math.e + math.e**2 + math.e**3) - 3, rel=1e-12)  # 0.40760596...
    assert ce.value(np.zeros((2, 2)), np.eye(2)) == pytest.approx(math.log(2), rel=1e-12)
    soft = np.array([[0.25, 0.25, 0.5]])  # soft target: -sum y log p
    p = np.exp(z[0]) / np.exp(z[0]).sum()
    assert ce.value(z, soft) == pytest.approx(-(soft[0] * np.log(p)).sum(), rel=1e-12)
    np.testing.assert_allclose(ce.grad(z, soft), [p - soft[0]], rtol=1e-12)


def test_kl_by_hand_with_zero_target_entries():
    kl = LOSSES.build("kl")
    y = np.array([[0.5, 0.5, 0.0]])  # 0 log 0 = 0
    assert kl.value(np.zeros((1, 3)), y) == pytest.approx(math.log(1.5), rel=1e-12)
    z = np.array([[0.3, -1.2, 2.0]])
    onehot = np.array([[0.0, 0.0, 1.0]])
    assert kl.value(z, onehot) == pytest.approx(LOSSES.build("cross_entropy").value(z, onehot))
    assert kl.value(np.log(np.array([[0.2, 0.3, 0.5]])), np.array([[0.2, 0.3, 0.5]])) == \
        pytest.approx(0, abs=1e-15)


@pytest.mark.parametrize("big", [1000.0, -1000.0])
def test_extreme_logits_are_finite_and_correct(big):
    bce = LOSSES.build("bce")
    z = np.array([[big], [big]])
    y = np.array([[0.0], [1.0]])
    # one sample is right with certainty (loss 0), the other wrong by |big|
    assert bce.value(z, y) == pytest.approx(abs(big) / 2, rel=1e-12)
    np.testing.assert_allclose(bce.grad(z, y), [[0.5], [0.0]] if big > 0 else [[0.0], [-0.5]])
    for name in ("cross_entropy", "kl"):
        loss = LOSSES.build(name)
        z = np.array([[big, -big, 0.0]])
        wrong = np.eye(3)[[np.argmin(z)]]
        right = np.eye(3)[[np.argmax(z)]]
        # lse(z) - z_target = 1000 - (-1000); the sure and right answer costs 0 (e^-1000 underflows)
        assert loss.value(z, wrong) == pytest.approx(2000.0, rel=1e-12)
        assert loss.value(z, right) == pytest.approx(0.0, abs=1e-300)
        np.testing.assert_allclose(loss.grad(z, wrong), right - wrong, atol=1e-300)


def test_gaussian_nll_is_sse_plus_constant():
    # The notes' MLE argument: with sigma fixed, NLL = SSE / sigma^2 + const
    rng = np.random.default_rng(0)
    o, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    nll, sse = LOSSES.build("gaussian_nll"), LOSSES.build("sse")
    assert nll.value(o, y) - sse.value(o, y) == pytest.approx(2 * 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(nll.grad(o, y), sse.grad(o, y))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["bce", "cross_entropy", "kl"])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_the_training_steps_fused_value_is_the_value_from_logits(name, scale, dtype):
    """value_and_grad(z, o, y) reuses the forward pass's o; it must give value(z, y) and grad(z, y),
    soft targets and logits of +-1000 included."""
    from nntrain.activations import sigmoid, softmax

    rng = np.random.default_rng(3)
    z = (rng.normal(size=(50, 4)) * scale).astype(dtype)
    if name == "bce":
        y = (rng.random((50, 4)) > 0.5).astype(dtype)
        o = sigmoid(z, np.empty_like(z))
    else:
        y = rng.dirichlet(np.ones(4), size=50).astype(dtype)  # soft targets; rows sum to 1
        y[:10] = np.eye(4, dtype=dtype)[rng.integers(0, 4, 10)]
        o = softmax(z, np.empty_like(z))
    loss = LOSSES.build(name)
    E, grad = loss.value_and_grad(z, o, y)
    assert math.isfinite(E)
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    assert E == pytest.approx(loss.value(z, y), rel=tolerance)
    np.testing.assert_allclose(grad, loss.grad(z, y), rtol=tolerance, atol=tolerance * 1e-3)
