"""The network trained by gradient descent, as in the notes, on XOR."""

import numpy as np
import pytest

from nntrain import Network
from nntrain.losses import LOSSES
from nntrain.optimizers import OPTIMIZERS, SCHEDULES

X_XOR = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y_XOR = np.array([[0.0], [1.0], [1.0], [0.0]])


def gradient_descent(net, X, Y, loss="bce", optimizer="gd", lr=0.5, epochs=5000, batch_size=None,
                     seed=0):
    """w <- w - lr * grad, full batch or shuffled mini-batches: the notes' algorithm."""
    loss = LOSSES.build(loss)
    opt = OPTIMIZERS.build(optimizer)
    rng = np.random.default_rng(seed)
    X, Y = X.astype(net.dtype), Y.astype(net.dtype)
    for _ in range(epochs):
        order = np.arange(len(X)) if batch_size is None else rng.permutation(len(X))
        for start in range(0, len(X), batch_size or len(X)):
            idx = order[start:start + (batch_size or len(X))]
            net.loss_and_backward(X[idx], Y[idx], loss)
            opt.step(net.parameters(), net.gradients(), lr, net.is_weight())
    return net


def xor_net(seed, initializer="xavier_uniform", dtype="float64"):
    return Network([2, 4, 1], activation="tanh", output_activation="sigmoid",
                   initializer=initializer, seed=seed, dtype=dtype)


@pytest.mark.slow
def test_xor_is_solved_for_at_least_nine_of_ten_seeds():
    solved = 0
    for seed in range(10):
        net = gradient_descent(xor_net(seed), X_XOR, Y_XOR)
        accuracy = np.mean((net.forward(X_XOR) > 0.5) == Y_XOR)
        solved += accuracy == 1.0
    assert solved >= 9


