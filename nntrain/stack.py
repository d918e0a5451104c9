"""Stacked members: a sweep's variants that share the shapes of their computation, trained as
one network whose parameters carry a leading member axis, (S, fan_in, fan_out).

Each member is exactly its lone run: its own Experiment (data, network, loss, optimizer,
schedule, batch order, all built by ``experiment.setup`` from its config), its own callbacks
and run folder. Only the arithmetic of the training steps is shared:

    forward   z = a W + b for all members in one np.matmul (BLAS gemm per member slice)
    hidden    activations elementwise over the stack
    output    an elementwise output activation over the stack, another (softmax) each
              member's own on its (n, k) slice
    figures   loss, metric and gradient norm of every member at once where the loss takes a
              stack (``Loss.stacks``), else each member's on its slice; validation and the
              layers.csv statistics by one stacked forward pass
    backward  dW = a^T delta, db = 1 delta, da = delta W^T, stacked like the forward
    update    gd, momentum or adam with each member's lr and hyper-parameters

A member's network, gradients and optimizer state are views into the stacked arrays, so its
callbacks (metrics.csv, layers.csv, checkpoints, snapshots, early stopping, the divergence
sentinel, summary.json) read and write what a lone run's would. np.matmul on stacked arrays
calls gemm once per slice, every other stacked operation is elementwise with the member's
own scalars, and every sum is over each member's slice as its lone run sums its batch
(``activations.batch_total``, ``activations.self_dot``), so each member's numbers are bit for
bit its lone run's
(tests/test_stack.py checks it case by case); what cannot be stacked that way runs alone
(``unstackable``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .callbacks import CallbackList, Training, default_callbacks
from .config import Config
from .diagnostics import layer_figures
from .experiment import Experiment, Split, build_network, setup
from .loop import Interrupted, Run, end_run, epoch_row, untrained_figures
from .network import gradient_norm
from .optimizers import GD, Adam, Momentum
from .runs import check_out_dir
from .signals import StopRequests, signal_name
from .threads import limit_threads

# hidden activations whose forward and backward are elementwise (checked stacked against
# lone in tests/test_stack.py)
ELEMENTWISE = {"identity", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "selu", "softplus",
               "silu", "gelu", "step"}
STACKED_OPTIMIZERS = ("gd", "momentum", "adam")  # StackedOptimizer.update's rules
# per member and batch: at or above it the arithmetic dominates and stacking gains little
# (measured in docs/performance.md, "Stacked sweeps")
MAX_MULTIPLY_ADDS = 300_000
# members whose data differ have their data stacked: a group whose copies would be larger
# trains its runs one by one
MAX_STACKED_BYTES = 1 << 30
# files a member keeps open while it trains (metrics.csv, layers.csv, snapshots.bin) and one
# it opens for a moment (a checkpoint or summary.json replaced), and the files the process
# holds besides (the interpreter's, the pool's pipe, NumPy's)
FILES_PER_MEMBER = 4
FILES_BESIDES = 64


# -- which runs stack ------------------------------------------------------------------------


def unstackable(config: dict) -> str | None:
    """Why a (checked) config's run cannot be a stacked member, or None when it can."""
    model, opt = config["model"], config.get("optimizer") or {}
    name = opt.get("name", "gd") if isinstance(opt, dict) else opt
    if name not in STACKED_OPTIMIZERS:
        return f"optimizer {name}: only {', '.join(STACKED_OPTIMIZERS)} steps are stacked"
    activation = model.get("activation", "tanh")
    if isinstance(activation, list):
        return "one activation per layer: not stacked"
    act = activation["name"] if isinstance(activation, dict) else activation
    if act not in ELEMENTWISE:
        return f"activation {act}: not elementwise over the stack"
    return None


