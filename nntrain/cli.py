"""The command line: each command parses its options and hands off to the library.

One handler around the whole app (``Commands.invoke``) turns what goes wrong
into one line and an exit code: a mistake the user can fix (ConfigError) is
exit 2, Ctrl-C is 130 after saving what finished, a closed pipe (``| head``)
ends quietly, anything else is exit 1 (``--debug`` shows the traceback).
Heavy modules are imported inside the commands that need them, so
``nntrain --help`` starts fast.
"""

from __future__ import annotations

import enum
import gc
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup


# Click's own errors (bad option values, usage): Click prints them with the usage line, exit 2.
# Typer bundles its Click, so the base class is found from an exception Typer exports.
CLICK_ERRORS = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
KINDS = ("activations", "initializers", "losses", "optimizers", "schedules", "datasets")
DEBUG = False  # set by --debug on any command


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


class _NeverRaised(Exception):
    """Stands for an exception class whose module no code has imported, so nothing raised it."""


def raised_by(module: str, name: str) -> type[BaseException]:
    """nntrain.<module>.<name> if that module is loaded, else _NeverRaised. An `except` clause's
    class is looked up only when something is raised, so catching the training loop's
    Interrupted this way does not make `report` or `view` import the whole training stack."""
    loaded = sys.modules.get(f"nntrain.{module}")
    return getattr(loaded, name) if loaded is not None else _NeverRaised


