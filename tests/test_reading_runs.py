"""Reading runs back (report, plot): figures named apart from settings, one component label,
damaged folders skipped with a warning, killed runs shown from their last complete row, plots
that show every run (lone points, divergence, one panel per loss, legends that fit)."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import CONFIGS, write
from nntrain.compare import legacy_slug, make_sweep, slug
from nntrain.output import print_run
from nntrain.registry import label
from nntrain.runs import effective_status, find_runs


def csv_rows(text):
    return list(csv.DictReader(text.splitlines()))


def train(cli, *args):
    result = cli("train", *args, "--quiet")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_report_names_figures_apart_from_settings(cli, tmp_path):
    """Lesson 7's mse vs mae: the loss setting keeps its names, the figures are final_loss."""
    for loss in ("mse", "mae"):
        train(cli, CONFIGS / "sine.yaml", f"loss={loss}", "train.epochs=5")
    rows = csv_rows(cli("report", tmp_path / "runs").stdout)
    assert {r["loss"] for r in rows} == {"mse", "mae"}
    assert all(float(r["final_loss"]) > 0 and float(r["final_val_loss"]) > 0 for r in rows)
    # validation picked the best epoch: the figure says so
    assert "best_val_loss" in rows[0] and "best_loss" not in rows[0]
    assert cli("report", tmp_path / "runs", "--sort", "final_val_loss").exit_code == 0
    old = cli("report", tmp_path / "runs", "--sort", "val_loss")
    assert old.exit_code == 2 and "did you mean 'final_val_loss'?" in old.stderr


def test_report_sorts_either_way_with_blanks_last(cli, tmp_path):
    """--sort smallest first, --reverse largest first (pandas' sort_values, na_position
    'last'): a blank cell (a run that failed before its first row) goes last both ways, and
    runs with equal values keep their order."""
    from nntrain.runs import sort_rows

    rows = [{"run": "a", "x": 2.0}, {"run": "b", "x": None}, {"run": "c", "x": 1.0},
            {"run": "d", "x": 2.0}, {"run": "e", "x": 3.0}]
    runs = lambda sort: [r["run"] for r in sort]  # noqa: E731
    assert runs(sort_rows(rows, ["run", "x"], "x")) == ["c", "a", "d", "e", "b"]
    assert runs(sort_rows(rows, ["run", "x"], "x", descending=True)) == ["e", "a", "d", "c", "b"]
    # NaN (a run killed as it diverged) is blank; text apart from numbers (auto beside 5)
    mixed = [{"run": "a", "x": "auto"}, {"run": "b", "x": float("nan")}, {"run": "c", "x": 5}]
    assert runs(sort_rows(mixed, ["run", "x"], "x")) == ["c", "a", "b"]
    assert runs(sort_rows(mixed, ["run", "x"], "x", descending=True)) == ["a", "c", "b"]
    for lr in ("0.1", "1.0", "0.5"):
        train(cli, CONFIGS / "xor.yaml", f"optimizer.lr={lr}", "train.epochs=5")
    ran = cli("report", tmp_path / "runs", "--sort", "optimizer.lr", "-r")
    assert ran.exit_code == 0, ran.stderr
    assert [r["optimizer.lr"] for r in csv_rows(ran.stdout)] == ["1.0", "0.5", "0.1"]
    alone = cli("report", tmp_path / "runs", "--reverse")
    assert alone.exit_code == 2 and "--reverse: sorts only with --sort COLUMN" in alone.stderr


def test_best_loss_without_validation_is_best_loss(cli, tmp_path):
    train(cli, CONFIGS / "xor.yaml", "train.epochs=5")
    row = csv_rows(cli("report", tmp_path / "runs").stdout)[0]
    assert "best_loss" in row and "best_val_loss" not in row


def test_report_columns_option(cli, tmp_path):
    train(cli, CONFIGS / "xor.yaml", "train.epochs=5")
    rows = csv_rows(cli("report", tmp_path / "runs", "--columns", "status,final_loss").stdout)
    assert list(rows[0]) == ["run", "status", "final_loss"]
    bad = cli("report", tmp_path / "runs", "--columns", "final_los")
    assert bad.exit_code == 2 and "did you mean 'final_loss'?" in bad.stderr


