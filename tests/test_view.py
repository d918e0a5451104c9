"""`nntrain view`: the page's data, where it is written, and bad input (no browser here; the
page in a real browser is tests/test_view_browser.py)."""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, write
from nntrain import view as view_module
from nntrain.runs import find_runs
from nntrain.view import (check_output, curves, default_output, encode_frame, frame_scale,
                          json_for_html, page_data, sweep_state, thin)


def page_json(html: str) -> dict:
    block = re.search(r'<script id="nntrain-data" type="application/json">(.*?)</script>', html,
                      re.S)
    return json.loads(block.group(1))


@pytest.fixture
def xor_run(cli, tmp_path):
    result = cli("train", CONFIGS / "xor.yaml", "train.epochs=30", "--out", "runs/one")
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "one"


# -- the data ------------------------------------------------------------------------------


def test_thinning_keeps_first_last_minimum_and_divergence():
    values = np.linspace(5, 1, 2000)
    values[1234] = 0.1  # the minimum, off the even spread
    values[1700:] = np.inf  # diverged at 1700
    keep = thin(values, 100)
    assert len(keep) <= 100
    assert {0, 1999, 1234, 1699, 1700} <= set(keep.tolist())
    assert list(keep) == sorted(set(keep.tolist()))
    assert list(thin(values[:50], 100)) == list(range(50))  # short curves are kept whole


def test_curves_share_epochs_and_blank_or_non_finite_cells_are_null():
    history = [{"epoch": 0.0, "loss": 1.0, "grad_norm": None, "time_s": 0.0},
               {"epoch": 1.0, "loss": float("nan"), "grad_norm": 2.0, "time_s": 0.1}]
    epochs, drawn = curves(history)
    assert epochs == [0, 1]
    assert drawn == {"loss": [1.0, None], "grad_norm": [None, 2.0]}  # time_s is not drawn


def test_boundary_frames_encode_probabilities_and_classes_in_bytes():
    p = np.array([0.0, 0.5, 1.0, np.nan, 0.2])
    data = np.frombuffer(base64.b64decode(encode_frame(p, frame_scale(2))), np.uint8)
    assert data.tolist() == [0, 125, 250, 255, 50]  # NaN (a diverged net) is 255
    # three classes: class k with confidence c is z = k + c, c < 1, never the next class
    scale = frame_scale(3)
    z = np.array([0.0, 0.999, 1.5, 2.999])
    data = np.frombuffer(base64.b64decode(encode_frame(z, scale)), np.uint8)
    assert (data // scale).tolist() == [0, 0, 1, 2]


def test_json_in_the_page_cannot_end_its_script_block():
    data = {"name": "</script><script>alert(1)</script>", "label": "<!-- & -->"}
    text = json_for_html(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_page_data_has_one_row_per_run_and_the_report_columns(cli, tmp_path):
    out = tmp_path / "sweep"
    result = cli("compare", CONFIGS / "xor.yaml", "--initializers", "zeros,xavier_uniform",
                 "--seeds", "2", "train.epochs=20", "--out", out)
    assert result.exit_code == 0, result.output
    runs = find_runs([out])
    data = page_data([out], runs, sweep_state([out], runs))
    assert len(data["table"]["rows"]) == len(data["runs"]) == 4
    assert data["table"]["settings"] == ["seed", "model.initializer"]
    assert [len(v["runs"]) for v in data["variants"]] == [2, 2]
    assert data["curves"] == ["loss", "accuracy"]
    assert data["pictures"]["kind"] == "boundary" and len(data["pictures"]["panels"]) == 2
    assert data["state"] == {"running": 0, "pending": 0, "live": False}
    run = data["runs"][0]
    assert run["command"].startswith("nntrain train ") and "config.yaml" in run["command"]
    assert run["config"].startswith("name:") or "name:" in run["config"]


@pytest.mark.parametrize("values", ["0.5,0.05,5", ",".join(str(k / 100) for k in range(12, 0, -1))])
def test_each_variant_has_one_colour_in_loss_png_and_in_the_view(cli, tmp_path, monkeypatch,
                                                                 values):
    """The same legend order (the grid's; loss.png sorted its legend, the view did not) and the
    same colour for each variant in compare's loss.png and in the view's curves: up to 10
    variants from the palette the pictures' classes use too, past 10 from one colour scale."""
    from matplotlib.colors import to_hex

    from nntrain import plots

    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", f"optimizer.lr={values}", "train.epochs=20",
               "--out", out).exit_code == 0
    runs = find_runs([out])
    data = page_data([out], runs, sweep_state([out], runs))
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    plots.plot_runs(runs, tmp_path / "loss.png")
    in_png = [(line.get_label(), to_hex(line.get_color()))
              for line in drawn["fig"].axes[0].get_lines() if not line.get_label().startswith("_")]
    in_view = [(v["label"], v["colour"]) for v in data["variants"]]
    lrs = [float(v) for v in values.split(",")]
    assert in_png == in_view
    assert [label for label, _ in in_view] == [f"optimizer.lr={lr!r}" for lr in lrs]
    if len(lrs) <= 10:
        palette = plots.COLOURS[:len(lrs)]
        assert [colour for _, colour in in_view] == palette == data["colours"][:len(lrs)]
    else:
        assert len({colour for _, colour in in_view}) == len(lrs)


def test_a_variant_with_nothing_to_draw_leaves_the_others_their_colours(cli, tmp_path,
                                                                       monkeypatch):
    """--metric val_loss: the variant without validation data draws no curve, and the others
    keep the colours they have in the view (they moved up one before)."""
    from matplotlib.colors import to_hex

    from nntrain import plots

    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "moons.yaml", "data.val_fraction=0.0,0.2,0.3",
               "train.epochs=5", "--out", out).exit_code == 0
    runs = find_runs([out])
    data = page_data([out], runs, sweep_state([out], runs))
    colours = {v["label"]: v["colour"] for v in data["variants"]}
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    plots.plot_runs(runs, tmp_path / "val_loss.png", "val_loss")
    in_png = {line.get_label(): to_hex(line.get_color())
              for line in drawn["fig"].axes[0].get_lines() if not line.get_label().startswith("_")}
    assert sorted(in_png) == ["data.val_fraction=0.2", "data.val_fraction=0.3"]
    assert in_png == {label: colours[label] for label in in_png}