@contextmanager
def errors_handled():
    """ConfigError -> exit 2, Ctrl-C -> 130, a closed pipe -> quiet, other failures -> 1."""
    from .registry import ConfigError
    from .signals import EXIT_CODES, signal_name

    warnings.showwarning = _warning_line
    try:
        yield
    except ConfigError as err:
        if DEBUG:
            raise
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except raised_by("loop", "Interrupted") as err:
        typer.echo(f"interrupted: epochs finished so far are saved in {err.run.path}", err=True)
        raise typer.Exit(EXIT_CODES[err.signal]) from None
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM outside a run (compare's driver)
        from .signals import acted_on

        acted_on()
        folder = getattr(err, "folder", None)  # a sweep's, once it has one
        if folder and getattr(err, "done", False):
            typer.echo(f"interrupted: every run had finished; the results are in {folder}",
                       err=True)
        else:
            typer.echo(f"interrupted: the runs finished so far are in {folder}; the same "
                       f"command with --resume {folder} goes on" if folder else "interrupted",
                       err=True)
        raise typer.Exit(EXIT_CODES[signal_name(err)]) from None
    except raised_by("runs", "WriteError") as err:  # a full disk: the run recorded as failed
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except BrokenPipeError:
        # the reader (head, less) is gone: stop quietly, as Unix tools do on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(141) from None
    except (typer.Exit, typer.Abort):
        raise
    except (Exception, SystemExit) as err:  # SystemExit: only a plugin's code raises it here
        if DEBUG or isinstance(err, CLICK_ERRORS):  # Click prints its own usage errors (exit 2)
            raise
        from .config import failure

        typer.echo(f"error: {failure(err)} (--debug shows the traceback)", err=True)
        raise typer.Exit(1) from None


# Click's "No such option" (a subclass of CLICK_ERRORS), found the same way
NO_SUCH_OPTION = sys.modules[CLICK_ERRORS.__module__].NoSuchOption


class Commands(TyperGroup):
    """The app's command group: every command runs inside the one error handler."""

    def resolve_command(self, ctx, args):
        ctx.meta["nntrain.words"] = list(args)  # the command line, for override_hint
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        global DEBUG
        DEBUG = False  # the command's own --debug sets it while its options are parsed
        with errors_handled():
            # Ctrl-C or SIGTERM before a run's own handling starts (data being loaded, say):
            # one line, exit 130 or 143, no run folder (the console script does it earlier)
            from .signals import stop_early_on_signals

            stop_early_on_signals()
            try:
                return super().invoke(ctx)
            except NO_SUCH_OPTION as err:
                override_hint(err, ctx.meta.get("nntrain.words", []))
                raise  # Click prints it with the usage line, exit 2


def override_hint(err, words: list[str]) -> None:
    """Click's 'No such option: --epochs' on a command that takes overrides also names the
    override that sets the config key meant: train.epochs=10 (--lr: optimizer.lr, ...)."""
    import shlex

    from .config import option_key

    command = err.ctx.command if err.ctx is not None else None
    if command is None or not any(p.name == "overrides" for p in command.params):
        return
    key = option_key(err.option_name) if err.option_name.startswith("--") else None
    if key is None:
        return
    value = "VALUE"
    for i, word in enumerate(words):
        if word.startswith(f"{err.option_name}="):
            value = word.split("=", 1)[1]
        elif word == err.option_name and i + 1 < len(words) and not words[i + 1].startswith("--"):
            value = words[i + 1]
    # Click's own suggestion stays (compare --seed: --seeds) unless it is just --help (--lr)
    err.possibilities = [p for p in err.possibilities or () if p != "--help"]
    err.message = (f"{err.format_message()}; set the config key with an override after CONFIG: "
                   f"{shlex.quote(f'{key}={value}')}")
    err.possibilities = None  # now part of the message


class Command(TyperCommand):
    """A command whose help shows its arguments as the user types them: `CONFIG [KEY=VALUE]...`
    in the usage line and the Arguments list, without Typer's type placeholders
    (`CONFIG <path>`, `{CONFIG}`), which say nothing a user can act on."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                name = name if param.required or name.startswith("[") else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces

    def format_options(self, ctx, formatter) -> None:
        arguments = [(p.metavar or p.name.upper(), (p.help or "") +
                      ("  [required]" if p.required else ""))
                     for p in self.get_params(ctx) if p.param_type_name == "argument"]
        options = [record for p in self.get_params(ctx) if p.param_type_name == "option"
                   and (record := p.get_help_record(ctx)) is not None]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


app = typer.Typer(
    cls=Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help: `--out PATH`, as git and Click print it
    help="Train small neural networks from YAML configs and see how training behaves.",
)


def _set_debug(value: bool) -> bool:
    global DEBUG
    DEBUG = DEBUG or value
    return value


ConfigArg = Annotated[Path, typer.Argument(
    metavar="CONFIG", help="The experiment's YAML file.", show_default=False)]
OverridesArg = Annotated[Optional[list[str]], typer.Argument(
    metavar="KEY=VALUE",
    help="Overrides in Hydra's grammar: key=value, +key=value (add), ~key (delete).",
    show_default=False)]
DebugOpt = Annotated[bool, typer.Option(
    "--debug", callback=_set_debug, is_eager=True, help="Show tracebacks.")]
PluginOpt = Annotated[Optional[list[Path]], typer.Option(
    "--plugin", metavar="FILE", show_default=False,
    help="A Python file that registers components (repeatable).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON to stdout.")]
CsvOpt = Annotated[Optional[Path], typer.Option(
    "--csv", metavar="FILE", help="Also write the table as CSV.")]
RunPluginOpt = Annotated[Optional[list[Path]], typer.Option(
    "--plugin", metavar="FILE", show_default=False,
    help="A Python file of the run's own components (repeatable): files named in a run folder "
         "are never imported.")]
ChangedOkOpt = Annotated[bool, typer.Option(
    "--plugin-changed-ok", help="Use a --plugin file that differs from the one the run recorded.")]
InitializersOpt = Annotated[Optional[str], typer.Option(
    "--initializers", metavar="A,B,...",
    help="Initializers to compare, e.g. he_normal,xavier_uniform (names or YAML mappings).")]


NoStackOpt = Annotated[bool, typer.Option("--no-stack", help=(
    "Train every run (each variant and seed) on its own, not the runs that share a "
    "network's shapes as one stacked network (the runs are the same bit for bit)."))]
SweepVerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help=(
    "Say on stderr which runs were stacked together and which ran alone, and why."))]
OptimizersOpt = Annotated[Optional[str], typer.Option(
    "--optimizers", metavar="A,B,...",
    help="Optimizers to compare, e.g. gd,random_local,random_search; keys one does not take "
         "(random_local's lr, gd's step) are dropped from its runs, with a note.")]


class Executor(str, enum.Enum):
    local = "local"
    dask = "dask"


def _version(value: bool) -> None:
    if value:
        from .version import version

        typer.echo(f"nntrain {version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Train small neural networks from YAML configs and see how training behaves."""


def stderr_line(line: str) -> None:
    typer.echo(line, err=True)


def plugin_paths(plugin: Optional[list[Path]]) -> list[str]:
    return [str(p) for p in plugin or []]


def interactive() -> bool:
    return sys.stderr.isatty()


# -- commands ------------------------------------------------------------------------------


@app.command(cls=Command)
def train(
    config: ConfigArg,
    overrides: OverridesArg = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", metavar="DIR", help="Run folder (new or empty).")] = None,
    quiet: QuietOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="One line per epoch on stderr (also when piped).")] = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train the network CONFIG describes; write runs/<name>/<time>-<id>/.

    Prints the run folder (or, with --json, its summary); exit 0 also for an
    early-stopped or diverged run, 2 for a bad config, 130 when interrupted.
    """
    from .config import load_config
    from .output import EpochLines, EpochProgress, print_run
    from .loop import train as train_run

    cfg = load_config(config, overrides or [], plugin_paths(plugin))
    if verbose:
        progress = EpochLines(cfg.name)
    else:
        progress = EpochProgress(cfg.name) if interactive() and not (quiet or as_json) else None
    run = train_run(cfg, out=out, progress=progress)
    print_run(run.summary, as_json=as_json, quiet=quiet)


@app.command("list", cls=Command)
def list_components(
    kind: Annotated[Optional[str], typer.Argument(
        metavar="KIND", help=f"One of: {', '.join(KINDS)}.", show_default=False)] = None,
    plugin: PluginOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the registered components of each kind with their formulas (plugins' included)."""
    from .config import load_plugin
    from .output import print_table
    from .registry import ConfigError, describe, did_you_mean

    for path in plugin_paths(plugin):
        load_plugin(str(Path(path).resolve()))
    registries = registries_by_kind()
    if kind is not None and kind not in registries:
        raise ConfigError(f"unknown kind {describe(kind)}{did_you_mean(kind, KINDS)} known: "
                          f"{', '.join(KINDS)}", "list")
    rows = [{"kind": k, "name": name, "rule": registries[k].formula(name)}
            for k in ([kind] if kind else KINDS) for name in registries[k]]
    print_table(rows, ["kind", "name", "rule"], as_json=as_json, csv_separator="\t", header=False)


