"""Optimizers (update rules) and learning-rate schedules.

An optimizer updates the parameters in place from their gradients:
``step(params, grads, lr)``. It keeps the last update of each parameter in
``self.updates`` (the diagnostics report |update| / |W|). ``weight_decay``
adds the L2 term wd * W to the gradient of each weight matrix W (not biases
or PReLU slopes), i.e. minimises E(W) + wd/2 * sum ||W||^2.

The notes' other weight-update strategies, random search and random local
search (CS231n's "Strategy #1" and "#2"), are gradient-free: they read no
gradient and call the step's loss closure instead; the loop runs no backward
pass for them (``gradient_free``).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from .registry import AtLeastOne, ConfigError, Decay, Factor, NonNegative, Positive, Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")


class Optimizer:
    """Base: state arrays are made on the first step, shaped like the parameters."""

    default_lr: float | None = 0.01  # when the config gives no lr (Keras's defaults)
    gradient_free = False  # True: step calls the closure and reads no gradient (no backward pass)

    def __init__(self, weight_decay: Annotated[float, NonNegative] = 0.0):
        self.weight_decay = weight_decay
        self.updates: list[np.ndarray] | None = None
        self.t = 0  # steps taken

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], lr: float,
             decay: list[bool] | None = None, closure=None) -> None:
        """One update. ``decay[i]`` says whether params[i] is a weight matrix (gets weight_decay).

        ``closure()`` evaluates the loss at the current parameters (as torch.optim's
        ``step(closure)``): a gradient-free optimizer (random search) overrides ``step`` and
        calls it instead of reading ``grads``; the gradient-based ones here do not need it.
        """
        if self.updates is None:
            self.updates = [np.zeros_like(p) for p in params]
            self.init_state(params)
        self.t += 1
        for i, (p, g, u) in enumerate(zip(params, grads, self.updates)):
            if self.weight_decay and (decay is None or decay[i]):
                g += self.weight_decay * p
            self.update(i, g, u, lr)  # u <- the change to apply
            p += u

    def init_state(self, params) -> None:
        pass

    state_names: tuple[str, ...] = ()  # the lists of arrays a subclass carries between steps

    def state_dict(self) -> dict:
        """Everything ``step`` carries over, as torch.optim's: the step count, the last updates
        and the subclass's state (momentum's v, Adam's m and v). Arrays are the live ones."""
        if self.updates is None:
            return {"t": self.t}
        return {"t": self.t, "updates": self.updates,
                **{name: getattr(self, name) for name in self.state_names}}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        if "updates" in state:
            self.updates = [np.array(u) for u in state["updates"]]
            for name in self.state_names:
                setattr(self, name, [np.array(a) for a in state[name]])

    def update(self, i: int, g: np.ndarray, u: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def bind(self, rng: np.random.Generator, sample) -> None:
        """What a gradient-free step draws from: the run's seeded generator (its state is in
        the checkpoint, so a resumed run draws what an unbroken one would) and ``sample(rng)``,
        fresh parameters from the config's initializers. A gradient step needs neither."""

    def __repr__(self) -> str:
        return self.registry_name


@OPTIMIZERS.register("gd")
class GD(Optimizer):
    """w <- w - lr * grad (the notes' gradient descent; full batch or mini-batches)."""

    def update(self, i, g, u, lr):
        np.multiply(g, -lr, out=u)


@OPTIMIZERS.register("momentum")
class Momentum(Optimizer):
    """v <- beta v + grad;  w <- w - lr v  (nesterov: w <- w - lr (grad + beta v)). As torch.optim.SGD."""

    def __init__(self, beta: Annotated[float, Decay] = 0.9, nesterov: bool = False,
                 weight_decay: Annotated[float, NonNegative] = 0.0):
        super().__init__(weight_decay)
        self.beta, self.nesterov = beta, nesterov

    state_names = ("v",)

    def init_state(self, params):
        self.v = [np.zeros_like(p) for p in params]

    def update(self, i, g, u, lr):
        v = self.v[i]
        v *= self.beta
        v += g
        if self.nesterov:
            np.multiply(v, self.beta, out=u)
            u += g
            u *= -lr
        else:
            np.multiply(v, -lr, out=u)


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  w <- w - lr m_hat / (sqrt(v_hat) + eps).

    m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t) (Kingma & Ba 2015, as torch.optim.Adam).
    """

    default_lr = 0.001

    # eps > 0: eps = 0 divides 0 by 0 for a weight whose gradient is exactly 0
    def __init__(self, beta1: Annotated[float, Decay] = 0.9, beta2: Annotated[float, Decay] = 0.999,
                 eps: Annotated[float, Positive] = 1e-8,
                 weight_decay: Annotated[float, NonNegative] = 0.0):
        super().__init__(weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    state_names = ("m", "v")

    def init_state(self, params):
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def update(self, i, g, u, lr):
        m, v = self.m[i], self.v[i]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        np.multiply(g, g, out=u)  # u as scratch for g^2
        u *= 1 - self.beta2
        v += u
        step = lr / (1 - self.beta1**self.t)
        np.sqrt(v, out=u)
        u /= math.sqrt(1 - self.beta2**self.t)
        u += self.eps
        np.divide(m, u, out=u)
        u *= -step


class RandomStep(Optimizer):
    """Base of the gradient-free steps: propose parameters, measure the batch's loss there with
    the closure, and keep them only if it is below the loss where the step started.

    Each step calls ``closure()`` once at the current parameters (the training loop already
    knows that loss, so it costs nothing: see loop.Probe), then once per candidate. A tie or a
    non-finite loss is never kept, so a random step cannot make the loss rise or diverge.
    ``updates`` holds the change the step made (zeros when it kept nothing).
    """

    default_lr = None  # no gradient to scale: these take no lr
    gradient_free = True
    candidates = 1  # proposals measured per step

    def __init__(self):
        super().__init__()
        self.rng: np.random.Generator | None = None
        self.sample = None

    def bind(self, rng, sample) -> None:
        self.rng, self.sample = rng, sample

    def step(self, params, grads, lr, decay=None, closure=None) -> float:
        """One step: returns the loss of the batch at the parameters it leaves."""
        if closure is None or self.rng is None:  # explain and lr-find show gradient steps
            raise ConfigError(f"{self.registry_name} is gradient-free: a step measures the loss "
                              "through a closure, which only training gives it", "optimizer.name")
        if self.updates is None:
            self.updates = [np.zeros_like(p) for p in params]
        self.t += 1
        start = [p.copy() for p in params]
        best, kept = closure(), None  # the loss where the step starts
        for _ in range(self.candidates):
            self.propose(params, start)
            E = closure()
            if E < best:  # False for NaN: a candidate that overflowed is never kept
                best, kept = E, [p.copy() for p in params]
        for p, chosen, s, u in zip(params, kept or start, start, self.updates):
            p[...] = chosen
            np.subtract(chosen, s, out=u)
        return best

    def propose(self, params: list[np.ndarray], start: list[np.ndarray]) -> None:
        """Write a candidate into ``params`` (``start``: the parameters the step started from)."""
        raise NotImplementedError


@OPTIMIZERS.register("random_local")
class RandomLocal(RandomStep):
    """w_try = w + step * N(0, 1) per entry, kept if E(w_try) < E(w) (CS231n's random local search).

    Every parameter (weights, biases, PReLU slopes) moves; ``candidates`` proposals are
    measured per step and the best is kept if it beats the current loss.
    """

    def __init__(self, step: Annotated[float, Positive] = 0.1,
                 candidates: Annotated[int, AtLeastOne] = 1):
        super().__init__()
        self.step_size, self.candidates = step, candidates

    def propose(self, params, start):
        for p, s in zip(params, start):
            self.rng.standard_normal(p.shape, dtype=p.dtype, out=p)
            p *= self.step_size
            p += s


@OPTIMIZERS.register("random_search")
class RandomSearch(RandomStep):
    """w_try drawn afresh from the config's initializers, kept if E(w_try) < E(w) (CS231n's random search).

    With the whole training set as the batch this keeps the best parameters seen so far.
    Biases and PReLU slopes are drawn as at initialization (zeros and the slope's init by
    default), so they stay where the initializer puts them.
    """

    def propose(self, params, start):
        for p, fresh in zip(params, self.sample(self.rng)):
            p[...] = fresh


# Schedules: lr_t for epoch t = 0, 1, 2, ... (the lr of the first epoch is the base lr).


class Schedule:
    def __call__(self, lr: float, t: int) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.registry_name


@SCHEDULES.register("constant")
class ConstantRate(Schedule):
    """lr_t = lr."""

    def __call__(self, lr, t):
        return lr


@SCHEDULES.register("step")
class StepDecay(Schedule):
    """lr_t = lr * gamma^floor(t / step_size) (torch StepLR)."""

    # gamma in (0, 1]: gamma < 0 makes the lr negative, gradient ascent
    def __init__(self, step_size: Annotated[int, AtLeastOne] = 100,
                 gamma: Annotated[float, Factor] = 0.5):
        self.step_size, self.gamma = step_size, gamma

    def __call__(self, lr, t):
        return lr * self.gamma ** (t // self.step_size)


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """lr_t = lr * gamma^t (torch ExponentialLR)."""

    def __init__(self, gamma: Annotated[float, Factor] = 0.99):
        self.gamma = gamma

    def __call__(self, lr, t):
        return lr * self.gamma**t


@SCHEDULES.register("inverse_time")
class InverseTime(Schedule):
    """lr_t = lr / (1 + decay * t) (Keras InverseTimeDecay with decay_steps 1)."""

    def __init__(self, decay: Annotated[float, NonNegative] = 0.01):
        self.decay = decay

    def __call__(self, lr, t):
        return lr / (1 + self.decay * t)
