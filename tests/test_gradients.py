"""Central-difference check of loss_and_gradients over every registered component.

Parametrized over the registries: a component registered tomorrow is checked
without new test code.
"""

import numpy as np
import pytest

from nntrain import Network
from nntrain.activations import ACTIVATIONS
from nntrain.gradcheck import check_gradients, gradient_errors, pick_entries
from nntrain.losses import LOSSES

HIDDEN = [name for name in ACTIVATIONS if ACTIVATIONS.get(name).hidden]
OUTPUT_ACTIVATIONS = [name for name in ACTIVATIONS if ACTIVATIONS.get(name).output]
EXTRA_HIDDEN = [
    {"name": "prelu", "per_unit": True, "init": 0.1},
    {"name": "leaky_relu", "alpha": 0.2},
    {"name": "elu", "alpha": 0.5},
    {"name": "softplus", "beta": 2.0},
]
PAIRS = [
    (out, loss)
    for out in OUTPUT_ACTIVATIONS
    for loss in LOSSES
    if LOSSES.get(loss).fused_with in (None, out)
]


def targets(output_activation, loss, rng, n, k):
    if output_activation == "softmax" and loss in ("cross_entropy", "kl"):
        soft = rng.random((n, k)) + 0.1  # soft targets: rows sum to 1
        return soft / soft.sum(axis=1, keepdims=True)
    if loss == "bce":
        return (rng.random((n, k)) > 0.5).astype(float)
    return rng.normal(size=(n, k))


def test_pairs_cover_every_loss_and_output():
    assert {loss for _, loss in PAIRS} == set(LOSSES.names())
    assert {out for out, _ in PAIRS} == set(OUTPUT_ACTIVATIONS)


@pytest.mark.filterwarnings("ignore:activation 'step' has zero gradient")
@pytest.mark.parametrize("output_activation,loss", PAIRS)
@pytest.mark.parametrize("activation", HIDDEN + EXTRA_HIDDEN, ids=str)
def test_gradients_match_central_differences(activation, output_activation, loss):
    rng = np.random.default_rng(0)
    sizes = [3, 5, 4, 3]  # two hidden layers
    net = Network(sizes, activation=activation, output_activation=output_activation,
                  initializer={"name": "normal", "std": 0.6},
                  bias_initializer={"name": "normal", "std": 0.3}, seed=1)
    X = rng.normal(size=(6, sizes[0]))
    Y = targets(output_activation, loss, rng, 6, sizes[-1])
    with np.errstate(all="raise"):
        errors = gradient_errors(net, X, Y, loss)
    if ACTIVATIONS.split(activation)[0] in ("prelu",):
        assert "alpha1" in errors and "alpha2" in errors
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: relative error {errors[worst]:.2e}"


def test_prelu_alpha_is_learned_and_in_parameters():
    net = Network([2, 3, 1], activation={"name": "prelu", "per_unit": True},
                  output_activation="sigmoid", seed=0)
    names = net.parameter_names()
    assert names == ["W1", "b1", "alpha1", "W2", "b2"]
    alpha = net.parameters()[2]
    assert alpha.shape == (3,) and np.all(alpha == 0.25)
    X = np.array([[-1.0, -2.0], [-0.5, -1.5], [1.0, 0.5]])
    loss, grads = net.loss_and_gradients(X, np.array([[0.0], [1.0], [1.0]]), loss="bce")
    assert np.any(grads[2] != 0)
    shared = Network([2, 3, 1], activation="prelu", output_activation="sigmoid", seed=0)
    assert shared.parameters()[2].shape == (1,)


def test_step_trains_with_zero_gradient_and_warns_once():
    with pytest.warns(UserWarning, match="zero gradient") as record:
        net = Network([2, 3, 3, 1], activation="step", output_activation="sigmoid", seed=0)
    assert len(record) == 1
    X = np.random.default_rng(0).normal(size=(5, 2))
    _, grads = net.loss_and_gradients(X, np.ones((5, 1)), loss="bce")
    assert np.all(grads[0] == 0) and np.all(grads[2] == 0)  # layers before a step learn nothing
    assert np.any(grads[4] != 0)  # the output layer still does


def test_check_gradients_checks_the_entries_it_is_asked_for():
    """A wrong analytic entry is caught exactly when it is among the checked entries."""
    net = Network([4, 6, 2], activation="tanh", output_activation="sigmoid", seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 4)), (rng.random((5, 2)) > 0.5).astype(float)
    loss = LOSSES.build("bce", "loss")
    _, analytic = net.loss_and_gradients(X, Y, loss)
    analytic[0].reshape(-1)[20] += 1.0  # W1 has 24 entries: a wrong derivative in the 21st

    every = check_gradients(net, X, Y, loss, analytic)
    assert every["W1"]["error"] > 1e-2 and every["W1"]["resolvable"]
    assert max(c["error"] for name, c in every.items() if name != "W1") < 1e-6
    assert all(c["every_entry"] for c in every.values())

    first = check_gradients(net, X, Y, loss, analytic, entries=20)  # entries 0..19
    assert first["W1"]["error"] < 1e-6 and not first["W1"]["every_entry"]
    assert first["b2"]["every_entry"]  # 2 entries: all of them

    caught = []
    for seed in range(6):  # 12 of 24 drawn at random: some draws hold entry 20, some do not
        drawn = check_gradients(net, X, Y, loss, analytic, entries=12,
                                rng=np.random.default_rng(seed))
        picked = pick_entries(24, 12, np.random.default_rng(seed))  # W1 draws first
        assert len(np.unique(picked)) == 12 and list(picked) != list(range(12))
        caught.append(20 in picked)
        assert (drawn["W1"]["error"] > 1e-2) == caught[-1]
    assert any(caught) and not all(caught)