def group_key(config: dict) -> str:
    """What must be equal for runs to stack: the layers, activations, loss, the optimizer's
    kind, the batch size, the dtype, the epochs and the data's shape (its generator and
    sample count; the split may differ). Seeds, initializers and numeric settings may differ."""
    model, opt, train = config["model"], config.get("optimizer") or {}, config["train"]
    opt = opt if isinstance(opt, dict) else {"name": opt}
    data = {k: v for k, v in (config.get("data") or {}).items() if k != "seed"}
    shape = {"layers": model.get("layers"), "activation": model.get("activation"),
             "output_activation": model.get("output_activation"), "loss": config.get("loss"),
             "optimizer": opt.get("name", "gd"), "nesterov": opt.get("nesterov", False),
             "batch_size": opt.get("batch_size"), "dtype": train.get("dtype", "float64"),
             "epochs": train.get("epochs"), "data": data}
    return json.dumps(shape, sort_keys=True, default=str)


def stack_plan(cfg: Config, n_train: int) -> tuple[str | None, str | None]:
    """A resolved config's group (``group_key``), or None and why its run goes alone: it
    cannot stack (``unstackable``), or stacking does not pay: a batch's multiply-adds per
    member at or above MAX_MULTIPLY_ADDS (moons of 1000 rows at full batch, digits), where
    the arithmetic already dominates and bigger stacked arrays fall out of cache."""
    config = cfg.to_dict()
    why = unstackable(config)
    if why:
        return None, why
    size = cfg.optimizer.batch_size
    rows = n_train if size is None else min(size, n_train)
    sizes = list(cfg.model.layers)
    work = rows * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if work >= MAX_MULTIPLY_ADDS:
        return None, (f"{work} multiply-adds a batch (at least {MAX_MULTIPLY_ADDS}): "
                      "stacking gains little")
    return group_key(config), None


def member_limit() -> int:
    """The most members one stack may have: each keeps FILES_PER_MEMBER files open, within the
    process's limit on open files (``ulimit -n``; 1024 by default on Linux, so 240 members).
    compare splits a larger group into stacks of at most this many."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, (soft - FILES_BESIDES) // FILES_PER_MEMBER)


def same_shapes(members: list[Experiment]) -> bool:
    """The members' arrays line up: the same layer sizes, dtype, training rows and batches."""
    first = members[0]
    return all(m.net.sizes == first.net.sizes and m.net.dtype == first.net.dtype
               and len(m.train.X) == len(first.train.X) and m.batches.size == first.batches.size
               and type(m.optimizer) is type(first.optimizer) and m.loss.fused_with ==
               first.loss.fused_with and getattr(m.optimizer, "nesterov", False) ==
               getattr(first.optimizer, "nesterov", False) for m in members)


# -- the stacked network -------------------------------------------------------------------


