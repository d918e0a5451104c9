"""plot -o NAME.gif: one frame per snapshot up to --frames (spread over the snapshots, the
first and the last always in), frames drawn by updating one figure that match a figure drawn
anew, and a progress bar only past a second. How fast a GIF is made is measured by hand
(docs/performance.md), not here: timing tests fail on a busy machine."""

import numpy as np
import pytest
from PIL import Image

from conftest import CONFIGS
from nntrain import load_config, pictures, train
from nntrain.output import Bar
from nntrain.pictures import GIF_DPI, draw, figure, gif_frame, nearest, spread, views
from nntrain.registry import ConfigError
from nntrain.snapshots import FILE_NAME, read_snapshots


def trained(tmp_path, config, *overrides, name="run"):
    return train(load_config(CONFIGS / config, list(overrides)), out=tmp_path / name).path


def frames_of(path):
    """The GIF's frames as RGB arrays."""
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=float))
        return frames


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    """moons with 21 snapshots (every 10 of 200 epochs)."""
    return trained(tmp_path_factory.mktemp("gif"), "moons.yaml", "train.epochs=200",
                   "train.snapshot_every=10")


@pytest.fixture(scope="module")
def relu_moons(tmp_path_factory):
    """ReLU units, whose largest activation (the neurons' colour scale) grows as they train."""
    return trained(tmp_path_factory.mktemp("gif"), "moons.yaml", "train.epochs=200",
                   "train.snapshot_every=10", "model.activation=relu",
                   "model.initializer=he_normal")


def test_spread_keeps_the_first_and_last_and_caps_the_count():
    epochs = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]
    assert spread(epochs, 60) == epochs
    for limit in (2, 3, 5, 11):
        picked = spread(epochs, limit)
        assert len(picked) == limit == len(set(picked))
        assert picked[0] == 0 and picked[-1] == 144 and picked == sorted(picked)
    assert spread(epochs, 5) == [0, 3, 13, 34, 144]  # positions 0, 2.75, 5.5, 8.25, 11 rounded


def test_a_gif_has_one_frame_per_snapshot_and_frames_caps_them(tmp_path, moons, cli):
    snapshots = [s.epoch for s in read_snapshots(moons / FILE_NAME)]
    assert len(snapshots) == 21
    every = cli("plot", moons, "--boundary", "-o", "all.gif")
    assert every.exit_code == 0, every.output
    with Image.open(tmp_path / "all.gif") as gif:
        assert gif.n_frames == 21 and gif.info["duration"] == pictures.FRAME_MS
    capped = cli("plot", moons, "--boundary", "--frames", "5", "-o", "five.gif")
    assert capped.exit_code == 0, capped.output
    five, every_frame = frames_of(tmp_path / "five.gif"), frames_of(tmp_path / "all.gif")
    assert len(five) == 5
    # the capped GIF's frames are the full one's at the spread epochs: first and last included
    for frame, epoch in zip(five, spread(snapshots, 5)):
        assert np.abs(frame - every_frame[snapshots.index(epoch)]).mean() < 1.0


@pytest.mark.parametrize("args, message", [
    (["--frames", "3", "-o", "x.png"], "--frames: caps the frames of an animation"),
    (["--frames", "1", "-o", "x.gif"], "--frames"),
    (["--frames", "3", "--at", "0", "-o", "x.gif"], "--at"),
])
def test_frames_needs_a_gif_and_at_least_two(tmp_path, moons, cli, args, message):
    result = cli("plot", moons, "--boundary", *args)
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.glob("x.*"))
    with pytest.raises(ConfigError, match="at least 2"):
        draw("boundary", [moons], tmp_path / "y.gif", frames=1)


@pytest.mark.parametrize("kind", ["boundary", "neurons"])
def test_each_frame_is_the_picture_drawn_anew_at_its_epoch(tmp_path, moons, relu_moons, kind):
    """Frames after the first redraw only what changes over the kept background: each must
    look like the whole figure drawn from scratch at that epoch (points, titles, colour bar)."""
    run = moons if kind == "boundary" else relu_moons
    out = draw(kind, [run], tmp_path / f"{kind}.gif", frames=4)
    frames = frames_of(out)
    (view,) = views([run], kind, None, 1)
    epochs = spread([s.epoch for s in view.snapshots], 4)
    assert len(frames) == 4
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0  # the network changed
    for frame, epoch in zip(frames, epochs):
        fig = figure(kind, [view], [nearest(view.snapshots, [epoch])], 1, dpi=GIF_DPI)
        fig.canvas.draw()
        fresh = np.asarray(gif_frame(fig).convert("RGB"), dtype=float)  # the GIF's colours too
        assert fresh.shape == frame.shape
        changed = np.abs(fresh - frame).max(axis=2) > 40
        # the same drawing calls in one process give the same pixels; 1e-4 of them (a dozen)
        # is far below a stale colour bar's tick labels (1e-3) or missing points (3e-2)
        assert changed.mean() < 1e-4, (epoch, np.argwhere(changed)[:5])


class RecordingBar(Bar):
    made = []

    def __init__(self, *columns):
        super().__init__(*columns)
        RecordingBar.made.append(self)
        self.stopped = False

    def stop(self):
        self.stopped = True
        super().stop()


def test_a_progress_bar_shows_only_past_a_second(tmp_path, moons, monkeypatch):
    RecordingBar.made = []
    draw("boundary", [moons], tmp_path / "quick.gif", frames=3, progress=RecordingBar)
    monkeypatch.setattr(pictures, "BAR_AFTER", 1e9)  # however slow the machine: no bar
    draw("boundary", [moons], tmp_path / "quick.gif", frames=3, progress=RecordingBar)
    assert len(RecordingBar.made) <= 1  # the first might take a second on a busy machine
    RecordingBar.made = []
    monkeypatch.setattr(pictures, "BAR_AFTER", 0.0)  # a GIF past its second
    draw("boundary", [moons], tmp_path / "slow.gif", frames=6, progress=RecordingBar)
    (bar,) = RecordingBar.made
    (task,) = bar.progress.tasks
    assert task.total == 6 and task.completed == 6 and bar.stopped
    with Image.open(tmp_path / "slow.gif") as gif:
        assert gif.n_frames == 6


def test_a_fit_gif_keeps_its_axes_and_moves_the_curve(tmp_path):
    run = trained(tmp_path, "sine.yaml", "train.epochs=60", "train.snapshot_every=10")
    frames = frames_of(draw("fit", [run], tmp_path / "fit.gif", frames=3))
    assert len(frames) == 3
    assert np.abs(frames[0] - frames[-1]).mean() > 0.1  # the network's curve moved
