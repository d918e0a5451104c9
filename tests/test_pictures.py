"""Parameter snapshots (snapshots.bin) and the pictures drawn from them: plot --boundary,
--fit, --neurons. Pictures are checked by content: pixel colours, GIF frames, line data."""

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import CONFIGS, ROOT, run_nntrain, write
from nntrain import load_config, train
from nntrain.model import load_run
from nntrain.pictures import (CLASS_COLOURS, draw, figure, nearest, parse_at, region_colours,
                              views)
from nntrain.registry import ConfigError
from nntrain.resume import resume
from nntrain.snapshots import (FILE_NAME, MAX_BYTES, RECORD, SnapshotFile, planned_epochs,
                               read_snapshots)
from nntrain.tasks import TASKS


def trained(tmp_path, config, *overrides, name="run"):
    cfg = load_config(CONFIGS / config if "/" not in str(config) else config, list(overrides))
    return train(cfg, out=tmp_path / name).path


def epochs_of(run_dir):
    return [s.epoch for s in read_snapshots(run_dir / FILE_NAME)]


# -- snapshots ---------------------------------------------------------------------------


def test_auto_keeps_first_last_and_about_50_denser_early(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=600")
    epochs = epochs_of(run)
    assert epochs[0] == 0 and epochs[-1] == 600
    assert 40 <= len(epochs) <= 52 and epochs == sorted(set(epochs))
    gaps = np.diff(epochs)
    assert gaps[:5].max() < gaps[-5:].min()  # dense early, sparse late
    params = read_snapshots(run / FILE_NAME)[-1].params
    model = np.load(run / "model.npz")
    assert all(np.array_equal(p, model[n]) for p, n in zip(params, ["W1", "b1", "W2", "b2"]))


@pytest.mark.parametrize("every, expected", [(25, [0, 25, 50, 75, 80]), (0, None)])
def test_snapshot_every_integer_and_zero(tmp_path, every, expected):
    run = trained(tmp_path, "xor.yaml", "train.epochs=80", f"train.snapshot_every={every}")
    if expected is None:
        assert not (run / FILE_NAME).exists()
    else:
        assert epochs_of(run) == expected


def test_an_early_stopped_run_keeps_its_last_epoch(tmp_path):
    run = trained(tmp_path, "moons.yaml", "train.epochs=3000",
                  "train.early_stopping={patience: 3, min_delta: 0.5}")
    rows = (run / "metrics.csv").read_text().splitlines()
    assert epochs_of(run)[-1] == int(rows[-1].split(",")[0]) < 3000


@pytest.mark.parametrize("value", ["-1", "1.5", "often", "true"])
def test_snapshot_every_checked(value):
    with pytest.raises(ConfigError, match="train.snapshot_every"):
        load_config(CONFIGS / "xor.yaml", [f"train.snapshot_every={value}"])


def test_size_cap_keeps_fewer_for_large_networks_but_always_first_and_last():
    small = planned_epochs("auto", 3000, 100)
    assert len(small) == 52
    big = planned_epochs("auto", 3000, 1_000_000)
    assert {0, 3000} <= big and len(big) * 1_000_000 <= MAX_BYTES
    assert planned_epochs("auto", 3000, 50_000_000) == {0, 3000}
    assert planned_epochs(10, 3000, 100) is None  # an integer: every N-th, as asked


def test_reader_ignores_a_torn_last_record_and_warns_of_a_corrupt_one(tmp_path):
    path = tmp_path / FILE_NAME
    params = [np.arange(6.0).reshape(2, 3), np.ones(3)]
    with SnapshotFile(path, ["W1", "b1"], params) as file:
        for epoch in range(3):
            file.append(epoch, [p + epoch for p in params])
    whole = path.read_bytes()
    record = RECORD.size + 9 * 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn record is normal: no warning
        for cut in (1, RECORD.size - 1, RECORD.size + 5, record - 1):  # a kill mid-record
            path.write_bytes(whole[:len(whole) - cut])
            snaps = read_snapshots(path)
            assert [s.epoch for s in snaps] == [0, 1]
            assert np.array_equal(snaps[1].params[0], params[0] + 1)
        path.write_bytes(whole[:10])  # torn header: nothing, no error
        assert read_snapshots(path) == []
    path.write_bytes(whole[:-8] + b"\x00" * 8)  # zeros where the payload should be: damage
    with pytest.warns(UserWarning, match=f"at byte {len(whole) - record} skipped"):
        assert [s.epoch for s in read_snapshots(path)] == [0, 1]


def test_resume_drops_snapshots_after_its_checkpoint(tmp_path):
    run = trained(tmp_path, "xor.yaml", "train.epochs=30", "train.snapshot_every=5")
    net = load_run(run).network
    with SnapshotFile(run / FILE_NAME, net.parameter_names(), net.parameters()) as file:
        file.append(35, net.parameters())  # written after the checkpoint by a run then killed
    with open(run / FILE_NAME, "ab") as f:
        f.write(b"SNAP\x01")  # and a torn record
    resume(run, ["train.epochs=50"])
    assert epochs_of(run) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]


