"""plot --landscape: the loss surface around a run's trained parameters (Li et al. 2018) and the
line from its initial parameters (Goodfellow et al. 2015). References are computed here by
hand: norms of the filters, a trajectory built in a known plane, the loss of model.npz's
parameters by a NumPy forward pass, and metrics.csv's own rows."""

import math
import os

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import CONFIGS, write
from nntrain import load_config, train
from nntrain import landscape
from nntrain.initializers import INITIALIZERS
from nntrain.landscape import (LateBar, Options, chosen_runs, compute, filter_normalized,
                               flat, line_plan, plane_plan, principal_plane, random_directions,
                               zero_filter_scale)
from nntrain.model import load_run
from nntrain.registry import ConfigError
from nntrain.runs import read_metrics


def trained(tmp_path, config, *overrides, name="run"):
    cfg = load_config(config if str(config).startswith("/") else CONFIGS / config, list(overrides))
    return train(cfg, out=tmp_path / name).path


def no_bar():
    return LateBar(None, 1, 0.0)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def xor_loss_by_hand(run, params=None):
    """E(W) of a 2-4-1 tanh/sigmoid/bce net on the run's training split, written out here."""
    model = load_run(run)
    data = model.data()
    p = dict(np.load(run / "model.npz")) if params is None else params
    o = sigmoid(np.tanh(data.X_train @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"])
    y = data.Y_train
    return float(np.mean(-y * np.log(o) - (1 - y) * np.log(1 - o)))


# -- filter normalization ----------------------------------------------------------------------


def test_each_filter_is_a_column_and_its_direction_has_its_norm():
    W1 = np.array([[1.0, 0.0, 30.0, 0.5],
                   [2.0, 0.0, 40.0, -0.5],
                   [2.0, 0.0, 0.0, 0.0]])  # column norms 3, 0, 50, 1/sqrt(2): filter = column
    W2 = np.array([[0.3], [-0.4], [0.0], [1.2]])
    params = [W1, np.array([0.1, 0.2, 0.3, 0.4]), W2, np.array([5.0])]
    d = filter_normalized(params, [True, False, True, False], [0.7, 0.2],
                          np.random.default_rng(5))
    np.testing.assert_allclose(np.linalg.norm(d[0], axis=0)[[0, 2, 3]],
                               [3.0, 50.0, math.sqrt(0.5)], rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(d[2][:, 0]), 1.3, rtol=1e-12)  # sqrt(.09+.16+1.44)
    assert not d[1].any() and not d[3].any()  # biases stay put
    draw = np.random.default_rng(5).standard_normal((3, 4))  # the same stream, drawn here
    np.testing.assert_allclose(d[0][:, 1], 0.7 * draw[:, 1], rtol=1e-12)  # zero filter: unscaled
    for j in (0, 2, 3):  # a rescaled draw: parallel to it
        cos = d[0][:, j] @ draw[:, j] / np.linalg.norm(d[0][:, j]) / np.linalg.norm(draw[:, j])
        assert cos == pytest.approx(1.0, abs=1e-12)


def test_a_zero_layers_direction_is_drawn_at_the_initializers_scale():
    W = np.zeros((400, 60))
    d = filter_normalized([W], [True], [0.3], np.random.default_rng(0))[0]
    assert d.std() == pytest.approx(0.3, rel=0.02)
    he = INITIALIZERS.build("he_normal")
    assert zero_filter_scale(he, 50, 10) == pytest.approx(math.sqrt(2 / 50), rel=1e-12)
    # zeros and constant have no scale: Xavier's, sqrt(2 / (fan_in + fan_out))
    for name in ("zeros", {"name": "constant", "value": 0.3}):
        assert zero_filter_scale(INITIALIZERS.build(name), 2, 4) == pytest.approx(
            math.sqrt(2 / 6), rel=1e-12)


def test_random_directions_are_seeded_by_the_run_and_leave_biases_alone(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=30")
    first, again = random_directions(load_run(run)), random_directions(load_run(run))
    for d, e in zip(flat(first[0]), flat(again[0])):
        assert d == e
    model = load_run(run)
    u, v = random_directions(model)
    names = model.network.parameter_names()
    assert all(not d.any() for d, n in zip(u + v, names * 2) if n.startswith("b"))
    other = trained(tmp_path, "xor.yaml", "train.epochs=30", "seed=1", name="other")
    assert not np.allclose(flat(random_directions(load_run(other))[0]), flat(u))


def test_a_zero_init_run_gets_directions_for_its_zero_filters(tmp_path):
    run = trained(tmp_path, "lessons/zero_init.yaml", "train.epochs=5")
    model = load_run(run)
    assert not any(p.any() for p in model.network.parameters()[::2])  # every W is zero
    u, v = random_directions(model)
    for W_dir, (fan_in, fan_out) in zip(u[::2], [(2, 4), (4, 1)]):
        assert W_dir.any() and np.isfinite(W_dir).all()


# -- the path's principal plane ----------------------------------------------------------------


def known_plane(dims=30, seed=3):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dims, 2)))  # two orthonormal columns
    t = np.linspace(0, 1, 25)
    coords = np.column_stack([6 * (1 - t) ** 2, 1.5 * np.sin(3 * t) * (1 - t)])  # ends at 0
    return basis.T, coords, coords @ basis.T


