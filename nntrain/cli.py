"""The command line: each command parses its options and hands off to the library.

User mistakes (ConfigError) become one line on stderr and exit 2; Ctrl-C
exits 130 after saving what finished; anything else is exit 1 with one line
(``--debug`` shows the traceback). Heavy modules are imported inside the
commands that need them, so ``nntrain --help`` starts fast.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train small neural networks from YAML configs and see how training behaves.",
)

KINDS = ("activations", "initializers", "losses", "optimizers", "schedules", "datasets")

ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML file.", show_default=False)]
OverridesArg = Annotated[
    Optional[list[str]],
    typer.Argument(help="Overrides: key=value, +key=value (add), ~key (delete); values are YAML.",
                   show_default=False),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
PluginOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--plugin", help="A Python file that registers components (repeatable).",
                 show_default=False),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nntrain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Train small neural networks from YAML configs and see how training behaves."""


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def errors_handled(debug: bool):
    """ConfigError -> exit 2, Ctrl-C -> 130, other failures -> 1; one line each unless --debug."""
    from .registry import ConfigError
    from .train import Interrupted

    warnings.showwarning = _warning_line
    try:
        yield
    except ConfigError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except Interrupted as err:
        typer.echo(f"interrupted: epochs finished so far are saved in {err.run.path}", err=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as err:
        if debug:
            raise
        typer.echo(f"error: {type(err).__name__}: {err} (--debug shows the traceback)", err=True)
        raise typer.Exit(1) from None


def interactive() -> bool:
    return sys.stderr.isatty()


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


@app.command()
def train(
    config: ConfigArg,
    overrides: OverridesArg = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder (new or empty).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train the network CONFIG describes; write runs/<name>/<time>-<id>/.

    Prints the run folder (or, with --json, its summary); exit 0 also for an
    early-stopped or diverged run, 2 for a bad config, 130 when interrupted.
    """
    from .config import load_config
    from .train import train as train_run

    with errors_handled(debug):
        cfg = load_config(config, overrides or [], [str(p) for p in plugin or []])
        progress = EpochProgress(cfg.name) if interactive() and not (quiet or as_json) else None
        run = train_run(cfg, out=out, progress=progress)
    if as_json:
        from .runs import to_json

        typer.echo(to_json(run.summary))
    elif quiet or not sys.stdout.isatty():
        typer.echo(str(run.path))
    else:
        print_summary(run.summary)


def print_summary(summary: dict) -> None:
    from rich.console import Console

    final = summary["final"] or {}
    figures = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if v is not None)
    status = summary["status"]
    if summary.get("diverged"):
        where = summary["diverged"]
        status += f" at epoch {where['epoch']} (layer {where['layer']}, {where['where']})"
    Console().print(
        f"[bold]{summary['name']}[/]: {status} after {summary['epochs']} epochs "
        f"in {summary['wall_time_s']:.2f} s; {figures}\n{summary['path']}",
        highlight=False,
    )


@app.command("list")
def list_components(
    kind: Annotated[
        Optional[str], typer.Argument(help=f"One of: {', '.join(KINDS)}.", show_default=False)
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """List the registered components of each kind with their formulas."""
    from .registry import ConfigError, did_you_mean

    with errors_handled(debug):
        registries = registries_by_kind()
        if kind is not None and kind not in registries:
            raise ConfigError(f"unknown kind {kind!r}{did_you_mean(kind, KINDS)} known: "
                              f"{', '.join(KINDS)}", "list")
        chosen = [kind] if kind else list(KINDS)
        rows = [(k, name, registries[k].formula(name)) for k in chosen for name in registries[k]]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("kind", "name", "rule")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        for row in rows:
            typer.echo("\t".join(row))


def split_names(text: Optional[str]) -> Optional[list]:
    """'a,b' -> ['a', 'b'] (each parsed as YAML, so {name: x, gain: 2} works too)."""
    if text is None:
        return None
    from .config import safe_load, split_top_level

    return [safe_load(part) for part in split_top_level(text) if part.strip()]


def print_table(rows: list[dict], columns: list[str]) -> None:
    """A rich table on a terminal, CSV when piped."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns)
        for row in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v)
                            for v in (row.get(c) for c in columns)))
        Console().print(table)
    else:
        write_csv(sys.stdout, rows, columns)


def write_csv(stream, rows: list[dict], columns: list[str]) -> None:
    from .runs import format_value

    stream.write(",".join(columns) + "\n")
    for row in rows:
        stream.write(",".join(format_value(row.get(c)) for c in columns) + "\n")


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