def test_one_label_for_a_component_everywhere(cli, tmp_path):
    assert label({"name": "normal", "std": 0.01}) == "normal(std=0.01)"
    assert label({"name": "variance_scaling", "scale": 2.0, "mode": "fan_in"}) == (
        "variance_scaling(scale=2.0, mode=fan_in)")
    assert label("relu") == "relu" and label([2, 8, 1]) == "[2, 8, 1]"
    for std in ("0.01", "0.5"):
        train(cli, CONFIGS / "xor.yaml", f"model.initializer={{name: normal, std: {std}}}",
              "train.epochs=3")
    rows = csv_rows(cli("report", tmp_path / "runs").stdout)
    assert {r["model.initializer"] for r in rows} == {"normal(std=0.01)", "normal(std=0.5)"}
    inspect = csv_rows(cli("inspect", CONFIGS / "xor.yaml", "--initializers",
                           "{name: normal, std: 0.01}").stdout)
    assert inspect[0]["initializer"] == "normal(std=0.01)"
    folder = slug({"model.initializer": {"name": "normal", "std": 0.01}, "optimizer.lr": 0.1})
    assert folder == "initializer=normal_std=0.01-lr=0.1"
    assert legacy_slug({"model.initializer": {"name": "constant", "value": 0.3}}) == (
        "initializer=_name_constant_,_value_0.3_")


def test_compare_labels_settings_in_its_csv_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = make_sweep(CONFIGS / "xor.yaml", ["model.initializer=he_normal,{name:normal,std:0.5}"],
                       None, None, None)
    dirs = [p["dir"] for p in sweep.points()]
    assert dirs == ["000-initializer=he_normal-seed0", "001-initializer=normal_std=0.5-seed0"]


@pytest.mark.slow
def test_compare_resume_finishes_a_folder_with_the_old_names(cli, tmp_path):
    args = ["compare", CONFIGS / "xor.yaml", "model.initializer={name:constant,value:0.3},he_normal",
            "train.epochs=3", "--workers", "1", "--quiet"]
    first = cli(*args, "--out", tmp_path / "c")
    assert first.exit_code == 0, first.stderr
    folder = tmp_path / "c"
    sweep = make_sweep(CONFIGS / "xor.yaml", [str(a) for a in args[2:3]], None, None, None)
    old = {}
    for point in sweep.points():  # as nntrain 0.2 named them; the second one never finished
        legacy = f"{point['index']:03d}-{legacy_slug(point['setting'])}-seed{point['seed']}"
        os.replace(folder / point["dir"], folder / legacy)
        old[legacy] = (folder / legacy / "metrics.csv").stat().st_mtime_ns
    unfinished = sorted(old)[1]
    (folder / unfinished / "summary.json").write_text('{"status": "running", "pid": null}')
    again = cli(*args, "--resume", folder)
    assert again.exit_code == 0, again.stderr
    rows = csv_rows((folder / "results.csv").read_text())
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert {r["run"] for r in rows} == set(old)  # the old folders, no duplicates
    first_run = sorted(old)[0]
    assert (folder / first_run / "metrics.csv").stat().st_mtime_ns == old[first_run]
    assert {r["model.initializer"] for r in rows} == {"constant(value=0.3)", "he_normal"}


# -- damaged and unfinished run folders (issue 14, 19-21) --------------------------------------


def make_runs(cli, tmp_path, count=3):
    return [train(cli, CONFIGS / "xor.yaml", f"optimizer.lr={0.1 * (i + 1):.1f}", "train.epochs=5")
            for i in range(count)]


@pytest.mark.parametrize("damage", ["config not utf-8", "summary not an object",
                                    "empty metrics", "header-only metrics", "torn first row",
                                    "config a list"])
