"""What the commands print: rich tables and progress bars on a terminal, CSV or JSON when piped.

rich is imported only when something is drawn on a terminal.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from .runs import format_value, to_json
from .tasks import METRICS


def print_table(rows: list[dict], columns: list[str], as_json: bool = False,
                csv_file: Path | None = None, csv_separator: str = ",", header: bool = True,
                drop_first: tuple = (), title: str | None = None, width: int | None = None,
                whole_text: bool = False) -> None:
    """JSON with ``as_json``; a rich table on a terminal; CSV when piped. ``csv_file``: also
    write the table as CSV (every column, full precision).

    On a terminal numbers have 4 significant digits and are never cut; text folds onto more
    lines. When the columns still cannot fit, those of ``drop_first`` are left out, in that
    order, and a line on stderr names them; with ``whole_text`` text (a row's name) folds
    only once those are all out."""
    if as_json:
        sys.stdout.write(to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n")
    elif sys.stdout.isatty() or width is not None:
        from rich.console import Console

        console = Console(width=width)
        shown = fit_columns(rows, columns, drop_first, console.width, whole_text)
        console.print(rich_table(rows, shown, header, title))
        if len(shown) < len(columns):
            sys.stdout.flush()
            left_out = [c for c in columns if c not in shown]
            print(f"left out to fit {console.width} columns: {', '.join(left_out)} "
                  "(all of them: --csv FILE, --json, or a wider terminal)", file=sys.stderr)
    else:
        write_csv(sys.stdout, rows, columns, csv_separator, header)
    if csv_file is not None:
        with open(csv_file, "w", newline="") as f:
            write_csv(f, rows, columns)


MIN_TEXT_WIDTH = 10  # a text column narrower than this folds into too many lines to read
WHOLE_WIDTH = 40  # with whole_text, text is kept whole up to this while columns can go


def is_number_column(rows: list[dict], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                for v in values)


def column_width(rows: list[dict], column: str) -> int:
    """The narrowest a column can be: a number's full text, a header word (headers break after
    '_'), or MIN_TEXT_WIDTH of folded text."""
    cells = [cell_text(row.get(column)) for row in rows]
    header = max(len(part) for part in header_parts(column))
    if is_number_column(rows, column):
        return max([header, *map(len, cells)])
    return max(header, min(MIN_TEXT_WIDTH, max(map(len, cells), default=0)))


def fit_columns(rows: list[dict], columns: list[str], drop_first, width: int,
                whole_text: bool = False) -> list[str]:
    """The columns that fit in ``width`` characters, leaving out ``drop_first`` in order. With
    ``whole_text``, text counts at its longest cell (up to WHOLE_WIDTH), as rich draws it, so
    that it folds (a row's name) only once every column of ``drop_first`` is out."""
    shown = list(columns)
    needed = {c: column_width(rows, c) + 3 for c in columns}  # 2 of padding, 1 of border
    for column in columns if whole_text else ():  # rich draws every text column this wide
        longest = max((len(cell_text(row.get(column))) for row in rows), default=0)
        needed[column] = max(needed[column], min(longest, WHOLE_WIDTH) + 3)
    for column in [c for c in drop_first if c in columns]:
        if sum(needed[c] for c in shown) + 1 <= width:
            break
        shown.remove(column)
    return shown


def header_parts(column: str) -> list[str]:
    """'target_weight_std' -> ['target_', 'weight_', 'std']: a header breaks after '_' or '.'."""
    return re.findall(r"[^_.]+[_.]*|[_.]+", column) or [column]


def header_text(column: str, width: int) -> str:
    """The header broken after '_' into lines of at most ``width`` characters."""
    lines = [""]
    for part in header_parts(column):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def rich_table(rows: list[dict], columns: list[str], header: bool = True, title: str | None = None):
    """A rich Table: numbers right-aligned at full width, text folded; cells are Text, not
    markup, so a formula's [ln sigma + ...] or a path's [1] is printed as it is."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=header, title=title, title_justify="left")
    for column in columns:
        number = is_number_column(rows, column)
        width = column_width(rows, column)
        table.add_column(Text(header_text(column, width), overflow="fold"),
                         justify="right" if number else "left", no_wrap=number,
                         min_width=width if number else None, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell_text(row.get(c)), overflow="fold") for c in columns))
    return table


def cell_text(value) -> str:
    """A cell on a terminal: floats to 4 significant digits, None blank."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_report(rows: list[dict], columns: list[str], as_json: bool = False,
                 csv_file: Path | None = None, width: int | None = None) -> None:
    """``nntrain report``: on a terminal the run folders are shown below their common parent,
    and the settings and secondary figures are the first to go when the table cannot fit,
    before a run folder's name folds."""
    if as_json or not (sys.stdout.isatty() or width is not None):
        print_table(rows, columns, as_json=as_json, csv_file=csv_file)
        return
    paths = [row["run"] for row in rows]
    parent = os.path.dirname(os.path.commonpath(paths) if len(paths) > 1 else paths[0])
    if len(paths) > 1 and os.path.commonpath(paths) not in paths:
        parent = os.path.commonpath(paths)
    shown = [{**row, "run": os.path.relpath(row["run"], parent) if parent else row["run"]}
             for row in rows]
    settings = columns[1:columns.index("status")]
    secondary = ["wall_time_s", "best_epoch", "epochs", "final_val_accuracy", "final_accuracy",
                 "final_val_mae", "final_mae"]
    implied = implied_settings(shown, settings)
    varied = [c for c in reversed(settings) if c not in implied]
    print_table(shown, columns, drop_first=(*implied, *secondary, *varied),
                title=f"runs in {parent}/" if parent else None, width=width, whole_text=True)
    if csv_file is not None:  # the full paths
        with open(csv_file, "w", newline="") as f:
            write_csv(f, rows, columns)