# -- where the page goes --------------------------------------------------------------------


def test_default_output_is_named_after_the_one_path(tmp_path):
    assert default_output([tmp_path / "compare-xor"]) == Path("compare-xor.html")
    assert default_output([tmp_path / "a", tmp_path / "b"]) == Path("view.html")


def test_the_page_is_never_written_inside_a_run_folder(xor_run, tmp_path):
    from nntrain.registry import ConfigError

    with pytest.raises(ConfigError, match="inside the run folder"):
        check_output(xor_run / "page.html", [xor_run])
    for wrong in (tmp_path, tmp_path / "pages/", tmp_path / "page.png"):  # not an html file
        with pytest.raises(ConfigError, match="give a file name ending in .html"):
            check_output(Path(str(wrong) + ("/" if wrong.name == "pages" else "")), [xor_run])
    check_output(tmp_path / "page.html", [xor_run])  # beside it is fine


def test_view_writes_the_page_and_prints_its_path(cli, xor_run, tmp_path):
    result = cli("view", xor_run)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "one.html"
    html = (tmp_path / "one.html").read_text()
    assert "<script src" not in html and "http-equiv=\"refresh\"" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html.split("</script>")[0])
    data = page_json(html)
    assert [r["name"] for r in data["runs"]] == ["one"]
    assert set(data["layers"]["one"]["maps"]) >= {"grad_norm", "act_std"}