def test_a_trajectory_in_a_known_plane_is_recovered_exactly():
    basis, coords, offsets = known_plane()
    plane = principal_plane(offsets)
    D = plane.directions
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(basis @ D.T, axis=1), 1.0, atol=1e-10)  # same span
    np.testing.assert_allclose(plane.coords @ D, offsets, atol=1e-10)  # nothing left out
    assert plane.explained.sum() == pytest.approx(1.0, abs=1e-12)
    centred = coords - coords.mean(axis=0)  # the variance shares from the 2-D coordinates alone
    shares = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    np.testing.assert_allclose(plane.explained, shares / shares.sum(), rtol=1e-9)
    assert plane.coords[0, 0] > 0 and plane.coords[0, 1] >= 0  # the start on the + side


def test_variance_off_the_plane_is_what_the_shares_leave_out():
    basis, coords, offsets = known_plane()
    off = np.zeros(offsets.shape[1])
    off[0] = 1.0
    off -= basis.T @ (basis @ off)
    off /= np.linalg.norm(off)  # orthogonal to the plane
    wobble = 0.05 * np.cos(np.arange(len(offsets)))
    in_plane = np.column_stack([np.ones(len(coords)), coords])  # wobble uncorrelated with the
    wobble -= in_plane @ np.linalg.lstsq(in_plane, wobble, rcond=None)[0]  # path: its own axis
    plane = principal_plane(offsets + wobble[:, None] * off)
    centred = np.column_stack([coords, wobble]) - np.column_stack([coords, wobble]).mean(axis=0)
    total = (centred ** 2).sum()
    assert plane.explained.sum() == pytest.approx(1 - (centred[:, 2] ** 2).sum() / total, rel=1e-9)


def test_a_path_along_one_line_gets_an_orthogonal_second_axis_explaining_nothing():
    line = np.outer(np.linspace(3, 0, 10), np.arange(1.0, 6.0))
    plane = principal_plane(line)
    assert plane.explained == pytest.approx([1.0, 0.0], abs=1e-12)
    assert abs(plane.directions[0] @ plane.directions[1]) < 1e-12