def implied_settings(rows: list[dict], settings: list[str]) -> list[str]:
    """Settings a reader learns from another column: the config name when the run folders show
    it (runs/<name>/...), settings that never vary among runs of one name (the dataset of a
    lesson), and settings every run folder's name spells (a compare's
    '003-initializer=zeros-seed0'): the first to leave a narrow table, before the settings a
    sweep varied."""
    by_name: dict = {}
    for row in rows:
        by_name.setdefault(row.get("name"), []).append(row)
    implied = [c for c in settings if c != "name" and (len(by_name) > 1 and all(
        len({repr(r.get(c)) for r in group}) == 1 for group in by_name.values())
        or named_in_runs(rows, c))]
    if "name" in settings and all(f"{r.get('name')}/" in f"/{r['run']}" for r in rows):
        implied.insert(0, "name")
    return implied


def named_in_runs(rows: list[dict], column: str) -> bool:
    """Whether each row's run folder is named with its value of ``column``, as compare names
    its runs (``runs.slug_part``, and 'seed3'), one name part for each value: a column whose
    values the names cannot tell apart (cut to one part) is not."""
    from .runs import SLUG_PART, slug_part

    values_of: dict[str, set] = {}
    for row in rows:
        value = row.get(column)
        part = f"seed{value}" if column == "seed" else slug_part(column, value)
        if value is None or len(part) >= SLUG_PART or (
                f"-{part}-" not in f"-{Path(str(row['run'])).name}-"):
            return False
        values_of.setdefault(part, set()).add(repr(value))
    return bool(rows) and all(len(values) == 1 for values in values_of.values())


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
    test = {f"test_{k}": v for k, v in (summary.get("test") or {}).items()}  # data.test_fraction
    figures = ", ".join(f"{k} {v:.4g}" for k, v in {**final, **test}.items() if v is not None)
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
    figures = {k: v for k, v in report.items() if k in ("split", "n", "loss", *METRICS)}
    print_table([figures], list(figures))
    if "confusion" in report:
        classes = [str(c) for c in report["classes"]]  # per_class is keyed by the label's text
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


def epoch_figures(row: dict) -> str:
    """A metrics row as Keras prints it: 'loss 0.6931 - accuracy 0.5 - val_loss 0.7 - ...'."""
    return " - ".join(f"{k} {v:.4g}" for k, v in row.items()
                      if k not in ("epoch", "lr", "grad_norm", "time_s") and v is not None)


class EpochRate:
    """Epochs per second and the time left, from the epochs finished since the start."""

    def __init__(self, total: int):
        self.total, self.start, self.first = total, time.perf_counter(), None

    def text(self, epoch: int) -> str:
        now = time.perf_counter()
        if self.first is None:  # epoch 0 (the untrained network) is not a training epoch
            self.first = (epoch, now)
            return ""
        done, seconds = epoch - self.first[0], now - self.first[1]
        if done <= 0 or seconds <= 0:
            return ""
        rate = done / seconds
        left = (self.total - epoch) / rate
        return f"{rate:.4g} epochs/s - {format_seconds(left)} left"


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EpochProgress(Bar):
    """Epochs of one run, like Keras: loss, accuracy (or MAE), the val figures, epochs/s and
    the time left."""

    def __init__(self, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

        # the rate and time left before the figures: a narrow terminal cuts the line's end
        super().__init__(TextColumn("[bold]{task.description}"), BarColumn(bar_width=16),
                         MofNCompleteColumn(), TextColumn("{task.fields[text]}", markup=False))
        self.label = label

    def start(self, total: int) -> None:
        self.total, self.rate = total, EpochRate(total)
        self.task = self.progress.add_task(self.label, total=total, text="")
        self.progress.start()

    def update(self, epoch: int, row: dict) -> None:
        rate = self.rate.text(epoch)
        text = f"{rate} - {epoch_figures(row)}" if rate else epoch_figures(row)
        # what is left of the line after the label, the bar and 'epoch/total'
        room = self.progress.console.width - len(self.label) - 16 - 2 * len(str(self.total)) - 5
        if len(text) > room:  # cut the line's end (the last figures), never the bar
            text = text[:max(room - 1, 0)] + "…"
        self.progress.update(self.task, completed=epoch, text=text)


class EpochLines:
    """``--verbose``: one line per epoch on stderr (stdout keeps the run folder for scripts)."""

    def __init__(self, label: str):
        self.label = label

    def start(self, total: int) -> None:
        self.total, self.rate = total, EpochRate(total)

    def update(self, epoch: int, row: dict) -> None:
        rate = self.rate.text(epoch)
        print(f"{self.label} epoch {epoch}/{self.total} - {epoch_figures(row)}"
              + (f" - {rate}" if rate else ""), file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass


class RunsProgress(Bar):
    """The runs of a sweep, with the last one finished."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        super().__init__(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[last]}", markup=False), TimeElapsedColumn())

    def start(self, total: int, done: int) -> None:
        self.task = self.progress.add_task("runs", total=total, completed=done, last="")
        self.progress.start()

    def advance(self, result: dict) -> None:
        self.progress.update(self.task, advance=1,
                             last=f"{result['dir']}: {result['summary'].get('status')}")
