"""Losses E(W): the mean over samples of a per-sample divergence, with its gradient.

o = network output (N, K), y = targets (N, K), z = logits (pre-activation output).
A loss whose ``stacks`` is True also takes stacked members' (S, N, K) arrays (nntrain/stack.py)
and gives each member's E, equal bit for bit to its own (N, K) value (``batch_total`` and
``self_dot`` sum each member's slice as they sum one network's batch).
``value(o, y)`` is E, ``grad(o, y)`` is dE/do. The three probabilistic losses
are *fused* with their output activation and take the logits instead:
``value(z, y)`` and ``grad(z, y)`` = dE/dz, computed with log-sum-exp so that
logits of +-1000 give finite numbers (log(sigmoid(1000)) would be log(1) - but
log(1 - sigmoid(1000)) = log(0) = -inf if computed from o).

The probabilistic view (the training notes): each loss is a negative
log-likelihood. Gaussian noise with fixed sigma gives ``gaussian_nll``, which is
SSE up to a constant and a factor; Bernoulli outputs give ``bce``; a
categorical (multinoulli) output gives ``cross_entropy``, and ``kl`` differs
from it by the targets' entropy, a constant.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from .activations import (batch_total, log_softmax, row_max, row_sum, self_dot, sigmoid,
                          softmax)
from .registry import Positive, Registry

LOSSES = Registry("loss")


class Loss:
    """Base. ``fused_with`` names the output activation a fused loss must follow: it takes that
    activation's logits z (and returns dE/dz), not its output. None: any output, dE/do."""

    fused_with: str | None = None
    stacks = False  # value and grad also take stacked members' (S, N, K) arrays

    def value(self, o: np.ndarray, y: np.ndarray) -> float:
        """E (for stacked members' arrays: one float64 per member, ``stacks``)."""
        raise NotImplementedError

    def grad(self, o: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def value_from(self, z: np.ndarray, o: np.ndarray, y: np.ndarray) -> float:
        """E given the output layer's logits z and output o = f(z): from z for a fused loss."""
        return self.value(z if self.fused_with else o, y)

    def value_and_grad(self, z: np.ndarray, o: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """E and its gradient in one call, given the logits z and the output o = f(z).

        dE/dz for a fused loss, dE/do otherwise. Fused losses override it to reuse o
        (sigmoid(z) or softmax(z), already computed by the forward pass).
        """
        x = z if self.fused_with else o
        return self.value(x, y), self.grad(x, y)

    def __repr__(self) -> str:
        return self.registry_name


def rows(o: np.ndarray) -> int:
    """N: the samples of a batch (of each member's, stacked)."""
    return o.shape[-2]


def cells(o: np.ndarray) -> int:
    """N K: the outputs of a batch (of each member's, stacked)."""
    return o.shape[-2] * o.shape[-1]


def squares(d: np.ndarray):
    """The sum of d^2 over the batch (of each member's, stacked: (S, N, K))."""
    return self_dot(d, members=d.ndim == 3)


@LOSSES.register("sse")
class SSE(Loss):
    """E = (1/N) sum_n 1/2 sum_k (y-o)^2;  dE/do = (o-y)/N."""

    stacks = True

    def value(self, o, y):
        return squares(o - y) / (2 * rows(o))

    def grad(self, o, y):
        return (o - y) / rows(o)


@LOSSES.register("mse")
class MSE(Loss):
    """E = (1/(NK)) sum (y-o)^2;  dE/do = 2(o-y)/(NK)."""

    stacks = True

    def value(self, o, y):
        return squares(o - y) / cells(o)

    def grad(self, o, y):
        # the same order of operations as gaussian_nll's (o - y) / N: with one output, MSE's
        # gradient is then exactly twice it, and gd at lr moves the weights bit for bit as
        # gaussian_nll at 2 lr (multiplying by 2/N instead drifts apart by ~1e-10 in 2000 epochs)
        return (o - y) / cells(o) * 2


@LOSSES.register("mae")
class MAE(Loss):
    """E = (1/(NK)) sum |y-o|;  dE/do = sign(o-y)/(NK) (0 at o = y, as PyTorch)."""

    stacks = True

    def value(self, o, y):
        return batch_total(np.abs(o - y)) / cells(o)

    def grad(self, o, y):
        return np.sign(o - y) / cells(o)


@LOSSES.register("huber")
class Huber(Loss):
    """E = mean of d^2/2 if |d| <= delta else delta(|d| - delta/2), d = o-y;  dE/do = clip(d, +-delta)/(NK)."""

    stacks = True

    def __init__(self, delta: Annotated[float, Positive] = 1.0):
        self.delta = delta

    def value(self, o, y):
        a = np.abs(o - y)
        quadratic = np.minimum(a, self.delta)  # the part of |d| inside the quadratic zone
        linear = a - quadratic
        return batch_total(0.5 * quadratic**2 + self.delta * linear) / cells(o)

    def grad(self, o, y):
        return np.clip(o - y, -self.delta, self.delta) / cells(o)


@LOSSES.register("gaussian_nll")
class GaussianNLL(Loss):
    """E = (1/N) sum_n sum_k [ln sigma + ln(2pi)/2 + (y-o)^2/(2 sigma^2)];  dE/do = (o-y)/(N sigma^2).

    The negative log-likelihood of y ~ N(o, sigma^2): with sigma fixed, minimising
    it minimises SSE (the notes' maximum-likelihood derivation).
    """

    stacks = True

    def __init__(self, sigma: Annotated[float, Positive] = 1.0):
        self.sigma = sigma

    def value(self, o, y):
        constant = cells(o) * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))
        return (constant + squares(o - y) / (2 * self.sigma**2)) / rows(o)

    def grad(self, o, y):
        return (o - y) / (rows(o) * self.sigma**2)


