"""One registry helper for every component kind: a decorator registers, lookups explain themselves.

A component is given by name (``"relu"``) or by a mapping
(``{"name": "leaky_relu", "alpha": 0.1}``); the mapping's other keys become
keyword arguments of the registered class or function.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import re
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A mistake the user can fix: bad config key, value, file or command-line argument.

    ``key`` is the dotted config key (or file) it is about; ``str(err)`` is the
    one-line message the CLI prints after ``error: ``.
    """

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        # The CLI prints one line; values in it are cut by describe(), and this is the backstop
        # for a message that quotes something uncut (a 100 000-character override).
        message = shorten(" ".join(str(message).splitlines()), 6 * QUOTE_LIMIT)
        super().__init__(f"{key}: {message}" if key else message)


# Names users write for nntrain's components and config keys: other tools' names and short names
# (he -> he_normal, the usual rule). Suggested in did-you-mean, never silent aliases (a config that
# says glorot_uniform still fails, and tells the user the name to write). A name here is offered
# only where its target is known, so one table serves component names, parameters and config keys
# (learning_rate -> lr; config.nearest_key finds the section: optimizer.lr).
OTHER_TOOLS = {
    # initializers
    "glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
    "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform",
    "glorot": "xavier_uniform", "xavier": "xavier_uniform",  # Keras' and PyTorch's usual rule
    "he": "he_normal", "kaiming": "he_normal", "msra": "he_normal", "lecun": "lecun_normal",
    "random_normal": "normal", "random_uniform": "uniform", "truncated_normal": "normal",
    "pytorch": "pytorch_default", "torch": "pytorch_default", "keras": "keras_default",
    "sklearn": "sklearn_default",
    # activations, optimizers, losses, datasets
    "linear": "identity", "swish": "silu", "logistic": "sigmoid",
    "sgd": "gd", "gradient_descent": "gd",
    "binary_crossentropy": "bce", "bce_with_logits": "bce", "bcewithlogits": "bce",
    "categorical_crossentropy": "cross_entropy", "sparse_categorical_crossentropy": "cross_entropy",
    "crossentropy": "cross_entropy", "nll": "cross_entropy",
    "kl_div": "kl", "kldiv": "kl", "kl_divergence": "kl", "kullback_leibler_divergence": "kl",
    "mean_squared_error": "mse", "mean_absolute_error": "mae", "l1": "mae", "l2": "mse",
    "huber_loss": "huber", "gaussiannll": "gaussian_nll",
    "make_moons": "moons", "make_circles": "circles", "make_blobs": "blobs",
    # config keys and component parameters (Keras, PyTorch, scikit-learn, Lightning)
    "learning_rate": "lr", "learningrate": "lr", "learning_rate_init": "lr", "eta": "lr",
    "step_size": "lr",
    "n_epochs": "epochs", "num_epochs": "epochs", "max_epochs": "epochs", "nb_epoch": "epochs",
    "max_iter": "epochs", "n_iter": "epochs",
    "batchsize": "batch_size", "batch": "batch_size", "minibatch_size": "batch_size",
    "mini_batch_size": "batch_size",
    "hidden_layers": "layers", "hidden_layer_sizes": "layers", "layer_sizes": "layers",
    "units": "layers", "hidden_units": "layers", "sizes": "layers", "architecture": "layers",
    "act": "activation", "activation_function": "activation", "activation_fn": "activation",
    "act_fn": "activation", "nonlinearity": "activation",
    "out_activation": "output_activation", "final_activation": "output_activation",
    "last_activation": "output_activation",
    "init": "initializer", "weight_init": "initializer", "weights_init": "initializer",
    "kernel_initializer": "initializer", "kernel_init": "initializer",
    "weight_initializer": "initializer", "initialization": "initializer",
    "bias_init": "bias_initializer",
    "optimiser": "optimizer", "opt": "optimizer", "solver": "optimizer",
    "scheduler": "schedule", "lr_scheduler": "schedule", "lr_schedule": "schedule",
    "criterion": "loss", "loss_fn": "loss", "loss_function": "loss", "objective": "loss",
    "random_state": "seed", "random_seed": "seed", "manual_seed": "seed", "rng_seed": "seed",
    "dataset": "data",
    "validation_split": "val_fraction", "validation_fraction": "val_fraction",
    "val_split": "val_fraction", "val_size": "val_fraction",
    "test_size": "test_fraction", "test_split": "test_fraction",
    "normalize": "standardize", "normalise": "standardize", "standardise": "standardize",
    "n_jobs": "threads", "num_threads": "threads", "n_threads": "threads",
    "num_samples": "n_samples", "samples": "n_samples",
    "momentum": "beta", "epsilon": "eps", "l2_reg": "weight_decay", "l2_penalty": "weight_decay",
    "wd": "weight_decay",
}