@app.command(cls=Command)
def compare(
    config: ConfigArg,
    overrides: OverridesArg = None,
    initializers: InitializersOpt = None,
    optimizers: OptimizersOpt = None,
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", metavar="N|A,B,...",
        help="A count (5: the config's seed and the next 4) or a list (0,1,2).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", metavar="N", min=1, help="Parallel runs (default: the number of cores).")] = None,
    executor: Annotated[Executor, typer.Option(
        "--executor", help="local (a process pool) or dask.")] = Executor.local,
    address: Annotated[Optional[str], typer.Option(
        "--address", metavar="URL",
        help="Dask scheduler, e.g. tcp://host:8786 (default: a local cluster).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", metavar="DIR", help="Compare folder (new or empty).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", metavar="DIR",
        help="Finish the sweep in this compare folder: only unfinished runs run.")] = None,
    target_loss: Annotated[Optional[float], typer.Option(
        "--target-loss", metavar="X", help="Report the first epoch whose loss is at most this.")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", metavar="COLUMN",
        help="The metrics.csv or layers.csv column drawn in COLUMN.png.")] = "loss",
    break_lock: Annotated[bool, typer.Option(
        "--break-lock", help="With --resume: take over the folder's lock (a sweep stopped "
                             "on another machine).")] = False,
    no_stack: NoStackOpt = False,
    verbose: SweepVerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run CONFIG over a grid (every KEY=A,B,... axis x every seed) and compare the variants.

    Writes sweep.yaml, one run folder per grid point, results.csv, summary.csv and
    loss.png (or <metric>.png); prints the folder; exit 1 if a run failed or is unfinished.
    """
    from .compare import compact_summary, failures
    from .compare import compare as run_compare
    from .output import RunsProgress, print_table

    progress = RunsProgress() if interactive() and not (quiet or as_json) else None
    folder, summary, failed = run_compare(
        config, overrides or [], initializers=split_names(initializers),
        optimizers=split_list(optimizers), seeds=seeds, workers=workers,
        executor=executor.value, address=address, out=out, resume=resume,
        target_loss=target_loss, plugins=plugin_paths(plugin), progress=progress, metric=metric,
        break_lock=break_lock, stack=not no_stack, notes=verbose and stderr_line)
    if as_json:
        print_table(summary.to_dict("records"), list(summary.columns), as_json=True)
    elif sys.stdout.isatty() and not quiet:
        print_table(*compact_summary(summary))
    if not as_json:
        typer.echo(str(folder))
    if failed:
        typer.echo("\n".join(failures(folder)), err=True)
        raise typer.Exit(1)


@app.command(cls=Command)
def report(
    paths: Annotated[list[Path], typer.Argument(
        metavar="PATH", help="Run folders, or folders holding them.", show_default=False)],
    csv: CsvOpt = None,
    sort: Annotated[Optional[str], typer.Option(
        "--sort", metavar="COLUMN", help="Sort by this column (e.g. final_val_loss).")] = None,
    reverse: Annotated[bool, typer.Option(
        "--reverse", "-r", help="With --sort: largest first (blanks still last).")] = False,
    show: Annotated[Optional[str], typer.Option(
        "--columns", metavar="A,B,...", help="Only these columns (run is always shown).")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """One row per run found under PATHS: the settings that differ, status, final and best figures.

    Figures are named apart from settings: final_loss, final_val_loss, final_accuracy, ...,
    best_loss (or best_val_loss, when validation picked the best epoch), best_epoch.
    """
    from .output import print_report
    from .results import report_rows
    from .runs import find_runs, select_columns, sort_rows

    rows, columns = report_rows(find_runs(paths))
    rows = sort_rows(rows, columns, sort, reverse)
    print_report(rows, select_columns(columns, split_list(show)), as_json=as_json, csv_file=csv)


@app.command(cls=Command)
def view(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", show_default=False, help=(
        "Run folders, compare folders, or folders holding runs (as report finds them)."))],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE.html",
        show_default=False, help="The page to write. Default: NAME.html for one PATH, "
        "else view.html, in the current folder.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help=(
        "Rewrite the page every few seconds while any run is running or a sweep's grid is "
        "incomplete; the page reloads itself meanwhile."))] = False,
    open_page: Annotated[bool, typer.Option(
        "--open", help="Open the page in the web browser.")] = False,
    landscape: Annotated[bool, typer.Option("--landscape", help=(
        "Add each variant's loss surface around its trained parameters (as plot "
        "--landscape computes it, 31 points a side)."))] = False,
    along: Annotated[Optional[str], typer.Option("--along", metavar="random|path",
        show_default=False, help=("--landscape: two filter-normalized random directions, or "
                                  "the path's two principal components (default random)."))
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """One self-contained interactive HTML page of the runs: a sortable table, curves (hover,
    log axes, smoothing, mean ± std over seeds), settings against results, the decision boundary
    over the epochs, layers.csv heat maps and each run's config. Works offline; prints its path.
    """
    from .registry import ConfigError
    from .view import view as write_view

    def written(path: Path, seconds: float, page: str) -> None:
        if watch:
            typer.echo(f"{path} ({len(page) / 1e6:.1f} MB, {seconds:.1f} s)", err=True)

    if along is not None and not landscape:
        raise ConfigError("goes with --landscape", "--along")
    path = write_view(paths, output, watch=watch, on_write=written,
                      along=(along or "random") if landscape else None)
    typer.echo(str(path))
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command(cls=Command)
def inspect(
    config: ConfigArg,
    overrides: OverridesArg = None,
    initializers: InitializersOpt = None,
    csv: CsvOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="FILE",
        help="A picture: activation and gradient std against depth, or with --histograms the "
             "histograms (default histograms.png).")] = None,
    histograms: Annotated[bool, typer.Option(
        "--histograms", help="Draw each layer's activations at init: a row per initializer.")
    ] = False,
    as_json: JsonOpt = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The init check: one forward and backward pass at initialization, per layer and initializer."""
    from .config import load_config
    from .inspection import (INSPECT_COLUMNS, INSPECT_SECONDARY, check_specs, init_activations,
                             inspect_init)
    from .output import print_table

    cfg = load_config(config, overrides or [], plugin_paths(plugin))
    specs = check_specs(split_names(initializers))
    layers = init_activations(cfg, specs) if histograms else None  # refused before any output
    rows = inspect_init(cfg, specs)
    print_table(rows, INSPECT_COLUMNS, as_json=as_json, csv_file=csv,
                drop_first=INSPECT_SECONDARY)
    from . import plots

    if histograms:
        written = plots.plot_histograms(layers, output or Path("histograms.png"))
        typer.echo(str(written), err=True)
    elif output:
        typer.echo(str(plots.plot_inspect(rows, output)), err=True)