def test_a_runs_snapshots_project_with_the_reported_variance(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=200")
    plan = plane_plan("xor", load_run(run), Options(along="path", resolution=5))
    from nntrain.snapshots import read_snapshots

    final = np.concatenate([a.ravel() for a in np.load(run / "model.npz").values()])
    offsets = np.vstack([np.concatenate([p.ravel() for p in s.params]) - final
                         for s in read_snapshots(run / "snapshots.bin")])
    centred = offsets - offsets.mean(axis=0)
    along = [(centred @ flat(d)) for d in (plan.u, plan.v)]  # unit directions, here flattened
    shares = [float(a @ a) / float((centred ** 2).sum()) for a in along]
    path = plan.tracks[0].coords
    assert "PC 1" in plan.axes[0] and f"{shares[0]:.1%}" in plan.axes[0]
    assert f"{shares[1]:.1%}" in plan.axes[1]
    np.testing.assert_allclose(path, np.column_stack(
        [offsets @ flat(plan.u), offsets @ flat(plan.v)]), atol=1e-12)
    assert np.abs(path[:, 0]).max() <= plan.alphas[-1]  # the grid holds the path


# -- E(W) on the grid ----------------------------------------------------------------------


def test_the_grid_centre_is_the_loss_of_model_npz_on_the_training_data(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=40")
    model = load_run(run)
    plan = plane_plan("xor", model, Options(resolution=5))
    E = compute(plan, no_bar(), 0)
    assert E[2, 2] == pytest.approx(xor_loss_by_hand(run), abs=1e-12)
    for p, saved in zip(model.network.parameters(), np.load(run / "model.npz").values()):
        assert np.array_equal(p, saved)  # put back after the grid
    corner = {n: f + plan.alphas[0] * u + plan.betas[-1] * v for n, f, u, v in
              zip(model.network.parameter_names(), plan.loss_at.final, plan.u, plan.v)}
    assert E[-1, 0] == pytest.approx(xor_loss_by_hand(run, corner), rel=1e-10)


def test_the_centre_is_the_next_epochs_metrics_row_not_the_last(tmp_path):
    """metrics.csv's loss of epoch t is measured before epoch t's update (full batch here):
    so the surface's centre after 40 epochs is the 41st row of the same run trained longer."""
    short = trained(tmp_path, "xor.yaml", "train.epochs=40", name="short")
    longer = trained(tmp_path, "xor.yaml", "train.epochs=41", name="longer")
    E = compute(plane_plan("xor", load_run(short), Options(resolution=3)), no_bar(), 0)
    rows = read_metrics(longer)
    assert E[1, 1] == pytest.approx(rows[41]["loss"], abs=1e-12)
    assert E[1, 1] != pytest.approx(read_metrics(short)[40]["loss"], abs=1e-6)


def test_a_linear_model_gives_the_known_quadratic(tmp_path):
    """layers [2, 1], identity output, mse: E(a, b) = mean((X (w + a d1 + b d2) + c - y)^2),
    a quadratic in a and b, computed here from the directions."""
    config = write(tmp_path / "linear.yaml", "name: linear\nseed: 0\n"
                   "data: {name: plane, n_samples: 50, noise: 0.1, seed: 0}\n"
                   "model: {layers: [2, 1], output_activation: identity}\nloss: mse\n"
                   "optimizer: {name: gd, lr: 0.1}\ntrain: {epochs: 20}\n")
    run = trained(tmp_path, config)
    model = load_run(run)
    data = model.data()
    for along in ("random", "path"):
        plan = plane_plan("linear", model, Options(along=along, resolution=7, span=2.0))
        E = compute(plan, no_bar(), 0)
        (W, c), (uW, uc), (vW, vc) = plan.loss_at.final, plan.u, plan.v
        for i, b in enumerate(plan.betas):
            for j, a in enumerate(plan.alphas):
                o = data.X_train @ (W + a * uW + b * vW) + (c + a * uc + b * vc)
                assert E[i, j] == pytest.approx(np.mean((o - data.Y_train) ** 2), rel=1e-10)


@pytest.mark.parametrize("every", ["auto", "0"])
def test_the_line_runs_from_the_initial_to_the_trained_parameters(tmp_path, every):
    run = trained(tmp_path, "xor.yaml", "train.epochs=40", f"train.snapshot_every={every}")
    plan = line_plan("xor", load_run(run), Options(line=True))
    E = compute(plan, no_bar(), 0)
    assert plan.alphas[0] == -0.5 and plan.alphas[-1] == 1.5
    at = {a: e for a, e in zip(plan.alphas, E)}
    assert at[1.0] == pytest.approx(xor_loss_by_hand(run), abs=1e-12)
    assert at[0.0] == pytest.approx(read_metrics(run)[0]["loss"], rel=1e-9)  # the untrained net


# -- the command -------------------------------------------------------------------------------


def test_plot_landscape_writes_the_picture(tmp_path, cli):
    run = trained(tmp_path, "xor.yaml", "train.epochs=50")
    for args, name in ((["--resolution", "9"], "surface.png"),
                       (["--along", "path", "--resolution", "9", "--span", "1.5"], "path.png"),
                       (["--line", "--resolution", "11"], "line.png")):
        result = cli("plot", run, "--landscape", *args, "-o", name)
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith(name)
        assert imread(tmp_path / name).shape[0] > 100
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_a_compare_folder_gets_one_panel_per_variant(tmp_path, cli):
    result = cli("compare", CONFIGS / "xor.yaml", "train.epochs=20",
                 "--initializers", "zeros,xavier_uniform,he_normal", "--out", "sweep")
    assert result.exit_code == 0, result.output
    captured = {}

    def keep(plans, results):
        captured["labels"] = [p.label for p in plans]
        return original(plans, results)

    original = landscape.surface_figure
    landscape.surface_figure = keep
    try:
        result = cli("plot", tmp_path / "sweep", "--landscape", "--resolution", "5",
                     "-o", "sweep.png")
    finally:
        landscape.surface_figure = original
    assert result.exit_code == 0, result.output
    assert len(captured["labels"]) == 3
    assert any("zeros" in label for label in captured["labels"])


@pytest.mark.parametrize("args, key", [
    (["--landscape", "--span", "0"], "--span"),
    (["--landscape", "--span", "-1"], "--span"),
    (["--landscape", "--span", "nan"], "--span"),
    (["--landscape", "--span", "inf"], "--span"),
    (["--landscape", "--resolution", "4"], "--resolution"),
    (["--landscape", "--resolution", "1"], "--resolution"),
    (["--landscape", "--resolution", "100001"], "--resolution"),
    (["--landscape", "--along", "sideways"], "--along"),
    (["--landscape", "--boundary"], "one picture at a time"),
    (["--landscape", "--activations"], "one picture at a time"),
    (["--span", "2"], "--span: goes with --landscape"),
    (["--line"], "--line: goes with --landscape"),
    (["--boundary", "--along", "path"], "--along: goes with --landscape"),
    (["--landscape", "--line", "--span", "2"], "--span"),
    (["--landscape", "--line", "--along", "path"], "--along"),
    (["--landscape", "--at", "5"], "--at"),
    (["--landscape", "--layer", "2"], "--layer"),
    (["--landscape", "-o", "surface.gif"], "still picture"),
])
def test_bad_landscape_options_exit_2_in_one_line(tmp_path, cli, args, key):
    run = trained(tmp_path, "xor.yaml", "train.epochs=5")
    (tmp_path / "plot.png").write_bytes(b"earlier")
    result = cli("plot", run, *args)
    assert result.exit_code == 2, result.output
    assert key in result.output and len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "plot.png").read_bytes() == b"earlier"
    assert not list(tmp_path.glob("surface*"))


def test_along_path_needs_snapshots_and_a_path_that_moved(tmp_path, cli):
    bare = trained(tmp_path, "xor.yaml", "train.epochs=20", "train.snapshot_every=0", name="bare")
    result = cli("plot", bare, "--landscape", "--along", "path")
    assert result.exit_code == 2 and "snapshot" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert cli("plot", bare, "--landscape", "--resolution", "5").exit_code == 0  # random: fine
    still = trained(tmp_path, "lessons/zero_init.yaml", "train.epochs=20", name="still")
    result = cli("plot", still, "--landscape", "--along", "path")
    assert result.exit_code == 2 and "never moved" in result.output


def test_a_grid_past_the_time_budget_is_refused_with_a_resolution_that_fits(tmp_path, cli,
                                                                           monkeypatch):
    run = trained(tmp_path, "xor.yaml", "train.epochs=5")
    monkeypatch.setattr(landscape, "BUDGET_S", 1e-9)
    result = cli("plot", run, "--landscape", "-o", "slow.png")
    assert result.exit_code == 2 and "--resolution 3 or less" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "slow.png").exists()
    monkeypatch.setattr(landscape, "BUDGET_S", 1e9)


