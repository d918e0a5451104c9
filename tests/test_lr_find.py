"""nntrain lr-find: the learning-rate range test's arithmetic against references computed here
another way (the EMA in closed form, slopes by hand, fastai's valley transcribed loop for loop),
its suggestions on synthetic curves (an early spike: Lightning #1767; slopes against log lr, not
lr: Lightning #21141), a quadratic bowl whose divergence rate is known, and the command line."""

import json
import math

import numpy as np
import pytest

from conftest import CONFIGS, write
from nntrain import load_config, train
from nntrain.experiment import setup
from nntrain.lrfind import (BETA, RangeRate, Smoothing, diverged, minimum_over_10, range_test,
                            steepest, suggest, valley, window)
from nntrain.optimizers import OPTIMIZERS, Optimizer

STEPS = 100
LRS = np.array([RangeRate(1e-7, 10.0, STEPS)(None, t) for t in range(STEPS)])


def smoothed_of(raw, beta=BETA):
    """The bias-corrected EMA in closed form: sum_k beta^(t-k) (1-beta) x_k / (1 - beta^(t+1))."""
    raw = np.asarray(raw, float)
    return np.array([sum(beta ** (t - k) * (1 - beta) * raw[k] for k in range(t + 1))
                     / (1 - beta ** (t + 1)) for t in range(len(raw))])


