"""Activation functions: forward and derivative side by side.

Each activation is a small class; the network makes a fresh instance per
layer. ``forward(z)`` keeps what ``backward`` needs (z or the output a), and
``backward(da)`` returns dE/dz = da * f'(z). Both may work in place on buffers
the network owns: ``forward(z, out)`` writes into ``out`` and ``backward(da)``
may overwrite ``da``. An activation whose backward needs only its output
(``inplace = True``) may be given ``out=z``: the network then keeps one buffer
per layer instead of two. Derivatives reuse the forward output where the formula
allows it (sigmoid' = a(1-a), tanh' = 1-a^2), as scikit-learn does.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from .registry import NonNegative, Positive, Registry

ACTIVATIONS = Registry("activation")


class Activation:
    """Base: a(z) elementwise. The docstring's first line is the formula ``nntrain list`` shows."""

    hidden = True  # usable in hidden layers (softmax is output-only)
    # usable as the output activation: it maps logits to what a loss compares with the targets
    output = False
    # For diagnostics: "relu" family units can be dead; "sigmoid"/"tanh" saturate.
    family = None
    max_slope = 1.0  # max of f'(z), the reference for saturated_fraction
    warning = None  # printed once by the network that uses it
    inplace = False  # backward needs only the output a, so forward may overwrite z

    def setup(self, units: int, dtype) -> None:
        """Called once by the network with the layer's width (learned params are made here)."""
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, da: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.registry_name


def _out(z, out):
    return np.empty_like(z) if out is None else out


@ACTIVATIONS.register("identity")
class Identity(Activation):
    """a = z;  a' = 1."""

    output = True

    inplace = True

    def forward(self, z, out=None):
        self.z = z
        if out is None:
            return z
        np.copyto(out, z)
        return out

    def backward(self, da):
        return da


@ACTIVATIONS.register("step")
class Step(Activation):
    """a = 1 if z >= 0 else 0;  a' = 0 (undefined at 0): nothing before it can learn."""

    inplace = True

    warning = "activation 'step' has zero gradient: the layers before it cannot learn"

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        np.greater_equal(z, 0, out=out, casting="unsafe")
        return out

    def backward(self, da):
        da.fill(0)
        return da


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """sigma(z) = 1/(1+e^-z);  sigma' = sigma(1-sigma)."""

    output = True

    family = "sigmoid"
    max_slope = 0.25
    inplace = True

    def forward(self, z, out=None):
        self.z = z
        self.a = sigmoid(z, _out(z, out))
        return self.a

    def backward(self, da):
        da *= self.a
        da *= 1 - self.a
        return da


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """tanh(z) = (e^z - e^-z)/(e^z + e^-z);  tanh' = 1 - tanh^2."""

    output = True

    family = "tanh"
    inplace = True

    def setup(self, units, dtype):
        super().setup(units, dtype)
        self._tmp = {}

    def forward(self, z, out=None):
        self.z = z
        self.a = np.tanh(z, out=_out(z, out))
        return self.a

    def backward(self, da):
        # 1 - a^2 into a scratch buffer made once per batch shape, not a new array per call
        tmp = self._tmp.get(da.shape)
        if tmp is None or tmp.dtype != da.dtype:
            tmp = self._tmp[da.shape] = np.empty_like(da)
        np.multiply(self.a, self.a, out=tmp)
        np.subtract(1, tmp, out=tmp)
        da *= tmp
        return da


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """relu(z) = max(0, z);  relu' = 1 if z > 0 else 0 (0 at z = 0, as PyTorch)."""

    family = "relu"
    inplace = True

    def forward(self, z, out=None):
        self.a = np.maximum(z, 0, out=_out(z, out))
        return self.a

    def backward(self, da):
        # a > 0 exactly where z > 0. Trap: masking with a >= 0 (or z >= 0) would pass
        # gradient through units sitting at z = 0.
        da *= self.a > 0
        return da


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    """a = z if z > 0 else alpha z;  a' = 1 if z > 0 else alpha."""

    family = "relu"

    def __init__(self, alpha: Annotated[float, NonNegative] = 0.01):
        self.alpha = alpha

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        np.multiply(z, self.alpha, out=out)
        np.copyto(out, z, where=z > 0)
        return out

    def backward(self, da):
        da *= np.where(self.z > 0, 1.0, self.alpha).astype(da.dtype, copy=False)
        return da


