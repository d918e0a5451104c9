"""`nntrain view`'s page in a real browser: Debian's chromium, headless, driven by Playwright
(``executable_path``: Playwright's own browser download is not needed), with the network cut.

Skipped, with the reason, only when no chromium or no Playwright can be had; .ci/run installs
chromium. NNTRAIN_VIEW_SCREENSHOT=FILE.png keeps the compare page's screenshot (docs/images/).
"""

import io
import json
import os
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS
from test_view import HOSTILE_FOLDER, hostile_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("NNTRAIN_CHROMIUM"), "chromium", "chromium-browser"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install -e .[test])")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        except Exception as err:  # a chromium that cannot start here
            pytest.skip(f"chromium at {path} does not start: {str(err).splitlines()[0]}")
        yield launched
        launched.close()


class Page:
    """A page opened offline: every request but the file itself is refused and recorded, and
    script errors, console errors and dialogs (alert) are collected."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.requests, self.errors, self.dialogs = [], [], []
        self.context.route("**/*", self.route)
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready]", timeout=30000)

    def route(self, route):
        url = route.request.url
        if url.startswith("file://"):
            return route.continue_()
        self.requests.append(url)
        return route.abort()

    def js(self, code: str, arg=None):
        return self.page.evaluate(code, arg)

    def traces(self, div_id: str) -> list[dict]:
        return self.js("(id) => document.getElementById(id).data.map((t) => ({name: t.name, "
                       "type: t.type || 'scatter', fill: t.fill || null, n: (t.x || []).length}))",
                       div_id)

    def close(self):
        self.context.close()


@pytest.fixture
def opened(browser):
    pages = []

    def open_page(path: Path) -> Page:
        page = Page(browser, path)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


def not_blank(png: bytes) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").resize((200, 200))
    return len(image.getcolors(200 * 200))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """README's second thing to try: xor, zeros against xavier_uniform, 3 seeds each, and
    `nntrain view zeros-vs-xavier` run in the folder that holds it (its screenshot is the
    README's)."""
    from typer.testing import CliRunner

    from nntrain.cli import app

    root = tmp_path_factory.mktemp("sweep")
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(CONFIGS / "xor.yaml"), "--initializers",
                                 "zeros,xavier_uniform", "--seeds", "3",
                                 "--out", str(root / "zeros-vs-xavier")])
    assert result.exit_code == 0, result.output
    here = os.getcwd()
    os.chdir(root)
    try:
        result = runner.invoke(app, ["view", "zeros-vs-xavier"])
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    return root / "zeros-vs-xavier.html"


def test_the_compare_page_draws_offline_without_errors(opened, sweep):
    page = opened(sweep)
    assert page.errors == [] and page.requests == [] and page.dialogs == []
    assert page.js("document.querySelectorAll('#runs-table tbody tr').length") == 6
    loss = page.traces("chart-loss")  # per variant: the band's two edges and the mean
    assert len(loss) == 6 and sum(t["fill"] == "tonexty" for t in loss) == 2
    assert sorted(t["name"] for t in loss if t["fill"] is None and t["n"]) == sorted(
        ["model.initializer=zeros", "model.initializer=xavier_uniform"] * 2)
    page.page.click("#seeds")  # the seeds one by one
    assert len(page.traces("chart-loss")) == 6  # a line each
    png = page.page.screenshot(full_page=True)
    assert not_blank(png) > 50
    keep = os.environ.get("NNTRAIN_VIEW_SCREENSHOT")
    if keep:
        page.page.click("#seeds")
        page.js("window.nntrainView.drawAll()")
        page.page.wait_for_timeout(500)
        Path(keep).write_bytes(page.page.screenshot(full_page=True))


def test_runs_are_drawn_in_their_variants_colours_as_in_loss_png(opened, tmp_path):
    """One seed per variant, so the page draws run by run: each curve is still its variant's
    colour (loss.png's), past 10 variants too, and a variant's seeds share it."""
    from typer.testing import CliRunner

    from nntrain.cli import app

    lrs = ",".join(str(k / 100) for k in range(12, 0, -1))
    runner = CliRunner()
    assert runner.invoke(app, ["compare", str(CONFIGS / "xor.yaml"), f"optimizer.lr={lrs}",
                               "train.epochs=10", "--out", str(tmp_path / "c")]).exit_code == 0
    assert runner.invoke(app, ["view", str(tmp_path / "c"), "-o",
                               str(tmp_path / "c.html")]).exit_code == 0
    page = opened(tmp_path / "c.html")
    assert page.errors == []
    wanted = page.js("Object.fromEntries(window.nntrainView.data.variants.map("
                     "(v) => [v.runs[0], v.colour]))")
    drawn = page.js("document.getElementById('chart-loss').data.map((t) => [t.name, t.line.color])")
    assert len(drawn) == 12 and len(set(wanted.values())) == 12
    assert {name: colour for name, colour in drawn} == wanted


