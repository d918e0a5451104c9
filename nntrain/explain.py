"""One training step, phase by phase, in the notes' notation (`nntrain explain`).

The phases: initialize, forward, error, back-propagation, update. The numbers
are the network's own: the training step ``Network.loss_and_backward`` with
``trace=True`` (which copies each layer's z, a and delta as the pass makes
them) and the config's optimizer. Shapes as in the notes: W is (fan_in,
fan_out), z = a_prev W + b, one row per sample. float64 whatever the config's
dtype, as gradcheck: central differences need it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from .activations import ACTIVATIONS
from .config import Config
from .experiment import Experiment, setup
from .gradcheck import check_gradients
from .initializers import INITIALIZERS
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .runs import to_json

DEFAULT_SAMPLES = 4  # the whole batch, at most this many rows: a step one can follow
SHOWN = 6  # rows and columns of a matrix printed without --full
CHECKED = 100  # entries of each parameter checked by central differences without --full


@dataclass
class Step:
    """Everything one explained step computed, in the network's layer order."""

    exp: Experiment  # built in float64
    dtype: str  # the config's own train.dtype
    X: np.ndarray  # (N, fan_in of layer 1): the inputs, a_0
    Y: np.ndarray  # (N, outputs): the targets
    lr: float
    initial: list[dict]  # per layer {W, b}
    forward: list[dict]  # per layer {z, a}
    dE_do: np.ndarray | None  # None: the loss is fused with the output activation
    per_sample: np.ndarray  # (N,)
    E: float
    backward: list[dict]  # per layer {delta, dW, db}
    errors: dict[str, float]  # parameter name -> relative error against central differences
    checked_all: bool
    state: dict[str, list[np.ndarray]]  # the optimizer's state_names after the step (v; m, v)
    updated: list[dict]  # per layer {W, b}
    loss_after: float

    @property
    def max_error(self) -> float:
        return max(self.errors.values())


def sample_count(cfg: Config, n_train: int, samples: int | None) -> int:
    """--samples, or the whole batch capped at DEFAULT_SAMPLES; never more than the data has."""
    if samples is not None:
        return min(samples, n_train)
    batch = cfg.optimizer.batch_size or n_train
    return min(batch, n_train, DEFAULT_SAMPLES)


def explain_step(cfg: Config, samples: int | None = None, full: bool = False) -> Step:
    """One gradient-descent step of the config's network on its first training samples."""
    exp = setup(replace(cfg, train=replace(cfg.train, dtype="float64")))
    net, loss = exp.net, exp.loss
    n = sample_count(exp.cfg, len(exp.train.X), samples)
    X, Y = exp.train.X[:n], exp.train.Y[:n]
    initial = [{"W": W.copy(), "b": b.copy()} for W, b in zip(net.W, net.b)]
    traced = net.loss_and_backward(X, Y, loss, trace=True)
    E, trace, dE_do = traced.E, traced.trace, traced.dE_do
    grads = [g.copy() for g in net.gradients()]  # weight decay adds to them in place
    backward = [{"delta": t.delta, "dW": dW.copy(), "db": db.copy()}
                for t, dW, db in zip(trace, net.dW, net.db)]
    # without --full, the first CHECKED entries of each parameter (no rng), as print_backward says
    checks = check_gradients(net, X, Y, loss, grads, None if full else CHECKED)
    lr = exp.schedule(exp.cfg.optimizer.lr, 0)
    exp.optimizer.step(net.parameters(), net.gradients(), lr, net.is_weight())
    return Step(
        exp=exp, dtype=cfg.train.dtype, X=X, Y=Y, lr=lr, initial=initial,
        forward=[{"z": t.z, "a": t.a} for t in trace], dE_do=dE_do,
        per_sample=per_sample_losses(exp, trace[-1].z, trace[-1].a, Y), E=E,
        backward=backward, errors={name: c["error"] for name, c in checks.items()},
        checked_all=all(c["every_entry"] for c in checks.values()),
        state=optimizer_state(exp), updated=[{"W": W.copy(), "b": b.copy()} for W, b in
                                             zip(net.W, net.b)],
        loss_after=net.loss(X, Y, loss))


