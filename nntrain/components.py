"""A network's named components, checked from the config and built from the registries.

``prepare_layers`` checks what a config says of the layers (names, parameters
and their ranges, one spec per layer, hidden vs output activations) without
building anything: ``load_config`` calls it. ``build_components`` builds the
same prepared components, once, when the network is made.
"""

from __future__ import annotations

from typing import Any

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .registry import ConfigError, describe

# (component, its keyword arguments, the config key it came from): checked, not yet built
Prepared = tuple[Any, dict, str]


def per_layer(spec: Any, count: int, what: str, key: str) -> list:
    """One spec for every layer, or a list with exactly one per layer."""
    if isinstance(spec, (list, tuple)):
        if len(spec) != count:
            raise ConfigError(
                f"a list needs one {what} per layer: {count} expected, got {len(spec)}", key
            )
        return list(spec)
    return [spec] * count


def check_pair(output_activation: str, loss, key: str = "loss") -> None:
    """A loss fused with an output activation (computed from its logits) must follow it.
    ``loss``: a loss, or its class."""
    if loss.fused_with and output_activation != loss.fused_with:
        raise ConfigError(
            f"{loss.registry_name} needs output_activation {loss.fused_with} "
            f"(got {output_activation}): it compares probabilities",
            key,
        )


def check_sizes(layers: Any) -> list[int]:
    if (not isinstance(layers, (list, tuple)) or len(layers) < 2
            or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers)):
        raise ConfigError(
            f"needs a list of at least two sizes [input, hidden..., output], each an integer >= 1, "
            f"got {describe(layers)}",
            "model.layers",
        )
    return list(layers)


def initializer_key(spec: Any, i: int) -> str:
    """model.initializer, or model.initializer[i] for the i-th of a per-layer list."""
    return f"model.initializer[{i}]" if isinstance(spec, (list, tuple)) else "model.initializer"


def prepare_activations(hidden: list, output_activation) -> list[Prepared]:
    """One activation per hidden layer, then the output layer's (unless None: not yet known)."""
    prepared = []
    key = "model.activation"
    for spec in hidden:
        component, kwargs = ACTIVATIONS.prepare(spec, key)
        if not component.hidden:
            raise ConfigError(f"{component.registry_name} can only be an output activation", key)
        prepared.append((component, kwargs, key))
    if output_activation is not None:
        key = "model.output_activation"
        component, kwargs = ACTIVATIONS.prepare(output_activation, key)
        if not component.output:
            known = [name for name in ACTIVATIONS if ACTIVATIONS.get(name).output]
            raise ConfigError(
                f"{component.registry_name} is not an output activation; known: "
                f"{', '.join(known)} (a plugin activation says output = True)", key)
        prepared.append((component, kwargs, key))
    return prepared


def prepare_layers(sizes, activation, output_activation, initializer, bias_initializer):
    """The activations, weight initializers and bias initializer of a network, checked
    against the registries and ready to build (nothing is built)."""
    n_weights = len(sizes) - 1
    hidden = per_layer(activation, n_weights - 1, "activation", "model.activation")
    specs = per_layer(initializer, n_weights, "initializer", "model.initializer")
    activations = prepare_activations(hidden, output_activation)
    # sklearn's preset depends on the hidden activation (its one global setting)
    hidden_name = activations[0][0].registry_name if n_weights > 1 else "identity"
    initializers = []
    for i, (spec, fan_in, fan_out) in enumerate(zip(specs, sizes[:-1], sizes[1:])):
        key = initializer_key(initializer, i)  # fan_in, fan_out: for values' shape checks
        initializers.append((*INITIALIZERS.prepare(spec, key, activation=hidden_name,
                                                   fan_in=fan_in, fan_out=fan_out), key))
    bias = None
    if bias_initializer is not None:
        key = "model.bias_initializer"
        bias = (*INITIALIZERS.prepare(bias_initializer, key, activation=hidden_name), key)
    return activations, initializers, bias


def build_components(sizes, activation, output_activation, initializer, bias_initializer):
    """The activation instances (a fresh one per layer), weight initializers and bias
    initializer of a network, built once from ``prepare_layers``."""
    activations, initializers, bias = prepare_layers(sizes, activation, output_activation,
                                                     initializer, bias_initializer)
    return ([ACTIVATIONS.make(*p) for p in activations],
            [INITIALIZERS.make(*p) for p in initializers],
            INITIALIZERS.make(*bias) if bias is not None else None)