def same_name(word: str, known) -> str | None:
    """The known name ``word`` stands for, written another way (ReLU, GlorotUniform, MSELoss) or
    in another tool's words (glorot_uniform -> xavier_uniform, learning_rate -> lr), else None."""
    known = [str(k) for k in known]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(word).strip())  # GlorotUniform
    plain = re.sub(r"(_?loss)$", "", snake.lower().replace("-", "_")) or str(word)
    for candidate in (str(word).lower(), plain, plain.replace("_", "")):
        if candidate in OTHER_TOOLS and OTHER_TOOLS[candidate] in known:
            return OTHER_TOOLS[candidate]
        if candidate in known and candidate != word:
            return candidate
    return None


def closest(word: str, known) -> str | None:
    """The known name ``word`` most likely means: the same name (``same_name``), else the closest
    spelling of a known name or of another tool's name for one (lerning_rate -> lr), else None."""
    known = [str(k) for k in known]
    found = same_name(word, known)
    if found is not None:
        return found
    # a misspelt alias only if it is long: within difflib's 0.6 of a short one (eta, act, he)
    # are unrelated words (beta1)
    aliases = {alias: target for alias, target in OTHER_TOOLS.items()
               if target in known and len(alias) >= 6}
    close = difflib.get_close_matches(str(word), [*known, *aliases], n=1, cutoff=0.6)
    if not close:
        return None
    return close[0] if close[0] in known else aliases[close[0]]


def did_you_mean(word: str, known) -> str:
    """'; did you mean 'relu'?' when a known name is close to ``word`` (or is another tool's name
    for it: glorot_uniform -> xavier_uniform), else ''."""
    found = closest(word, known)
    return f"; did you mean '{found}'?" if found is not None else ""


QUOTE_LIMIT = 80  # characters of a user's value or file content an error message quotes

# Bounded: a 100 000-element list is never turned into one huge string just to be cut.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 4
_SHORT_REPR.maxdict = _SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxset = 12
_SHORT_REPR.maxstring = _SHORT_REPR.maxlong = _SHORT_REPR.maxother = 2 * QUOTE_LIMIT


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and end: 'abcd...wxyz'."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return f"{text[:head]}...{text[head - limit + 3:]}"