@pytest.mark.slow
def test_a_killed_runs_snapshots_can_be_read_and_drawn(tmp_path):
    config = write(tmp_path / "big.yaml", (CONFIGS / "moons.yaml").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "nntrain", "train", str(config), "--out", "run",
         "train.epochs=1000000", "train.snapshot_every=1", "model.layers=[2, 128, 128, 1]"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = tmp_path / "run" / FILE_NAME
    deadline = time.time() + 60
    while time.time() < deadline and not (path.exists() and path.stat().st_size > 3_000_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    snaps = read_snapshots(path)
    assert len(snaps) >= 10
    assert [s.epoch for s in snaps] == list(range(len(snaps)))
    assert all(np.isfinite(p).all() for s in snaps for p in s.params)
    result = run_nntrain("plot", "run", "--boundary", "-o", "killed.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "killed.png").read_bytes()[:4] == b"\x89PNG"


# -- --at ----------------------------------------------------------------------------------


def test_at_picks_the_nearest_snapshot_each_once():
    from nntrain.snapshots import Snapshot

    snaps = [Snapshot(e, []) for e in (0, 3, 8, 20, 50)]
    with pytest.warns(UserWarning, match="--at 100 is past the last snapshot, epoch 50"):
        assert [s.epoch for s in nearest(snaps, parse_at("0,10,100,last"))] == [0, 8, 50]
    assert [s.epoch for s in nearest(snaps, parse_at("first, 19,21"))] == [0, 20]
    for bad in ("-1", "1.5", "end", ""):
        with pytest.raises(ConfigError, match="--at"):
            parse_at(bad)


# -- boundary ------------------------------------------------------------------------------


def hand_set_boundary_run(tmp_path):
    """A logistic regression on moons (raw units) whose boundary is x1 = 0: P(1) = s(20 x1)."""
    run = trained(tmp_path, "moons.yaml", "train.epochs=1", "model.layers=[2, 1]",
                  "data.standardize=false", "train.snapshot_every=0")
    with SnapshotFile(run / FILE_NAME, ["W1", "b1"], [np.zeros((2, 1)), np.zeros(1)]) as file:
        file.append(7, [np.array([[20.0], [0.0]]), np.zeros(1)])
    return run


def panel_axes(fig):
    """The figure's visible panels, its colour bars left out."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def pixel(fig, ax, x, y, rgb):
    """The median colour of a 7x7 patch around data point (x, y) of the rendered figure."""
    px, py = ax.transData.transform((x, y))
    row, col = int(rgb.shape[0] - py), int(px)
    return np.median(rgb[row - 3:row + 4, col - 3:col + 4, :3].reshape(-1, 3), axis=0)


def test_a_boundary_at_x1_0_colours_the_two_halves_differently(tmp_path):
    run = hand_set_boundary_run(tmp_path)
    (view,) = views([run], "boundary", None, 1)
    fig = figure("boundary", [view], [view.snapshots], 1)
    fig.savefig(tmp_path / "boundary.png")  # the PNG's own pixels
    rgb = imread(tmp_path / "boundary.png")
    ax = fig.axes[0]
    assert ax.get_title() == "epoch 7"
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 0 < x1
    margin = y0 + 0.03 * (y1 - y0)  # below the data (the plane reaches 10% beyond it)
    left = [pixel(fig, ax, x, margin, rgb) for x in (x0 * 0.9, x0 * 0.5, x0 * 0.2)]
    right = [pixel(fig, ax, x, margin, rgb) for x in (x1 * 0.9, x1 * 0.5, x1 * 0.2)]
    for colour in left:  # P(1) ~ 0: class 0's blue
        assert colour[2] > colour[0] + 0.2, colour
    for colour in right:  # P(1) ~ 1: class 1's red
        assert colour[0] > colour[2] + 0.2, colour
    # the points: training filled, validation drawn apart, in the data's own units
    X_train = np.asarray(ax.collections[-2].get_offsets())
    assert X_train[:, 0].min() < -0.5 and X_train[:, 0].max() > 1.5  # moons' raw extent


def test_multiclass_regions_take_the_likeliest_class_colour():
    from matplotlib.colors import to_rgb

    multiclass = TASKS["multiclass"]
    proba = np.eye(3)[[2, 0, 1]]
    assert np.allclose(region_colours(proba, multiclass)[0],
                       1 - 0.5 * (1 - np.array(to_rgb(CLASS_COLOURS[2]))))
    unsure = region_colours(np.full((1, 3), 1 / 3), multiclass)[0]
    assert unsure.min() > region_colours(proba, multiclass)[0].min()  # paler


def test_two_class_regions_shade_p1_for_binary_but_not_for_a_2_class_softmax():
    from matplotlib.colors import to_rgb

    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])  # P(class 0), P(class 1)
    binary = region_colours(proba, TASKS["binary"])
    assert binary[0, 2] > binary[0, 0] and binary[2, 0] > binary[2, 2]  # blue, then red
    assert binary[1].min() > 0.9  # P(class 1) = 0.5: near white
    # a softmax over 2 classes keeps the class colours: 0.9 sure of class 0 is its colour at
    # strength 0.1 + 0.4 * (0.9 - 1/2) / (1 - 1/2) = 0.42
    softmax = region_colours(proba, TASKS["multiclass"])
    assert np.allclose(softmax[0], 1 - 0.42 * (1 - np.array(to_rgb(CLASS_COLOURS[0]))))


def test_a_binary_boundary_has_a_colour_bar_of_p1_and_its_legend_below_the_plane(tmp_path):
    run = hand_set_boundary_run(tmp_path)
    (view,) = views([run], "boundary", None, 1)
    fig = figure("boundary", [view], [view.snapshots], 1)
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "P(class 1)"
    # the bar's colours are the regions' own: P(1) = 0.1 and 0.9 as region_colours shades them
    (ax,) = panel_axes(fig)
    image = ax.images[0]
    proba = np.array([[0.9, 0.1], [0.1, 0.9]])
    assert np.allclose(image.cmap(image.norm(proba[:, 1]))[:, :3],
                       region_colours(proba, TASKS["binary"]), atol=0.01)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1", "validation"]
    box, plane = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.y1 < plane.y0  # below the plane, covering none of it
    assert not box.overlaps(bar.get_window_extent(renderer))


def test_panels_of_runs_differing_in_two_settings_have_titles_that_do_not_overlap(tmp_path):
    """Lesson 4's picture: four variants side by side, each label two settings long."""
    runs = [trained(tmp_path, "xor.yaml", "train.epochs=2", f"model.activation={act}",
                    f"model.initializer={init}", name=f"{act}-{init}")
            for act in ("sigmoid", "tanh")
            for init in ("xavier_uniform", "{name: xavier_uniform, gain: 4}")]
    chosen = views(runs, "boundary", None, 1)
    fig = figure("boundary", chosen, [nearest(v.snapshots, ["last"]) for v in chosen], 1)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = panel_axes(fig)
    assert len(panels) == 4
    for ax in panels:  # every setting on its own line, under it the epoch
        lines = ax.get_title().splitlines()
        assert lines[0].startswith("model.activation=") and lines[-1] == "epoch 2"
        assert any(line.startswith("model.initializer=") for line in lines)
    boxes = [ax.title.get_window_extent(renderer) for ax in panels]
    for i, box in enumerate(boxes):
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
        for other in boxes[i + 1:]:
            assert not box.overlaps(other)
        for ax in panels:  # a title covers no panel, its own included
            assert not box.overlaps(ax.get_window_extent(renderer))


def test_multiclass_regions_get_a_colour_bar_of_the_classes(tmp_path):
    run = trained(tmp_path, "spiral.yaml", "train.epochs=2")
    (view,) = views([run], "boundary", None, 1)
    fig = figure("boundary", [view], [view.snapshots[-1:]], 1)
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [t.get_text() for t in bar.get_yticklabels()] == [str(c) for c in view.model.classes]
    assert "likeliest class" in bar.get_ylabel()


def test_boundary_uses_the_original_units_of_standardized_data(tmp_path):
    run = trained(tmp_path, "moons.yaml", "train.epochs=5", "data.standardize=true")
    (view,) = views([run], "boundary", None, 1)
    X = view.points["train"][0]
    assert X[:, 0].min() < -0.5 and X[:, 0].max() > 1.5  # not standardized (-1.6..2)
    model = load_run(run)
    assert np.allclose(X.mean(axis=0), model.prep.mean)


@pytest.mark.slow
def test_the_gif_has_one_frame_per_snapshot(tmp_path, cli):
    from PIL import Image

    run = trained(tmp_path, "xor.yaml", "train.epochs=60", "train.snapshot_every=10")
    result = cli("plot", run, "--boundary", "-o", "boundary.gif")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "boundary.gif") as gif:
        assert gif.n_frames == len(epochs_of(run)) == 7


@pytest.mark.slow
def test_a_folder_of_runs_gives_one_panel_per_variant_first_seed_unless_asked(tmp_path, cli):
    for init in ("zeros", "xavier_uniform"):
        for seed in (0, 1):
            trained(tmp_path / "cmp", "xor.yaml", "train.epochs=20", f"seed={seed}",
                    f"model.initializer={init}", name=f"{init}-{seed}")
    chosen = views(sorted((tmp_path / "cmp").iterdir()), "boundary", None, 1)
    assert sorted(v.label for v in chosen) == ["model.initializer=xavier_uniform",
                                               "model.initializer=zeros"]
    assert {v.model.config.seed for v in chosen} == {0}
    assert {v.model.config.seed for v in views(sorted((tmp_path / "cmp").iterdir()),
                                                "boundary", 1, 1)} == {1}
    fig = figure("boundary", chosen, [nearest(v.snapshots, ["last"]) for v in chosen], 1)
    titles = [ax.get_title() for ax in panel_axes(fig)]
    assert len(titles) == 2 and all("epoch 20" in t and "initializer" in t for t in titles)
    result = cli("plot", tmp_path / "cmp", "--boundary", "--at", "0,last", "-o", "cmp.png")
    assert result.exit_code == 0, result.output
    assert cli("plot", tmp_path / "cmp", "--boundary", "--seed", "7").exit_code == 2
    seeds_only = sorted((tmp_path / "cmp").glob("zeros-*"))[::-1]  # seed 1 listed first
    (view,) = views(seeds_only, "boundary", None, 1)  # one variant: its lowest seed
    assert view.model.config.seed == 0 and view.label == "xor"


# -- fit and neurons -----------------------------------------------------------------------


def test_fit_draws_the_networks_function_over_the_data(tmp_path):
    run = trained(tmp_path, "sine.yaml", "train.epochs=20")
    (view,) = views([run], "fit", None, 1)
    fig = figure("fit", [view], [nearest(view.snapshots, ["first", "last"])], 1)
    assert [ax.get_title() for ax in fig.axes] == ["epoch 0", "epoch 20"]
    line = fig.axes[1].lines[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert np.allclose(y, load_run(run).predict(x[:, None]))
    assert x.min() < -3 and x.max() > 3  # sine's own units, not standardized


def test_neurons_show_a_dead_unit_blank(tmp_path):
    run = trained(tmp_path, "moons.yaml", "train.epochs=1", "model.layers=[2, 3, 1]",
                  "model.activation=relu", "train.snapshot_every=0")
    W1 = np.array([[1.0, 0.0, -1.0], [0.5, 0.0, 1.0]])
    b1 = np.array([0.0, -1.0, 0.0])  # unit 2: z = -1 everywhere, relu 0: dead
    params = [W1, b1, np.ones((3, 1)), np.zeros(1)]
    with SnapshotFile(run / FILE_NAME, ["W1", "b1", "W2", "b2"], params) as file:
        file.append(4, params)
    (view,) = views([run], "neurons", None, 1)
    fig = figure("neurons", [view], [view.snapshots], 1)
    units = [ax for ax in fig.axes if ax.get_title().startswith("unit")]
    assert [ax.get_title() for ax in units] == ["unit 1", "unit 2 dead", "unit 3"]
    images = [ax.images[0] for ax in units]
    assert not images[1].get_array().any() and images[0].get_array().any()
    white = images[1].to_rgba(images[1].get_array())[..., :3]
    assert white.min() > 0.9  # blank: the colour of 0 is (near) white


def test_a_unit_is_dead_by_the_datas_definition_and_the_title_says_so(tmp_path):
    """Dead as layers.csv's dead_fraction counts it (0 for every training sample), not 0
    over the whole plane: unit 4 is 0 on every training point but not beyond them."""
    from nntrain.diagnostics import dead_fraction

    run = trained(tmp_path, "moons.yaml", "train.epochs=1", "model.layers=[2, 4, 1]",
                  "model.activation=relu", "train.snapshot_every=0", "data.standardize=false")
    model = load_run(run)
    X_train = model.data().X_train
    edge = X_train[:, 0].max() + 0.05  # past every training point, inside the drawn plane
    W1 = np.array([[1.0, 0.0, -1.0, 1.0], [0.5, 0.0, 1.0, 0.0]])
    b1 = np.array([0.0, -1.0, 0.0, -edge])  # unit 2: z = -1; unit 4: z = x1 - edge
    params = [W1, b1, np.ones((4, 1)), np.zeros(1)]
    with SnapshotFile(run / FILE_NAME, ["W1", "b1", "W2", "b2"], params) as file:
        file.append(4, params)
    (view,) = views([run], "neurons", None, 1)
    fig = figure("neurons", [view], [view.snapshots], 1)
    units = [ax for ax in fig.axes if ax.get_title().startswith("unit")]
    assert [ax.get_title() for ax in units] == ["unit 1", "unit 2 dead", "unit 3",
                                                "unit 4 dead"]
    assert units[3].images[0].get_array().max() > 0  # not blank beyond the data
    # the count in the picture is dead_fraction computed on the training data
    net = model.network
    net.load_parameters(params)
    expected = dead_fraction(net.activations[0], net.layer_outputs(X_train)[0]) * 4
    titled = sum(ax.get_title().endswith("dead") for ax in units)
    assert titled == expected == 2
    assert units[0].get_ylabel().splitlines()[-1] == "2 of 4 dead"
    assert "dead = outputs 0 for every training sample" in fig.get_suptitle()


def test_units_that_cannot_die_are_never_titled_dead(tmp_path):
    run = trained(tmp_path, "moons.yaml", "train.epochs=1", "model.layers=[2, 3, 1]",
                  "model.activation=tanh")
    (view,) = views([run], "neurons", None, 1)
    fig = figure("neurons", [view], [view.snapshots[-1:]], 1)
    units = [ax for ax in fig.axes if ax.get_title().startswith("unit")]
    assert [ax.get_title() for ax in units] == ["unit 1", "unit 2", "unit 3"]
    assert units[0].get_ylabel().splitlines()[-1] == "tanh: cannot die"


def test_a_picture_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    run = trained(tmp_path, "sine.yaml", "train.epochs=2")
    elsewhere = write(tmp_path / "elsewhere.txt", "not a picture")
    (tmp_path / "fit.png").symlink_to(elsewhere)
    assert draw("fit", [run], tmp_path / "fit.png") == tmp_path / "fit.png"
    assert elsewhere.read_text() == "not a picture"
    assert not (tmp_path / "fit.png").is_symlink()
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file became the picture


def test_the_curves_look_is_not_left_in_matplotlibs_settings(tmp_path):
    """plots.py draws curves on a grid at 110 dpi for that drawing only: a picture drawn after
    it in the same process keeps matplotlib's defaults (pyplot's rcParams.update did not)."""
    import matplotlib

    from nntrain.plots import plot_activations

    keys = ("axes.grid", "grid.alpha", "figure.dpi")
    before = {k: matplotlib.rcParams[k] for k in keys}
    plot_activations(tmp_path / "activations.png")
    assert {k: matplotlib.rcParams[k] for k in keys} == before
    run = trained(tmp_path, "sine.yaml", "train.epochs=2")
    (view,) = views([run], "fit", None, 1)
    fig = figure("fit", [view], [view.snapshots[-1:]], 1)
    assert fig.dpi == 100
    assert not any(line.get_visible() for line in fig.axes[0].get_xgridlines())


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("config, option, needs", [
    ("digits.yaml", "--boundary", "2 input features; this run has 64 input features"),
    ("digits.yaml", "--neurons", "2 input features; this run has 64 input features"),
    ("digits.yaml", "--fit", "1 input feature; this run has 64 input features"),
    ("sine.yaml", "--boundary", "classification run with 2 input features; this run has 1 input"),
    ("moons.yaml", "--fit", "regression run with 1 input feature; this run has 2 input features"),
])
def test_a_run_the_picture_cannot_show_is_refused_in_one_line(tmp_path, cli, config, option,
                                                              needs):
    run = trained(tmp_path, config, "train.epochs=1")
    result = cli("plot", run, option, "-o", "out.png")
    assert result.exit_code == 2
    assert needs in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("args, key", [
    (["--neurons", "--layer", "3"], "--layer"),
    (["--boundary", "--at", "soon"], "--at"),
    (["--boundary", "--fit"], "one picture at a time"),
    (["--at", "5"], "go with --boundary"),
    (["--boundary", "--at", "5", "-o", "x.gif"], "--at"),
])
def test_bad_picture_options_exit_2(tmp_path, cli, args, key):
    run = trained(tmp_path, "xor.yaml", "train.epochs=5")
    result = cli("plot", run, *args)
    assert result.exit_code == 2 and key in result.output
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.gif"))


def test_lessons_draw_the_pictures():
    lessons = (ROOT / "docs" / "lessons.md").read_text()
    for option in ("--boundary", "--fit", "--neurons"):
        assert option in lessons, option


def test_a_write_cut_short_leaves_no_torn_record_before_the_next(tmp_path, monkeypatch):
    import errno

    import nntrain.snapshots as snapshots
    from nntrain.runs import WriteError

    path = tmp_path / FILE_NAME
    file = SnapshotFile(path, ["b1"], [np.zeros(1000)])
    file.append(0, [np.zeros(1000)])
    real_write, written = os.write, []

    def half_then_full(fd, data):  # the disk fills up half way through the record
        if fd != file.fd:
            return real_write(fd, data)
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data) // 2)
        return real_write(fd, data[:len(data) // 2])

    monkeypatch.setattr(snapshots.os, "write", half_then_full)
    with pytest.raises(WriteError, match="no space left"):
        file.append(1, [np.ones(1000)])
    monkeypatch.undo()
    assert written  # the half was written, then cut off
    file.append(2, [np.full(1000, 2.0)])
    file.close()
    assert [(s.epoch, s.params[0][0]) for s in read_snapshots(path)] == [(0, 0.0), (2, 2.0)]


def test_options_that_would_be_ignored_are_said(cli, tmp_path):
    assert cli("train", CONFIGS / "moons.yaml", "train.epochs=5", "--out", tmp_path / "m",
               "-q").exit_code == 0
    layer = cli("plot", tmp_path / "m", "--boundary", "--layer", "2", "-o", tmp_path / "b.png")
    assert layer.exit_code == 2 and "--layer picks the hidden layer of --neurons" in layer.stderr
    frames = cli("plot", tmp_path / "m", "--frames", "5", "-o", tmp_path / "c.png")
    assert frames.exit_code == 2 and "--frames go with --boundary" in frames.stderr
    late = cli("plot", tmp_path / "m", "--boundary", "--at", "0,999", "-o", tmp_path / "d.png")
    assert late.exit_code == 0 and "--at 999 is past the last snapshot, epoch 5" in late.stderr