def test_a_bad_folder_is_skipped_with_a_warning(cli, tmp_path, damage):
    runs = [tmp_path / r for r in make_runs(cli, tmp_path)]
    bad = runs[1]
    if damage == "config not utf-8":
        (bad / "config.yaml").write_bytes(b"name: \xff\xfe\n")
    elif damage == "summary not an object":
        (bad / "summary.json").write_text("[1, 2]")
    elif damage == "empty metrics":
        (bad / "metrics.csv").write_text("")
    elif damage == "header-only metrics":
        (bad / "metrics.csv").write_text("epoch,loss\n")
    elif damage == "torn first row":  # the rows after it are whole: the history ends before
        header, first, *rest = (bad / "metrics.csv").read_text().splitlines()
        (bad / "metrics.csv").write_text("\n".join([header, first[:5], *rest]) + "\n")
    else:
        (bad / "config.yaml").write_text("- a\n- b\n")
    report = cli("report", tmp_path / "runs")
    assert report.exit_code == 0, report.stderr
    assert len(csv_rows(report.stdout)) == 2
    warning = [line for line in report.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(bad) in warning[0]
    plot = cli("plot", tmp_path / "runs", "-o", tmp_path / "p.png")
    assert plot.exit_code == 0, plot.stderr
    assert str(bad) in plot.stderr and (tmp_path / "p.png").is_file()
    only_bad = cli("report", bad)
    assert only_bad.exit_code == 2 and "no readable run folder" in only_bad.stderr


def test_a_killed_run_shows_its_last_complete_row(cli, tmp_path):
    run = tmp_path / make_runs(cli, tmp_path, 1)[0]
    lines = (run / "metrics.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    (run / "metrics.csv").write_text("\n".join([header, *rows[:4], rows[4][:7]]))  # torn last row
    summary = json.loads((run / "summary.json").read_text())
    summary.update(status="running", final=None, best=None, epochs=0, wall_time_s=0.0)
    summary["host"] = socket.gethostname()
    summary.pop("pid", None)  # no pid: os.kill(0, 0) would always say "alive"
    (run / "summary.json").write_text(json.dumps(summary))
    row = csv_rows(cli("report", run).stdout)[0]
    last = dict(zip(header.split(","), rows[3].split(",")))
    assert row["status"] == "incomplete"
    assert row["epochs"] == last["epoch"] == "3"
    assert float(row["final_loss"]) == float(last["loss"])
    assert float(row["wall_time_s"]) == float(last["time_s"]) > 0


def test_the_first_rows_of_metrics_are_read_as_the_whole_history_begins(cli, tmp_path):
    """read_metrics(most=N) is the history's first N rows, read by the same rules (what
    find_runs needs to know a folder has a complete row, without parsing every epoch)."""
    from nntrain.runs import read_metrics

    run = tmp_path / make_runs(cli, tmp_path, 1)[0]
    history = read_metrics(run)
    assert len(history) == 6
    assert read_metrics(run, most=1) == history[:1]
    assert read_metrics(run, most=4) == history[:4]
    assert read_metrics(run, most=100) == history


@pytest.mark.parametrize("pid", [None, 0, -1, "12", True])
def test_running_without_a_real_pid_is_incomplete(pid):
    summary = {"status": "running", "host": socket.gethostname(), "pid": pid}
    assert effective_status(summary) == "incomplete"
    assert effective_status({**summary, "pid": os.getpid()}) == "running"
    assert effective_status({**summary, "host": "elsewhere"}) == "running"


def test_partial_folders_are_not_runs(cli, tmp_path):
    run = tmp_path / make_runs(cli, tmp_path, 1)[0]
    partial = run.parent / f".{run.name}-copy.partial"
    shutil.copytree(run, partial)
    write(run.parent / "x.partial" / "metrics.csv", (run / "metrics.csv").read_text())
    assert find_runs([tmp_path / "runs"]) == [run]


@pytest.mark.slow
def test_plot_prints_the_file_it_wrote(cli, tmp_path):
    run = make_runs(cli, tmp_path, 1)[0]
    result = cli("plot", run, "-o", "picture")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "picture.png" and (tmp_path / "picture.png").is_file()
    assert not (tmp_path / "picture").exists()
    bad = cli("plot", run, "-o", "picture.v2")
    assert bad.exit_code == 2 and "unknown picture format '.v2'" in bad.stderr
    inspect = cli("inspect", CONFIGS / "xor.yaml", "-o", "init")
    assert inspect.exit_code == 0 and (tmp_path / "init.png").is_file()


# -- pictures ------------------------------------------------------------------------------------


def test_a_run_diverging_at_epoch_one_is_drawn(tmp_path):
    from nntrain.plots import _mark_points, new_figure

    ax = new_figure((6.4, 4.8)).subplots()
    epochs = np.arange(4.0)
    table = np.array([[0.7, np.inf, np.nan, np.nan]])
    _mark_points(ax, epochs, table, table[0], [True], "C0")
    drawn = [(tuple(line.get_xdata()), line.get_marker()) for line in ax.lines]
    assert ((0.0,), "o") in drawn  # the lone finite point is a marker
    assert ((1.0,), "x") in drawn  # and divergence is marked, at the epoch it diverged


def x_marks(ax):
    """Where each divergence x is drawn, in the axes' fraction (0..1 inside the axes)."""
    to_axes = ax.transAxes.inverted()
    return [to_axes.transform(line.get_transform().transform(line.get_xydata()))[0]
            for line in ax.lines if line.get_marker() == "x"]


def test_the_divergence_x_is_inside_the_y_limits_at_the_diverging_epoch(cli, tmp_path):
    """Lesson 8's lr 2: the last finite loss is about 1e304, far above the y-limit (10x the
    first loss); the x is on the axes' top edge, at the first epoch whose loss is inf."""
    from nntrain.plots import _draw_panel, _panels, new_figure
    from nntrain.runs import metrics_frame, read_config

    train(cli, CONFIGS / "lessons" / "learning_rate.yaml", "optimizer.lr=2")
    train(cli, CONFIGS / "lessons" / "learning_rate.yaml", "optimizer.lr=0.1",
          "train.epochs=100")
    runs = find_runs([tmp_path / "runs"])
    diverged = [r for r in runs if json.loads((r / "summary.json").read_text())["diverged"]]
    assert len(diverged) == 1
    losses = metrics_frame(diverged[0]).set_index("epoch")["loss"]
    first_inf = int(losses.index[~np.isfinite(losses.to_numpy())][0])
    assert losses.drop(first_inf).max() > 1e100  # its finite losses run off the picture
    ax = new_figure((6.5, 4.5)).subplots()
    (panel,) = _panels(runs, [read_config(r) for r in runs], "loss")
    _draw_panel(ax, panel, "loss", single=False)
    ax.figure.canvas.draw()
    assert ax.get_ylim()[1] < 1e3
    (mark,) = x_marks(ax)
    assert 0 <= mark[0] <= 1 and mark[1] == pytest.approx(1.0)  # on the top edge, inside
    (line,) = [l for l in ax.lines if l.get_marker() == "x"]
    assert line.get_xdata()[0] == first_inf and not line.get_clip_on()


def test_plot_metric_suggests_the_column_and_lists_only_the_runs_own(cli, tmp_path):
    binary = train(cli, CONFIGS / "moons.yaml", "train.epochs=3")  # with a validation split
    regression = train(cli, CONFIGS / "sine.yaml", "train.epochs=3")
    acc = cli("plot", binary, "--metric", "acc", "-o", "x.png")
    assert acc.exit_code == 2 and "no column 'acc'" in acc.stderr
    assert "did you mean 'accuracy'?" in acc.stderr
    listed = acc.stderr.split("they have ")[1]
    assert "accuracy" in listed and "mae" not in listed  # a binary run has no mae
    mae = cli("plot", binary, "--metric", "mae", "-o", "x.png")
    assert mae.exit_code == 2 and "mae" not in mae.stderr.split("they have ")[1]
    wrong = cli("plot", regression, "--metric", "accuracy", "-o", "x.png")
    assert wrong.exit_code == 2
    assert "val_mae" in wrong.stderr and "accuracy" not in wrong.stderr.split("they have ")[1]
    assert cli("plot", binary, "--metric", "val_acc", "-o", "x.png").stderr.count(
        "did you mean 'val_accuracy'?") == 1
    assert not (tmp_path / "x.png").exists()


def test_plot_of_a_run_diverged_at_epoch_one(cli, tmp_path):
    train(cli, CONFIGS / "xor.yaml", "optimizer.lr=1e12", "model.activation=relu", "train.epochs=5")
    result = cli("plot", tmp_path / "runs", "-o", "d.png")
    assert result.exit_code == 0, result.stderr


def test_plot_and_compare_take_layers_csv_columns(cli, tmp_path):
    train(cli, CONFIGS / "xor.yaml", "model.activation=relu", "train.epochs=20",
          "train.diagnostics_every=5")
    result = cli("plot", tmp_path / "runs", "--metric", "dead_fraction", "-o", "dead.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "dead.png").read_bytes()[:4] == b"\x89PNG"
    bad = cli("compare", CONFIGS / "xor.yaml", "--metric", "dead_fractoin", "--out", "c")
    assert bad.exit_code == 2 and "did you mean 'dead_fraction'?" in bad.stderr
    assert not (tmp_path / "c").exists()


def test_runs_with_different_losses_get_one_panel_each(cli, tmp_path):
    from nntrain.plots import _panels
    from nntrain.runs import read_config

    for loss in ("mse", "mae"):
        train(cli, CONFIGS / "sine.yaml", f"loss={loss}", "train.epochs=3", "optimizer.lr=0.02")
    runs = find_runs([tmp_path / "runs"])
    panels = _panels(runs, [read_config(r) for r in runs], "loss")
    assert sorted(p["title"] for p in panels) == ["loss mae", "loss mse"]
    assert all(list(p["variants"]) == ["sine"] for p in panels)  # the loss: a panel, no label
    assert len(_panels(runs, [read_config(r) for r in runs], "mae")) == 1
    assert cli("plot", tmp_path / "runs", "-o", "l.png").exit_code == 0


@pytest.mark.slow
def test_many_runs_plot_without_warnings_and_with_the_legend_inside_the_picture(cli, tmp_path):
    from PIL import Image

    for i in range(13):
        train(cli, CONFIGS / "xor.yaml", f"optimizer.lr={0.05 * (i + 1):.2f}", "train.epochs=3")
    few = find_runs([tmp_path / "runs"])[:3]
    from nntrain.plots import plot_runs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        many = plot_runs(find_runs([tmp_path / "runs"]), tmp_path / "many.png")
        three = plot_runs(few, tmp_path / "three.png")
    # the legend of 13 goes below the axes and the picture grows to hold it
    assert Image.open(many).size[1] > Image.open(three).size[1] * 1.3


@pytest.mark.slow
def test_compare_metric_draws_that_column(cli, tmp_path):
    result = cli("compare", CONFIGS / "xor.yaml", "optimizer.lr=0.1,0.5", "train.epochs=3",
                 "--metric", "accuracy", "--out", "c", "--workers", "1", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "c" / "accuracy.png").is_file() and not (tmp_path / "c" / "loss.png").exists()


# -- the final line, pipes -------------------------------------------------------------------


def test_restored_epoch_in_summary_and_final_line(tmp_path, capsys, monkeypatch):
    from nntrain.config import load_config
    from nntrain.loop import train as train_run

    cfg = load_config(CONFIGS / "sine.yaml", ["train.epochs=300", "optimizer.lr=0.1",
                                              "+train.early_stopping={patience:10}"])
    run = train_run(cfg, out=tmp_path / "r")
    summary = run.summary
    assert summary["status"] == "early_stopped"
    assert summary["restored_epoch"] == summary["best"]["epoch"] < summary["epochs"]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    print_run(summary)
    assert f"(weights of epoch {summary['restored_epoch']} restored)" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["inspect {configs}/lessons/deep_relu.yaml | head -2",
                                     "inspect {configs}/lessons/deep_relu.yaml | true",
                                     "report runs | head -1", "report runs | true"])
def test_a_closed_pipe_ends_quietly_for_tables(tmp_path, command):
    for i in range(30):
        (tmp_path / "runs" / f"r{i}").mkdir(parents=True)
        (tmp_path / "runs" / f"r{i}" / "metrics.csv").write_text("epoch,loss\n0,1.0\n" * 1)
    script = f'"{sys.executable}" -m nntrain ' + command.format(configs=CONFIGS)
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {script}"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode in (0, 141)
    assert "Error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


# -- lessons (issue 15, items 7 and 8) -----------------------------------------------------------


def test_lesson_config_comments_name_the_values_the_lesson_runs():
    """A value a lesson config's comment tells the reader to try is one lessons.md runs."""
    import re

    from conftest import ROOT

    lessons = (ROOT / "docs" / "lessons.md").read_text()
    for config in sorted((ROOT / "configs" / "lessons").glob("*.yaml")):
        comment = " ".join(line for line in config.read_text().splitlines()
                           if line.startswith("#"))
        run = re.findall(rf"configs/lessons/{config.name} ([^\n]*)", lessons)
        said = re.search(r"optimizer\.lr=([\d.]+(?:, [\d.]+)*(?:,? and [\d.]+)?)", comment)
        if said:
            values = re.findall(r"[\d.]+", said.group(1))
            assert values, config.name
            for value in values:
                assert any(f"optimizer.lr={value}" in r for r in run), (config.name, value)


def test_heat_map_gives_the_first_epoch_a_readable_column(tmp_path):
    from nntrain.plots import _gradient_heatmap, new_figure

    rows = ["epoch,layer,grad_norm"] + [f"{e},{k},{0.5 ** k if e == 0 else 1e-4}"
                                         for e in range(0, 1001, 10) for k in (1, 2, 3)]
    write(tmp_path / "layers.csv", "\n".join(rows) + "\n")
    fig = new_figure((6.4, 4.8))
    ax = fig.subplots()
    _gradient_heatmap(fig, ax, tmp_path / "layers.csv")
    fig.canvas.draw()
    left, right = ax.transData.transform([(-5, 1), (5, 1)])[:, 0]
    width = ax.get_window_extent().width
    assert (right - left) / width > 0.1  # epoch 0 of 101 diagnosed epochs: not a sliver


def test_report_reads_a_run_folders_config_as_resume_does(cli, tmp_path):
    """One YAML reader for configs and run folders (nntrain.yamlsafe): a hand-edited config.yaml
    with lr: 1e-3 is the number 0.001 in report as in resume (report read the string '1e-3'),
    and one with a key twice is refused by both, not read one way by each."""
    from nntrain.model import load_run
    from nntrain.runs import read_config

    run = tmp_path / "r"
    train(cli, CONFIGS / "xor.yaml", "train.epochs=2", "--out", run)
    config = run / "config.yaml"
    text = config.read_text()
    config.write_text(text.replace("lr: 0.5", "lr: 1e-3"))
    assert read_config(run)["optimizer.lr"] == 0.001 == load_run(run).config.optimizer.lr
    train(cli, CONFIGS / "xor.yaml", "train.epochs=2", "--out", tmp_path / "other")
    report = cli("report", run, tmp_path / "other")  # lr is the setting they differ in
    assert report.exit_code == 0, report.stderr
    assert [row["optimizer.lr"] for row in csv_rows(report.stdout)] == ["0.001", "0.5"]
    config.write_text(text.replace("lr: 0.5", "lr: 0.5\n  lr: 0.7"))
    with pytest.warns(UserWarning, match="config.yaml is not valid YAML"):
        assert find_runs([tmp_path]) == [tmp_path / "other"]
