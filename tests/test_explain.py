"""`nntrain explain`: one training step, phase by phase. Its numbers are checked against a
forward pass, a loss and central differences written here in plain NumPy, and lesson 0's
against the step worked by hand."""

import json
import math
import re

import numpy as np
import pytest

from conftest import CONFIGS, printed_alike, write
from nntrain import load_config
from nntrain.explain import explain_step
from nntrain.optimizers import OPTIMIZERS, Optimizer

KEYS = {"inputs", "targets", "lr", "initial", "forward", "loss", "backward",
        "gradcheck_max_rel_error", "updated", "loss_after"}


def explain_json(cli, *args):
    result = cli("explain", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def arrays(layers, key):
    return [np.array(layer[key]) for layer in layers]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def xor_loss(Ws, bs, X, Y):
    """configs/xor.yaml's E(W) written independently: tanh hidden layer, sigmoid output, BCE."""
    o = sigmoid(np.tanh(X @ Ws[0] + bs[0]) @ Ws[1] + bs[1])
    return float(np.mean(-Y * np.log(o) - (1 - Y) * np.log(1 - o)))


def test_json_of_the_xor_step(cli):
    step = explain_json(cli, CONFIGS / "xor.yaml")
    assert set(step) == KEYS
    X, Y, lr = np.array(step["inputs"]), np.array(step["targets"]), step["lr"]
    assert X.shape == (4, 2) and Y.shape == (4, 1) and lr == 0.5  # the whole batch: 4 rows
    Ws, bs = arrays(step["initial"], "W"), arrays(step["initial"], "b")
    assert [W.shape for W in Ws] == [(2, 4), (4, 1)]  # (fan_in, fan_out)

    # forward: recomputed from `initial` and `inputs`
    z1 = X @ Ws[0] + bs[0]
    z2 = np.tanh(z1) @ Ws[1] + bs[1]
    expected = [(z1, np.tanh(z1)), (z2, sigmoid(z2))]
    for layer, (z, a) in zip(step["forward"], expected):
        np.testing.assert_allclose(layer["z"], z, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer["a"], a, rtol=1e-12, atol=1e-15)
    o = sigmoid(z2)
    per_sample = (-Y * np.log(o) - (1 - Y) * np.log(1 - o))[:, 0]
    np.testing.assert_allclose(step["loss"]["per_sample"], per_sample, rtol=1e-12)
    E = step["loss"]["E"]
    assert E == pytest.approx(xor_loss(Ws, bs, X, Y), rel=1e-12)
    assert E == pytest.approx(np.mean(step["loss"]["per_sample"]), rel=1e-12)

    # backward: every entry against central differences of the loss written above
    h = 1e-6
    params = Ws + bs
    for grad, p in zip(arrays(step["backward"], "dW") + arrays(step["backward"], "db"), params):
        numeric = np.zeros_like(p)
        for j in np.ndindex(p.shape):
            saved = p[j]
            p[j] = saved + h
            plus = xor_loss(Ws, bs, X, Y)
            p[j] = saved - h
            minus = xor_loss(Ws, bs, X, Y)
            p[j] = saved
            numeric[j] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # the output delta of sigmoid + BCE is (o - y)/N, and delta_1 = (delta_2 W2^T) * tanh'(z1)
    delta2 = (o - Y) / 4
    np.testing.assert_allclose(step["backward"][1]["delta"], delta2, rtol=1e-12)
    np.testing.assert_allclose(step["backward"][0]["delta"],
                               (delta2 @ Ws[1].T) * (1 - np.tanh(z1) ** 2), rtol=1e-10)
    assert 0 < step["gradcheck_max_rel_error"] < 1e-7

    # update: gd, W <- W - lr dW; a small step lowers E
    for new, old, layer in zip(step["updated"], step["initial"], step["backward"]):
        np.testing.assert_allclose(new["W"], np.array(old["W"]) - lr * np.array(layer["dW"]),
                                   rtol=1e-14)
        np.testing.assert_allclose(new["b"], np.array(old["b"]) - lr * np.array(layer["db"]),
                                   rtol=1e-14, atol=1e-16)
    new_Ws, new_bs = arrays(step["updated"], "W"), arrays(step["updated"], "b")
    assert step["loss_after"] == pytest.approx(xor_loss(new_Ws, new_bs, X, Y), rel=1e-12)
    assert step["loss_after"] < E


def test_lesson_zero_step_by_hand():
    """configs/lessons/one_step.yaml on its first sample, worked by hand as in docs/lessons.md."""
    step = explain_step(load_config(CONFIGS / "lessons" / "one_step.yaml"), samples=1)
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    # x: the XOR corner (0, 0) standardized with mean 0.5 and std 0.5 -> (-1, -1); y = 0
    x1, x2, y = -1.0, -1.0, 0.0
    # z1 = x W1 + b1, W1 = [[0.2, -0.4], [0.1, 0.3]], b1 = [0.1, 0.2]
    z11 = x1 * 0.2 + x2 * 0.1 + 0.1  # -0.2
    z12 = x1 * -0.4 + x2 * 0.3 + 0.2  # 0.3
    a11, a12 = s(z11), s(z12)  # 0.4502, 0.5744
    z2 = a11 * 0.5 + a12 * -0.6 + 0.1  # W2 = [[0.5], [-0.6]], b2 = [0.1]
    o = s(z2)  # 0.4951
    E = 0.5 * (y - o) ** 2  # SSE of one sample: 1/2 (y - o)^2
    dE_do = o - y  # d/do 1/2 (y - o)^2, N = 1
    d2 = dE_do * o * (1 - o)  # delta_2 = dE/do sigma'(z2), sigma' = sigma (1 - sigma)
    dW2 = [a11 * d2, a12 * d2]  # a_1^T delta_2
    d11 = d2 * 0.5 * a11 * (1 - a11)  # delta_1 = (delta_2 W2^T) * sigma'(z1)
    d12 = d2 * -0.6 * a12 * (1 - a12)
    dW1 = [[x1 * d11, x1 * d12], [x2 * d11, x2 * d12]]  # x^T delta_1
    lr = 0.5
    W2_new = [0.5 - lr * dW2[0], -0.6 - lr * dW2[1]]
    b2_new = 0.1 - lr * d2
    W1_new = np.array([[0.2, -0.4], [0.1, 0.3]]) - lr * np.array(dW1)
    b1_new = np.array([0.1, 0.2]) - lr * np.array([d11, d12])

    close = dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(step.X, [[x1, x2]])
    np.testing.assert_allclose(step.forward[0]["z"], [[z11, z12]], **close)
    np.testing.assert_allclose(step.forward[0]["a"], [[a11, a12]], **close)
    np.testing.assert_allclose(step.forward[1]["z"], [[z2]], **close)
    np.testing.assert_allclose(step.forward[1]["a"], [[o]], **close)
    assert step.E == pytest.approx(E, rel=1e-12)
    np.testing.assert_allclose(step.dE_do, [[dE_do]], **close)
    np.testing.assert_allclose(step.backward[1]["delta"], [[d2]], **close)
    np.testing.assert_allclose(step.backward[1]["dW"], np.array([dW2]).T, **close)
    np.testing.assert_allclose(step.backward[0]["delta"], [[d11, d12]], **close)
    np.testing.assert_allclose(step.backward[0]["dW"], dW1, **close)
    np.testing.assert_allclose(step.updated[1]["W"], np.array([W2_new]).T, **close)
    np.testing.assert_allclose(step.updated[1]["b"], [b2_new], **close)
    np.testing.assert_allclose(step.updated[0]["W"], W1_new, **close)
    np.testing.assert_allclose(step.updated[0]["b"], b1_new, **close)
    a_new = [s(x1 * W1_new[0, k] + x2 * W1_new[1, k] + b1_new[k]) for k in (0, 1)]
    o_new = s(W2_new[0] * a_new[0] + W2_new[1] * a_new[1] + b2_new)
    assert step.loss_after == pytest.approx(0.5 * o_new ** 2, rel=1e-12)
    # the 4-digit numbers docs/lessons.md prints and works by hand
    for got, printed in [(a11, 0.4502), (a12, 0.5744), (z2, -0.01958), (o, 0.4951), (E, 0.1226),
                         (d2, 0.1238), (dW2[0], 0.05571), (dW2[1], 0.0711), (d11, 0.01532),
                         (d12, -0.01815), (W2_new[0], 0.4721), (W2_new[1], -0.6355),
                         (b2_new, 0.03812), (W1_new[0, 0], 0.2077), (step.loss_after, 0.1103)]:
        assert float(f"{got:.4g}") == printed


def test_text_shows_every_phase_with_formulas(cli):
    result = cli("explain", CONFIGS / "xor.yaml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ["1. Initialize", "xavier_uniform", "target std 0.5774", "2. Forward",
                 "tanh' = 1 - tanh^2", "3. Error", "bce: E = (1/(NK))", "4. Back-propagation",
                 "bce is fused with sigmoid", "delta_1 = (delta_2 W_2^T) * f'(z_1)",
                 "largest relative error (every entry", "5. Update", "lr = 0.5",
                 "E after the step"]:
        assert text in out, text
    # W1[0, 0] of seed 0, 4 significant digits: an initializer's draw, no BLAS involved, so the
    # same on every machine (numpy's PCG64 and uniform scaling are exact IEEE arithmetic)
    assert "0.2739" in out


def test_an_unfused_loss_shows_dE_do(cli):
    out = cli("explain", CONFIGS / "lessons" / "one_step.yaml", "--samples", "1").stdout
    assert "dE/do 1x1" in out and "delta_2 = dE/do * f'(z_2), f = sigmoid" in out
    assert "fused" not in out


@pytest.mark.parametrize("overrides, expected", [
    (["optimizer.name=momentum"], ["v(W1)", "v(b2)", "momentum: v <- beta v + grad"]),
    (["optimizer.name=adam"], ["m(W1)", "v(W1)", "t = 1: 1 - beta1^t = 0.1, 1 - beta2^t = 0.001"]),
])
def test_momentum_and_adam_show_their_state(cli, overrides, expected):
    out = cli("explain", CONFIGS / "xor.yaml", *overrides).stdout
    for text in expected:
        assert text in out, text


def test_momentum_state_after_one_step_is_the_gradient():
    cfg = load_config(CONFIGS / "xor.yaml", overrides=["optimizer.name=momentum"])
    step = explain_step(cfg)
    np.testing.assert_array_equal(step.state["v"][0], step.backward[0]["dW"])  # v = 0.9*0 + g
    np.testing.assert_allclose(step.updated[0]["W"],
                               step.initial[0]["W"] - 0.5 * step.backward[0]["dW"], rtol=1e-14)


# explain shows a gradient step; random_local and random_search take none (they refuse, one line)
@pytest.mark.parametrize("optimizer", [name for name in OPTIMIZERS.names()
                                       if not OPTIMIZERS.get(name).gradient_free])
def test_the_state_shown_is_the_optimizers_state_names(optimizer):
    cfg = load_config(CONFIGS / "xor.yaml", overrides=[f"optimizer.name={optimizer}"])
    step = explain_step(cfg)
    opt = step.exp.optimizer
    assert list(step.state) == list(opt.state_names)
    for name, arrays in step.state.items():
        for shown, live in zip(arrays, getattr(opt, name), strict=True):
            np.testing.assert_array_equal(shown, live)
            assert shown is not live  # a copy: the state after this step, not a later one


def test_a_new_optimizers_state_is_shown_under_its_own_names(cli):
    @OPTIMIZERS.register("rmsprop_test")  # unregistered after the test (conftest)
    class RMSProp(Optimizer):
        """s <- 0.9 s + 0.1 g^2;  w <- w - lr g / (sqrt(s) + 1e-8)."""

        state_names = ("s",)

        def init_state(self, params):
            self.s = [np.zeros_like(p) for p in params]

        def update(self, i, g, u, lr):
            s = self.s[i]
            s *= 0.9
            s += 0.1 * g**2
            np.divide(g, np.sqrt(s) + 1e-8, out=u)
            u *= -lr

    cfg = load_config(CONFIGS / "xor.yaml", overrides=["optimizer.name=rmsprop_test"])
    step = explain_step(cfg)
    assert list(step.state) == ["s"]
    np.testing.assert_allclose(step.state["s"][0], 0.1 * step.backward[0]["dW"] ** 2, rtol=1e-14)
    out = cli("explain", CONFIGS / "xor.yaml", "optimizer.name=rmsprop_test").stdout
    assert "s(W1)" in out and "s(b2)" in out


def test_weight_decay_is_in_the_update_not_in_the_shown_gradient():
    cfg = load_config(CONFIGS / "xor.yaml", overrides=["+optimizer.weight_decay=0.1"])
    step = explain_step(cfg)
    W, dW = step.initial[1]["W"], step.backward[1]["dW"]
    np.testing.assert_allclose(step.updated[1]["W"], W - 0.5 * (dW + 0.1 * W), rtol=1e-14)
    assert step.max_error < 1e-6  # dW is the loss's gradient, checked before the decay


def test_samples_default_to_the_batch_capped_at_four(cli):
    assert len(explain_json(cli, CONFIGS / "moons.yaml")["inputs"]) == 4
    assert len(explain_json(cli, CONFIGS / "xor.yaml", "--samples", "2")["inputs"]) == 2
    assert len(explain_json(cli, CONFIGS / "xor.yaml", "--samples", "100")["inputs"]) == 4
    assert len(explain_json(cli, CONFIGS / "iris.yaml", "optimizer.batch_size=3")["inputs"]) == 3
    assert len(explain_json(cli, CONFIGS / "iris.yaml", "--samples", "10")["inputs"]) == 10


@pytest.mark.slow
def test_large_layers_print_a_slice_unless_full(cli):
    out = cli("explain", CONFIGS / "digits.yaml").stdout
    assert "W1 64x64, first 6x6" in out and "b1 1x64, first 1x6" in out
    assert "first 100 entries of each parameter" in out
    full = cli("explain", CONFIGS / "digits.yaml", "--full").stdout
    assert "W1 64x64\n" in full and "first 6x6" not in full and "(every entry" in full
    assert full.count("\n") > 3 * out.count("\n")


def test_float32_configs_are_explained_in_float64(cli):
    out = cli("explain", CONFIGS / "xor.yaml", "train.dtype=float32").stdout
    assert "in float64; the config trains in float32" in out
    step = explain_step(load_config(CONFIGS / "xor.yaml", overrides=["train.dtype=float32"]))
    assert step.X.dtype == np.float64 and step.max_error < 1e-7


def test_prelu_and_regression(cli):
    step = explain_json(cli, CONFIGS / "sine.yaml", "model.activation=prelu", "optimizer.lr=0.001")
    assert step["gradcheck_max_rel_error"] < 1e-6  # alpha's gradient included
    assert step["loss_after"] < step["loss"]["E"]
    assert len(step["forward"]) == 3


def test_bad_config_is_one_line_exit_2(cli, tmp_path):
    bad = write(tmp_path / "bad.yaml", "data: {name: xor}\nmodel:\n  layers: [2, 2, 1]\n"
                "  initializer: [{name: values, W: [[1, 2, 3]]}, zeros]\n")
    result = cli("explain", bad)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: model.initializer[0]: initializer 'values': W has "
                                     "shape (1, 3), the layer needs (fan_in, fan_out) = (2, 2)")
    assert cli("explain", CONFIGS / "xor.yaml", "--samples", "0").exit_code == 2