class Stack:
    """The members' parameters, gradients and optimizer state as stacked arrays; each member's
    network and optimizer hold views into them."""

    def __init__(self, members: list[Experiment]):
        self.members = members
        nets = [m.net for m in members]
        self.dtype = nets[0].dtype
        self.W = [np.stack([net.W[i] for net in nets]) for i in range(len(nets[0].W))]
        self.b = [np.stack([net.b[i] for net in nets]) for i in range(len(nets[0].b))]
        self.dW = [np.zeros_like(W) for W in self.W]
        self.db = [np.zeros_like(b) for b in self.b]
        self.bind()
        template = build_network(members[0].cfg)  # the activations, applied stacked
        self.activations = template.activations
        self.hidden = template.activations[:-1]
        self.loss, self.task = members[0].loss, members[0].task
        # an elementwise output activation (sigmoid, identity) is applied to the stack too;
        # another (softmax) by each member's own, on its slice
        self.output = (template.activations[-1]
                       if repr(template.activations[-1]) in ELEMENTWISE else None)
        # every member's loss in one call (else member by member, on its slice)
        self.whole = self.loss.stacks and self.output is not None
        self.buffers: dict[int, dict] = {}
        self.is_weight = [i % 2 == 0 for i in range(2 * len(self.W))]
        self.state = StackedOptimizer(members, self.params)
        self.parts = {"train": member_part([m.train for m in members]),
                      "val": member_part([m.val for m in members])}
        self.finite = np.ones(len(members), bool)  # each member's parameters all finite
        self.stats: tuple[int, list] | None = None  # (epoch, each member's layers.csv rows)

    @property
    def params(self) -> list[np.ndarray]:
        return [p for W, b in zip(self.W, self.b) for p in (W, b)]

    @property
    def grads(self) -> list[np.ndarray]:
        return [g for dW, db in zip(self.dW, self.db) for g in (dW, db)]

    def bind(self) -> None:
        """Each member's network arrays become its slice of the stack."""
        for s, net in enumerate(m.net for m in self.members):
            net.W, net.b = [W[s] for W in self.W], [b[s] for b in self.b]
            net.dW, net.db = [dW[s] for dW in self.dW], [db[s] for db in self.db]

    def keep(self, kept: list[int]) -> None:
        """Go on with the members ``kept`` only, the others having ended: the stacked arrays,
        the optimizer's state and the stacked data cut to their slices, and each kept
        member's network and optimizer moved onto its new slice. Each member's arithmetic is
        its own slice's, so the members left train on bit for bit as before; the ended ones
        keep their views of the old arrays."""
        self.members = [self.members[s] for s in kept]
        self.W, self.b = [W[kept] for W in self.W], [b[kept] for b in self.b]
        self.dW, self.db = [dW[kept] for dW in self.dW], [db[kept] for db in self.db]
        self.bind()
        self.state.keep(kept)
        self.parts = {name: part and part.keep(kept) for name, part in self.parts.items()}
        self.finite, self.stats, self.buffers = self.finite[kept], None, {}

    def check_finite(self) -> None:
        """Which members' parameters are all finite, for their divergence sentinels: one
        check of each stacked array instead of one of each member's."""
        S = len(self.members)
        self.finite = np.logical_and.reduce([np.isfinite(p).reshape(S, -1).all(axis=1)
                                             for p in self.params])

    def buffers_for(self, n: int) -> dict:
        buf = self.buffers.get(n)
        if buf is None:
            S, sizes = len(self.members), self.members[0].net.sizes
            z = [np.empty((S, n, units), self.dtype) for units in sizes[1:]]
            a = [z[i] if act.inplace else np.empty_like(z[i])
                 for i, act in enumerate(self.hidden)] + [np.empty_like(z[-1])]
            da = [np.empty((S, n, units), self.dtype) for units in sizes[1:]]
            buf = self.buffers[n] = {"z": z, "a": a, "da": da, "ones": np.ones(n, self.dtype),
                                     "delta": np.empty_like(z[-1])}
        return buf

    def loss_and_delta(self, z_out, out, batch: Part, active: list[int]):
        """Each member's E (one float64 per member) and dE/dz of the output layer (S, n, k):
        for the whole stack in one call (``whole``), else member by member on the active
        ones' slices."""
        loss = self.loss
        if self.whole:
            E, grad = loss.value_and_grad(z_out, out, batch.Y)
            return E, grad if loss.fused_with else self.output.backward(grad)
        E, delta = np.zeros(len(self.members)), self.buffers_for(out.shape[-2])["delta"]
        for s in active:
            E[s], grad = loss.value_and_grad(z_out[s], out[s], batch.member(s).Y)
            if not loss.fused_with and self.output is None:
                grad = self.members[s].net.activations[-1].backward(grad)
            delta[s] = grad
        if not loss.fused_with and self.output is not None:
            delta = self.output.backward(delta)
        return E, delta

    def evaluate(self, part: str, active: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each member's loss and metric on its ``part`` (as experiment.evaluate), from one
        stacked forward pass."""
        data = self.parts[part]
        a = self.forward(data.X, active)
        z_out, out = self.buffers_for(data.X.shape[-2])["z"][-1], a[-1]
        if self.whole:
            E = self.loss.value_from(z_out, out, data.Y)
        else:
            E = np.zeros(len(self.members))
            for s in active:
                E[s] = self.loss.value_from(z_out[s], out[s], data.member(s).Y)
        return E, self.task.metric_sum(out, data.truth) / data.X.shape[-2]

    def layer_stats(self, epoch: int) -> list[list[dict]]:
        """Each member's layers.csv rows for this epoch (as diagnostics.layer_stats after a
        training epoch), measured for the whole stack once: a forward pass over the training
        parts, the last batch's gradients and the last updates."""
        if self.stats is None or self.stats[0] != epoch:
            S = len(self.members)
            outputs = self.forward(self.parts["train"].X, list(range(S)))
            rows = layer_figures(list(zip(self.activations, outputs, self.W, self.dW)),
                                 self.state.updates, self.is_weight, members=True)
            # each figure's values as Python numbers, all members' at once
            values = [{k: v.tolist() if isinstance(v, np.ndarray) else [v] * S
                       for k, v in row.items()} for row in rows]
            self.stats = (epoch, [[{k: v[s] for k, v in row.items()} for row in values]
                                  for s in range(S)])
        return self.stats[1]

    def forward(self, X: np.ndarray, active: list[int]) -> list[np.ndarray]:
        """Every layer's a for the batch X ((n, k) shared, or (S, n, k)); the output layer's
        activation is each active member's own, on its slice."""
        buf = self.buffers_for(X.shape[-2])
        a = X
        last = len(self.W) - 1
        for i, (W, b, z) in enumerate(zip(self.W, self.b, buf["z"])):
            np.matmul(a, W, out=z)
            z += b[:, None, :]
            if i < last:
                a = self.hidden[i].forward(z, buf["a"][i])
            elif self.output is not None:
                made = self.output.forward(z, buf["a"][i])
                if made is not buf["a"][i]:  # identity hands back z itself
                    buf["a"][i][...] = made
            else:
                for s in active:
                    out = buf["a"][i][s]
                    made = self.members[s].net.activations[-1].forward(z[s], out)
                    if made is not out:  # identity hands back z itself
                        out[...] = made
                a = buf["a"][i]
        return buf["a"]

    def backward(self, X: np.ndarray, a: list[np.ndarray], delta: np.ndarray) -> None:
        buf = self.buffers_for(X.shape[-2])
        for i in range(len(self.W) - 1, -1, -1):
            a_prev = X if i == 0 else a[i - 1]
            np.matmul(np.swapaxes(a_prev, -1, -2), delta, out=self.dW[i])
            np.matmul(buf["ones"], delta, out=self.db[i])
            if i > 0:
                da = np.matmul(delta, np.swapaxes(self.W[i], -1, -2), out=buf["da"][i - 1])
                delta = self.hidden[i - 1].backward(da)