def per_sample_losses(exp: Experiment, z: np.ndarray, o: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The loss of each row alone (E of a one-row batch): E is their mean."""
    x = z if exp.loss.fused_with else o
    return np.array([exp.loss.value(x[n:n + 1], Y[n:n + 1]) for n in range(len(Y))])


def optimizer_state(exp: Experiment) -> dict[str, list[np.ndarray]]:
    """Each of the optimizer's ``state_names`` (momentum's v, Adam's m and v) after the step,
    in the order of ``parameters()``: the step has made them."""
    return {name: [s.copy() for s in getattr(exp.optimizer, name)]
            for name in exp.optimizer.state_names}


# -- JSON ------------------------------------------------------------------------------------


def step_json(step: Step) -> dict:
    """Every array as nested lists, under the keys a notebook reads."""
    def lists(layers):
        return [{k: v.tolist() for k, v in layer.items()} for layer in layers]

    return {
        "inputs": step.X.tolist(), "targets": step.Y.tolist(), "lr": step.lr,
        "initial": lists(step.initial), "forward": lists(step.forward),
        "loss": {"per_sample": step.per_sample.tolist(), "E": step.E},
        "backward": lists(step.backward),
        "gradcheck_max_rel_error": step.max_error,
        "updated": lists(step.updated), "loss_after": step.loss_after,
    }


# -- printing --------------------------------------------------------------------------------


def print_step(step: Step, full: bool = False, as_json: bool = False) -> None:
    """The five phases as rich tables (4 significant digits), or the JSON."""
    if as_json:
        sys.stdout.write(to_json(step_json(step)) + "\n")
        return
    from rich.console import Console

    terminal = sys.stdout.isatty()
    widest = max(max(p["W"].shape) for p in step.initial)  # columns of the widest matrix
    # wide enough for it (up to 13 characters a column at 4 digits), so that piped
    # output, --full above all, is not squeezed into 80 columns
    width = None if terminal and not full else max(80, 13 * (widest if full else SHOWN) + 4)
    console = Console(highlight=False, soft_wrap=not terminal, width=width)
    show = Printer(console, full)
    with console.capture() as captured:
        for phase in (print_initialize, print_forward, print_error, print_backward, print_update):
            phase(step, show)
    text = captured.get()
    if not terminal:  # rich pads every line to the width: plain text without the padding
        text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    sys.stdout.write(text)


class Printer:
    """Headings, formula lines and matrices (a slice of a large one unless ``full``)."""

    def __init__(self, console, full: bool):
        self.console, self.full = console, full

    def heading(self, text: str) -> None:
        from rich.text import Text

        self.console.print()
        self.console.print(Text(text, style="bold"))  # Text: a formula's [...] is not markup

    def line(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text))

    def matrices(self, *named: tuple[str, np.ndarray]) -> None:
        """Matrices side by side, each titled with its name and shape."""
        from rich.columns import Columns

        # Columns, not a grid: a matrix that does not fit beside the others goes below them
        self.console.print(Columns([self.matrix(name, np.atleast_2d(m)) for name, m in named],
                                   padding=(0, 2)))

    def matrix(self, name: str, m: np.ndarray):
        from rich import box
        from rich.table import Table
        from rich.text import Text

        rows, cols = m.shape
        cut = not self.full and (rows > SHOWN or cols > SHOWN)
        shown = m[:SHOWN, :SHOWN] if cut else m
        title = f"{name} {rows}x{cols}" + (f", first {len(shown)}x{shown.shape[1]}" if cut else "")
        table = Table(title=Text(title), show_header=False, box=box.SQUARE, title_justify="left",
                      min_width=len(title))
        for row in shown:
            table.add_row(*(f"{v:.4g}" for v in row))
        return table


def formula(registry, component) -> str:
    return f"{component.registry_name}: {registry.formula(component.registry_name)}"


def print_initialize(step: Step, show: Printer) -> None:
    net, cfg = step.exp.net, step.exp.cfg
    show.heading("1. Initialize: W is (fan_in, fan_out), b is (fan_out,)")
    if step.dtype != "float64":
        show.line(f"(in float64; the config trains in {step.dtype})")
    for l, (init, p) in enumerate(zip(net.initializers, step.initial), start=1):
        fan_in, fan_out = p["W"].shape
        bias = ("given" if init.bias_given else "the initializer's own"
                if cfg.model.bias_initializer is None
                else f"bias_initializer {cfg.model.bias_initializer}")
        show.line(f"layer {l}: W{l} ~ {formula(INITIALIZERS, init)}")
        show.line(f"  target std {init.target_std(fan_in, fan_out):.4g}, drawn std "
                  f"{p['W'].std():.4g}; b{l}: {bias}")
        show.matrices((f"W{l}", p["W"]), (f"b{l}", p["b"]))


def print_forward(step: Step, show: Printer) -> None:
    net = step.exp.net
    show.heading(f"2. Forward: z_l = a_(l-1) W_l + b_l, a_l = f(z_l); a_0 = x, "
                 f"one row per sample (N = {len(step.X)})")
    prep = step.exp.data.prep
    if prep.mean is not None:  # data.standardize: the network sees (raw - mean) / std
        show.line("x is the standardized row: (raw - mean) / std, with the mean and std of the "
                  "training part")
        show.matrices(("raw", prep.raw(step.X)), ("x = a_0", step.X), ("y", step.Y))
    else:
        show.matrices(("x = a_0", step.X), ("y", step.Y))
    for l, (act, f) in enumerate(zip(net.activations, step.forward), start=1):
        show.line(f"layer {l}: f = {formula(ACTIVATIONS, act)}")
        show.matrices((f"z{l}", f["z"]), (f"a{l}", f["a"]))


def print_error(step: Step, show: Printer) -> None:
    loss = step.exp.loss
    show.heading("3. Error: E(W) = the mean over samples of each sample's loss")
    show.line(formula(LOSSES, loss))
    show.matrices(("loss per sample", step.per_sample[:, None]))
    n = len(step.per_sample)
    terms = " + ".join(f"{v:.4g}" for v in step.per_sample) if n <= SHOWN else "..."
    show.line(f"E = (1/N) sum_n loss_n = ({terms}) / {n} = {step.E:.4g}")


def print_backward(step: Step, show: Printer) -> None:
    net, loss = step.exp.net, step.exp.loss
    L = len(net.W)
    show.heading("4. Back-propagation: delta_l = dE/dz_l")
    out = net.activations[-1].registry_name
    if step.dE_do is None:
        show.line(f"{loss.registry_name} is fused with {out}: nntrain computes dE/dz_{L} from "
                  f"the logits z_{L} directly (stable), without forming dE/do")
    else:
        show.matrices(("dE/do", step.dE_do))
        if net.activations[-1].hidden:  # elementwise
            show.line(f"delta_{L} = dE/do * f'(z_{L}), f = {out}")
        else:  # softmax mixes the units of a row
            show.line(f"delta_{L} = dE/do times the Jacobian of {out}, per sample: "
                      f"{ACTIVATIONS.formula(out)}")
    for l in range(L, 0, -1):
        b = step.backward[l - 1]
        if l < L:
            show.line(f"delta_{l} = (delta_{l + 1} W_{l + 1}^T) * f'(z_{l}), "
                      f"f = {net.activations[l - 1].registry_name}")
        show.line(f"dW_{l} = a_{l - 1}^T delta_{l}, db_{l} = sum of delta_{l} over samples")
        show.line(f"  against central differences: relative error W {step.errors[f'W{l}']:.2g}, "
                  f"b {step.errors[f'b{l}']:.2g}")
        show.matrices((f"delta_{l}", b["delta"]), (f"dW_{l}", b["dW"]), (f"db_{l}", b["db"]))
    what = "every entry" if step.checked_all else f"the first {CHECKED} entries of each parameter"
    show.line(f"largest relative error ({what}, ||a - n|| / (||a|| + ||n||) per parameter): "
              f"{step.max_error:.2g}")


def print_update(step: Step, show: Printer) -> None:
    opt = step.exp.optimizer
    show.heading(f"5. Update: {formula(OPTIMIZERS, opt)}")
    show.line(f"lr = {step.lr:.4g}" + (f", weight_decay {opt.weight_decay:g}: the gradient of "
                                       f"each W gets + weight_decay W" if opt.weight_decay else ""))
    if "m" in step.state:  # Adam's bias corrections
        show.line(f"t = {opt.t}: 1 - beta1^t = {1 - opt.beta1 ** opt.t:.4g}, "
                  f"1 - beta2^t = {1 - opt.beta2 ** opt.t:.4g}")
    names = step.exp.net.parameter_names()
    for l, p in enumerate(step.updated, start=1):
        i = names.index(f"W{l}")
        state = [(f"{s}(W{l})", arrays[i]) for s, arrays in step.state.items()]
        state += [(f"{s}(b{l})", arrays[i + 1]) for s, arrays in step.state.items()]
        if state:
            show.matrices(*state)
        show.matrices((f"new W{l}", p["W"]), (f"new b{l}", p["b"]))
    show.line(f"E after the step = {step.loss_after:.4g} (before: {step.E:.4g})")