def test_the_table_sorts_by_a_clicked_column(opened, sweep):
    page = opened(sweep)
    cells = "Array.from(document.querySelectorAll('#runs-table tbody tr')).map(" \
            "(tr) => tr.children[COL].textContent)"
    column = page.js("Array.from(document.querySelectorAll('#runs-table th')).findIndex("
                     "(th) => th.textContent.startsWith('final_loss'))")
    header = page.page.locator("#runs-table th").nth(column)
    header.click()
    up = [float(v) for v in page.js(cells.replace("COL", str(column)))]
    assert up == sorted(up)
    header.click()
    down = [float(v) for v in page.js(cells.replace("COL", str(column)))]
    assert down == sorted(up, reverse=True)


def test_log_y_changes_the_axis_type(opened, sweep):
    """Xavier's loss falls from 0.69 to below 0.01 in 1000 epochs, more than a factor 100:
    the chart starts on log y; the box turns it to linear and back, and log x on."""
    page = opened(sweep)
    axis = "document.getElementById('chart-loss').layout.%saxis.type"
    assert page.js(axis % "y") == "log" and page.js("document.getElementById('logy-loss').checked")
    page.page.click("#logy-loss")
    assert page.js(axis % "y") == "linear"
    page.page.click("#logy-loss")
    assert page.js(axis % "y") == "log"
    page.page.click("#logx-loss")
    assert page.js(axis % "x") == "log"


def test_the_epoch_slider_moves_the_boundary(opened, sweep):
    page = opened(sweep)
    page.page.locator("#pictures").scroll_into_view_if_needed()
    page.page.wait_for_function("document.getElementById('pictures').layout !== undefined")
    image = "document.getElementById('pictures').layout.images[%d].source"
    assert page.js("document.getElementById('pictures').layout.images.length") == 2  # a variant each
    labels = page.js("window.nntrainView.data.pictures.panels.map((p) => p.label)")
    zeros, xavier = (labels.index(f"model.initializer={name}")
                     for name in ("zeros", "xavier_uniform"))
    assert page.js("document.getElementById('epoch-value').textContent") == "epoch 1000"
    trained = page.js(image % xavier)  # the page opens on the last snapshot
    assert trained.startswith("data:image/png;base64,")
    page.page.locator("#epoch-slider").fill("0")  # fires input, as a drag does
    page.page.wait_for_function(f"{image % xavier} !== {json.dumps(trained)}")
    assert page.js("document.getElementById('epoch-value').textContent") == "epoch 0"
    drawn = page.js("document.querySelectorAll('#pictures image').length")
    assert drawn == 2
    # zero init never breaks symmetry: P(class 1) is one value over the whole plane, and the
    # Xavier panel's is not
    frames = "window.nntrainView.data.pictures.panels[%d].frames.flat(2)"
    assert len(set(page.js(frames % zeros))) == 1
    assert len(set(page.js(frames % xavier))) > 10


def test_smoothing_and_the_mean_over_seeds_follow_their_formulas(opened, sweep):
    """TensorBoard's debiased EMA (a gap of g epochs is g steps) and the mean and population
    std over the seeds present at each epoch, against numpy."""
    page = opened(sweep)
    epochs = [0, 1, 2, 5, 6]
    values = [1.0, 0.5, None, 0.25, 0.2]
    w = 0.6
    got = page.js("([e, v, w]) => window.nntrainView.smooth(e, v, w)", [epochs, values, w])
    last, steps, previous, want = 0.0, 0, None, []
    for e, v in zip(epochs, values):
        if v is None:  # kept as it is, and not averaged in
            want.append(None)
            continue
        gap = 1 if previous is None else e - previous
        last = last * w ** gap + (1 - w ** gap) * v
        steps += gap
        want.append(last / (1 - w ** steps))  # the bias correction
        previous = e
    assert got[2] is None
    assert np.allclose([g for g in got if g is not None], [x for x in want if x is not None],
                       rtol=1e-12)
    assert page.js("window.nntrainView.smooth([0, 1], [3, 4], 0)") == [3, 4]  # 0 is off
    series = [{"epochs": [0, 1, 2, 3], "values": [1.0, 2.0, 3.0, 4.0]},
              {"epochs": [0, 1], "values": [3.0, 6.0]},  # stopped early at epoch 1
              {"epochs": [0, 2, 3], "values": [5.0, None, None]}]  # diverged after epoch 0
    agg = page.js("(s) => window.nntrainView.aggregate(s)", series)
    assert agg["epochs"] == [0, 1, 2, 3] and agg["count"] == [3, 2, 1, 1]
    assert np.allclose(agg["mean"], [3.0, 4.0, 3.0, 4.0])
    assert np.allclose(agg["std"], [np.std([1, 3, 5]), np.std([2, 6]), 0, 0])
    # linear between a thinned curve's points
    mid = page.js("window.nntrainView.aggregate([{epochs: [0, 10], values: [0, 10]},"
                  "{epochs: [0, 5, 10], values: [0, 0, 0]}])")
    assert mid["epochs"] == [0, 5, 10] and np.allclose(mid["mean"], [0, 2.5, 5])