class StackedOptimizer:
    """gd, momentum and adam over stacked parameters, each member with its own scalars (lr,
    beta, eps, weight decay, step count) computed in Python as its lone optimizer computes
    them; the members' optimizers hold views of the state (for their checkpoints)."""

    def __init__(self, members: list[Experiment], params: list[np.ndarray]):
        self.opts = [m.optimizer for m in members]
        self.kind = type(self.opts[0])
        self.dtype = params[0].dtype
        self.updates = [np.zeros_like(p) for p in params]
        names = self.kind.state_names
        self.extra = {name: [np.zeros_like(p) for p in params] for name in names}

    def bind(self) -> None:
        """The members' optimizers take views of the state at the first step, as a lone
        optimizer makes its state then (before it, a checkpoint holds only the step count)."""
        for s, opt in enumerate(self.opts):
            opt.updates = [u[s] for u in self.updates]
            for name, arrays in self.extra.items():
                setattr(opt, name, [a[s] for a in arrays])

    def keep(self, kept: list[int]) -> None:
        """The members ``kept`` only (Stack.keep): their state, their optimizers' views."""
        bound = self.opts[0].updates is not None
        self.opts = [self.opts[s] for s in kept]
        self.updates = [u[kept] for u in self.updates]
        self.extra = {name: [a[kept] for a in arrays] for name, arrays in self.extra.items()}
        if bound:
            self.bind()

    def scalars(self, lrs: list[float]) -> dict[str, np.ndarray]:
        """This step's per-member values, each computed in Python as the member's lone
        optimizer computes it, then cast to the parameters' dtype: made once a step, not once
        a parameter."""
        o = self.opts
        values = {"-lr": [-lr for lr in lrs]}
        if self.kind is Momentum:
            values["beta"] = [x.beta for x in o]
        elif self.kind is Adam:
            values.update(beta1=[x.beta1 for x in o], rest1=[1 - x.beta1 for x in o],
                          beta2=[x.beta2 for x in o], rest2=[1 - x.beta2 for x in o],
                          correction2=[math.sqrt(1 - x.beta2**x.t) for x in o],
                          eps=[x.eps for x in o],
                          step=[-(lr / (1 - x.beta1**x.t)) for lr, x in zip(lrs, o)])
        return {name: np.array(v, dtype=self.dtype) for name, v in values.items()}

    def step(self, params, grads, lrs: list[float], is_weight: list[bool]) -> None:
        if self.opts[0].updates is None:
            self.bind()
        for opt in self.opts:
            opt.t += 1
        scalars, shaped = self.scalars(lrs), {}
        for i, (p, g, u) in enumerate(zip(params, grads, self.updates)):
            if is_weight[i]:
                for s, opt in enumerate(self.opts):  # as the lone step: only if it has one
                    if opt.weight_decay:
                        g[s] += opt.weight_decay * p[s]
            if p.ndim not in shaped:  # the values shaped to broadcast over p's member axis
                shaped[p.ndim] = {name: v.reshape((-1,) + (1,) * (p.ndim - 1))
                                  for name, v in scalars.items()}
            self.update(i, g, u, shaped[p.ndim])
            p += u

    def update(self, i, g, u, per: dict[str, np.ndarray]) -> None:
        if self.kind is GD:
            np.multiply(g, per["-lr"], out=u)
        elif self.kind is Momentum:
            v = self.extra["v"][i]
            v *= per["beta"]
            v += g
            if self.opts[0].nesterov:
                np.multiply(v, per["beta"], out=u)
                u += g
                u *= per["-lr"]
            else:
                np.multiply(v, per["-lr"], out=u)
        else:  # Adam, term by term as Adam.update
            m, v = self.extra["m"][i], self.extra["v"][i]
            m *= per["beta1"]
            m += per["rest1"] * g
            v *= per["beta2"]
            np.multiply(g, g, out=u)
            u *= per["rest2"]
            v += u
            np.sqrt(v, out=u)
            u /= per["correction2"]
            u += per["eps"]
            np.divide(m, u, out=u)
            u *= per["step"]


