"""Weight initializers: one general rule (variance scaling) and the named presets built on it.

An initializer is called as ``init(fan_in, fan_out, rng) -> W`` with W of
shape (fan_in, fan_out). ``init.bias(fan_in, fan_out, rng)`` gives the biases:
zeros, except for the presets that copy another tool's defaults. Samples are
drawn in float64 and cast by the network, so float32 weights are the float64
ones rounded (the same numbers in either dtype).

Slips in the training notes, corrected here after the papers:
- He: the notes say "standard deviation 2/n"; He et al. (2015) use
  N(0, 2/fan_in), variance 2/fan_in, std sqrt(2/fan_in).
- "Xavier" U(-sqrt(1/n), sqrt(1/n)) has variance 1/(3n), not 1/n. It is
  Glorot & Bengio's (2010) "standard" heuristic (and PyTorch's nn.Linear
  default), kept here as ``xavier_simple``; ``xavier_uniform`` is the
  normalised rule U(+-sqrt(6/(fan_in+fan_out))).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np

from .registry import Positive, Registry

INITIALIZERS = Registry("initializer")


class Initializer:
    """Base: subclasses implement ``sample(shape, fan_in, fan_out, rng)``."""

    bias_given = False  # True: biases given explicitly, which model.bias_initializer does not replace

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample((fan_in, fan_out), fan_in, fan_out, rng)

    def sample(self, shape, fan_in, fan_out, rng) -> np.ndarray:
        raise NotImplementedError

    def bias(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        """Biases start at zero unless a preset says otherwise."""
        return np.zeros(fan_out)

    def target_std(self, fan_in: int, fan_out: int) -> float:
        """The standard deviation of W that the rule aims for (``nntrain inspect``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.registry_name


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """W = 0: every unit of a layer computes the same thing (the symmetry problem)."""

    def sample(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)

    def target_std(self, fan_in, fan_out):
        return 0.0


@INITIALIZERS.register("constant")
class Constant(Initializer):
    """W = value everywhere: symmetric like zeros."""

    def __init__(self, value: float = 0.0):
        self.value = value

    def sample(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)

    def target_std(self, fan_in, fan_out):
        return 0.0


@INITIALIZERS.register("values")
class Values(Initializer):
    """W and b given: {name: values, W: [[...]], b: [...]} (b: zeros if left out).

    W is a list of fan_in rows of fan_out numbers: the (fan_in, fan_out) matrix.

    One layer's hand-picked parameters, for a step worked by hand; use it in the
    per-layer initializer list. The network supplies fan_in and fan_out to check
    the shapes. A b given here is kept even when model.bias_initializer is set
    (the explicit values win); without b, the bias_initializer (or zeros) applies.
    """

    def __init__(self, W: list, b: list | None = None, fan_in: int | None = None,
                 fan_out: int | None = None):
        if fan_in is None or fan_out is None:
            raise ValueError("gives one layer's W and b: use it in model.initializer "
                             "(a list, one per weight layer)")
        self.W = given_array(W, "W", (fan_in, fan_out))
        self.b = np.zeros(fan_out) if b is None else given_array(b, "b", (fan_out,))
        self.bias_given = b is not None

    def sample(self, shape, fan_in, fan_out, rng):
        if shape != self.W.shape:
            raise ValueError(f"W has shape {self.W.shape}, the layer needs {shape}")
        return self.W.copy()

    def bias(self, fan_in, fan_out, rng):
        return self.b.copy()

    def target_std(self, fan_in, fan_out):
        return float(self.W.std())  # no rule: the std of the values given


def given_array(values, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` (nested lists of numbers) as a float64 array of ``shape``, or a ValueError."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}")
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers with rows of equal length, "
                         f"got {values!r}") from None
    if array.shape != shape:
        what = "(fan_in, fan_out)" if len(shape) == 2 else "(fan_out,)"
        raise ValueError(f"{name} has shape {array.shape}, the layer needs {what} = {shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has NaN or infinite values")
    return array


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """W ~ U(-limit, limit); std = limit/sqrt(3)."""

    def __init__(self, limit: Annotated[float, Positive] = 0.05):
        self.limit = limit

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-self.limit, self.limit, size=shape)

    def target_std(self, fan_in, fan_out):
        return self.limit / math.sqrt(3)


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """W ~ N(0, std^2)."""

    def __init__(self, std: Annotated[float, Positive] = 0.05):
        self.std = std

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, self.std, size=shape)

    def target_std(self, fan_in, fan_out):
        return self.std


# Truncated at two standard deviations, N(0,1) has std 0.8796...: Keras divides
# by it so that the truncated draw keeps the variance the rule asks for.
_TRUNCATED_STD = 0.87962566103423978


@INITIALIZERS.register("variance_scaling")
class VarianceScaling(Initializer):
    """Var(W) = scale / n, n = fan_in, fan_out or (fan_in+fan_out)/2 by ``mode``.

    normal: N(0, scale/n); truncated_normal: the same variance, cut at 2 std;
    uniform: U(+-sqrt(3 scale/n)). Every named random rule below is this one
    with fixed arguments, as in Keras.
    """

    def __init__(
        self,
        scale: Annotated[float, Positive] = 1.0,
        mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in",
        distribution: Literal["normal", "truncated_normal", "uniform"] = "truncated_normal",
    ):
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def fan(self, fan_in: int, fan_out: int) -> float:
        return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]

    def target_std(self, fan_in, fan_out):
        return math.sqrt(self.scale / self.fan(fan_in, fan_out))

    def sample(self, shape, fan_in, fan_out, rng):
        std = self.target_std(fan_in, fan_out)
        if self.distribution == "uniform":
            limit = math.sqrt(3) * std
            return rng.uniform(-limit, limit, size=shape)
        if self.distribution == "normal":
            return rng.normal(0.0, std, size=shape)
        return truncated_normal(shape, std / _TRUNCATED_STD, rng)


def truncated_normal(shape, std: float, rng: np.random.Generator) -> np.ndarray:
    """N(0, std^2) redrawn outside +-2 std (as tf.random.truncated_normal)."""
    w = rng.normal(0.0, 1.0, size=shape)
    outside = np.abs(w) > 2
    while outside.any():
        w[outside] = rng.normal(0.0, 1.0, size=int(outside.sum()))
        outside = np.abs(w) > 2
    return w * std


@INITIALIZERS.register("xavier_uniform")
class XavierUniform(VarianceScaling):
    """W ~ U(+-gain sqrt(6/(fan_in+fan_out))) (Glorot & Bengio 2010, normalised init)."""

    def __init__(self, gain: Annotated[float, Positive] = 1.0):
        super().__init__(scale=gain**2, mode="fan_avg", distribution="uniform")


@INITIALIZERS.register("xavier_normal")
class XavierNormal(VarianceScaling):
    """W ~ N(0, gain^2 2/(fan_in+fan_out)) (Glorot & Bengio 2010)."""

    def __init__(self, gain: Annotated[float, Positive] = 1.0):
        super().__init__(scale=gain**2, mode="fan_avg", distribution="normal")


@INITIALIZERS.register("xavier_simple")
class XavierSimple(VarianceScaling):
    """W ~ U(+-sqrt(1/fan_in)), the notes' special case: variance 1/(3 fan_in), not 1/fan_in."""

    def __init__(self):
        super().__init__(scale=1 / 3, mode="fan_in", distribution="uniform")


@INITIALIZERS.register("he_normal")
class HeNormal(VarianceScaling):
    """W ~ N(0, 2/fan_in), std sqrt(2/fan_in) (He et al. 2015; the notes' '2/n' is the variance)."""

    def __init__(self):
        super().__init__(scale=2.0, mode="fan_in", distribution="normal")


@INITIALIZERS.register("he_uniform")
class HeUniform(VarianceScaling):
    """W ~ U(+-sqrt(6/fan_in)), variance 2/fan_in (He et al. 2015)."""

    def __init__(self):
        super().__init__(scale=2.0, mode="fan_in", distribution="uniform")


@INITIALIZERS.register("lecun_normal")
class LecunNormal(VarianceScaling):
    """W ~ N(0, 1/fan_in) (LeCun et al. 1998)."""

    def __init__(self):
        super().__init__(scale=1.0, mode="fan_in", distribution="normal")


@INITIALIZERS.register("lecun_uniform")
class LecunUniform(VarianceScaling):
    """W ~ U(+-sqrt(3/fan_in)), variance 1/fan_in (LeCun et al. 1998)."""

    def __init__(self):
        super().__init__(scale=1.0, mode="fan_in", distribution="uniform")


@INITIALIZERS.register("orthogonal")
class Orthogonal(Initializer):
    """W = gain * Q, Q from the QR decomposition of a N(0,1) matrix (Saxe et al. 2014).

    Rows or columns of Q are orthonormal, so W^T W = gain^2 I (or W W^T); the
    signs of R's diagonal are folded into Q so that Q is uniformly distributed.
    """

    def __init__(self, gain: Annotated[float, Positive] = 1.0):
        self.gain = gain

    def sample(self, shape, fan_in, fan_out, rng):
        if len(shape) != 2:
            raise ValueError("orthogonal needs a matrix; use another bias_initializer")
        rows, cols = shape
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        return self.gain * (q if rows >= cols else q.T)

    def target_std(self, fan_in, fan_out):
        # Each orthonormal column (or row) of length n has mean square 1/n.
        return self.gain / math.sqrt(max(fan_in, fan_out))


# Presets that reproduce another tool's defaults, weights and biases.


@INITIALIZERS.register("pytorch_default")
class PyTorchDefault(Initializer):
    """torch.nn.Linear.reset_parameters: W ~ U(+-1/sqrt(fan_in)), b ~ U(+-1/sqrt(fan_in)).

    (kaiming_uniform_ with a=sqrt(5): gain sqrt(2/(1+5)), bound gain sqrt(3/fan_in) = 1/sqrt(fan_in).)
    """

    def sample(self, shape, fan_in, fan_out, rng):
        bound = 1 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)

    def bias(self, fan_in, fan_out, rng):
        return self.sample((fan_out,), fan_in, fan_out, rng)

    def target_std(self, fan_in, fan_out):
        return 1 / math.sqrt(3 * fan_in)


@INITIALIZERS.register("keras_default")
class KerasDefault(XavierUniform):
    """keras.layers.Dense: kernel glorot_uniform U(+-sqrt(6/(fan_in+fan_out))), bias zeros."""

    def __init__(self):
        super().__init__(gain=1.0)


@INITIALIZERS.register("sklearn_default")
class SklearnDefault(Initializer):
    """sklearn MLP _init_coef: W, b ~ U(+-sqrt(f/(fan_in+fan_out))), f = 2 for sigmoid ('logistic'), else 6.

    ``activation`` is the hidden activation (sklearn has one for all layers); the
    network passes it in.
    """

    def __init__(self, activation: str = "relu"):
        self.factor = 2.0 if activation == "sigmoid" else 6.0

    def bound(self, fan_in, fan_out):
        return math.sqrt(self.factor / (fan_in + fan_out))

    def sample(self, shape, fan_in, fan_out, rng):
        bound = self.bound(fan_in, fan_out)
        return rng.uniform(-bound, bound, size=shape)

    def bias(self, fan_in, fan_out, rng):
        return self.sample((fan_out,), fan_in, fan_out, rng)

    def target_std(self, fan_in, fan_out):
        return self.bound(fan_in, fan_out) / math.sqrt(3)


@INITIALIZERS.register("playground")
class Playground(Initializer):
    """TensorFlow Playground (src/nn.ts): W ~ U(-0.5, 0.5) (Math.random() - 0.5), b = 0.1."""

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-0.5, 0.5, size=shape)

    def bias(self, fan_in, fan_out, rng):
        return np.full(fan_out, 0.1)

    def target_std(self, fan_in, fan_out):
        return 1 / math.sqrt(12)