def test_view_of_nothing_is_exit_2_and_writes_nothing(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("view", tmp_path / "empty", "-o", "page.html")
    assert result.exit_code == 2
    assert "no run folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "page.html").exists()


def test_view_refuses_a_page_inside_a_run_folder(cli, xor_run):
    result = cli("view", xor_run, "-o", xor_run / "view.html")
    assert result.exit_code == 2
    assert "inside the run folder" in result.output
    assert not (xor_run / "view.html").exists()


def test_a_damaged_run_is_skipped_with_a_warning(cli, xor_run, tmp_path):
    broken = tmp_path / "runs" / "broken"
    write(broken / "metrics.csv", "epoch,loss\n")  # no complete row
    result = cli("view", tmp_path / "runs", "-o", "page.html")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "broken" in result.output
    assert [r["name"] for r in page_json((tmp_path / "page.html").read_text())["runs"]] == ["one"]


def hostile_run(cli, tmp_path: Path) -> Path:
    """A run folder someone sent: its folder and config name, labels and feature names are
    markup that would run script if the page treated them as HTML."""
    import csv

    with open(tmp_path / "data.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["<b>x</b>", "<script>y</script>", "label"])
        for x, y in [(1, 1), (-1, -1), (1, -1), (-1, 1)] * 3:
            out.writerow([x, y, HOSTILE_LABEL if (x > 0) != (y > 0) else "plain"])
    config = yaml.safe_load((CONFIGS / "xor.yaml").read_text())
    config["data"] = {"name": "csv", "path": "data.csv", "target": "label"}
    config["train"]["epochs"] = 5
    write(tmp_path / "c.yaml", yaml.safe_dump(config))
    result = cli("train", "c.yaml", "--out", "runs/x")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / HOSTILE_FOLDER
    (tmp_path / "runs" / "x").rename(run)
    import shutil

    named = shutil.copytree(run, tmp_path / "runs" / "named")  # a config no check would pass
    saved = named / "config.yaml"
    saved.write_text(saved.read_text().replace("name: xor", f"name: '{HOSTILE_NAME}'"))
    return tmp_path / "runs"


HOSTILE_LABEL = '"><img src=x onerror=window.__xss=1>'
HOSTILE_NAME = "<script>window.__xss=2</script>"
HOSTILE_FOLDER = "<img src=x onerror=window.__xss=3>"


def test_hostile_strings_stay_inside_the_json(cli, tmp_path):
    """Names, labels and feature names from a run folder never become markup of the page."""
    runs = hostile_run(cli, tmp_path)
    result = cli("view", runs, "-o", "page.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "page.html").read_text()
    for text in (HOSTILE_LABEL, HOSTILE_NAME, HOSTILE_FOLDER, "<b>x</b>", "<script>y</script>"):
        assert text not in html
    data = page_json(html)
    assert set(data["pictures"]["classes"]) == {HOSTILE_LABEL, "plain"}
    assert data["pictures"]["features"] == ["<b>x</b>", "<script>y</script>"]
    assert [r["name"] for r in data["runs"]] == [HOSTILE_FOLDER, "named"]
    assert HOSTILE_NAME in data["runs"][1]["config"]
    assert data["table"]["rows"][1]["name"] == HOSTILE_NAME


def test_open_hands_the_page_to_the_browser(cli, xor_run, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    result = cli("view", xor_run, "-o", "page.html", "--open")
    assert result.exit_code == 0, result.output
    assert opened == [(tmp_path / "page.html").resolve().as_uri()]


# -- live runs -----------------------------------------------------------------------------


def test_a_compare_folder_is_live_while_its_grid_is_incomplete_and_its_lock_held(cli, tmp_path):
    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", "--seeds", "3", "train.epochs=5",
               "--out", out).exit_code == 0
    runs = find_runs([out])
    import shutil
    shutil.rmtree(runs[-1])  # one grid point still to run
    runs = runs[:-1]
    assert sweep_state([out], runs) == {"running": 0, "pending": 1, "live": False}
    from nntrain.runs import Lock
    lock = Lock(out)
    lock.take()
    try:
        assert sweep_state([out], runs) == {"running": 0, "pending": 1, "live": True}
    finally:
        lock.release()


def test_watch_rewrites_while_a_run_is_running_then_stops(xor_run, tmp_path):
    """A run whose summary says running (its process alive) keeps the page live: the page
    reloads itself; once the run has ended, the last page does not."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    summary_path = xor_run / "summary.json"
    finished = json.loads(summary_path.read_text())
    running = {**finished, "status": "running", "pid": sleeper.pid}
    summary_path.write_text(json.dumps(running))
    pages = []
    out = tmp_path / "live.html"
    done = threading.Thread(target=view_module.view, args=([xor_run], out),
                            kwargs={"watch": True, "every": 0.2,
                                    "on_write": lambda p, s, page: pages.append(page)})
    done.start()
    try:
        deadline = time.time() + 30
        while len(pages) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(pages) >= 2 and all('http-equiv="refresh"' in p for p in pages)
        assert page_json(pages[0])["state"]["running"] == 1
    finally:
        summary_path.write_text(json.dumps(finished))
        sleeper.kill()
        sleeper.wait()
        done.join(30)
    assert not done.is_alive()
    assert 'http-equiv="refresh"' not in out.read_text()


def test_view_without_watch_never_reloads(xor_run, tmp_path):
    out = view_module.view([xor_run], tmp_path / "p.html")
    assert 'http-equiv="refresh"' not in out.read_text()


def test_help_does_not_import_plotly():
    code = ("import sys, nntrain.cli; from typer.testing import CliRunner; "
            "CliRunner().invoke(nntrain.cli.app, ['view', '--help']); "
            "print('plotly' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "False", out.stderr


# -- lr-find folders ------------------------------------------------------------------------


@pytest.fixture
def range_test(cli, tmp_path):
    result = cli("lr-find", CONFIGS / "xor.yaml", "--steps", "30", "--out", "lrf")
    assert result.exit_code == 0, result.output
    return tmp_path / "lrf"


def test_an_lr_find_folder_is_drawn_beside_runs(cli, xor_run, range_test, tmp_path):
    result = cli("view", range_test, xor_run, "-o", "both.html")
    assert result.exit_code == 0, result.output
    data = page_json((tmp_path / "both.html").read_text())
    saved = json.loads((range_test / "lr_find.json").read_text())
    (drawn,) = data["ranges"]
    assert drawn["lr"] == saved["lr"] and drawn["smoothed"] == saved["smoothed"]
    assert set(drawn["suggestions"]) == {"steepest", "minimum_over_10", "valley"}
    assert [r["name"] for r in data["runs"]] == ["one"]
    alone = cli("view", range_test, "-o", "alone.html")  # an lr-find folder alone is a page too
    assert alone.exit_code == 0 and page_json((tmp_path / "alone.html").read_text())["runs"] == []


def test_a_damaged_lr_find_folder_is_skipped_with_a_warning(cli, xor_run, range_test, tmp_path):
    (range_test / "lr_find.json").write_text('{"lr": [1, 2], "loss": ["<b>"], "smoothed": []}')
    result = cli("view", range_test, xor_run, "-o", "page.html")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "lr_find.json" in result.output
    assert page_json((tmp_path / "page.html").read_text())["ranges"] == []


def test_evaluations_are_drawn_as_whole_numbers(xor_run):
    from nntrain.runs import read_metrics

    epochs, drawn = curves(read_metrics(xor_run))
    assert all(type(v) is int for v in drawn["evaluations"])
    assert drawn["evaluations"][:3] == [0, 2, 4]  # full batch: a forward and a backward pass


# -- the loss surface ---------------------------------------------------------------------


def test_landscape_adds_each_variants_surface_centred_on_its_trained_loss(cli, tmp_path):
    """The centre of each surface is E of model.npz's parameters on the training split (the
    sum of the run's per-sample losses by hand, through its own network); a variant that never
    moved has no path plane and is named in a note, the others drawn."""
    from nntrain.model import load_run

    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", "--initializers", "zeros,xavier_uniform",
               "train.epochs=200", "--out", out).exit_code == 0
    result = cli("view", out, "--landscape", "-o", "random.html")
    assert result.exit_code == 0, result.output
    found = page_json((tmp_path / "random.html").read_text())["surfaces"]
    assert [p["label"] for p in found["panels"]] == ["model.initializer=zeros",
                                                     "model.initializer=xavier_uniform"]
    for panel in found["panels"]:
        (run,) = out.glob(f"0*-{panel['label'].removeprefix('model.')}-seed0")
        E = np.array(panel["E"], dtype=float)
        assert E.shape == (31, 31) and panel["a"][15] == panel["b"][15] == 0
        model = load_run(run)
        data = model.data()
        p = model.predict_proba(model.prep.raw(data.X_train))[:, 1]
        y = model.task.truth(data.Y_train)
        by_hand = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))  # bce
        assert E[15, 15] == pytest.approx(by_hand, rel=1e-5)  # 6 digits drawn
    result = cli("view", out, "--landscape", "--along", "path", "-o", "path.html")
    assert result.exit_code == 0, result.output
    found = page_json((tmp_path / "path.html").read_text())["surfaces"]
    assert [p["label"] for p in found["panels"]] == ["model.initializer=xavier_uniform"]
    assert "never moved" in found["note"]
    (track,) = found["panels"][0]["tracks"]
    assert track["epochs"][0] == 0 and track["coords"][-1] == [0, 0]  # ends at the trained W


def test_along_without_landscape_is_refused(cli, xor_run, tmp_path):
    result = cli("view", xor_run, "--along", "path", "-o", "page.html")
    assert result.exit_code == 2 and "--along" in result.output
    result = cli("view", xor_run, "--landscape", "--along", "sideways", "-o", "page.html")
    assert result.exit_code == 2 and "--along" in result.output
    assert not (tmp_path / "page.html").exists()


# -- damaged files cost only themselves ------------------------------------------------------


def test_damaged_cells_never_cost_the_page(cli, tmp_path):
    """A NaN in lr_find.json, a word in layers.csv and 'nan' for an epoch in metrics.csv: the
    page is written, the damaged part left out (layers) or cut (the history ends there)."""
    for k in range(2):
        assert cli("train", CONFIGS / "xor.yaml", "train.epochs=20", "--out",
                   f"runs/r{k}").exit_code == 0
    assert cli("lr-find", CONFIGS / "xor.yaml", "--steps", "20", "--out", "runs/lrf").exit_code == 0
    lrf = tmp_path / "runs" / "lrf" / "lr_find.json"
    lrf.write_text(lrf.read_text().replace('"loss": [', '"loss": [NaN, ', 1).replace(
        '"smoothed": [', '"smoothed": [1e999, ', 1).replace('"lr": [', '"lr": [1e-9, ', 1))
    layers = tmp_path / "runs" / "r0" / "layers.csv"
    lines = layers.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[3], "oops", 1)
    layers.write_text("\n".join(lines) + "\n")
    metrics = tmp_path / "runs" / "r1" / "metrics.csv"
    lines = metrics.read_text().splitlines()
    lines[10] = "nan" + lines[10][lines[10].index(","):]
    metrics.write_text("\n".join(lines) + "\n")
    result = cli("view", "runs", "-o", "page.html")
    assert result.exit_code == 0, result.output
    data = page_json((tmp_path / "page.html").read_text())
    assert data["ranges"][0]["loss"][0] is None and data["ranges"][0]["smoothed"][0] is None
    runs = {r["name"]: r for r in data["runs"]}
    assert runs["r1"]["epochs"][-1] == 8  # the history ends before the damaged row
    assert data["layers"]["r0"] is not None


def test_a_run_that_cannot_be_drawn_leaves_the_others_their_panels(cli, tmp_path):
    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", "--initializers", "zeros,xavier_uniform",
               "train.epochs=20", "--out", out).exit_code == 0
    broken = sorted(out.glob("0*"))[0]
    for name in ("model.npz", "checkpoint.npz", "snapshots.bin"):
        (broken / name).unlink()
    data = page_data([out], find_runs([out]), sweep_state([out], find_runs([out])))
    assert len(data["pictures"]["panels"]) == 1 and str(broken) in data["pictures"]["note"]


def test_a_run_that_failed_before_its_first_row_is_not_still_to_come(cli, tmp_path):
    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", "--seeds", "2", "train.epochs=5",
               "--out", out).exit_code == 0
    failed = sorted(out.glob("0*"))[0]
    (failed / "metrics.csv").write_text("")  # failed before a row: not a run to draw
    runs = find_runs([out])
    assert len(runs) == 1
    assert sweep_state([out], runs)["pending"] == 0


def test_a_sweep_that_has_just_begun_is_a_page_of_runs_to_come(cli, tmp_path):
    """A compare folder whose sweep holds its lock but has finished no run yet: --watch writes
    a page saying how many runs are to come, rather than 'no run folder'."""
    from nntrain.runs import Lock

    out = tmp_path / "sweep"
    assert cli("compare", CONFIGS / "xor.yaml", "--seeds", "3", "train.epochs=5",
               "--out", out).exit_code == 0
    import shutil
    for run in out.glob("0*"):
        shutil.rmtree(run)
    assert cli("view", out, "-o", "page.html").exit_code == 2  # nothing running: nothing to draw
    lock = Lock(out)
    lock.take()
    try:
        result = cli("view", out, "-o", "page.html")
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    data = page_json((tmp_path / "page.html").read_text())
    assert data["runs"] == [] and data["state"] == {"running": 0, "pending": 3, "live": True}