# -- training the members ------------------------------------------------------------------


@dataclass
class Member:
    exp: Experiment
    training: Training
    calls: CallbackList
    run: Run | None = None  # set when the member has ended
    error: Exception | None = None  # what its run failed with, if it failed on its own


class MemberView:
    """What a member's callbacks ask its stack for (Training.stacked): measured for every
    member at once, each member's value its lone run's."""

    def __init__(self, stack: Stack, s: int):
        self.stack, self.s = stack, s

    def parameters_finite(self) -> bool:
        return bool(self.stack.finite[self.s])

    def layer_stats(self, epoch: int) -> list[dict]:
        return self.stack.layer_stats(epoch)[self.s]


@dataclass
class Part:
    """A part of every member's data (training, validation, or a step's batches): one member's
    arrays when every member's are equal, which the stacked products broadcast uncopied;
    else stacked, (S, n, ...)."""

    X: np.ndarray
    Y: np.ndarray
    truth: np.ndarray
    stacked: bool

    def member(self, s: int) -> Part:
        if not self.stacked:
            return self
        return Part(self.X[s], self.Y[s], self.truth[s], False)

    def keep(self, kept: list[int]) -> Part:
        if not self.stacked:
            return self
        return Part(self.X[kept], self.Y[kept], self.truth[kept], True)


def member_part(splits: list[Split | None]) -> Part | None:
    """The members' splits as one Part (None when they have none). Members whose data
    differ are stacked; past MAX_STACKED_BYTES they do not stack (ValueError)."""
    if any(split is None for split in splits):
        return None
    first = splits[0]
    if all(np.array_equal(sp.X, first.X) and np.array_equal(sp.Y, first.Y) for sp in splits):
        return Part(first.X, first.Y, first.truth, False)
    size = len(splits) * (first.X.nbytes + first.Y.nbytes + first.truth.nbytes)
    if size > MAX_STACKED_BYTES:
        raise ValueError(f"these runs do not stack: their data differ and stacked would take "
                         f"{size >> 20} MB")
    return Part(*(np.stack(arrays) for arrays in
                  zip(*((sp.X, sp.Y, sp.truth) for sp in splits))), True)


