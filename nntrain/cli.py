"""The command line: each command parses its options and hands off to the library.

User mistakes (ConfigError) become one line on stderr and exit 2; Ctrl-C
exits 130 after saving what finished; anything else is exit 1 with one line
(``--debug`` shows the traceback). Heavy modules are imported inside the
commands that need them, so ``nntrain --help`` starts fast.
"""

from __future__ import annotations

import json
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


class EpochProgress:
    """A rich progress bar with the current loss, on stderr; only on a terminal."""

    def __init__(self, label: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.label = label

    def start(self, total: int) -> None:
        self.task = self.progress.add_task(self.label, total=total, loss="-")
        self.progress.start()

    def update(self, epoch: int, loss: float) -> None:
        self.progress.update(self.task, completed=epoch, loss=f"{loss:.4g}")

    def stop(self) -> None:
        self.progress.stop()


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
        typer.echo(json.dumps(run.summary, indent=2))
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
        rows = [(k, name, registries[k].describe(name)) for k in chosen for name in registries[k]]
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


def registries_by_kind() -> dict:
    from .activations import ACTIVATIONS
    from .datasets import DATASETS
    from .initializers import INITIALIZERS
    from .losses import LOSSES
    from .optimizers import OPTIMIZERS, SCHEDULES

    return dict(zip(KINDS, (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES, DATASETS)))


def main() -> None:
    app()
