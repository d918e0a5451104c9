"""Experiment configs: YAML loaded safely, Hydra-style overrides, validated into frozen dataclasses.

Every mistake is a ConfigError naming the dotted key, the bad value and what
is allowed, raised before any data is read or any folder is made.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import math
import os
import re
import traceback
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .losses import LOSSES
from .components import check_pair, check_sizes, prepare_layers
from .optimizers import OPTIMIZERS, SCHEDULES
from .yamlsafe import safe_load
from .registry import (QUOTE_LIMIT, ConfigError, check_type, closest, describe, same_name, shorten,
                       type_hints)


@dataclass(frozen=True)
class DataConfig:
    name: str = "xor"  # a dataset of `nntrain list datasets`
    seed: int = 0  # drives generation and the train/validation split
    val_fraction: float = 0.0  # share held out for validation, stratified by class
    test_fraction: float = 0.0  # share held out for a final test, never seen by training
    standardize: bool = False  # zero mean, unit std per feature (fitted on the training part)
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    params: dict = field(default_factory=dict)  # the dataset's own: n_samples, noise, path, ...


@dataclass(frozen=True)
class ModelConfig:
    layers: tuple | None = None  # [input, hidden..., output] sizes; required
    activation: Any = "tanh"  # one name/mapping, or a list with one per hidden layer
    output_activation: Any = None  # None: from the task (sigmoid, softmax or identity)
    initializer: Any = "xavier_uniform"  # one, or a list with one per weight layer
    bias_initializer: Any = None  # None: the initializer's own (zeros except for presets)


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "gd"
    lr: float | None = None  # None: the optimizer's default (gd 0.01, adam 0.001)
    batch_size: int | None = None  # None: full batch, as in the notes
    schedule: Any = "constant"
    params: dict = field(default_factory=dict)  # the optimizer's own: beta, weight_decay, ...


@dataclass(frozen=True)
class EarlyStopping:
    patience: int = 50  # epochs without improvement before stopping
    min_delta: float = 0.0  # smaller improvements do not count
    restore_best: bool = True  # end with the best epoch's parameters


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    early_stopping: EarlyStopping | None = None
    diagnostics_every: int = 10  # epochs between layers.csv rows; 0 turns them off
    dtype: Literal["float64", "float32"] = "float64"
    threads: int | Literal["auto"] = "auto"  # BLAS threads of this run; auto: from the problem size
    checkpoint_every: int | Literal["auto"] = "auto"  # epochs between checkpoints; auto: ~every 2 s
    snapshot_every: int | Literal["auto"] = "auto"  # parameter snapshots for pictures; auto: ~50


@dataclass(frozen=True)
class Config:
    name: str | None = None  # default: the config file's stem
    seed: int = 0  # drives weight init and batch order
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Any = None  # None: from the task (bce, cross_entropy or mse)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    plugins: tuple = ()  # Python files that register more components

    def to_dict(self) -> dict:
        """The config as plain YAML-able data (params merged back into their sections)."""
        return _plain(self)

    def hash(self) -> str:
        """A short fingerprint of everything that affects the numbers."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            if f.name == "params":
                out.update(_plain(getattr(value, f.name)))
            else:
                out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- reading ---------------------------------------------------------------------------------



MAX_CONFIG_CHARS = 1 << 20


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from a file, loaded with safe_load (no Python tags are ever executed)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("no such file", str(path))
    if path.is_dir():
        raise ConfigError("is a directory, not a config file", str(path))
    try:
        with open(path, encoding="utf-8") as f:  # not read_text: /dev/zero never ends
            text = f.read(MAX_CONFIG_CHARS + 1)
        if len(text) > MAX_CONFIG_CHARS:
            raise ConfigError(f"is over {MAX_CONFIG_CHARS} characters long; a config is a few "
                              "hundred", str(path))
        raw = safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(f"{where}{problem}", str(path)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"invalid YAML ({shorten(' '.join(str(err).split()))})",
                          str(path)) from None
    if raw is None:
        raise ConfigError("is empty", str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"must be a mapping of keys, got a {type(raw).__name__}", str(path))
    return raw


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                plugins: typing.Sequence[str] = (), raw: dict | None = None) -> Config:
    """Read a YAML config (or take ``raw``), apply ``key=value`` overrides, validate.

    Plugins named in the config (paths relative to the config file) and in
    ``plugins`` (paths relative to the current directory) are imported first,
    so their components can be named.
    """
    raw = copy.deepcopy(raw) if raw is not None else read_yaml(path)
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    apply_overrides(raw, overrides, base)
    if path is not None and raw.get("name") is None:
        raw["name"] = default_name(path)
    yaml_plugins = raw.get("plugins") or []
    if not isinstance(yaml_plugins, list) or not all(isinstance(p, str) for p in yaml_plugins):
        raise ConfigError(f"must be a list of Python files, got {describe(yaml_plugins)}", "plugins")
    resolved = [str(base / p) for p in yaml_plugins] + [str(Path(p).resolve()) for p in plugins]
    for plugin in resolved:
        load_plugin(plugin)
    raw["plugins"] = resolved
    cfg = parse(Config, raw, "")
    with plugin_failures("the config was checked"):
        check(cfg)
    return cfg