def member_batches(stack: Stack, members: list[Member]):
    """An epoch's steps, each a Part: the whole training parts, or each member's next
    mini-batch in its own order (Batches.epoch_order), gathered stacked."""
    first, data = members[0].exp.batches, stack.parts["train"]
    if first.whole:
        yield data
        return
    orders = np.stack([m.exp.batches.epoch_order() for m in members])  # (S, n)
    # each member's rows: of the one shared array, or of its own slice of the stacked ones
    rows = (np.arange(len(members))[:, None],) if data.stacked else ()
    for begin in range(0, orders.shape[1], first.size):
        index = (*rows, orders[:, begin:begin + first.size])
        yield Part(data.X[index], data.Y[index], data.truth[index], True)


def stacked_epoch(stack: Stack, members: list[Member], active: list[int],
                  epoch: int) -> list[tuple[dict, tuple | None]]:
    """One pass over each member's training data in its own batch order: one stacked step
    per batch, then validation. Returns each active member's figures, as loop.train_epoch's,
    and its validation loss and metric (None without validation data)."""
    lrs = [m.exp.schedule(m.exp.cfg.optimizer.lr, epoch - 1) for m in members]
    loss_sum, metric_sum, norm_sum = np.zeros((3, len(members)))  # as the lone loop's sums
    n_batches = 0
    for batch in member_batches(stack, members):
        a = stack.forward(batch.X, active)
        n = batch.X.shape[-2]
        E, delta = stack.loss_and_delta(stack.buffers_for(n)["z"][-1], a[-1], batch, active)
        loss_sum += E * n
        metric_sum += stack.task.metric_sum(a[-1], batch.truth)
        stack.backward(batch.X, a, delta)
        norm_sum += gradient_norm(stack.grads, members=True)
        n_batches += 1
        stack.state.step(stack.params, stack.grads, lrs, stack.is_weight)
    n = len(members[0].exp.train.X)
    losses, metrics, norms = (loss_sum / n).tolist(), (metric_sum / n).tolist(), \
        (norm_sum / n_batches).tolist()
    validation = [None] * len(members)
    if stack.parts["val"] is not None:
        validation = list(zip(*(values.tolist() for values in stack.evaluate("val", active))))
    return [({"loss": losses[s], stack.task.metric: metrics[s], "lr": lrs[s],
              "grad_norm": norms[s], "spent": 2 * n_batches}, validation[s]) for s in active]


def train_stacked(cfgs: list[Config], outs: list[Path], datas: list | None = None) -> list:
    """Train the configs' runs as stacked members, each into its run folder ``outs[s]``;
    returns each member's Run, or the exception its run ended with. The configs must stack
    (``group_key`` equal, ``unstackable`` None); a ConfigError in any is raised before
    anything is written."""
    for out in outs:  # as train's: a folder that cannot be a run's is refused first
        check_out_dir(out)
    if len(cfgs) > member_limit():
        raise ValueError(f"these runs do not stack: {len(cfgs)} members would keep more files "
                         f"open than this process may (ulimit -n)")
    exps = [setup(cfg, None if datas is None else datas[s]) for s, cfg in enumerate(cfgs)]
    if not exps:
        return []
    if not same_shapes(exps):
        raise ValueError("these runs do not stack: their shapes differ")
    members = []
    stack = Stack(exps)
    for s, (exp, out) in enumerate(zip(exps, outs)):
        training = Training(exp, stacked=MemberView(stack, s))
        members.append(Member(exp, training, default_callbacks(training, None, [], out)))
    threads = max(exp.threads for exp in exps)
    with (np.errstate(over="ignore", invalid="ignore", divide="ignore"),
          limit_threads(threads), StopRequests() as stop):
        run_members(stack, members, stop)
    results = []
    for m in members:
        run = Run(m.training.folder.path, m.training.summary, m.training.history)
        if m.error is not None:
            results.append(m.error)
        elif m.training.status == "interrupted":
            results.append(Interrupted(run, m.training.summary.get("signal", "SIGINT")))
        else:
            results.append(run)
    return results