def test_a_diverged_run_is_marked(opened, tmp_path):
    from typer.testing import CliRunner

    from nntrain.cli import app

    runner = CliRunner()
    out = tmp_path / "rates"
    result = runner.invoke(app, ["compare", str(CONFIGS / "lessons" / "learning_rate.yaml"),
                                 "optimizer.lr=0.1,2", "--seeds", "2", "train.epochs=150",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    page_path = tmp_path / "rates.html"
    assert runner.invoke(app, ["view", str(out), "-o", str(page_path)]).exit_code == 0
    page = opened(page_path)
    assert page.errors == []
    statuses = page.js("Array.from(document.querySelectorAll('#runs-table td.status-diverged'))"
                       ".map((td) => td.textContent)")
    assert statuses == ["\u26a0 diverged"] * 2
    markers = [t for t in page.traces("chart-loss") if t["name"] == "diverged"]
    assert len(markers) == 2  # each diverged seed, where it left the band
    page.page.click("#seeds")
    assert len([t for t in page.traces("chart-loss") if t["name"] == "diverged"]) == 2


def test_hostile_names_and_labels_show_as_text_and_run_nothing(opened, tmp_path, cli):
    runs = hostile_run(cli, tmp_path)
    assert cli("view", runs, "-o", "page.html").exit_code == 0
    page = opened(tmp_path / "page.html")
    page.js("window.nntrainView.drawAll()")
    page.page.wait_for_timeout(300)
    assert page.dialogs == [] and page.js("window.__xss === undefined")
    assert page.js("document.querySelectorAll('img, [onerror]').length") == 0
    table = page.js("document.getElementById('runs-table').textContent")
    assert HOSTILE_FOLDER in table
    drawn = page.js("document.getElementById('pictures').textContent")
    assert "<b>x</b>" in drawn and "<script>y</script>" in drawn  # the axis titles, as text
    box = page.page.locator("#pictures").bounding_box()
    for fx, fy in [(0.2, 0.3), (0.5, 0.5), (0.8, 0.7)]:  # hover labels over the panel
        page.page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.page.wait_for_timeout(100)
    assert page.dialogs == [] and page.js("window.__xss === undefined")
    assert page.errors == []


def test_a_fitted_curve_moves_with_the_slider(opened, tmp_path, cli):
    assert cli("train", CONFIGS / "sine.yaml", "train.epochs=100", "--out", "runs/sine"
               ).exit_code == 0
    assert cli("view", "runs/sine", "-o", "sine.html").exit_code == 0
    page = opened(tmp_path / "sine.html")
    page.js("window.nntrainView.drawAll()")
    y = "JSON.stringify(document.getElementById('pictures').data.at(-1).y)"
    before = page.js(y)
    page.page.locator("#epoch-slider").fill("0")
    page.page.wait_for_function(f"{y} !== {json.dumps(before)}")
    assert page.errors == []


def test_a_100_run_sweep_draws_in_3_s_and_its_slider_in_200_ms(browser, tmp_path):
    """5 initializers x 2 learning rates x 10 seeds of xor, 1000 epochs each: the first screen
    is drawn within 3 s of opening (median of 3 loads), a slider move within 200 ms (median of
    5). The figures are printed (pytest -s) for docs/performance.md."""
    from typer.testing import CliRunner

    from nntrain.cli import app

    runner = CliRunner()
    out = tmp_path / "big"
    result = runner.invoke(app, ["compare", str(CONFIGS / "xor.yaml"), "--initializers",
                                 "zeros,xavier_uniform,he_normal,normal,xavier_normal",
                                 "optimizer.lr=0.5,2", "--seeds", "10", "train.epochs=1000",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    page_path = tmp_path / "big.html"
    assert runner.invoke(app, ["view", str(out), "-o", str(page_path)]).exit_code == 0
    loads, moves = [], []
    for _ in range(3):
        page = Page(browser, page_path)
        assert page.errors == []
        loads.append(page.js("window.nntrainView.readyMs"))
        page.close()
    page = Page(browser, page_path)
    assert page.js("document.querySelectorAll('#runs-table tbody tr').length") == 100
    page.js("window.nntrainView.drawAll()")
    last = int(page.js("document.getElementById('epoch-slider').max"))
    for frame in [last, 0, last // 2, last, 1]:
        moves.append(page.js("async (f) => { const t = performance.now(); "
                             "await window.nntrainView.showFrame(f); "
                             "return performance.now() - t; }", frame))
    page.close()
    size = page_path.stat().st_size / 1e6
    print(f"\n100 runs: page {size:.1f} MB, drawn in {statistics.median(loads):.0f} ms "
          f"(loads {[round(x) for x in loads]}), slider {statistics.median(moves):.0f} ms "
          f"(moves {[round(x) for x in moves]})")
    assert statistics.median(loads) < 3000
    assert statistics.median(moves) < 200
    assert size < 12


def test_curves_against_evaluations_and_an_lr_find_curve(opened, tmp_path, cli):
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=50", "--out", "runs/xor").exit_code == 0
    assert cli("lr-find", CONFIGS / "xor.yaml", "--steps", "40", "--out", "lrf").exit_code == 0
    assert cli("view", "runs/xor", "lrf", "-o", "page.html").exit_code == 0
    page = opened(tmp_path / "page.html")
    assert page.errors == []
    x = "document.getElementById('chart-loss').data[0].x.slice(0, 3)"
    assert page.js(x) == [0, 1, 2]
    page.page.select_option("#x-axis", "evaluations")
    assert page.js(x) == [0, 2, 4]  # a full-batch epoch: one forward and one backward pass
    assert page.js("document.getElementById('chart-loss').layout.xaxis.title.text") == \
        "evaluations"
    ranges = page.traces("range-0")
    assert [t["name"] for t in ranges] == ["loss", "smoothed"] and ranges[0]["n"] > 5
    layout = page.js("document.getElementById('range-0').layout")
    assert layout["xaxis"]["type"] == "log"
    assert len(layout["shapes"]) == len([v for v in json.loads(
        (tmp_path / "lrf" / "lr_find.json").read_text())["suggestions"].values() if v])


def test_the_loss_surface_is_drawn_with_its_path(opened, tmp_path, cli):
    assert cli("train", CONFIGS / "xor.yaml", "train.epochs=200", "--out", "runs/xor"
               ).exit_code == 0
    assert cli("view", "runs/xor", "--landscape", "--along", "path", "-o", "page.html"
               ).exit_code == 0
    page = opened(tmp_path / "page.html")
    page.js("window.nntrainView.drawAll()")
    traces = page.traces("surface-0")
    assert [t["type"] for t in traces] == ["contour", "scatter", "scatter"]
    assert traces[1]["n"] > 5  # the path's snapshots
    assert "PC 1 of the path" in page.js("document.getElementById('surface-0').textContent")
    assert page.errors == []


def test_a_run_that_diverged_puts_its_chart_on_log_y_and_is_marked(opened, tmp_path, cli):
    """A diverged run's loss (up to about 1e300) beside a converging one: log y from the
    start, so the ✕ at its last finite point is on the chart and the other run is not flat."""
    for lr in ("0.1", "2"):
        assert cli("train", CONFIGS / "lessons" / "learning_rate.yaml", f"optimizer.lr={lr}",
                   "train.epochs=150", "--out", f"runs/lr{lr}").exit_code == 0
    assert cli("view", "runs", "-o", "page.html").exit_code == 0
    page = opened(tmp_path / "page.html")
    assert page.js("document.getElementById('chart-loss').layout.yaxis.type") == "log"
    assert page.js("document.getElementById('logy-loss').checked")
    (marker,) = [t for t in page.traces("chart-loss") if t["name"] == "diverged"]
    y = page.js("document.getElementById('chart-loss').data.find((t) => t.name === "
                "'diverged').y[0]")
    low, high = page.js("document.getElementById('chart-loss').layout.yaxis.range")
    assert low <= np.log10(y) <= high  # on the drawn axis