# plot --landscape's options (landscape.py)
LandscapeOpt = Annotated[bool, typer.Option("--landscape", help=(
    "The training loss E(W) around the run's trained parameters (Li et al. 2018), one panel "
    "per variant."))]
LineOpt = Annotated[bool, typer.Option("--line", help=(
    "--landscape: E((1-a) W0 + a W_final) from the initial to the trained parameters, "
    "a in [-0.5, 1.5]."))]
SpanOpt = Annotated[Optional[float], typer.Option("--span", show_default=False, help=(
    "--landscape: the plane's half-width (random: in filter norms; path: in the path's "
    "reach). Default 1.0."))]
ResolutionOpt = Annotated[Optional[int], typer.Option("--resolution", metavar="N",
    show_default=False, help="--landscape: grid points a side, odd (default 41).")]
AlongOpt = Annotated[Optional[str], typer.Option("--along", metavar="random|path",
    show_default=False, help=("--landscape: two filter-normalized random directions, or the "
    "path's two principal components with the path drawn (default random)."))]
TogetherOpt = Annotated[bool, typer.Option("--together", help=(
    "--landscape --along path: one surface with every run's path (runs of one network on one "
    "training split, e.g. a compare over optimizer.lr), centred on the lowest final loss."))]


@app.command(cls=Command)
def plot(
    paths: Annotated[Optional[list[Path]], typer.Argument(metavar="PATH", show_default=False, help=(
        "Run folders, or folders holding them (compare folders, runs/)."))] = None,
    output: Annotated[Path, typer.Option(
        "-o", "--output", metavar="FILE", help="The PNG to write.")] = Path("plot.png"),
    metric: Annotated[str, typer.Option("--metric", metavar="COLUMN", help=(
        "A metrics.csv or layers.csv column (e.g. dead_fraction)."))] = "loss",
    x: Annotated[str, typer.Option("--x", metavar="epoch|evaluations", help=(
        "Draw the curves against epochs, or against the loss evaluations spent (a forward "
        "pass over a batch 1, a backward pass 1 more)."))] = "epoch",
    activations: Annotated[bool, typer.Option(
        "--activations", help="Plot every activation and its derivative instead.")] = False,
    boundary: Annotated[bool, typer.Option(
        "--boundary", help="Decision regions over the 2-D input plane, with the data.")] = False,
    fit: Annotated[bool, typer.Option(
        "--fit", help="A 1-input regression's function over its data.")] = False,
    neurons: Annotated[bool, typer.Option(
        "--neurons", help="Each hidden unit's activation over the 2-D input plane.")] = False,
    layer: Annotated[int, typer.Option(
        "--layer", metavar="K", help="--neurons: the hidden layer (1 = first).")] = 1,
    at: Annotated[Optional[str], typer.Option("--at", metavar="EPOCHS", show_default=False, help=(
        "Epochs to draw, nearest snapshot each: 0,10,100,last. Default: first,last for "
        "one run, last for several."))] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", show_default=False, help="Of runs differing in seed, draw this one's.")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", metavar="N", min=2, help=(
        "-o NAME.gif: at most N frames over the snapshots, first and last in (default 60)."))] = None,
    landscape: LandscapeOpt = False,
    line: LineOpt = False,
    span: SpanOpt = None,
    resolution: ResolutionOpt = None,
    along: AlongOpt = None,
    together: TogetherOpt = False,
    plugin: RunPluginOpt = None,
    plugin_changed_ok: ChangedOkOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Curves of runs (mean and min-max band over seeds); one run also gets a gradient heat map.

    --boundary, --fit and --neurons draw what a run's network computes, from its parameter
    snapshots: one panel per --at epoch, one row per variant; -o NAME.gif animates instead.
    """
    from . import plots
    from .registry import ConfigError
    from .runs import find_runs

    kinds = [k for k, on in (("boundary", boundary), ("fit", fit), ("neurons", neurons),
                             ("landscape", landscape)) if on]
    check_picture_options(kinds, activations, at, seed, layer, frames, x)
    surface = landscape_options(landscape, line, span, resolution, along, at, frames, output, together)
    if activations:
        written = plots.plot_activations(output)
    elif not paths:
        raise ConfigError("give run folders to plot, or --activations", "plot")
    elif kinds:
        written = draw_picture(kinds[0], find_runs(paths), output, plugin or [],
                               plugin_changed_ok, at, seed, layer, frames, surface)
    else:
        written = plots.plot_runs(find_runs(paths), output, metric, x)
    typer.echo(str(written))


@app.command(cls=Command)
def gradcheck(
    config: ConfigArg,
    overrides: OverridesArg = None,
    samples: Annotated[int, typer.Option(
        "--samples", metavar="N", min=1, help="Rows of the data to use.")] = 8,
    entries: Annotated[int, typer.Option(
        "--entries", metavar="N", min=0, help="Entries checked per parameter, at random; 0: all.")
    ] = 50,
    as_json: JsonOpt = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check the config's backward pass against central differences (float64); exit 1 above 1e-5.

    A layer whose gradient is too small for central differences to resolve (a
    vanishing gradient) is reported as such and does not fail the check.
    """
    from .config import load_config
    from .gradcheck import TOLERANCE, check_config
    from .output import print_table

    cfg = load_config(config, overrides or [], plugin_paths(plugin))
    rows = check_config(cfg, n_samples=samples, entries=entries or None)
    print_table(rows, ["layer", "max_relative_error", "ok"], as_json=as_json)
    if any(row["ok"] == "NO" for row in rows):
        typer.echo(f"gradcheck failed: relative error above {TOLERANCE:g}", err=True)
        raise typer.Exit(1)