@pytest.mark.parametrize("initializer", ["zeros", {"name": "constant", "value": 0.3}])
def test_symmetric_init_keeps_hidden_units_identical(initializer):
    net = gradient_descent(xor_net(0, initializer), X_XOR, Y_XOR, epochs=500)
    W1, b1, W2, _ = net.parameters()
    # every hidden unit has the same incoming weights, bias and outgoing weight
    assert np.all(W1 == W1[:, :1]) and np.all(b1 == b1[0]) and np.all(W2 == W2[0])
    assert np.mean((net.forward(X_XOR) > 0.5) == Y_XOR) <= 0.75
    if isinstance(initializer, dict):
        assert np.any(W1 != 0.3)  # it did train, just symmetrically


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_same_seed_gives_bit_identical_parameters(dtype, optimizer):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 3))
    Y = np.eye(3)[rng.integers(0, 3, 50)]

    def run():
        net = Network([3, 8, 3], activation="relu", output_activation="softmax", seed=3, dtype=dtype)
        return gradient_descent(net, X, Y, loss="cross_entropy", optimizer=optimizer, lr=0.05,
                                epochs=30, batch_size=16, seed=3).parameters()

    first, second = run(), run()
    assert all(p.dtype == np.dtype(dtype) for p in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_float32_network_computes_in_float32():
    net = xor_net(0, dtype="float32")
    loss, grads = net.loss_and_gradients(X_XOR, Y_XOR, "bce")
    assert all(g.dtype == np.float32 for g in grads)
    assert net.forward(X_XOR).dtype == np.float32


def test_loss_and_gradients_returns_fresh_arrays():
    net = xor_net(0)
    _, first = net.loss_and_gradients(X_XOR, Y_XOR, "bce")
    saved = [g.copy() for g in first]
    net.loss_and_gradients(X_XOR[:2], Y_XOR[:2], "bce")
    assert all(np.array_equal(a, b) for a, b in zip(first, saved))


def test_optimizer_update_rules_on_one_parameter():
    g0 = np.array([0.5, -1.0])
    p = np.array([1.0, 2.0])
    momentum = OPTIMIZERS.build({"name": "momentum", "beta": 0.9})
    momentum.step([p], [g0.copy()], lr=0.1)
    momentum.step([p], [g0.copy()], lr=0.1)  # v = g, then 1.9 g: total 2.9 g
    np.testing.assert_allclose(p, [1.0, 2.0] - 0.1 * 2.9 * g0)
    p = np.array([1.0, 2.0])
    nesterov = OPTIMIZERS.build({"name": "momentum", "beta": 0.9, "nesterov": True})
    nesterov.step([p], [g0.copy()], lr=0.1)  # v = g; step g + 0.9 v = 1.9 g
    np.testing.assert_allclose(p, [1.0, 2.0] - 0.1 * 1.9 * g0)
    p = np.array([1.0, 2.0])
    adam = OPTIMIZERS.build("adam")
    adam.step([p], [g0.copy()], lr=0.1)  # first Adam step moves each weight by lr * sign(g)
    np.testing.assert_allclose(p, [1.0 - 0.1, 2.0 + 0.1], rtol=1e-6)
    p = np.array([1.0, 2.0])
    decay = OPTIMIZERS.build({"name": "gd", "weight_decay": 0.1})
    decay.step([p], [np.zeros(2)], lr=1.0)
    np.testing.assert_allclose(p, [0.9, 1.8])


@pytest.mark.parametrize("spec,expected", [
    ("constant", [1.0, 1.0, 1.0]),
    ({"name": "step", "step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5]),
    ({"name": "exponential", "gamma": 0.5}, [1.0, 0.5, 0.25]),
    ({"name": "inverse_time", "decay": 1.0}, [1.0, 0.5, 1 / 3]),
], ids=str)
def test_schedules(spec, expected):
    schedule = SCHEDULES.build(spec)
    assert [schedule(1.0, t) for t in range(3)] == pytest.approx(expected)


@pytest.mark.parametrize("output", ["sigmoid", "tanh"])
def test_backward_leaves_the_output_and_uses_hidden_outputs_as_scratch(output):
    """Hidden tanh/sigmoid outputs may be overwritten by backward (they are used up); the
    output layer's must survive it, because the metrics read the step's output after it."""
    from nntrain.losses import LOSSES

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.random((20, 2))
    net = Network([3, 5, 5, 2], ["tanh", "sigmoid"], output)
    expected = net.forward(X)
    step = net.loss_and_backward(X, Y, LOSSES.build("mse"))
    np.testing.assert_array_equal(step.output, expected)
    E, grads = net.loss_and_gradients(X, Y, "mse")  # and the gradients stay right twice over
    E2, grads2 = net.loss_and_gradients(X, Y, "mse")
    assert E == E2 and all(np.array_equal(g, h) for g, h in zip(grads, grads2))


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "prelu"])  # inplace: a is written over z
@pytest.mark.parametrize("loss, output", [("mse", "identity"), ("bce", "sigmoid")])
def test_traced_step_keeps_each_layers_z_a_and_delta(activation, loss, output):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.uniform(size=(5, 2))
    net = Network([3, 4, 4, 2], activation=activation, output_activation=output, seed=1)
    loss = LOSSES.build(loss)
    step = net.loss_and_backward(X, Y, loss)
    plain = [g.copy() for g in net.gradients()]
    assert step.trace is None and step.dE_do is None  # nothing copied unless asked
    traced = net.loss_and_backward(X, Y, loss, trace=True)
    assert traced.E == step.E
    for g, p in zip(net.gradients(), plain):
        np.testing.assert_array_equal(g, p)  # the same step, bit for bit
    a = X
    for W, b, layer, act in zip(net.W, net.b, traced.trace, net.activations):
        np.testing.assert_allclose(layer.z, a @ W + b, rtol=1e-12)  # z itself, not f(z)
        a = act.forward((a @ W + b).copy())
        np.testing.assert_allclose(layer.a, a, rtol=1e-12)
    # delta_l: dE/dz_l; dW_l = a_(l-1)^T delta_l and db_l = the sum of delta_l over samples
    inputs = [X] + [layer.a for layer in traced.trace[:-1]]
    for a_prev, layer, dW, db in zip(inputs, traced.trace, net.dW, net.db):
        np.testing.assert_allclose(dW, a_prev.T @ layer.delta, rtol=1e-12)
        np.testing.assert_allclose(db, layer.delta.sum(axis=0), rtol=1e-12, atol=1e-15)
    if loss.fused_with:
        assert traced.dE_do is None
    else:
        np.testing.assert_allclose(traced.dE_do, loss.grad(traced.trace[-1].a, Y), rtol=1e-15)


def test_backward_refuses_a_pass_that_is_no_longer_the_latest():
    """The activations cache the latest forward pass's values and the buffers are reused: a
    backward over an older pass would compute wrong gradients silently."""
    rng = np.random.default_rng(0)
    net = Network([3, 4, 2], "tanh", "identity")
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    done = net.forward_pass(X)
    net.forward(X[:1])
    with pytest.raises(RuntimeError, match="latest forward pass"):
        net.backward(done, done.output - Y)
    fresh = net.forward_pass(X)
    net.backward(fresh, fresh.output - Y)  # the latest one is fine