@contextlib.contextmanager
def plugin_failures(doing: str):
    """An exception raised in a plugin's code (SystemExit included) while ``doing``: a
    ConfigError naming the plugin file (exit 2), not a crash of nntrain's."""
    try:
        yield
    except ConfigError:
        raise
    except (Exception, SystemExit) as err:
        plugin = plugin_of(err)
        if plugin is None:
            raise
        raise ConfigError(f"{what_happened(err)} while {doing}", f"plugins: {plugin}") from None


_LOADED_PLUGINS: set[str] = set()


def load_plugin(path: str) -> None:
    """Import a user's Python file (once per process); its decorators register components."""
    if path in _LOADED_PLUGINS:
        return
    if not Path(path).is_file():
        raise ConfigError("no such Python file", f"plugins: {path}")
    spec = importlib.util.spec_from_file_location(f"nntrain_plugin_{len(_LOADED_PLUGINS)}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except ConfigError as err:
        raise ConfigError(str(err), f"plugins: {path}") from None
    except BaseException as err:  # a user's file, SystemExit included: report, never exit 0
        raise ConfigError(f"failed to import: {what_happened(err)}", f"plugins: {path}") from None
    _LOADED_PLUGINS.add(path)


def default_name(path: str | Path) -> str:
    """A config's name when it gives none: its file's stem as a folder name ('my xor.yaml' ->
    'my_xor'), since the run's folder is named after it."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip("_.-")
    return name[:MAX_NAME_BYTES] or "run"


def plugin_hash(path: str | Path) -> str:
    """A plugin file's SHA-256: a run records it, and a --plugin given to use the run later is
    checked against it."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def what_happened(err: BaseException) -> str:
    """'RuntimeError: oops' or 'SystemExit(0)' on one line, the message cut to 160 characters."""
    if isinstance(err, SystemExit):
        return f"SystemExit({describe(err.code)})"
    message = shorten(" ".join(str(err).split()), 2 * QUOTE_LIMIT)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def plugin_of(err: BaseException) -> str | None:
    """The loaded plugin file ``err`` was raised in (the innermost one), if any."""
    frames = traceback.extract_tb(err.__traceback__)
    return next((f.filename for f in reversed(frames) if f.filename in _LOADED_PLUGINS), None)


def failure(err: BaseException) -> str:
    """One line for an unexpected failure, naming the plugin file it was raised in, if any."""
    plugin = plugin_of(err)
    return what_happened(err) + (f" in plugin {plugin}" if plugin else "")


# Keys an earlier version had: a config that still names one gets told why it no longer works.
REMOVED = {
    "train.shards": "was removed in 0.2: a run is one process, and runs, not batches, are spread "
                    "over cores (nntrain compare, shell sweeps, Dask); delete the key",
}


def parse(cls: type, raw: Any, key: str) -> Any:
    """A dataclass from a mapping: unknown keys and wrong types are ConfigErrors."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a mapping, got {describe(raw)}", key or None)
    for name in raw:
        dotted = f"{key}.{name}" if key else str(name)
        if dotted in REMOVED:
            raise ConfigError(REMOVED[dotted], dotted)
    hints = type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "params"]
    takes_params = "params" in hints
    values, params = {}, {}
    for name, value in raw.items():
        dotted = f"{key}.{name}" if key else str(name)
        if name in names:
            values[name] = convert(value, hints[name], dotted)
        elif takes_params:
            params[name] = value  # checked against the component's signature in check()
        else:
            raise ConfigError(f"unknown key{dotted_hint(name, key)} known: {', '.join(names)}",
                              dotted)
    if takes_params:
        values["params"] = params
    return cls(**values)


def convert(value: Any, hint: Any, key: str) -> Any:
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    nested = [o for o in options if dataclasses.is_dataclass(o)]
    if nested:
        if value is None and type(None) in options:
            return None
        if isinstance(value, str) and "name" in type_hints(nested[0]):
            value = {"name": value}  # optimizer: adam, like any other component
        return parse(nested[0], {} if value is None else value, key)
    if tuple in options or typing.get_origin(hint) is tuple:
        if value is None and type(None) in options:
            return None
        if not isinstance(value, list):
            raise ConfigError(f"must be a list, got {describe(value)}", key)
        return tuple(value)
    return check_type(value, hint, key)


def check_gradient_free(opt: OptimizerConfig) -> None:
    """random_local and random_search read no gradient: an lr, or a schedule of it, would be
    silently ignored, so either is refused."""
    if not OPTIMIZERS.get(opt.name).gradient_free:
        return
    size = " (its step size is optimizer.step)" if opt.name == "random_local" else ""
    if opt.lr is not None:
        raise ConfigError(f"{opt.name} takes no lr: it follows no gradient{size}; remove "
                          "it (~optimizer.lr on the command line)", "optimizer.lr")
    if SCHEDULES.split(opt.schedule)[0] != "constant":
        raise ConfigError(f"{opt.name} has no lr to schedule; remove optimizer.schedule",
                          "optimizer.schedule")


def untaken_optimizer_keys(optimizer: Any) -> list[str]:
    """The keys of a raw ``optimizer`` section its optimizer does not take: another
    optimizer's parameters (gd's step, adam's beta1), and a gradient-free one's lr and
    schedule (a constant schedule is harmless). compare drops them from an optimizer axis's
    points; [] for a name not registered (load_config names that mistake)."""
    if not isinstance(optimizer, Mapping) or optimizer.get("name", "gd") not in OPTIMIZERS:
        return []
    name = optimizer.get("name", "gd")
    taken = {f.name for f in dataclasses.fields(OptimizerConfig)} - {"params"}
    taken.update(OPTIMIZERS.parameters(name))
    untaken = [key for key in optimizer if key not in taken]
    if OPTIMIZERS.get(name).gradient_free:
        schedule = optimizer.get("schedule", "constant")
        constant = schedule == "constant" or (isinstance(schedule, Mapping)
                                              and schedule.get("name") == "constant")
        untaken += [key for key in optimizer if key == "lr" or (key == "schedule" and not constant)]
    return untaken


MAX_NAME_BYTES = 255  # NAME_MAX of ext4, XFS, APFS and NTFS: the run's folder is named after it


def check(cfg: Config) -> None:
    """Ranges and component names, before anything is read or written."""
    data, model, opt, train = cfg.data, cfg.model, cfg.optimizer, cfg.train
    if cfg.name is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", cfg.name):
        raise ConfigError(f"must be a folder name of letters, digits, '_', '-' and '.', got "
                          f"{describe(cfg.name)}", "name")
    if cfg.name is not None and len(cfg.name.encode()) > MAX_NAME_BYTES:
        raise ConfigError(f"is {len(cfg.name.encode())} bytes long; a folder name can have at most "
                          f"{MAX_NAME_BYTES} (got {describe(cfg.name)})", "name")
    if not 0 <= data.val_fraction < 1:
        raise ConfigError(f"must be in [0, 1), got {data.val_fraction}", "data.val_fraction")
    if not 0 <= data.test_fraction < 1 or data.val_fraction + data.test_fraction >= 1:
        raise ConfigError(f"must be in [0, 1) with val_fraction + test_fraction < 1, got "
                          f"{data.test_fraction}", "data.test_fraction")
    from .datasets import DATASETS  # when a config is checked, not when config.py is imported

    DATASETS.prepare({"name": data.name, **data.params}, "data", rng=None,
                     config_key=lambda param: nearest_key(param, "data"))
    if model.layers is None:
        raise ConfigError("is required: the sizes [input, hidden..., output], e.g. [2, 4, 1]",
                          "model.layers")
    sizes = check_sizes(list(model.layers))
    prepare_layers(sizes, model.activation, model.output_activation, model.initializer,
                   model.bias_initializer)
    if cfg.loss is not None:
        loss, _ = LOSSES.prepare(cfg.loss, "loss")
        if model.output_activation is not None:
            check_pair(_name(model.output_activation), loss)
    if opt.lr is not None and opt.lr <= 0:
        raise ConfigError(f"must be > 0, got {opt.lr}", "optimizer.lr")
    if opt.batch_size is not None and opt.batch_size < 1:
        raise ConfigError(f"must be >= 1 or null (full batch), got {opt.batch_size}",
                          "optimizer.batch_size")
    OPTIMIZERS.prepare({"name": opt.name, **opt.params}, "optimizer",
                       config_key=lambda param: nearest_key(param, "optimizer"))
    SCHEDULES.prepare(opt.schedule, "optimizer.schedule")
    check_gradient_free(opt)
    if train.epochs < 1:
        raise ConfigError(f"must be >= 1, got {train.epochs}", "train.epochs")
    if train.diagnostics_every < 0:
        raise ConfigError(f"must be >= 0 (0 turns diagnostics off), got {train.diagnostics_every}",
                          "train.diagnostics_every")
    if train.threads != "auto" and (isinstance(train.threads, bool)
                                    or not isinstance(train.threads, int) or train.threads < 1):
        raise ConfigError(f"must be auto or an integer >= 1, got {describe(train.threads)}",
                          "train.threads")
    for key, what in (("checkpoint_every", "checkpoints"), ("snapshot_every", "snapshots")):
        every = getattr(train, key)
        if every != "auto" and (isinstance(every, bool) or not isinstance(every, int)
                                or every < 0):
            raise ConfigError(f"must be auto or an integer >= 0 (0 turns {what} off), got "
                              f"{describe(every)}", f"train.{key}")
    stop = train.early_stopping
    if stop is not None and (stop.patience < 1 or stop.min_delta < 0):
        raise ConfigError(f"needs patience >= 1 and min_delta >= 0, got {stop}",
                          "train.early_stopping")
    if cfg.seed < 0 or data.seed < 0:
        raise ConfigError("seeds must be >= 0", "seed" if cfg.seed < 0 else "data.seed")


def _name(spec: Any) -> str:
    return spec["name"] if isinstance(spec, Mapping) else spec


# -- overrides (Hydra's grammar, by hydra-core) ----------------------------------------------------


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets, braces and quotes: '0.1,[1,2]' -> ['0.1', '[1,2]']."""
    parts, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


class Override(typing.NamedTuple):
    prefix: str  # '' sets, '+' adds, '++' adds or sets, '~' deletes
    key: str  # dotted
    values: list  # one value; several for a sweep (a,b / range() / choice()); none for '~'
    sweep: bool = False  # a comma list, range() or choice(): an axis of `nntrain compare`


HYDRA_PREFIX = {"CHANGE": "", "ADD": "+", "FORCE_ADD": "++", "DEL": "~"}


def parse_override(text: str) -> Override:
    """'+a.b=1,2' -> Override('+', 'a.b', [1, 2], sweep=True), parsed by Hydra's own grammar.

    hydra-core is imported here only, so commands without overrides do not pay for it. Values
    follow Hydra's rules: 1e-3 and 0.1 are numbers, null is None, [..] and {k: v} are lists and
    mappings, quotes make strings; a,b / range(0,5) / choice(a,b) are sweeps.
    """
    if "=" not in text and not text.startswith("~"):
        raise ConfigError(f"expected KEY=VALUE (or +KEY=VALUE, ~KEY), got {text!r}", "override")
    simple = plain_override(text)
    if simple is not None:
        return simple
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(text)
    except (HydraException, ValueError) as err:  # ValueError: an int of over 4300 digits
        message = str(err).splitlines()[-1].strip() or str(err)
        key = text.split("=", 1)[0].lstrip("+~").strip() or "override"
        raise ConfigError(f"cannot parse the value of {text!r} (Hydra's override grammar): "
                          f"{message}", key) from None
    prefix, key = HYDRA_PREFIX[parsed.type.name], parsed.key_or_group
    check_duplicate_keys(text.split("=", 1)[-1], key)
    if parsed.package is not None:
        raise ConfigError(f"packages (@) are not supported, got {text!r}", key)
    if prefix == "~":
        return Override(prefix, key, [])
    if parsed.is_sweep_override():
        sweep_size(parsed, key)  # counted before it is expanded: range(0,10**12) is no list
        values = list(itertools.islice(parsed.sweep_iterator(), MAX_GRID + 1))
        check_grid_size(len(values), key, "the sweep has")  # a float range's last step, rounded
        return Override(prefix, key, values, sweep=True)
    return Override(prefix, key, [parsed.value()])


# -- the plain override, without hydra-core: Hydra's lexer tokens for one plain value ----------
# Importing hydra-core and building its ANTLR parser costs about 0.15 s, three times the training
# of configs/xor.yaml. Most overrides are `key=value` with one plain value, which Hydra's grammar
# (hydra/grammar/OverrideLexer.g4) reads as follows: a value of only letters, digits and `_+-./`
# always lexes, and its tokens are concatenated back into the same text, a string, unless the
# whole value is one token (the lexer's longest match; on a tie the rule listed first), which
# is then a number, a bool, null or a string, in the lexer's order below. Anything else (quotes,
# spaces, brackets, commas, `$`, `:`, `\`, `@`, `~`, an empty value) is left to hydra-core.
# tests/test_startup.py checks this against hydra-core's parser on thousands of inputs.
_DIGITS = r"[0-9](?:_?[0-9])*"
_INT = r"(?:0|[1-9](?:_?[0-9])*)"  # INT_UNSIGNED: no leading zeros, '_' between digits
_POINT = rf"(?:{_INT}\.|{_INT}?\.{_DIGITS})"
_FLOAT = rf"[+-]?(?:{_POINT}|(?:{_INT}|{_POINT})[eE][+-]?{_DIGITS}|[Ii][Nn][Ff]|[Nn][Aa][Nn])"
_PLAIN_TOKENS = (  # (token, how Hydra's visitor turns it into a value), in the lexer's order
    (re.compile(_FLOAT), float),
    (re.compile(rf"[+-]?{_INT}"), int),
    (re.compile(r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"), lambda text: text.lower() == "true"),
    (re.compile(r"[Nn][Uu][Ll][Ll]"), lambda text: None),
    (re.compile(r"[A-Za-z_][A-Za-z0-9_-]*"), str),
)
_PLAIN_OVERRIDE = re.compile(r"(\+{0,2})([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
                             r"=([A-Za-z0-9_+./-]{1,100})")


def plain_override(text: str) -> Override | None:
    """``key=value`` with one plain value, parsed as Hydra's grammar parses it, without
    hydra-core; None when the override needs Hydra's parser (see the note above)."""
    match = _PLAIN_OVERRIDE.fullmatch(text)
    if match is None:
        return None
    prefix, key, value = match.groups()
    for token, convert in _PLAIN_TOKENS:
        if token.fullmatch(value):
            return Override(prefix, key, [convert(value)])
    return Override(prefix, key, [value])  # several tokens: their text, a string


MAX_GRID = 10_000  # values of one sweep, and runs of one compare (docs/configuration.md)


def check_grid_size(count: int, key: str, what: str) -> None:
    """A sweep or a compare grid of more than MAX_GRID points is refused before it is built."""
    if count > MAX_GRID:
        amount = count if count < 10**15 else f"about 10^{int(math.log10(count))}"
        raise ConfigError(f"{what} {amount} grid points, more than the limit of {MAX_GRID}; "
                          "split it into smaller sweeps", key)


def sweep_size(parsed: Any, key: str) -> int:
    """How many values a parsed Hydra sweep holds, counted from its parts without expanding it
    (Hydra's sweep_iterator would build range(0,10**12) whole). Over MAX_GRID is refused."""
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep

    sweep = parsed.value()
    if parsed.is_interval_sweep():
        raise ConfigError("interval() is a continuous range; give the values "
                          "(a,b,c), range() or choice()", key)
    if isinstance(sweep, ChoiceSweep):  # a,b,c / choice(a,b,c): written out, so finite
        count = len(sweep.list)
    elif isinstance(sweep, RangeSweep):
        count = range_size(sweep.start, sweep.stop, sweep.step, key)
    else:
        raise ConfigError("glob() picks Hydra config groups, which nntrain has none of; give the "
                          "values (a,b,c), range() or choice()", key)
    check_grid_size(count, key, "the sweep has")
    return count


def range_size(start: float, stop: float, step: float, key: str) -> int:
    """len(range(start, stop, step)) by arithmetic, for ints and for Hydra's float ranges alike:
    ceil((stop - start) / step), computed exactly with fractions. An empty range is refused."""
    if any(isinstance(x, float) and not math.isfinite(x) for x in (start, stop, step)):
        raise ConfigError(f"range() needs finite numbers, got range({start}, {stop}, {step})", key)
    if step == 0:
        raise ConfigError("range() needs a step other than 0", key)
    import fractions  # only a range sweep needs it: nntrain --help does not load it

    span = (fractions.Fraction(stop) - fractions.Fraction(start)) / fractions.Fraction(step)
    if span <= 0:  # compare would have an axis without a value
        raise ConfigError(f"range({start}, {stop}, {step}) holds no values; a range counts "
                          "down only with a negative step", key)
    return math.ceil(span)


def check_duplicate_keys(value: str, key: str) -> None:
    """A mapping written twice with the same key ({lr: 1, lr: 2}) is refused, as in a config
    file; Hydra's parser would keep the last silently. Read as YAML flow (with `k:v` spaced)."""
    if "{" not in value:
        return
    try:
        safe_load(re.sub(r"(?<=[\w'\"]):(?=[^\s/])", ": ", value))
    except yaml.YAMLError as err:
        if "duplicate key" in str(err):
            raise ConfigError(str(getattr(err, "problem", "") or err).splitlines()[0], key) from None


def apply_overrides(raw: dict, overrides: typing.Sequence[str], base: Path) -> None:
    """Overrides applied to the raw config in place; ``data.path`` made absolute: the file's
    relative to ``base`` (the config file's folder), an override's relative to the current one."""
    resolve_data_path(raw, base)
    for override in overrides:
        apply_override(raw, override, sweep_hint=True)
    resolve_data_path(raw, Path.cwd())


def resolve_data_path(raw: dict, base: Path) -> None:
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and data["path"]:
        path = Path(data["path"]).expanduser()
        data["path"] = str(path if path.is_absolute() else Path(os.path.normpath(base / path)))


def schema_keys(cls: Any = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the config schema, sections included, in the order they are declared."""
    keys = []
    for name, hint in type_hints(cls).items():
        if name == "params":  # a component's own parameters: written beside the section's keys
            continue
        keys.append(prefix + name)
        nested = [o for o in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(o)]
        if nested:
            keys += schema_keys(nested[0], f"{prefix}{name}.")
    return keys


def nearest_key(name: str, section: str = "", params: typing.Iterable[str] = ()) -> str | None:
    """The known dotted key that ``name``, unknown in ``section`` ('' is the top), most likely means.

    Same meaning before same spelling, and this section before the others: another tool's name
    (learning_rate -> optimizer.lr, random_state -> seed, epochs at the top -> train.epochs),
    then a close typo (lerning_rate -> optimizer.lr, activaton -> model.activation). ``params``,
    the section's component's parameters, are known keys of the section too. None: nothing near.
    """
    prefix = f"{section}." if section else ""
    keys = schema_keys()
    here = {k[len(prefix):]: k for k in keys if k.startswith(prefix) and "." not in k[len(prefix):]}
    here.update({p: prefix + p for p in params if p not in here})
    elsewhere: dict[str, str] = {}
    for k in keys:
        elsewhere.setdefault(k.rsplit(".", 1)[-1], k)
    for match in (same_name, closest):
        for known in (here, elsewhere):
            found = name if name in known else match(name, known)
            if found is not None:
                return known[found]
    return None


def dotted_hint(name: str, section: str, params: typing.Iterable[str] = ()) -> str:
    """"; did you mean 'optimizer.lr'?" for a key nntrain knows by another name or spelling."""
    meant = nearest_key(name, section, params)
    return f"; did you mean '{meant}'?" if meant else ""


def option_key(option: str) -> str | None:
    """The config key a command-line option stands for: --epochs -> train.epochs, --lr ->
    optimizer.lr, --optimizer -> optimizer.name; None if it names none. (The CLI's hint when
    Click says 'No such option'.)"""
    meant = nearest_key(option.lstrip("-").replace("-", "_"))
    cls = _schema_class(meant.split(".")) if meant else None
    if dataclasses.is_dataclass(cls):
        return f"{meant}.name" if "name" in type_hints(cls) else None
    return meant


def component_parameters(node: Mapping, path: list[str]) -> list[str]:
    """The parameters a config may give the component a section names (data: the dataset's,
    optimizer: the update rule's); [] when the section names none, or one not registered yet
    (a plugin's, imported after the overrides are applied)."""
    from .datasets import DATASETS

    cls = _schema_class(path)
    registry = {DataConfig: DATASETS, OptimizerConfig: OPTIMIZERS}.get(cls)
    if registry is None:
        return []
    default = next(f.default for f in dataclasses.fields(cls) if f.name == "name")
    name = node.get("name", default)
    if not isinstance(name, str) or name not in registry:
        return []
    return [p for p in registry.parameters(name) if p != "rng"]  # rng: nntrain supplies it


def not_in_config(node: Mapping, path: list[str]) -> ConfigError:
    """Setting a key the config lacks: the known key it most likely means (optimizer.learning_rate
    -> optimizer.lr; data.n_sample -> data.n_samples, added with +), else how to add it."""
    key, section, last = ".".join(path), ".".join(path[:-1]), path[-1]
    params = [*component_parameters(node, path[:-1]), *map(str, node)]
    meant = None if last in params else nearest_key(last, section, params)
    if meant is None:
        return ConfigError(f"not in the config; use +{key}=... to add it", key)
    if meant.rsplit(".", 1)[-1] not in node and not _schema_has(meant.split(".")):
        return ConfigError(f"unknown key; did you mean '{meant}'? use +{meant}=... to add it", key)
    return ConfigError(f"unknown key; did you mean '{meant}'?", key)


def _schema_class(path: list[str]) -> Any:
    """The schema dataclass (or annotation) a dotted key names, or None if it names none."""
    cls: Any = Config
    for part in path:
        hints = type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if part not in hints or part == "params":
            return None
        hint = hints[part]
        nested = [o for o in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(o)]
        cls = nested[0] if nested else hint
    return cls


def _schema_has(path: list[str]) -> bool:
    """Whether a dotted key names a field of the config schema (it may be absent from the YAML)."""
    return _schema_class(path) is not None


def _closed_section(path: list[str]) -> bool:
    """A schema section with a fixed set of keys (model, train): unknown keys there are typos."""
    cls = _schema_class(path) if path else Config
    return dataclasses.is_dataclass(cls) and "params" not in type_hints(cls)


def apply_override(raw: dict, text: str, sweep_hint: bool = False, value: Any = ...) -> None:
    """Apply one override to the raw config mapping in place.

    ``value`` (when given) replaces the parsed value: compare uses it for each
    value of a sweep axis.
    """
    prefix, key, values, sweep = parse_override(text)
    if key in REMOVED and prefix != "~":
        raise ConfigError(REMOVED[key], key)
    if value is ...:
        if sweep:
            hint = "; to run several values use 'nntrain compare'" if sweep_hint else ""
            raise ConfigError(f"takes one value, got a sweep {text.split('=', 1)[1]!r}{hint}; "
                              "quote a string that holds a comma", key)
        value = values[0] if values else None
    path = key.split(".")
    node = raw
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if isinstance(child, str) and prefix in ("+", "++"):
            child = node[part] = {"name": child}  # relu -> {name: relu, <new key>: ...}
        elif child is None and _schema_has(path[: i + 1]):
            child = node[part] = {}
        elif child is None and _closed_section(path[:i]):
            fields = list(type_hints(_schema_class(path[:i]) if i else Config))
            raise ConfigError(f"unknown key{dotted_hint(part, '.'.join(path[:i]))} known: "
                              f"{', '.join(fields)}", ".".join(path[: i + 1]))
        if not isinstance(child, dict):
            raise ConfigError(f"'{'.'.join(path[:i + 1])}' is not a mapping in the config", key)
        node = child
    last = path[-1]
    present = last in node
    if prefix == "~":
        if not present:
            raise ConfigError("cannot delete: not in the config", key)
        del node[last]
    elif prefix == "+" and present:
        raise ConfigError(f"is already in the config; use {key}=... to change it", key)
    elif prefix == "" and not present and not _schema_has(path) and not _closed_section(path[:-1]):
        raise not_in_config(node, path)
    else:
        node[last] = value  # an unknown key of a closed section is reported by parse()