def run_members(stack: Stack, members: list[Member], stop: StopRequests) -> None:
    """loop.train for every member at once: its callbacks begin; epoch 0, then one stacked
    pass per epoch, each member's row and callbacks in the lone loop's order; a member that
    stops (completed, early stopping, diverged, interrupted) or fails ends there, the others
    go on. A failure of the shared arithmetic fails every member still running."""
    active = list(range(len(members)))  # each begins inside the try, as in loop.train
    try:
        for s in list(active):
            members[s].training.signals = stop
            if not alone(members[s], members[s].calls.on_train_begin):
                active.remove(s)
        epochs = members[0].exp.cfg.train.epochs
        for epoch in range(epochs + 1):
            if not active:
                break
            for s in active:
                members[s].training.at_epoch_end = False
            measured = (stacked_epoch(stack, members, active, epoch) if epoch
                        else [(untrained_figures(members[s].exp), None) for s in active])
            stack.check_finite()
            requested = stop.requested  # read once: every member stops after the same epoch
            for s, (figures, validation) in zip(list(active), measured):
                if not alone(members[s], member_epoch, members[s], epoch, epochs, figures,
                             validation, requested):
                    active.remove(s)
            active = end_stopped(members, active)
            if active and 2 * len(active) <= len(members):  # half of them or more ended
                members, active = compact(stack, members, active), list(range(len(active)))
    except KeyboardInterrupt as signalled:  # a second Ctrl-C, or SIGTERM: every member at once
        for s in active:
            members[s].training.stop("interrupted")
            members[s].training.summary["signal"] = signal_name(signalled)
    except BaseException:
        for s in active:
            members[s].training.stop("failed")
        raise
    finally:
        for s in active:
            end_member(members[s])


def compact(stack: Stack, members: list[Member], active: list[int]) -> list[Member]:
    """The stack goes on with the members still running only (Stack.keep), so that their
    epochs no longer pay for the arithmetic of those that ended (early stopping, divergence);
    returns them in order, each one's view following its new slice."""
    stack.keep(active)
    kept = [members[s] for s in active]
    for s, member in enumerate(kept):
        member.training.stacked.s = s
    return kept


def member_epoch(m: Member, epoch: int, epochs: int, figures: dict, validation: tuple | None,
                 requested) -> None:
    """A member's end of the epoch, as loop.train's: its row (with the stack's validation
    figures, or at epoch 0 its own), then its callbacks."""
    row = epoch_row(m.exp, epoch, figures, m.training, validation)
    if epoch == epochs:
        m.training.stop("completed")
    if requested:  # a first Ctrl-C: every member stops after this epoch
        m.training.stop("interrupted")
    m.calls.on_epoch_end(epoch, row)


def alone(member: Member, work, *args) -> bool:
    """Run a member's own part of the epoch (its row and callbacks; at epoch 0 its validation
    too); if it fails, that member alone fails (ended, its exception kept), as its lone run
    would have, and the others go on. Returns whether it is still running."""
    try:
        work(*args)
        return True
    except Exception as err:
        member.error = err
        member.training.stop("failed")
        end_member(member)
        return False


def end_stopped(members: list[Member], active: list[int]) -> list[int]:
    """End the members whose runs stopped at this epoch; the ones still running."""
    going = []
    for s in active:
        training = members[s].training
        if training.stopping:
            if training.status == "interrupted" and training.signals.requested:
                training.summary["signal"] = training.signals.requested
            end_member(members[s])
        else:
            going.append(s)
    return going


def end_member(member: Member) -> None:
    if member.run is None:
        member.run = Run(member.training.folder.path, member.training.summary,
                         member.training.history)
        end_run(member.training, member.calls)