def test_lesson_zero_shows_what_the_command_prints(cli):
    """docs/lessons.md pastes the output of its explain command; it must not go stale."""
    lessons = (CONFIGS.parent / "docs" / "lessons.md").read_text()
    command = "nntrain explain configs/lessons/one_step.yaml --samples 1"
    assert f"```sh\n{command}\n```" in lessons
    pasted = re.search(r"prints each phase.*?```text\n(.*?)```", lessons, flags=re.S).group(1)
    result = cli(*command.split()[1:2], CONFIGS / "lessons" / "one_step.yaml", "--samples", "1")
    # every number to 1e-6 relative; the gradient check's relative errors (~1e-10) vary in
    # their digits and width between machines: any two below 1e-6 count as equal
    assert printed_alike(result.stdout, pasted)
    assert not printed_alike(result.stdout.replace("0.5", "0.6", 1), pasted)  # it can fail


def test_printouts_are_compared_by_their_numbers_not_their_digits():
    """The AMD machine printed 6e-10 where the Intel one printed 5.9e-10, and its table was a
    column narrower: the same print-out, which printed_alike must accept on every machine."""
    intel = "│ W1 │ 5.9e-10 │ yes │\n│ b1 │ 0.2500000 │"
    amd = "│ W1 │ 6e-10 │ yes │\n│ b1 │ 0.25 │"
    assert printed_alike(intel, amd)
    assert not printed_alike(intel, amd.replace("0.25", "0.26"))  # a real change in a number
    assert not printed_alike(intel, amd.replace("W1", "W2"))  # or in the words
    assert not printed_alike(intel, amd + " 1.0")  # or one more number


def test_standardized_inputs_are_shown_beside_the_raw_row(cli):
    out = cli("explain", CONFIGS / "iris.yaml", "--samples", "1").stdout
    assert "x is the standardized row: (raw - mean) / std" in out
    assert "raw 1x4" in out and "x = a_0 1x4" in out
    plain = cli("explain", CONFIGS / "xor.yaml", "--samples", "1").stdout
    assert "standardized" not in plain and "x = a_0" in plain