def test_a_diverged_run_has_no_surface(tmp_path, cli):
    run = trained(tmp_path, "lessons/learning_rate.yaml", "optimizer.lr=2", "train.epochs=150")
    assert (run / "model.npz").exists()  # finite, but about 1e154: lesson 8's diverged rate
    result = cli("plot", run, "--landscape")
    assert result.exit_code == 2 and "the run diverged" in result.output


# -- the file ------------------------------------------------------------------------------------


def test_the_picture_is_written_atomically(tmp_path, cli, monkeypatch):
    run = trained(tmp_path, "xor.yaml", "train.epochs=10")
    target = tmp_path / "kept.png"
    target.write_bytes(b"someone else's file")
    (tmp_path / "out.png").symlink_to(target)
    assert cli("plot", run, "--landscape", "--resolution", "5", "-o", "out.png").exit_code == 0
    assert target.read_bytes() == b"someone else's file"  # the link is replaced, not followed
    assert not (tmp_path / "out.png").is_symlink() and imread(tmp_path / "out.png").size

    from matplotlib.figure import Figure

    def torn(self, path, **kwargs):
        open(path, "wb").write(b"\x89PNG half")
        raise OSError("disk full")

    before = (tmp_path / "out.png").read_bytes()
    monkeypatch.setattr(Figure, "savefig", torn)
    result = cli("plot", run, "--landscape", "--resolution", "5", "-o", "out.png")
    assert result.exit_code == 1
    assert (tmp_path / "out.png").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_the_progress_bar_is_named_for_the_surface():
    made = []

    def make_bar(*columns):
        made.append(columns)
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError):
        landscape.surface_bar(make_bar)("GIF frames", "bar", "count")
    assert "loss surface" in made[0][0].text_format and made[0][1:] == ("bar", "count")
    assert landscape.surface_bar(False) is False