@ACTIVATIONS.register("prelu")
class PReLU(Activation):
    """a = z if z > 0 else alpha z, alpha learned;  da/dz = 1 or alpha, da/dalpha = min(z, 0)."""

    family = "relu"

    def __init__(self, init: float = 0.25, per_unit: bool = False):
        self.init = init
        self.per_unit = per_unit

    def setup(self, units, dtype):
        shape = (units,) if self.per_unit else (1,)
        self.alpha = np.full(shape, self.init, dtype=dtype)
        self.dalpha = np.zeros_like(self.alpha)
        self.params = [self.alpha]
        self.grads = [self.dalpha]

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        np.multiply(z, self.alpha, out=out)
        np.copyto(out, z, where=z > 0)
        return out

    def backward(self, da):
        negative = np.minimum(self.z, 0)  # (batch, units): z where z <= 0, else 0
        per_unit = np.einsum("ij,ij->j", da, negative)
        self.dalpha[...] = per_unit if self.per_unit else per_unit.sum()
        da *= np.where(self.z > 0, 1, self.alpha).astype(da.dtype, copy=False)
        return da


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """a = z if z > 0 else alpha (e^z - 1);  a' = 1 if z > 0 else a + alpha."""

    family = "relu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        np.expm1(np.minimum(z, 0), out=out)  # min() first: e^z of a large z would overflow
        out *= self.alpha
        np.copyto(out, z, where=z > 0)
        self.a = out
        return out

    def backward(self, da):
        da *= np.where(self.z > 0, 1, self.a + self.alpha).astype(da.dtype, copy=False)
        return da


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    """a = ln(1 + e^(beta z))/beta, = z where beta z > threshold;  a' = sigma(beta z) (1 there)."""

    output = True

    def __init__(self, beta: Annotated[float, Positive] = 1.0, threshold: float = 20.0):
        self.beta = beta
        self.threshold = threshold

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        bz = z * self.beta
        # ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): finite for any x
        np.log1p(np.exp(-np.abs(bz)), out=out)
        out += np.maximum(bz, 0)
        out /= self.beta
        np.copyto(out, z, where=bz > self.threshold)  # PyTorch's linear region
        return out

    def backward(self, da):
        bz = self.z * self.beta
        slope = sigmoid(bz, np.empty_like(bz))
        slope[bz > self.threshold] = 1
        da *= slope
        return da


@ACTIVATIONS.register("selu")
class SELU(Activation):
    """a = lambda z if z > 0 else lambda alpha (e^z - 1);  a' = lambda or a + lambda alpha.

    lambda and alpha from Klambauer et al. (2017), as in PyTorch and Keras.
    """

    family = "relu"
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, z, out=None):
        self.z = z
        out = _out(z, out)
        np.expm1(np.minimum(z, 0), out=out)
        out *= self.alpha
        np.copyto(out, z, where=z > 0)
        out *= self.scale
        self.a = out
        return out

    def backward(self, da):
        da *= np.where(self.z > 0, self.scale, self.a + self.scale * self.alpha).astype(
            da.dtype, copy=False
        )
        return da


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    """gelu(z) = z Phi(z) = z/2 (1 + erf(z/sqrt2));  gelu' = Phi(z) + z phi(z). Exact erf form."""

    def forward(self, z, out=None):
        self.z = z
        self.cdf = 0.5 * (1 + erf(z / math.sqrt(2)))
        return np.multiply(z, self.cdf, out=_out(z, out))

    def backward(self, da):
        z = self.z
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        da *= self.cdf + z * pdf
        return da


@ACTIVATIONS.register("silu")
class SiLU(Activation):
    """silu(z) = z sigma(z);  silu' = sigma(z) (1 + z (1 - sigma(z)))."""

    def forward(self, z, out=None):
        self.z = z
        self.s = sigmoid(z, np.empty_like(z))
        return np.multiply(z, self.s, out=_out(z, out))

    def backward(self, da):
        s = self.s
        da *= s * (1 + self.z * (1 - s))
        return da


