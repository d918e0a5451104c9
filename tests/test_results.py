"""One results row per run folder: `nntrain report` and compare's results.csv and summary.csv
are built by nntrain.results.run_row, so they say the same of the same run."""

import csv
import json
import math
import shutil

import pandas as pd
import pytest

from conftest import CONFIGS
from nntrain.compare import compare, variant_summary
from nntrain.results import report_rows, run_row
from nntrain.runs import find_runs, read_config

SWEEPS = {  # a classifier without validation data, a regression with it
    "xor": (["optimizer.lr=1,0.5", "train.epochs=30"], ["zeros", "xavier_uniform"], 0.69),
    "sine": (["optimizer.lr=0.01,0.05", "train.epochs=8"], None, 0.3),
}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module", params=sorted(SWEEPS))
def sweep(request, tmp_path_factory):
    """A compare folder (2 x 2 or 2 variants, 2 seeds each) and its name."""
    overrides, initializers, target = SWEEPS[request.param]
    out = tmp_path_factory.mktemp(request.param) / "c"
    compare(CONFIGS / f"{request.param}.yaml", overrides, initializers=initializers, seeds="2",
            workers=1, out=out, target_loss=target)
    return request.param, out


def test_report_and_results_csv_give_a_run_the_same_row(sweep, cli):
    name, folder = sweep
    results = read(folder / "results.csv")
    shown = cli("report", folder)
    assert shown.exit_code == 0, shown.stderr
    report = {row["run"]: row for row in csv.DictReader(shown.stdout.splitlines())}
    columns = [c for c in next(iter(report.values())) if c != "run"]
    assert set(columns) <= set(results[0])  # every setting and figure of the report
    assert len(results) == len(report) == {"xor": 8, "sine": 4}[name]
    for result in results:
        row = report[str(folder / result["run"])]
        assert {c: row[c] for c in columns} == {c: result[c] for c in columns}
    assert {r["status"] for r in results} == {"completed"}
    assert any(r["epochs_to_target"] for r in results)  # the target is reached somewhere


def test_results_csv_columns(sweep):
    """The columns users read, in this order (a contract)."""
    name, folder = sweep
    with open(folder / "results.csv") as f:
        header = f.readline().strip().split(",")
    with open(folder / "summary.csv") as f:
        summary_header = f.readline().strip().split(",")
    if name == "xor":
        axes = ["optimizer.lr", "model.initializer"]
        figures = ["final_loss", "best_loss", "best_epoch", "final_accuracy"]
    else:
        axes = ["optimizer.lr"]
        figures = ["final_loss", "final_val_loss", "best_val_loss", "best_epoch", "final_mae",
                   "final_val_mae"]
    assert header == [*axes, "seed", "status", "epochs", *figures, "epochs_to_target",
                      "wall_time_s", "run"]
    means = [f"{f}_{stat}" for f in figures if f != "best_epoch" for stat in ("mean", "std")]
    assert summary_header == [*axes, "runs", "diverged", "failed", "interrupted", *means,
                              "epochs_to_target_mean", "epochs_to_target_std"]


def test_report_columns(sweep):
    name, folder = sweep
    rows, columns = report_rows(find_runs([folder]))
    figures = (["final_loss", "final_accuracy", "best_loss", "best_epoch"] if name == "xor" else
               ["final_loss", "final_val_loss", "final_mae", "final_val_mae", "best_val_loss",
                "best_epoch"])
    settings = columns[1:columns.index("status")]
    assert set(settings) >= {"optimizer.lr", "seed"}
    assert columns == ["run", *settings, "status", "epochs", *figures, "wall_time_s"]


def test_summary_csv_is_the_mean_and_population_std_of_results_csv(sweep):
    name, folder = sweep
    results = pd.read_csv(folder / "results.csv")
    summary = pd.read_csv(folder / "summary.csv")
    assert summary["runs"].tolist() == [2] * (len(results) // 2)  # two seeds per variant
    first = results.iloc[:2]  # the first variant: its two seeds
    for figure in ("final_loss", "epochs_to_target"):
        values = first[figure].dropna().tolist()
        if not values:
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))  # ddof=0
        assert summary.loc[0, f"{figure}_mean"] == pytest.approx(mean)
        assert summary.loc[0, f"{figure}_std"] == pytest.approx(std)