def describe(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A value as a user wrote it in YAML, cut to about ``limit`` characters, for error messages."""
    if isinstance(value, (bool, int, float)) or value is None:
        text = str(value) if not isinstance(value, int) or abs(value) < 10**100 else "a huge integer"
    else:
        text = _SHORT_REPR.repr(value)
    return shorten(text, limit)


def finite(value: Any, key: str | None) -> Any:
    """``value`` itself; a ConfigError if it is a NaN or infinite number (NaN passes 'x <= 0')."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"must be a finite number, got {value}", key)
    return value


def label(spec: Any) -> str:
    """A component as one short text, the same in every table, legend and file name of nntrain:
    ``normal(std=0.01)`` for ``{name: normal, std: 0.01}``, ``relu`` for ``relu``."""
    if isinstance(spec, Mapping) and "name" in spec:
        args = ", ".join(f"{k}={label(v)}" for k, v in spec.items() if k != "name")
        return f"{spec['name']}({args})" if args else str(spec["name"])
    if isinstance(spec, Mapping):
        return "{" + ", ".join(f"{k}: {label(v)}" for k, v in spec.items()) + "}"
    if isinstance(spec, (list, tuple)):
        return "[" + ", ".join(label(v) for v in spec) + "]"
    if isinstance(spec, bool) or spec is None:
        return {True: "true", False: "false", None: "null"}[spec]
    if isinstance(spec, float):
        return repr(spec)
    return str(spec)


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter allows, written in its annotation beside its default:
    ``delta: Annotated[float, Positive] = 1.0``. The registry checks it when a config names
    the component (``prepare``), so a config is checked without building anything."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed: > low
    high_open: bool = False

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


Positive = Range(0, low_open=True)  # > 0
NonNegative = Range(0)  # >= 0
AtLeastOne = Range(1)  # >= 1
Decay = Range(0, 1, high_open=True)  # [0, 1): a moving average's beta
Factor = Range(0, 1, low_open=True)  # (0, 1]: a schedule's gamma


@functools.cache
def type_hints(obj: Any, extras: bool = False) -> Mapping[str, Any]:
    """typing.get_type_hints of a class or function, evaluated once (nntrain's annotations are
    strings, evaluated on every call otherwise; a config's check asks for each component's
    and each section's many times). Read-only: every caller shares it."""
    return types.MappingProxyType(typing.get_type_hints(obj, include_extras=extras))


@functools.cache
def signature_of(component: Callable) -> inspect.Signature:
    """inspect.signature of a component, computed once (a Signature is immutable)."""
    return inspect.signature(component)


def annotated_ranges(function: Callable) -> dict[str, list[Range]]:
    """The ``Range``s of a function's parameters, from their ``Annotated`` annotations."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):  # a plugin's annotation that cannot be resolved: no ranges
        return {}
    ranges = {param: [r for r in typing.get_args(hint)[1:] if isinstance(r, Range)]
              for param, hint in hints.items() if typing.get_origin(hint) is typing.Annotated}
    return {param: found for param, found in ranges.items() if found}


def checking_ranges(component: Callable) -> Callable:
    """A registered class whose ``__init__`` annotates ranges checks them however it is built:
    from a config (``Registry.prepare`` checks them first, without building) and in Python
    (``Huber(delta=-1)`` is a ValueError, as it was when each class checked its own)."""
    init = getattr(component, "__init__", None) if inspect.isclass(component) else None
    ranges = annotated_ranges(init) if init is not None else {}
    if not ranges or getattr(init, "checks_ranges", False):  # none, or a base class's wrapper
        return component
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked(self, *args, **kwargs):
        given = signature.bind(self, *args, **kwargs).arguments
        for param, bounds in ranges.items():
            for allowed in bounds:
                if param in given and not allowed.holds(given[param]):
                    raise ValueError(f"{param} must be {allowed}, got {describe(given[param])}")
        init(self, *args, **kwargs)

    checked.checks_ranges = True
    component.__init__ = checked
    return component


class Registry:
    """Named components of one kind (activations, losses, ...)."""

    def __init__(self, kind: str):
        self.kind = kind  # singular, for messages: "activation"
        self._items: dict[str, Callable] = {}

    def register(self, name: str) -> Callable:
        """Decorator: ``@ACTIVATIONS.register("relu")``. A name can be registered once."""

        def add(component: Callable) -> Callable:
            if name in self._items:
                raise ConfigError(f"{self.kind} '{name}' is already registered")
            component = checking_ranges(component)
            self._items[name] = component
            component.registry_name = name
            return component

        return add

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self.names())

    def get(self, name: str, key: str | None = None) -> Callable:
        """The registered component, or a ConfigError listing the known names."""
        if not isinstance(name, str) or name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {describe(name)}{did_you_mean(name, self._items)} "
                f"known: {', '.join(self.names())}",
                key,
            )
        return self._items[name]

    def split(self, spec: Any, key: str | None = None) -> tuple[str, dict]:
        """``"relu"`` or ``{"name": "relu", **params}`` -> ("relu", params)."""
        if isinstance(spec, str):
            return spec, {}
        if isinstance(spec, Mapping):
            if "name" not in spec:
                raise ConfigError(f"a {self.kind} mapping needs a 'name' key, got {describe(spec)}",
                                  key)
            params = {k: v for k, v in spec.items() if k != "name"}
            return spec["name"], params
        raise ConfigError(
            f"expected a {self.kind} name or a mapping with 'name', got {describe(spec)}", key
        )

    def parameters(self, name: str) -> list[str]:
        """The keyword parameters of the component ``name``: what a config may give it, and what
        nntrain supplies itself (``prepare``'s context)."""
        return [p.name for p in signature_of(self.get(name)).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def prepare(self, spec: Any, key: str | None = None, *,
                config_key: Callable[[str], str | None] | None = None,
                **context) -> tuple[Callable, dict]:
        """The component and its checked keyword arguments, without calling it.

        ``context`` holds arguments nntrain supplies itself (a layer's size, an rng);
        they are passed only when the component's signature asks for them.
        ``config_key(param)`` names the config key an unknown parameter means when it is none of
        the component's (the optimizer's learning_rate -> optimizer.lr), or None.
        """
        name, params = self.split(spec, key)
        component = self.get(name, key)
        accepted = self.parameters(name)
        hints = type_hints(component.__init__ if inspect.isclass(component) else component,
                           extras=True)
        allowed = [p for p in accepted if p not in context]
        for param, value in params.items():
            if param not in allowed:
                hint = did_you_mean(param, allowed)
                meant = config_key(param) if config_key is not None and not hint else None
                hint = f"; did you mean '{meant}'?" if meant else hint
                raise ConfigError(
                    f"{self.kind} '{name}' has no parameter '{param}'"
                    f"{hint} parameters: {', '.join(allowed) or 'none'}",
                    key,
                )
            dotted = f"{key}.{param}" if key else param
            hint, *ranges = typing.get_args(hints[param]) if typing.get_origin(
                hints.get(param)) is typing.Annotated else (hints.get(param),)
            # every numeric parameter of every component, annotated or not: no NaN, no inf
            params[param] = value = finite(check_type(value, hint, dotted), dotted)
            for bounds in ranges:
                if isinstance(bounds, Range) and not bounds.holds(value):
                    raise ConfigError(f"{self.kind} '{name}': {param} must be {bounds}, got "
                                      f"{describe(value)}", key)
        missing = [
            p.name for p in signature_of(component).parameters.values()
            if p.default is p.empty and p.name not in params and p.name not in context
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if missing:
            raise ConfigError(f"{self.kind} '{name}' needs parameter '{missing[0]}'", key)
        params.update({k: v for k, v in context.items() if k in accepted})
        return component, params

    def build(self, spec: Any, key: str | None = None, **context) -> Any:
        """Call the named component with the spec's parameters (checked) and ``context``."""
        return self.make(*self.prepare(spec, key, **context), key)

    def make(self, component: Callable, kwargs: dict, key: str | None = None) -> Any:
        """Call a component ``prepare`` checked; what it refuses is a ConfigError at ``key``."""
        name = component.registry_name
        try:
            return component(**kwargs)
        except ConfigError:
            raise
        except ValueError as err:  # a component's own check, e.g. values' W of the wrong shape
            raise ConfigError(f"{self.kind} '{name}': {shorten(str(err), 2 * QUOTE_LIMIT)}",
                              key) from None
        except ArithmeticError:  # gain: 1e200 squared
            raise ConfigError(f"{self.kind} '{name}': a parameter is too large to compute with",
                              key) from None
        except MemoryError:  # n_samples: 10000000000000
            raise ConfigError(f"{self.kind} '{name}': needs more memory than there is; "
                              "are its sizes right?", key) from None

    def formula(self, name: str) -> str:
        """The first line of the component's docstring: its formula, for ``nntrain list``."""
        doc = self.get(name).__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


def check_type(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against a simple annotation (float, int, bool, str, Literal, Optional).

    Numbers must be finite: NaN passes every range check written as ``x <= 0``.
    """
    if hint is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(
                f"must be one of {', '.join(map(str, allowed))}, got {describe(value)}"
                f"{did_you_mean(value, [str(a) for a in allowed])}",
                key,
            )
        return value
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, typing.get_args(hint), key)
    if hint in _WORDS and not _is_a(value, hint):
        raise ConfigError(f"must be {_WORDS[hint]}, got {describe(value)}", key)
    if hint is float:
        if isinstance(value, int) and abs(value) > 10**300:  # float() would raise OverflowError
            raise ConfigError(f"must be a finite number, got {describe(value)}", key)
        return finite(float(value), key)
    return value


_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _is_a(value: Any, hint: type) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    accepted = (int, float) if hint is float else hint  # an integer is a fine float (lr: 1)
    return not isinstance(value, bool) and isinstance(value, accepted)


def _check_union(value: Any, options: tuple, key: str) -> Any:
    """The first option of ``int | str`` (or ``float | None``) that accepts ``value``."""
    if value is None and type(None) in options:
        return None
    inner = [o for o in options if o is not type(None)]
    if len(inner) == 1:
        return check_type(value, inner[0], key)
    errors = []
    for option in inner:
        try:
            return check_type(value, option, key)
        except ConfigError as err:
            errors.append(err)
    words = [_word(o) for o in inner]
    if None in words:
        raise errors[0]
    raise ConfigError(f"must be {' or '.join(words)}, got {describe(value)}", key)


def _word(hint: Any) -> str | None:
    """'an integer', 'one of auto, all' for an annotation; None for one without a word."""
    if typing.get_origin(hint) is typing.Literal:
        return f"one of {', '.join(map(str, typing.get_args(hint)))}"
    return _WORDS.get(hint)