@ACTIVATIONS.register("softmax")
class Softmax(Activation):
    """o_i = e^(z_i) / sum_j e^(z_j);  do_i/dz_j = o_i (delta_ij - o_j). Output layer only."""

    output = True

    hidden = False

    def forward(self, z, out=None):
        self.z = z
        self.a = softmax(z, _out(z, out))
        return self.a

    def backward(self, da):
        # Jacobian-vector product without the (K, K) Jacobian: o * (da - <da, o>)
        o = self.a
        da -= row_sum(da * o)
        da *= o
        return da


def sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1/(1+e^-z) without overflow: e^-|z| is at most 1 (the naive form overflows for z << 0)."""
    e = np.exp(-np.abs(z))
    negative = z < 0  # before out is written: out may be z itself
    np.divide(1, 1 + e, out=out)
    out[negative] = e[negative] * out[negative]  # e^z/(1+e^z) for z < 0
    return out


# Row-wise reductions of a (batch, K) array with few columns. Trap: NumPy's
# z.max(axis=1) and z.sum(axis=1) run an inner loop of length K per row and take
# 30 us on (1000, 2), more than the rest of a small network's epoch; reducing the
# transposed copy over its rows, or a matrix-vector product, takes 1-2 us.


def row_max(z: np.ndarray) -> np.ndarray:
    """max over each row, shape (batch, 1)."""
    return np.ascontiguousarray(z.T).max(axis=0)[:, None]


def row_sum(z: np.ndarray) -> np.ndarray:
    """sum over each row, shape (batch, 1)."""
    return (z @ np.ones(z.shape[1], z.dtype))[:, None]


def per_member(x):
    """A sum or statistic as nntrain reports it: a float for one network's; for stacked
    members' (one value per member, nntrain/stack.py) a float64 array."""
    return float(x) if np.ndim(x) == 0 else np.asarray(x, np.float64)


def batch_total(x: np.ndarray):
    """The sum over a batch's samples and outputs (the last two axes), by NumPy's pairwise sum,
    of one network's (batch, K), or of each member's slice of stacked members' (S, batch, K),
    equal bit for bit to the sum of that slice alone (``per_member``)."""
    return per_member(x.sum() if x.ndim == 2 else x.sum(axis=(-2, -1)))


def self_dot(x: np.ndarray, members: bool = False):
    """The sum of x's squares as BLAS's dot product of x with itself (np.vdot). ``members``: x
    is stacked members' arrays (a leading member axis), one sum per member, by np.matmul of
    each member's row by its column, which is the same BLAS dot bit for bit (``per_member``)."""
    if not members:
        return float(np.vdot(x, x))
    flat = x.reshape(len(x), -1)
    return per_member(np.matmul(flat[:, None, :], flat[:, :, None])[:, 0, 0])


def softmax(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps e^z finite for logits of any size."""
    np.subtract(z, row_max(z), out=out)
    np.exp(out, out=out)
    out /= row_sum(out)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """z - logsumexp(z), row-wise and stable."""
    shifted = z - row_max(z)
    return shifted - np.log(row_sum(np.exp(shifted)))


_SERIES_TERMS = 32  # enough for |x| < 2 to double precision (checked against math.erf)
_CF_DEPTH = 50  # continued-fraction depth for erfc at x >= 2


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to double precision, vectorised (NumPy has none).

    |x| < 2: erf(x) = 2/sqrt(pi) e^-x^2 sum_n (2x^2)^n x / (1*3*...*(2n+1)), all terms
    positive so nothing cancels; |x| >= 2: erf = 1 - erfc with erfc's continued
    fraction e^-x^2/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
    Tested against math.erf in tests/test_activations.py.
    """
    x = np.asarray(x)
    ax = np.abs(x).astype(np.float64)
    result = np.empty_like(ax)
    small = ax < 2
    xs = ax[small]
    term = xs.copy()
    total = xs.copy()
    two_x2 = 2 * xs * xs
    for n in range(1, _SERIES_TERMS):
        term *= two_x2 / (2 * n + 1)
        total += term
    result[small] = 2 / math.sqrt(math.pi) * np.exp(-xs * xs) * total
    xl = np.minimum(ax[~small], 27.0)  # erfc(27) underflows: erf is 1 there anyway
    f = xl.copy()
    for k in range(_CF_DEPTH, 0, -1):
        f = xl + (k / 2) / f
    result[~small] = 1 - np.exp(-xl * xl) / math.sqrt(math.pi) / f
    return (np.sign(x) * result).astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