def fastai_valley(lrs, losses):
    """fastai/callback/schedule.py's ``valley``, transcribed loop for loop (the reference)."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), lds[max_end]


def smooth(raw):
    smoothing = Smoothing()
    return np.array([smoothing(x) for x in raw])


# -- the arithmetic ----------------------------------------------------------------------------


def test_the_rates_grow_exponentially_from_start_to_end():
    assert LRS[0] == pytest.approx(1e-7, rel=1e-12) and LRS[-1] == pytest.approx(10, rel=1e-12)
    ratios = LRS[1:] / LRS[:-1]
    assert np.allclose(ratios, 1e8 ** (1 / 99), rtol=1e-12)


def test_the_smoothing_is_the_bias_corrected_ema():
    raw = [2.0, 4.0, 1.0, 3.0, 0.5]
    got = smooth(raw)
    # by hand: the first value is the first loss; the second (0.98*0.04 + 0.02*4) / (1 - 0.98^2)
    assert got[0] == pytest.approx(2.0, rel=1e-14)
    assert got[1] == pytest.approx(0.1192 / 0.0396, rel=1e-14)
    assert np.allclose(got, smoothed_of(raw), rtol=1e-13)
    walk = np.random.default_rng(0).normal(1, 0.3, 300)
    assert np.allclose(smooth(walk), smoothed_of(walk), rtol=1e-12)


def test_the_stopping_rule_is_four_times_the_minimum_or_not_finite():
    assert diverged(4.0001, 1.0) and not diverged(4.0, 1.0) and not diverged(3.9, 1.0)
    assert diverged(float("nan"), 1.0) and diverged(float("inf"), 1.0)
    # a negative minimum (gaussian_nll): the minimum plus 3x its size
    assert not diverged(1.9, -1.0) and diverged(2.1, -1.0)


def test_the_test_stops_at_the_first_step_past_four_times_the_running_minimum(tmp_path):
    result = range_test(bowl(tmp_path))
    smoothed = np.array(result.smoothed)
    lowest = np.minimum.accumulate(smoothed)
    past = np.flatnonzero(smoothed > 4 * lowest)
    assert result.stopped_at["step"] == len(smoothed) == past[0] + 1
    assert result.stopped_at["lr"] == result.lr[-1]
    assert np.allclose(smoothed, smoothed_of(result.loss), rtol=1e-10)


def test_the_window_leaves_out_the_burn_in_and_the_last_five_steps_and_cuts_at_nan():
    lr, losses = np.arange(1.0, 41.0), np.linspace(2, 1, 40)
    got_lr, got = window(lr, losses, steps=100)
    assert got_lr[0] == 11 and got_lr[-1] == 35  # [100 // 10 : 40 - 5]
    losses[20] = np.nan
    assert window(lr, losses, steps=100)[0][-1] == 20


# -- the suggestions on synthetic curves ---------------------------------------------------------


def test_steepest_is_the_most_negative_slope_against_log_lr():
    lr = LRS[:60]
    curve = np.full(60, 2.0)
    curve[5:] -= 0.1  # a small drop where the rates are tiny: steep against lr itself
    curve[40:] -= 0.3  # the large drop, steepest against log lr, at 40
    curve[41:] -= 0.2
    curve[50:] -= np.arange(10) * 0.01
    by_hand = [(curve[i + 1] - curve[i - 1]) / (math.log(lr[i + 1]) - math.log(lr[i - 1]))
               for i in range(1, 59)]
    expected = lr[1 + int(np.argmin(by_hand))]
    assert steepest(lr, curve) == expected == lr[40]
    # against lr itself (Lightning before #21141) the small drop at 1e-7 would win
    assert lr[int(np.argmin(np.gradient(curve, lr)))] < 1e-6


def test_steepest_is_none_when_the_loss_never_falls():
    assert steepest(LRS[:20], np.linspace(1, 2, 20)) is None


def test_minimum_over_10_is_a_tenth_of_the_lr_at_the_lowest_smoothed_loss():
    curve = (np.log10(LRS) + 3) ** 2  # lowest at lr 1e-3, to the grid's step (x1.2)
    assert 1e-4 / 1.1 < minimum_over_10(LRS, curve) < 1e-4 * 1.1


def test_valley_is_fastais_rule():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(3, 80))
        losses = np.cumsum(rng.normal(0, 1, n))  # random walks: valleys anywhere
        lr = LRS[:n]
        expected, length = fastai_valley(lr, losses)
        if length >= 3:
            assert valley(lr, losses) == expected
            checked += 1
        else:  # the one deviation: no valley of 3 points, no suggestion
            assert valley(lr, losses) is None
    assert checked > 150
    # by hand: the longest strictly decreasing subsequence is 9 5 4 3 2 1 (indices 0, 2-6),
    # lds 6 at index 6, so max_start = 6 - 6 = 0, sections = 6/3 = 2, idx = 0 + 2 + 1 = 3
    losses = np.array([9.0, 9.5, 5, 4, 3, 2, 1, 7, 8])
    assert valley(np.arange(9.0), losses) == 3.0


def descent(spike: float) -> np.ndarray:
    """A range test's raw losses: flat at 1, the real descent to 0.1 around step 65, the rise
    after step 85; and ``spike`` added at step 2 (2.0: a spike to 3x the loss)."""
    t = np.arange(STEPS)
    raw = 0.1 + 0.9 / (1 + np.exp((t - 65) / 4)) + np.where(t > 85, 0.05 * (t - 85) ** 2, 0)
    raw[2] += spike
    return raw


@pytest.mark.parametrize("spike", [0.0, 0.5, 1.0, 2.0])
def test_an_early_spike_does_not_fool_steepest(spike):
    smoothed = smooth(descent(spike))
    suggestions = suggest(LRS, smoothed, STEPS)
    step = int(np.searchsorted(LRS, suggestions["steepest"]))
    assert 60 <= step <= 85, step  # on the smoothed curve's descent, which lags the raw one
    assert all(v < LRS[int(np.argmin(smoothed))] for v in suggestions.values())
    if spike:
        # the whole curve, without fastai's burn-in (Lightning before #1767), is fooled
        assert steepest(LRS, smoothed) < LRS[10]


def test_a_spike_to_five_times_the_loss_still_leaks_past_the_burn_in():
    # the limit docs/cli.md states: the spike's weight in the average falls as 1/t
    assert suggest(LRS, smooth(descent(4.0)), STEPS)["steepest"] < LRS[15]


def test_too_few_steps_before_divergence_suggest_nothing():
    assert suggest(LRS[:6], np.linspace(1, 0.5, 6), STEPS) == dict.fromkeys(
        ["steepest", "minimum_over_10", "valley"])


# -- on a network ------------------------------------------------------------------------------


def bowl(tmp_path):
    """A linear unit under MSE on x = +-1: E(w, b) = mean((w x + b - y)^2) is a quadratic bowl
    with Hessian 2 I (curvature c = 2), so gradient descent diverges for lr > 2/c = 1."""
    x = np.tile([-1.0, 1.0], 50)[:, None]
    y = 3 * x[:, 0] + 1 + np.random.default_rng(0).normal(0, 0.1, 100)
    np.savez(tmp_path / "bowl.npz", X=x, y=y)
    config = write(tmp_path / "bowl.yaml", f"""
