"""What the commands print: rich tables and progress bars on a terminal, CSV or JSON when piped.

rich is imported only when something is drawn on a terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .runs import format_value, to_json


def print_table(rows: list[dict], columns: list[str], as_json: bool = False,
                csv_file: Path | None = None, csv_separator: str = ",", header: bool = True) -> None:
    """JSON with ``as_json``; a rich table on a terminal; CSV when piped. ``csv_file``: also
    write the table there as CSV."""
    if as_json:
        sys.stdout.write(to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n")
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*columns, show_header=header)
        for row in rows:  # Text, not markup: a formula's [ln sigma + ...] is printed as it is
            table.add_row(*(Text(cell_text(row.get(c))) for c in columns))
        Console().print(table)
    else:
        write_csv(sys.stdout, rows, columns, csv_separator, header)
    if csv_file is not None:
        with open(csv_file, "w", newline="") as f:
            write_csv(f, rows, columns)


def cell_text(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)


def write_csv(stream, rows: list[dict], columns: list[str], separator: str = ",",
              header: bool = True) -> None:
    if header:
        stream.write(separator.join(columns) + "\n")
    for row in rows:
        stream.write(separator.join(format_value(row.get(c)) for c in columns) + "\n")


def print_run(summary: dict, as_json: bool = False, quiet: bool = False) -> None:
    """A finished run: its summary.json (--json), its folder (quiet or piped), or one line."""
    if as_json:
        print(to_json(summary))
        return
    if quiet or not sys.stdout.isatty():
        print(summary["path"])
        return
    from rich.console import Console
    from rich.markup import escape

    final = summary["final"] or {}
    figures = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if v is not None)
    status = summary["status"]
    if summary.get("diverged"):
        where = summary["diverged"]
        status += f" at epoch {where['epoch']} (layer {where['layer']}, {where['where']})"
    if summary.get("restored_epoch") is not None:
        status += f" (weights of epoch {summary['restored_epoch']} restored)"
    Console().print(
        f"[bold]{escape(summary['name'])}[/]: {status} after {summary['epochs']} epochs "
        f"in {summary['wall_time_s']:.2f} s; {figures}\n{escape(summary['path'])}",
        highlight=False,
    )


def print_evaluation(report: dict, as_json: bool = False) -> None:
    """evaluate's figures: JSON (loss, accuracy or mae, confusion, per_class), or tables."""
    if as_json:
        print(to_json(report))
        return
    figures = {k: v for k, v in report.items() if k in ("split", "n", "loss", "accuracy", "mae")}
    print_table([figures], list(figures))
    if "confusion" in report:
        classes = report["classes"]
        rows = [{"class": c, **report["per_class"][c]} for c in classes]
        print_table(rows, ["class", "precision", "recall", "support"])
        confusion = [{"true \\ predicted": c, **dict(zip(classes, counts))}
                     for c, counts in zip(classes, report["confusion"])]
        print_table(confusion, ["true \\ predicted", *classes])


class Bar:
    """A rich progress bar on stderr that disappears when done; only used on a terminal."""

    def __init__(self, *columns):
        from rich.console import Console
        from rich.progress import Progress

        self.progress = Progress(*columns, console=Console(stderr=True), transient=True)

    def stop(self) -> None:
        self.progress.stop()


class EpochProgress(Bar):
    """Epochs of one run, with the current loss."""

    def __init__(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        super().__init__(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
        self.label = label

    def start(self, total: int) -> None:
        self.task = self.progress.add_task(self.label, total=total, loss="-")
        self.progress.start()

    def update(self, epoch: int, loss: float) -> None:
        self.progress.update(self.task, completed=epoch, loss=f"{loss:.4g}")


class RunsProgress(Bar):
    """The runs of a sweep, with the last one finished."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        super().__init__(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[last]}"), TimeElapsedColumn())

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("runs", total=total, completed=done, last="")
        self.progress.start()

    def advance(self, result: dict) -> None:
        self.progress.update(self.task, advance=1,
                             last=f"{result['dir']}: {result['summary'].get('status')}")