@LOSSES.register("bce")
class BCE(Loss):
    """E = (1/(NK)) sum -y log o - (1-y) log(1-o), o = sigmoid(z);  dE/dz = (o - y)/(NK).

    From logits: -y log s(z) - (1-y) log(1-s(z)) = max(z,0) - y z + log(1 + e^-|z|).
    """

    fused_with = "sigmoid"
    stacks = True

    def value(self, z, y):
        return batch_total(np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))) / cells(z)

    def grad(self, z, y):
        return self._grad(sigmoid(z, np.empty_like(z)), y)

    def value_and_grad(self, z, o, y):
        return self.value(z, y), self._grad(o.copy(), y)

    @staticmethod
    def _grad(o, y):
        o -= y
        o /= cells(o)
        return o


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """E = (1/N) sum_n -sum_k y_k log o_k, o = softmax(z);  dE/dz = (o sum_k y_k - y)/N (= (o-y)/N).

    The notes drop the minus sign; this is the negative log-likelihood. Soft
    targets (rows of y summing to 1) are allowed, as in PyTorch.
    """

    fused_with = "softmax"

    def value(self, z, y):
        return float(-np.vdot(y, log_softmax(z))) / len(z)

    def grad(self, z, y):
        return self._grad(softmax(z, np.empty_like(z)), y)

    def value_and_grad(self, z, o, y):
        # -sum_k y_k log o_k = sum_k y_k lse - y.z, with lse = log sum_k e^z_k = max z - log max o:
        # the largest output is e^0 / sum e^(z - max z), at least 1/K, so its log is safe and
        # the softmax the forward pass made gives the loss without a second pass of exp
        lse = row_max(z)[:, 0] - np.log(row_max(o)[:, 0])
        y_sums = row_sum(y)
        E = (float(lse @ y_sums[:, 0]) - float(np.vdot(y, z))) / len(z)
        return E, self._grad(o.copy(), y, y_sums)

    @staticmethod
    def _grad(o, y, y_sums=None):
        o *= row_sum(y) if y_sums is None else y_sums
        o -= y
        o /= len(o)
        return o


@LOSSES.register("kl")
class KL(CrossEntropy):
    """E = (1/N) sum_n sum_k y_k log(y_k/o_k), 0 log 0 = 0, o = softmax(z);  dE/dz = (o sum_k y_k - y)/N.

    KL(y || o) = cross-entropy minus the entropy of y: the same gradient, and 0 at o = y.
    """

    def value(self, z, y):
        return self._target_entropy(y) + super().value(z, y)

    def value_and_grad(self, z, o, y):
        E, grad = super().value_and_grad(z, o, y)
        return self._target_entropy(y) + E, grad

    @staticmethod
    def _target_entropy(y):
        """(1/N) sum y log y (0 log 0 = 0): minus the targets' entropy, KL's constant."""
        positive = y > 0
        y_log_y = np.zeros_like(y)
        y_log_y[positive] = y[positive] * np.log(y[positive])
        return float(y_log_y.sum()) / len(y)
