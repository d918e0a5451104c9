"""The results row of a run folder: one function builds it for `nntrain report` and for compare's
results.csv and summary.csv, so that the two tables cannot drift apart.

    run_row(run_dir, read_config(run_dir), ["optimizer.lr"])
    # {'optimizer.lr': 0.5, 'status': 'completed', 'epochs': 1000, 'final_loss': 0.003, ...,
    #  'best_loss': 0.003, 'best_epoch': 1000, 'wall_time_s': 0.41, 'run': 'runs/xor/...'}

Figures are named apart from settings (``final_loss`` beside a ``loss`` setting), and the best
figure after what it measures (``best_val_loss`` when validation picked the best epoch).
"""

from __future__ import annotations

from pathlib import Path

from .runs import differing_keys, effective_status, read_config, read_metrics, read_summary
from .tasks import FIGURES, METRICS

FINAL_LOSSES = ["final_loss", "final_val_loss"]
FINAL_METRICS = [f"final_{name}" for name in FIGURES if f"final_{name}" not in FINAL_LOSSES]
BEST_LOSSES = ["best_loss", "best_val_loss"]  # best_<monitor>: the monitor is loss or val_loss
TEST_FIGURES = ["test_loss", *(f"test_{m}" for m in METRICS)]  # with data.test_fraction


def run_row(run_dir: Path, config: dict, keys: list[str], target_loss: float | None = None) -> dict:
    """One run folder as a row: the settings ``keys`` (from ``config``, flattened to dotted
    keys), status, epochs, final_<figure> for every figure, best_<monitor>, best_epoch,
    epochs_to_target when a ``target_loss`` is given, wall_time_s and run (the folder).

    A run without a finished summary (killed, or failed in a compare worker) shows its last
    complete epoch from metrics.csv.
    """
    summary = read_summary(run_dir) or {}
    finished = bool(summary.get("final"))
    # metrics.csv only where the summary does not say it all (docs/performance.md)
    history = read_metrics(run_dir) if not finished or target_loss is not None else []
    last = history[-1] if history else {}
    final = summary["final"] if finished else last
    best = summary.get("best") or {}
    monitor = summary.get("monitor", "loss")
    row = {key: config.get(key) for key in keys}
    row["status"] = effective_status(summary or None)
    row["epochs"] = summary.get("epochs") if finished else _whole(last.get("epoch"))
    row.update({f"final_{name}": final.get(name) for name in FIGURES})
    row.update({f"test_{name}": value for name, value in (summary.get("test") or {}).items()
                if f"test_{name}" in TEST_FIGURES})
    row[f"best_{monitor}"] = best.get(monitor)
    row["best_epoch"] = best.get("epoch")
    if target_loss is not None:
        row["epochs_to_target"] = epochs_to_target(history, target_loss)
    row["wall_time_s"] = summary.get("wall_time_s") if finished else last.get("time_s")
    row["run"] = str(run_dir)
    return row


def epochs_to_target(history: list[dict], target_loss: float) -> int | None:
    """The first epoch whose training loss is at or below ``target_loss``; None if none is."""
    return next((int(r["epoch"]) for r in history
                 if r.get("loss") is not None and r["loss"] <= target_loss), None)


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def figure_columns(rows: list[dict], target: bool = False, losses_first: bool = False
                   ) -> list[str]:
    """The figure columns of a table of rows, those that some row has a value in (no
    final_val_loss without validation data, no final_mae for a classifier). report puts the
    final figures first; compare's results.csv (``losses_first``) the losses, as 0.2 did."""
    if losses_first:
        order = [*FINAL_LOSSES, *BEST_LOSSES, "best_epoch", *FINAL_METRICS, *TEST_FIGURES]
    else:
        order = [*FINAL_LOSSES, *FINAL_METRICS, *TEST_FIGURES, *BEST_LOSSES, "best_epoch"]
    filled = [c for c in order if any(row.get(c) is not None for row in rows)]
    return filled + (["epochs_to_target"] if target else [])


def report_rows(run_dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """`nntrain report`'s table: one row per run, with the settings that differ between the runs;
    columns run, settings, status, epochs, final figures, best figures, wall_time_s."""
    configs = [read_config(d) for d in run_dirs]
    keys = differing_keys(configs)
    rows = [run_row(d, config, keys) for d, config in zip(run_dirs, configs)]
    figures = figure_columns(rows)
    return rows, ["run", *keys, "status", "epochs", *figures, "wall_time_s"]