RunArg = Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.", show_default=False)]


@app.command(cls=Command)
def predict(
    run: RunArg,
    data: Annotated[Path, typer.Argument(
        metavar="INPUT", help="A CSV with a header (features by name) or an npz with X.",
        show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="FILE", help="Write the CSV here (default: stdout).")] = None,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing",
        help="Leave the predictions of rows with a missing or infinite feature blank "
             "(default: refuse the file, naming the rows).")] = False,
    plugin: RunPluginOpt = None,
    plugin_changed_ok: ChangedOkOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Predict with a trained run: INPUT's columns plus prediction (and p_<label> per class)."""
    from .model import check_output, load_run, predict_table, write_table

    check_output(output, data)
    model = load_run(run, plugins=plugin or [], plugin_changed_ok=plugin_changed_ok)
    table = predict_table(model, data, allow_missing=allow_missing)
    write_table(table, output)


@app.command(cls=Command)
def evaluate(
    run: RunArg,
    data: Annotated[Optional[Path], typer.Argument(
        metavar="[INPUT]", show_default=False,
        help="A CSV or npz with features and targets (default: the run's test split, else its "
             "validation split).")] = None,
    as_json: JsonOpt = False,
    plugin: RunPluginOpt = None,
    plugin_changed_ok: ChangedOkOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Loss and accuracy (or MAE) of a trained run; per-class precision, recall, confusion."""
    from .model import evaluate_run, load_run
    from .output import print_evaluation

    model = load_run(run, plugins=plugin or [], plugin_changed_ok=plugin_changed_ok)
    print_evaluation(evaluate_run(model, data), as_json=as_json)


@app.command(cls=Command)
def resume(
    run: RunArg,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        metavar="KEY=VALUE", show_default=False,
        help="train.epochs=N to go further; train.early_stopping=... to change it.")] = None,
    quiet: QuietOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    plugin: RunPluginOpt = None,
    plugin_changed_ok: ChangedOkOpt = False,
    break_lock: Annotated[bool, typer.Option(
        "--break-lock", help="Take over the run folder's lock even if its writer may be alive "
                             "(another machine's, say).")] = False,
    debug: DebugOpt = False,
) -> None:
    """Go on training a killed, interrupted or finished run in its own folder, from its checkpoint."""
    from .output import EpochProgress, print_run
    from .resume import resume as resume_run

    progress = EpochProgress(run.name) if interactive() and not (quiet or as_json) else None
    result = resume_run(run, overrides or [], progress=progress, plugins=plugin or [],
                        plugin_changed_ok=plugin_changed_ok, break_lock=break_lock)
    summary = result.summary
    if summary["status"] == "early_stopped" and summary["epochs"] == summary["resumed_from"]:
        typer.echo(f"early stopping had already stopped this run: no {summary['monitor']} "
                   "improvement within its patience; raise train.early_stopping.patience or set "
                   "train.early_stopping=null to train on", err=True)
    print_run(summary, as_json=as_json, quiet=quiet)


@app.command(cls=Command)
def explain(
    config: ConfigArg,
    overrides: OverridesArg = None,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", metavar="N", min=1,
        help="The first N training rows (default: the whole batch, at most 4).")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Print every matrix whole and check every gradient entry.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print every array as nested lists (JSON).")] = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Walk one training step of CONFIG's network: initialize, forward, error, back-propagation
    (checked against central differences) and update, in the notes' notation (float64)."""
    from .config import load_config
    from .explain import explain_step, print_step

    cfg = load_config(config, overrides or [], plugin_paths(plugin))
    print_step(explain_step(cfg, samples, full=full), full=full, as_json=as_json)


@app.command("lr-find", cls=Command)
def lr_find(
    config: ConfigArg,
    overrides: OverridesArg = None,
    start: Annotated[float, typer.Option("--start", metavar="LR", help="The first lr.")] = 1e-7,
    end: Annotated[float, typer.Option("--end", metavar="LR", help="The last lr.")] = 10.0,
    steps: Annotated[int, typer.Option(
        "--steps", metavar="N", help="Mini-batch steps from --start to --end.")] = 100,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="FILE", help="Draw the curve and the suggestions here.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help=(
        "Also write a folder (new or empty): lr_find.csv, lr_find.json, config.yaml, "
        "lr_find.png."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print lr, loss, smoothed, suggestions and stopped_at as JSON."))] = False,
    plugin: PluginOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The learning-rate range test: from CONFIG's initialization, one mini-batch step per lr,
    lr growing exponentially from --start to --end; suggests rates (heuristics). Keeps no
    parameters and writes no run folder."""
    from .config import load_config
    from .lrfind import check_range, draw, range_test, summary_lines, write_folder
    from .plots import picture_path
    from .runs import check_out_dir, to_json

    check_range(start, end, steps)  # every option checked before the test runs
    picture = picture_path(output) if output is not None else None
    if out is not None:
        check_out_dir(out)
    cfg = load_config(config, overrides or [], plugin_paths(plugin))
    result = range_test(cfg, start, end, steps)
    if out is not None:
        typer.echo(str(write_folder(result, {"start": start, "end": end, "steps": steps}, out)),
                   err=True)
    if picture is not None:
        typer.echo(str(draw(result, picture, result.config.get("name") or "")), err=True)
    typer.echo(to_json(result.as_dict()) if as_json else "\n".join(summary_lines(result, steps)))


# -- helpers -------------------------------------------------------------------------------


def check_picture_options(kinds: list[str], activations: bool, at, seed, layer: int,
                          frames, x: str = "epoch") -> None:
    """plot's picture options: one picture at a time, and no option it would ignore."""
    from .registry import ConfigError

    if x != "epoch" and (kinds or activations):
        raise ConfigError("goes with curves (--metric), not pictures", "--x")
    if len(kinds) + activations > 1:
        raise ConfigError("draws one picture at a time: give one of --boundary, --fit, "
                          "--neurons, --landscape, --activations", "plot")
    if not kinds and (at is not None or seed is not None or layer != 1 or frames is not None):
        raise ConfigError("--at, --seed, --layer and --frames go with --boundary, --fit or "
                          "--neurons", "plot")
    if layer != 1 and kinds != ["neurons"]:
        raise ConfigError("--layer picks the hidden layer of --neurons; --boundary and --fit "
                          "draw the whole network", "--layer")


def landscape_options(landscape: bool, line: bool, span, resolution, along, at, frames, output,
                      together: bool = False):
    """plot --landscape's options, checked (landscape.options); None when none is given."""
    if not (landscape or line or span is not None or resolution is not None
            or along is not None or together):
        return None
    from .landscape import options

    return options(landscape, line, span, resolution, along, at, frames, output, together)


def draw_picture(kind: str, runs: list[Path], output: Path, plugin: list[Path],
                 plugin_changed_ok: bool, at, seed, layer: int, frames, surface) -> Path:
    """plot's pictures of what runs compute: --boundary, --fit, --neurons (pictures.py) and
    --landscape (landscape.py, with its checked options ``surface``)."""
    from .model import use_run_plugins
    from .output import Bar

    use_run_plugins(runs, plugin, plugin_changed_ok)
    if kind == "landscape":
        from .landscape import draw

        return draw(runs, output, surface, seed, interactive() and Bar)
    from . import pictures

    return pictures.draw(kind, runs, output, at, seed, layer, frames, interactive() and Bar)


def split_names(text: Optional[str]) -> Optional[list]:
    """'a,b' -> ['a', 'b'] (each parsed as YAML, so {name: x, gain: 2} works too)."""
    if text is None:
        return None
    from .config import safe_load, split_top_level

    return [safe_load(part) for part in split_top_level(text) if part.strip()]


def split_list(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def registries_by_kind() -> dict:
    from .activations import ACTIVATIONS
    from .datasets import DATASETS
    from .initializers import INITIALIZERS
    from .losses import LOSSES
    from .optimizers import OPTIMIZERS, SCHEDULES

    return dict(zip(KINDS, (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, SCHEDULES, DATASETS)))


def main() -> None:
    try:
        app()
    finally:  # the interpreter's exit then skips its collections (docs/performance.md)
        gc.freeze()
