"""The probabilistic-view lesson (docs/lessons.md, configs/lessons/likelihood.yaml): its
equalities, run as the lesson's commands run them."""

import math

import numpy as np

from conftest import CONFIGS
from nntrain import load_config, train

LESSON = CONFIGS / "lessons" / "likelihood.yaml"
HALF_LN_2PI = 0.5 * math.log(2 * math.pi)


def run(tmp_path, label, config=LESSON, overrides=()):
    result = train(load_config(config, overrides=list(overrides)), out=tmp_path / label)
    with np.load(result.path / "model.npz") as arrays:
        weights = {k: arrays[k] for k in arrays.files}
    return weights, result.history


def curve(history, key):
    return np.array([row[key] for row in history])


def test_mse_at_lr_and_gaussian_nll_at_twice_lr_move_the_weights_identically(tmp_path):
    # E_nll = ln sigma + ln(2 pi)/2 + (1/N) sum (y-o)^2 / (2 sigma^2) = E_mse / 2 + ln(2 pi)/2 (K = 1,
    # sigma = 1): dE_nll = dE_mse / 2, so gd at 2 lr takes the same step as mse at lr
    mse, mse_history = run(tmp_path, "mse")
    nll, nll_history = run(tmp_path, "nll", overrides=["loss=gaussian_nll", "optimizer.lr=0.1"])
    assert len(mse_history) == 201  # epoch 0 and the lesson's 200 epochs
    for key in mse:
        np.testing.assert_array_equal(mse[key], nll[key])  # bit for bit (the issue asks 1e-12)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(curve(nll_history, key),
                                   curve(mse_history, key) / 2 + HALF_LN_2PI, rtol=1e-13)
    assert curve(mse_history, "loss")[-1] < 0.5 * curve(mse_history, "loss")[0]  # it learned


def test_not_with_adam(tmp_path):
    # Adam's step m_hat / sqrt(v_hat) does not change when the gradient is scaled: mse and
    # gaussian_nll at the same lr nearly agree (only eps sees the scale); at 2 lr they do not
    adam = ["optimizer.name=adam"]
    mse, _ = run(tmp_path, "mse", overrides=adam)
    same_lr, _ = run(tmp_path, "same", overrides=adam + ["loss=gaussian_nll"])
    double_lr, _ = run(tmp_path, "double", overrides=adam + ["loss=gaussian_nll", "optimizer.lr=0.1"])
    assert max(np.abs(mse[k] - same_lr[k]).max() for k in mse) < 1e-4
    assert max(np.abs(mse[k] - double_lr[k]).max() for k in mse) > 1e-2


def test_cross_entropy_and_kl_give_identical_weights_with_one_hot_targets(tmp_path):
    # KL(y || o) = cross-entropy - H(y), and H(one-hot) = 0: the same loss, the same gradient
    ce, ce_history = run(tmp_path, "ce", CONFIGS / "iris.yaml", ["train.epochs=50"])
    kl, kl_history = run(tmp_path, "kl", CONFIGS / "iris.yaml", ["train.epochs=50", "loss=kl"])
    for key in ce:
        np.testing.assert_array_equal(ce[key], kl[key])
    np.testing.assert_array_equal(curve(ce_history, "loss"), curve(kl_history, "loss"))