def test_chosen_runs_refuses_a_seed_no_run_has(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=5")
    with pytest.raises(ConfigError, match="no run with seed 7"):
        chosen_runs([run], 7)


# -- --together: several runs' paths on one surface ---------------------------------------------


def known_paths(dims=40, seed=4):
    """Three paths in one known plane of a 40-dimensional space (offsets from a centre that the
    second path ends at), and a fourth that leaves the plane's picture along the plane."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dims, 2)))
    t = np.linspace(0, 1, 20)[:, None]
    start = np.array([[3.0, 1.0]])
    coords = [start * (1 - t) + np.array([[0.4, -0.3]]) * t,  # a slow rate: not there yet
              start * (1 - t) ** 3,  # the good one ends at the centre
              start * (1 - t) + np.column_stack([np.sin(9 * t), -np.cos(9 * t)]) * t]
    gone = start * (1 + 5 * t ** 2)  # from the same start, runs off to 6x as far
    return basis.T, coords, gone


def test_paths_in_a_known_plane_are_recovered_together_and_a_diverged_one_is_cut():
    basis, coords, gone = known_paths()
    paths = [(xy @ basis, False) for xy in coords] + [(gone @ basis, True)]
    plane, halves, drawn = landscape.shared_plane(paths, span=1.0)
    D = plane.directions
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(basis @ D.T, axis=1), 1.0, atol=1e-10)  # same span
    for xy, got in zip(coords, drawn):  # each path's projection: the offsets, nothing left out
        np.testing.assert_allclose(got @ D, xy @ basis, atol=1e-10)
    together = np.vstack(coords)  # the shares from the three stayed paths' 2-D points alone
    centred = together - together.mean(axis=0)
    shares = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    np.testing.assert_allclose(plane.explained, shares / shares.sum(), rtol=1e-9)
    np.testing.assert_allclose(drawn[1][-1], [0, 0], atol=1e-12)  # the centre
    # the picture reaches 10% past the stayed paths' farthest point on each axis
    np.testing.assert_allclose(halves, 1.1 * np.abs(np.vstack(drawn[:3])).max(axis=0),
                               rtol=1e-12)
    # the diverged path: not in the plane's PCA (the same plane without it), drawn until its
    # first point outside the picture
    alone, _, _ = landscape.shared_plane(paths[:3])
    np.testing.assert_allclose(np.abs(alone.directions @ D.T), np.eye(2), atol=1e-12)
    outside = (np.abs(gone @ basis @ D.T) > halves).any(axis=1)
    first = int(np.argmax(outside))
    assert 0 < first < len(gone) - 1 and len(drawn[3]) == first + 1
    np.testing.assert_allclose(drawn[3] @ D, (gone @ basis)[:first + 1], atol=1e-10)


def lr_sweep(tmp_path, cli, config="xor.yaml", *overrides, rates="0.05,0.5,2.0", name="sweep"):
    result = cli("compare", CONFIGS / config, f"optimizer.lr={rates}", *overrides, "--out", name)
    assert result.exit_code == 0, result.output
    return sorted(p for p in (tmp_path / name).iterdir() if p.is_dir())


def test_together_centres_on_the_lowest_final_loss_and_projects_every_path(tmp_path, cli):
    runs = lr_sweep(tmp_path, cli, "xor.yaml", "train.epochs=60", rates="0.05,0.5,2.0")
    finals = {run: xor_loss_by_hand(run) for run in runs}  # E of each model.npz, by hand
    best = min(finals, key=finals.get)
    plan = landscape.together_plan(landscape.picked_runs(runs, None), Options(along="path",
                                                                              resolution=5))
    E = compute(plan, no_bar(), 0)
    assert E[2, 2] == pytest.approx(finals[best], abs=1e-12)  # the grid's centre
    from nntrain.snapshots import read_snapshots

    centre = flat(np.load(best / "model.npz").values())
    directions = np.vstack([flat(plan.u), flat(plan.v)])
    offsets = [np.vstack([flat(s.params) - centre for s in read_snapshots(run / "snapshots.bin")])
               for run in runs]
    for track, off in zip(plan.tracks, offsets):
        np.testing.assert_allclose(track.coords, off @ directions.T, atol=1e-12)
    labels = [f"optimizer.lr={lr}" for lr in ("0.05", "0.5", "2.0")]
    assert [t.label for t in plan.tracks] == labels
    everything = np.vstack(offsets)  # the shares over all three paths' snapshots together
    centred = everything - everything.mean(axis=0)
    for axis, d in zip(plan.axes, directions):
        share = float(((centred @ d) ** 2).sum() / (centred ** 2).sum())
        assert f"({share:.1%} of their variance)" in axis
    assert plan.centre.startswith(f"{labels[runs.index(best)]}'s trained W")


def test_together_draws_a_diverged_run_up_to_its_last_finite_snapshot(tmp_path, cli):
    runs = lr_sweep(tmp_path, cli, "lessons/learning_rate.yaml", "train.epochs=120",
                    "train.snapshot_every=1", rates="0.12,1.2")
    assert "diverged" in (runs[1] / "summary.json").read_text()
    plan = landscape.together_plan(landscape.picked_runs(runs, None),
                                   Options(along="path", resolution=3))
    stayed, gone = plan.tracks
    assert "0.12's trained W" in plan.centre and "diverged at epoch" in gone.label
    halves = np.array([plan.alphas[-1], plan.betas[-1]])
    assert (np.abs(gone.coords[:-1]) <= halves).all()  # inside, then one point out
    assert (np.abs(gone.coords[-1]) > halves).any() and np.isfinite(gone.coords).all()
    assert f"drawn to epoch {gone.epochs[-1]}" in gone.label and gone.epochs[-1] < 10
    assert np.abs(stayed.coords).max(axis=0) == pytest.approx(halves / 1.1, rel=1e-12)
    # non-finite snapshots are never drawn
    from nntrain.snapshots import Snapshot

    snaps = [Snapshot(e, [np.array([1.0, v])]) for e, v in ((0, 1.0), (1, 5.0), (2, np.inf),
                                                            (3, 2.0))]
    assert [s.epoch for s in landscape.finite_prefix(snaps)] == [0, 1]


def test_every_run_diverged_has_no_surface(tmp_path):
    run = trained(tmp_path, "lessons/learning_rate.yaml", "optimizer.lr=2", "train.epochs=150")
    with pytest.raises(ConfigError, match="every run diverged"):
        landscape.together_plan(landscape.picked_runs([run], None), Options(along="path"))


def test_plot_together_writes_one_surface(tmp_path, cli):
    lr_sweep(tmp_path, cli, "xor.yaml", "train.epochs=30")
    captured = {}
    original = landscape.surface_figure

    def keep(plans, results):
        captured["plans"] = plans
        return original(plans, results)

    landscape.surface_figure = keep
    try:
        result = cli("plot", tmp_path / "sweep", "--landscape", "--along", "path", "--together",
                     "--resolution", "7", "-o", "together.png")
    finally:
        landscape.surface_figure = original
    assert result.exit_code == 0, result.output
    assert len(captured["plans"]) == 1 and len(captured["plans"][0].tracks) == 3
    assert imread(tmp_path / "together.png").shape[0] > 100


NOISY = ["+data.n_samples=40", "+data.noise=0.1"]


@pytest.mark.parametrize("base, other, what", [
    ([], NOISY, "training data"),
    (NOISY, ["data.seed=1"], "training data"),
    ([], ["model.layers=[2,3,1]"], "network"),
    ([], ["model.activation=relu"], "network"),
    ([], ["loss=mse"], "loss"),
])
def test_together_refuses_runs_on_another_surface(tmp_path, cli, base, other, what):
    base = ["train.epochs=5", *base]
    first = trained(tmp_path, "xor.yaml", *base, name="first")
    second = trained(tmp_path, "xor.yaml", *base, *other, "optimizer.lr=0.1", name="second")
    (tmp_path / "runs").mkdir()
    for run in (first, second):
        run.rename(tmp_path / "runs" / run.name)
    result = cli("plot", tmp_path / "runs", "--landscape", "--along", "path", "--together",
                 "-o", "together.png")
    assert result.exit_code == 2, result.output
    assert f"its {what} differs" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "together.png").exists()


def test_together_refuses_runs_of_another_initializer_only_if_the_surface_differs(tmp_path):
    """Initializers and seeds change where a path starts, not E(W): those runs share a
    surface."""
    runs = [trained(tmp_path, "xor.yaml", "train.epochs=20", *extra, name=name)
            for name, extra in (("a", []), ("b", ["model.initializer=he_normal", "seed=3"]))]
    landscape.check_one_surface(landscape.picked_runs(runs, None))


@pytest.mark.parametrize("args", [["--landscape", "--together"],
                                  ["--landscape", "--along", "random", "--together"],
                                  ["--landscape", "--line", "--together"],
                                  ["--together"]])
def test_together_goes_with_along_path(tmp_path, cli, args):
    run = trained(tmp_path, "xor.yaml", "train.epochs=5")
    result = cli("plot", run, *args)
    assert result.exit_code == 2 and "--together" in result.output
    assert len(result.output.strip().splitlines()) == 1