@app.command()
def compare(
    config: ConfigArg,
    overrides: OverridesArg = None,
    initializers: Annotated[Optional[str], typer.Option(
        "--initializers", help="Shortcut for model.initializer=a,b,...")] = None,
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", help="A count (5: the config's seed and the next 4) or a list (0,1,2).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=1, help="Parallel runs (default: the number of cores).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local (process pool) or dask.")] = "local",
    address: Annotated[Optional[str], typer.Option(
        "--address", help="Dask scheduler, e.g. tcp://host:8786 (default: a local cluster).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Compare folder (new or empty).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Finish the sweep in this compare folder: only unfinished runs run.")] = None,
    target_loss: Annotated[Optional[float], typer.Option(
        "--target-loss", help="Report the first epoch whose loss is at most this.")] = None,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run CONFIG over a grid (every KEY=A,B,... axis x every seed) and compare the variants.

    Writes sweep.yaml, one run folder per grid point, results.csv, summary.csv and
    loss.png; exit 1 if any run failed.
    """
    from .compare import compare as run_compare

    with errors_handled(debug):
        progress = RunsProgress() if interactive() else None
        folder, summary, failed = run_compare(
            config, overrides or [], split_names(initializers), seeds, workers, executor, address,
            out, resume, target_loss, [str(p) for p in plugin or []], progress)
    if sys.stdout.isatty():
        print_table(*compact_summary(summary))
    typer.echo(str(folder))
    if failed:
        typer.echo(f"{failed} run(s) failed; see results.csv", err=True)
        raise typer.Exit(1)


def compact_summary(summary) -> tuple[list[dict], list[str]]:
    """summary.csv for a terminal: 'mean ± std' in one column per figure."""
    figures = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    plain = [c for c in summary.columns if not c.endswith(("_mean", "_std"))]
    if "failed" in plain and not summary["failed"].any():
        plain.remove("failed")
    import pandas as pd

    rows = []
    for record in summary.to_dict("records"):
        row = {c: record[c] for c in plain}
        for fig in figures:
            mean, std = record[f"{fig}_mean"], record[f"{fig}_std"]
            row[fig] = "-" if pd.isna(mean) else f"{mean:.4g} ± {0 if pd.isna(std) else std:.2g}"
        rows.append(row)
    return rows, plain + figures


@app.command()
def report(
    paths: Annotated[list[Path], typer.Argument(
        help="Run folders, or folders holding them.", show_default=False)],
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Also write the table as CSV.")] = None,
    sort: Annotated[Optional[str], typer.Option("--sort", help="Sort by this column.")] = None,
    debug: DebugOpt = False,
) -> None:
    """One row per run found under PATHS: the settings that differ, status, final and best figures."""
    from .registry import ConfigError, did_you_mean
    from .runs import find_runs, report_rows

    with errors_handled(debug):
        rows, columns = report_rows(find_runs(paths))
        if sort is not None:
            if sort not in columns:
                raise ConfigError(f"no column {sort!r}{did_you_mean(sort, columns)} columns: "
                                  f"{', '.join(columns)}", "--sort")
            rows.sort(key=lambda r: (r[sort] is None, r[sort] if r[sort] is not None else 0))
        print_table(rows, columns)
        if csv:
            with open(csv, "w", newline="") as f:
                write_csv(f, rows, columns)


@app.command()
def inspect(
    config: ConfigArg,
    overrides: OverridesArg = None,
    initializers: Annotated[Optional[str], typer.Option(
        "--initializers", help="Comma list to compare, e.g. he_normal,xavier_uniform.")] = None,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Write the table as CSV.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Activation and gradient std against depth (PNG).")] = None,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The init check: one forward and backward pass at initialization, per layer and initializer."""
    from .config import load_config
    from .diagnostics import INSPECT_COLUMNS, inspect_init
    from .initializers import INITIALIZERS

    with errors_handled(debug):
        cfg = load_config(config, overrides or [], [str(p) for p in plugin or []])
        specs = split_names(initializers)
        for spec in specs or []:
            INITIALIZERS.prepare(spec, "--initializers", activation=None)  # names checked up front
        rows = inspect_init(cfg, specs)
        print_table(rows, INSPECT_COLUMNS)
        if csv:
            with open(csv, "w", newline="") as f:
                write_csv(f, rows, INSPECT_COLUMNS)
        if output:
            from .plots import plot_inspect

            plot_inspect(rows, output)


@app.command()
def plot(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        help="Run folders, or folders holding them (compare folders, runs/).", show_default=False)
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="The PNG to write.")] = Path("plot.png"),
    metric: Annotated[str, typer.Option("--metric", help="A metrics.csv column.")] = "loss",
    activations: Annotated[bool, typer.Option(
        "--activations", help="Plot every activation and its derivative instead.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Curves of runs (mean and min-max band over seeds); one run also gets a gradient heat map."""
    from . import plots
    from .registry import ConfigError
    from .runs import find_runs

    with errors_handled(debug):
        if activations:
            plots.plot_activations(output)
        elif not paths:
            raise ConfigError("give run folders to plot, or --activations", "plot")
        else:
            plots.plot_runs(find_runs(paths), output, metric)
    typer.echo(str(output))


@app.command()
def gradcheck(
    config: ConfigArg,
    overrides: OverridesArg = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Rows of the data to use.")] = 8,
    entries: Annotated[int, typer.Option(
        "--entries", min=0, help="Entries checked per parameter, at random; 0: all.")] = 50,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check the config's backward pass against central differences (float64); exit 1 above 1e-5.

    A layer whose gradient is too small for central differences to resolve (a
    vanishing gradient) is reported as such and does not fail the check.
    """
    from .config import load_config
    from .gradcheck import TOLERANCE, check_config

    with errors_handled(debug):
        cfg = load_config(config, overrides or [], [str(p) for p in plugin or []])
        rows = check_config(cfg, samples, entries or None)
    print_table(rows, ["layer", "max_relative_error", "ok"])
    if any(row["ok"] == "NO" for row in rows):
        typer.echo(f"gradcheck failed: relative error above {TOLERANCE:g}", err=True)
        raise typer.Exit(1)


def registries_by_kind() -> dict:
    from .activations import ACTIVATIONS
    from .datasets import DATASETS
    from .initializers import INITIALIZERS
    from .losses import LOSSES
    from .optimizers import OPTIMIZERS, SCHEDULES

    return dict(zip(KINDS, (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES, DATASETS)))


def main() -> None:
    app()