data: {{name: npz, path: {tmp_path / 'bowl.npz'}, standardize: false, task: regression}}
model: {{layers: [1, 1], initializer: zeros, output_activation: identity}}
loss: mse
optimizer: {{name: gd}}
""")
    return load_config(config)


def test_on_a_quadratic_bowl_the_loss_rises_once_lr_passes_2_over_c(tmp_path):
    result = range_test(bowl(tmp_path))
    lr, loss = np.array(result.lr), np.array(result.loss)
    past = int(np.argmax(lr > 1.0))  # the first step at lr > 2/c
    rises = np.flatnonzero(np.diff(loss) > 0)  # loss[i+1] > loss[i]: step i's update raised it
    assert (loss[1:past] < loss[:past - 1]).all()  # below 2/c every step lowers the loss
    assert past <= rises[0] <= past + 2, (past, rises[:3])
    values = list(result.suggestions.values())
    assert all(v is not None and math.isfinite(v) for v in values)
    # every suggestion below 2/c and below the lr of the smoothed minimum
    lowest = lr[int(np.argmin(result.smoothed))]
    assert all(v < 1.0 and v < lowest for v in values), result.suggestions


def test_each_step_is_one_mini_batch_at_its_lr_given_to_the_optimizer(monkeypatch):
    cfg = load_config(CONFIGS / "moons.yaml", overrides=["optimizer.batch_size=32"])
    given = []
    step = Optimizer.step

    def spy(self, params, grads, lr, *args, **kwargs):
        given.append(lr)
        return step(self, params, grads, lr, *args, **kwargs)

    monkeypatch.setattr(Optimizer, "step", spy)
    result = range_test(cfg, steps=30)
    assert given == result.lr and np.allclose(given, RangeRate(1e-7, 10, 30).start * (
        1e8 ** (np.arange(len(given)) / 29)), rtol=1e-12)
    exp = setup(cfg)  # the first batch training draws, at the config's initialization
    X, Y, _ = next(iter(exp.batches))
    assert len(X) == 32 and result.loss[0] == pytest.approx(exp.net.loss(X, Y, exp.loss),
                                                            rel=1e-12)


def test_the_configs_run_is_unchanged_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(CONFIGS / "xor.yaml", overrides=["train.epochs=20"])
    before = train(cfg, runs_root=tmp_path / "a")
    frozen = cfg.to_dict()
    range_test(cfg)
    after = train(cfg, runs_root=tmp_path / "b")
    assert cfg.to_dict() == frozen
    assert [r["loss"] for r in before.history] == [r["loss"] for r in after.history]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.skipif("random_search" not in OPTIMIZERS, reason="no gradient-free optimizer")
def test_a_gradient_free_optimizer_is_refused(cli):
    result = cli("lr-find", CONFIGS / "xor.yaml", "optimizer={name: random_search}")
    assert result.exit_code == 2 and result.stderr.startswith("error: optimizer.name")


# -- the command line --------------------------------------------------------------------------


def test_json_has_the_documented_keys(cli, tmp_path):
    result = cli("lr-find", CONFIGS / "xor.yaml", "--steps", "60", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"lr", "loss", "smoothed", "suggestions", "stopped_at"}
    assert set(data["suggestions"]) == {"steepest", "minimum_over_10", "valley"}
    assert len(data["lr"]) == len(data["loss"]) == len(data["smoothed"]) <= 60
    assert data["stopped_at"] is None or set(data["stopped_at"]) == {"step", "lr", "reason"}
    assert list(tmp_path.iterdir()) == []  # no picture, no run folder


def test_text_names_each_rule_and_says_they_are_heuristics(cli, tmp_path):
    result = cli("lr-find", CONFIGS / "moons.yaml")
    assert result.exit_code == 0, result.stderr
    for rule in ("steepest", "minimum_over_10", "valley", "heuristics", "log lr"):
        assert rule in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_picture_and_nothing_else_is_written(cli, tmp_path):
    result = cli("lr-find", CONFIGS / "moons.yaml", "-o", "lr.png")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["lr.png"]
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


def test_out_writes_one_folder_whole(cli, tmp_path):
    result = cli("lr-find", CONFIGS / "moons.yaml", "--out", "found", "--json")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["found"]
    folder = tmp_path / "found"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.yaml", "lr_find.csv", "lr_find.json", "lr_find.png"]
    rows = np.loadtxt(folder / "lr_find.csv", delimiter=",", skiprows=1)
    printed = json.loads(result.stdout)
    assert np.allclose(rows[:, 1:].T, [printed["lr"], printed["loss"], printed["smoothed"]],
                       rtol=1e-12)
    saved = json.loads((folder / "lr_find.json").read_text())
    assert saved["suggestions"] == printed["suggestions"] and saved["steps"] == 100
    assert cli("lr-find", CONFIGS / "moons.yaml", "--out", "found").exit_code == 2


@pytest.mark.parametrize("args, key", [
    (["--start", "0"], "--start"), (["--start", "-1"], "--start"), (["--end", "nan"], "--end"),
    (["--start", "1", "--end", "0.1"], "--end"), (["--steps", "1"], "--steps"),
    (["-o", "lr.xyz"], "-o lr.xyz"), (["optimizer.lr=-1"], "optimizer.lr"),
    (["model.layers=[3,4,1]"], "model.layers"),
])
def test_bad_options_are_one_line_exit_2_and_write_nothing(cli, tmp_path, args, key):
    result = cli("lr-find", CONFIGS / "xor.yaml", *args, "--out", "found")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {key}") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