def test_a_failed_run_shows_its_last_epoch_but_is_left_out_of_the_means():
    results = pd.DataFrame({
        "optimizer.lr": ["0.1", "0.1", "0.1", "0.1", "0.5"],
        "status": ["completed", "completed", "failed", "interrupted", "diverged"],
        "final_loss": [0.2, 0.4, 9.0, 7.0, None],
        "epochs_to_target": pd.array([3, 5, 1, 1, None], dtype="Int64"),
    })
    summary = variant_summary(results, ["optimizer.lr"], ["final_loss", "epochs_to_target"])
    assert list(summary.columns) == ["optimizer.lr", "runs", "diverged", "failed", "interrupted",
                                     "final_loss_mean", "final_loss_std",
                                     "epochs_to_target_mean", "epochs_to_target_std"]
    first, second = summary.to_dict("records")
    assert (first["runs"], first["diverged"], first["failed"], first["interrupted"]) == (4, 0, 1, 1)
    assert first["final_loss_mean"] == pytest.approx(0.3)
    assert first["final_loss_std"] == pytest.approx(0.1)  # ddof=0: not 0.1414
    assert first["epochs_to_target_mean"] == 4 and first["epochs_to_target_std"] == 1
    assert (second["runs"], second["diverged"], second["failed"]) == (1, 1, 0)
    assert pd.isna(second["final_loss_mean"])


def test_a_sweep_without_axes_is_one_variant():
    results = pd.DataFrame({"status": ["completed", "completed"], "final_loss": [1.0, 3.0]})
    summary = variant_summary(results, [], ["final_loss"])
    assert summary.to_dict("records") == [
        {"runs": 2, "diverged": 0, "failed": 0, "interrupted": 0, "final_loss_mean": 2.0,
         "final_loss_std": 1.0}]


def test_a_run_without_a_finished_summary_shows_its_last_complete_epoch(sweep, tmp_path):
    """As a compare worker leaves a failed run: summary.json without final figures."""
    name, folder = sweep
    run = tmp_path / "run"
    shutil.copytree(sorted(p for p in folder.iterdir() if p.is_dir())[0], run)
    finished = run_row(run, read_config(run), ["optimizer.lr"], target_loss=0.0)
    (run / "summary.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    row = run_row(run, read_config(run), ["optimizer.lr"], target_loss=0.0)
    assert row["status"] == "failed" and row["optimizer.lr"] == finished["optimizer.lr"]
    assert row["epochs"] == finished["epochs"]
    assert row["final_loss"] == pytest.approx(finished["final_loss"])
    assert row["best_loss"] is None and row["best_epoch"] is None
    assert row["epochs_to_target"] is None


def test_the_test_split_is_shown_wherever_final_figures_are(tmp_path, capsys, monkeypatch):
    """data.test_fraction: train's line, report's columns, compare's results and summary."""
    import sys

    import pandas as pd

    from nntrain import load_config, train
    from nntrain.compare import compare
    from nntrain.output import print_run
    from nntrain.results import report_rows

    config = CONFIGS / "moons.yaml"
    run = train(load_config(config, ["data.test_fraction=0.2", "train.epochs=20"]),
                out=tmp_path / "r")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    print_run(run.summary)
    line = capsys.readouterr().out
    test = run.summary["test"]
    assert f"test_loss {test['loss']:.4g}" in line and "test_accuracy" in line
    rows, columns = report_rows([run.path])
    assert {"test_loss", "test_accuracy"} <= set(columns)
    assert rows[0]["test_loss"] == test["loss"]
    folder, summary, _ = compare(config, ["data.test_fraction=0.2", "train.epochs=5"],
                                 seeds="2", workers=1, out=tmp_path / "c")
    results = pd.read_csv(folder / "results.csv")
    assert {"test_loss", "test_accuracy"} <= set(results.columns)
    assert "test_loss_mean" in summary.columns and "test_accuracy_std" in summary.columns
