"""The learning-rate range test behind ``nntrain lr-find`` (Smith 2015, "Cyclical Learning Rates
for Training Neural Networks", section 3.3; fastai's ``lr_find``; Lightning's ``Tuner.lr_find``).

From the config's initialization, one mini-batch step per learning rate, the rate growing
exponentially from ``start`` to ``end`` over ``steps`` steps:

    lr_t = start * (end / start) ** (t / (steps - 1)),   t = 0 .. steps-1

Each step is the training loop's own (``loop.train_epoch`` over one batch, the optimizer's
``step`` given lr_t), on the config's data, network, loss and optimizer. The loss of step t is
the batch's, measured before its update, and is smoothed by a bias-corrected exponential moving
average (Adam's correction; fastai's and Lightning's smoothing):

    avg_t = beta avg_{t-1} + (1 - beta) loss_t,   avg_-1 = 0;   smoothed_t = avg_t / (1 - beta^(t+1))

The test stops after the step whose smoothed loss is not finite or exceeds 4x the lowest
smoothed loss so far. Nothing is kept: the network lives only in this function.

The three suggestions are heuristics, read off the smoothed curve in fastai's window (the first
tenth of the planned steps and the last 5 steps taken left out, cut at the first non-finite
value): ``steepest``, ``minimum_over_10`` and ``valley`` (see each function).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import Config
from .experiment import Split, setup
from .loop import Probe, train_epoch
from .optimizers import Schedule
from .registry import ConfigError, describe
from .threads import limit_threads

BETA = 0.98  # the smoothing's beta: fastai's and Lightning's
DIVERGED = 4.0  # stop once the smoothed loss passes this many times its minimum
SKIP_END = 5  # steps taken left out at the end of the suggestions' window (fastai's)

RULES = {
    "steepest": "the most negative slope of the smoothed loss against log lr",
    "minimum_over_10": "a tenth of the lr where the smoothed loss is lowest",
    "valley": "fastai's valley: halfway down the longest descent of the smoothed loss",
}
HEURISTICS = ("These are heuristics, not answers: train at a suggestion, at 10x and at 0.1x "
              "of it, and compare.")


class RangeRate(Schedule):
    """lr_t = start * (end/start)^(t/(steps-1)): from start at t = 0 to end at t = steps-1.

    The range test's schedule, over steps instead of epochs; the config's lr is ignored."""

    def __init__(self, start: float, end: float, steps: int):
        self.start, self.end, self.steps = start, end, steps

    def __call__(self, lr, t):
        return self.start * (self.end / self.start) ** (t / (self.steps - 1))

    def __repr__(self) -> str:
        return f"range_test(start={self.start:g}, end={self.end:g}, steps={self.steps})"


class Smoothing:
    """The bias-corrected exponential moving average of a stream of losses."""

    def __init__(self, beta: float = BETA):
        self.beta, self.avg, self.count = beta, 0.0, 0

    def __call__(self, loss: float) -> float:
        self.count += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        return self.avg / (1 - self.beta**self.count)


def diverged(smoothed: float, lowest: float) -> bool:
    """The stopping rule: the smoothed loss is not finite, or above 4x its minimum. For a loss
    that can be negative (gaussian_nll) '4x' reads as 'the minimum plus 3x its size', which is
    the same thing for a positive minimum."""
    return not math.isfinite(smoothed) or smoothed > lowest + (DIVERGED - 1) * abs(lowest)


@dataclass
class RangeTest:
    """What a range test measured: one entry per step taken, and what it suggests."""

    lr: list[float]
    loss: list[float]  # the batch's loss before the step's update
    smoothed: list[float]
    stopped_at: dict | None  # {step, lr, reason} of the step that stopped it; None: all ran
    suggestions: dict[str, float | None] = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the config as run (its lr, loss: resolved)

    def as_dict(self) -> dict:
        """--json's keys (non-finite losses become null when written as JSON)."""
        return {"lr": self.lr, "loss": self.loss, "smoothed": self.smoothed,
                "suggestions": self.suggestions, "stopped_at": self.stopped_at}


# -- the suggestions ---------------------------------------------------------------------------


def window(lr, smoothed, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """fastai's window of the curve (lr_find's ``[num_it//10:-5]``): the first tenth of the
    planned steps (the burn-in, where a few early losses move the average most: Lightning
    #1767) and the last 5 steps taken left out, then cut at the first non-finite value."""
    lr, smoothed = np.asarray(lr, float), np.asarray(smoothed, float)
    begin, end = steps // 10, len(lr) - SKIP_END
    lr, smoothed = lr[begin:max(begin, end)], smoothed[begin:max(begin, end)]
    bad = np.flatnonzero(~np.isfinite(smoothed))
    cut = bad[0] if len(bad) else len(smoothed)
    return lr[:cut], smoothed[:cut]


def steepest(lr: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The lr of the most negative slope d(smoothed)/d(ln lr), by central differences in ln lr
    (the rates are spaced evenly in log lr; slopes against lr itself would favour the smallest
    rates, where the spacing is tiny: Lightning #21141). Only the descent up to the smoothed
    minimum counts: a dip on the way up after it is noise. None when the loss never falls."""
    low = int(np.argmin(smoothed)) + 1
    if low < 2:
        return None
    slopes = np.gradient(smoothed[:low], np.log(lr[:low]))
    best = int(np.argmin(slopes))
    return float(lr[best]) if slopes[best] < 0 else None


def minimum_over_10(lr: np.ndarray, smoothed: np.ndarray) -> float:
    """A tenth of the lr at the smoothed loss's minimum (fastai's ``minimum``; Smith's advice
    to stay below where the loss is lowest)."""
    return float(lr[int(np.argmin(smoothed))]) / 10


def valley(lr: np.ndarray, smoothed: np.ndarray) -> float | None:
    """fastai's ``valley`` (fastai/callback/schedule.py, after Zachary Mueller's gist): the
    longest valley is the longest strictly decreasing subsequence of the losses, lds[i] its
    length ending at i; [max_start, max_end] spans it, max_start = max_end - lds[max_end] (one
    before its first point, as fastai has it); the suggestion is at
    idx = max_start + int(sections) + int(sections / 2), sections = (max_end - max_start) / 3,
    about halfway down. fastai's double loop over j < i is one array comparison per i here;
    max_end is the first i of the longest length, as fastai's strict '<' keeps it. One
    deviation: a valley of fewer than 3 points suggests nothing (fastai's idx would be
    max_start, which may be -1, its last point)."""
    n = len(smoothed)
    lds = np.ones(n, dtype=int)
    for i in range(1, n):
        longer = smoothed[:i] > smoothed[i]  # j < i with losses[i] < losses[j]
        if longer.any():
            lds[i] = lds[:i][longer].max() + 1
    max_end = int(np.argmax(lds))  # the first i with the longest valley
    if lds[max_end] < 3:
        return None
    max_start = max_end - int(lds[max_end])
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lr[idx])


SUGGESTIONS = {"steepest": steepest, "minimum_over_10": minimum_over_10, "valley": valley}


def suggest(lr, smoothed, steps: int) -> dict[str, float | None]:
    """Each rule's lr from fastai's window of the curve; None for all when fewer than 2 points
    are left in it (too few steps before the loss diverged)."""
    lr, smoothed = window(lr, smoothed, steps)
    if len(lr) < 2:
        return dict.fromkeys(SUGGESTIONS)
    return {name: rule(lr, smoothed) for name, rule in SUGGESTIONS.items()}


# -- the test ----------------------------------------------------------------------------------


def check_range(start: float, end: float, steps: int) -> None:
    """--start, --end and --steps: finite, 0 < start < end, steps >= 2."""
    for name, value in (("--start", start), ("--end", end)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"must be a positive number, got {describe(value)}", name)
    if end <= start:
        raise ConfigError(f"must be above --start ({start:g}), got {end:g}", "--end")
    if steps < 2:
        raise ConfigError(f"must be at least 2, got {steps}", "--steps")


def batches(exp):
    """The training split's batches, epoch after epoch, in the order training draws them."""
    while True:
        yield from exp.batches


def range_test(cfg: Config, start: float = 1e-7, end: float = 10.0, steps: int = 100,
               progress=None) -> RangeTest:
    """Run the range test on ``cfg`` (see the module's docstring); ``progress(step)`` is
    called after each step. Nothing is written."""
    check_range(start, end, steps)
    exp = setup(cfg)
    if exp.optimizer.gradient_free:
        raise ConfigError(f"{exp.optimizer!r} takes no learning rate: lr-find needs an optimizer "
                          "that follows the gradient (gd, momentum, adam)", "optimizer.name")
    rate = RangeRate(start, end, steps)
    arrays = (exp.net.parameters(), exp.net.gradients(), exp.net.is_weight())  # taken once
    probe = Probe(exp.net, exp.loss, arrays[0], whole=False)  # the optimizer's loss closure
    smoothing, lowest = Smoothing(), math.inf
    lr, loss, smoothed, stopped = [], [], [], None
    # a diverging step overflows by design: the stopping rule, not numpy, says so
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            limit_threads(exp.threads):
        for t, batch in zip(range(steps), batches(exp)):
            # one batch is an 'epoch' of train_epoch: the loop's step, lr_t from the schedule
            one = replace(exp, train=Split(*batch), batches=[batch], schedule=rate)
            figures = train_epoch(one, t + 1, arrays, probe)  # epoch t+1: schedule(lr, t)
            lr.append(figures["lr"])
            loss.append(figures["loss"])
            smoothed.append(smoothing(figures["loss"]))
            lowest = min(lowest, smoothed[-1])
            if diverged(smoothed[-1], lowest):
                reason = (f"the smoothed loss passed {DIVERGED:g}x its minimum"
                          if math.isfinite(smoothed[-1]) else "the loss is not finite")
                stopped = {"step": t + 1, "lr": lr[-1], "reason": reason}
                break
            if progress is not None:
                progress(t + 1)
    return RangeTest(lr, loss, smoothed, stopped, suggest(lr, smoothed, steps),
                     exp.cfg.to_dict())


# -- what it shows -----------------------------------------------------------------------------


def summary_lines(result: RangeTest, steps: int) -> list[str]:
    """What lr-find prints: how far it went, each suggestion with its rule, the caveat."""
    taken = len(result.lr)
    where = (f"stopped at step {taken} of {steps} (lr {result.stopped_at['lr']:.3g}): "
             f"{result.stopped_at['reason']}" if result.stopped_at
             else f"ran all {steps} steps without diverging")
    lines = [f"lr from {result.lr[0]:.3g} to {result.lr[-1]:.3g}; {where}"]
    lowest = int(np.nanargmin(np.where(np.isfinite(result.smoothed), result.smoothed, np.nan)))
    lines.append(f"lowest smoothed loss {result.smoothed[lowest]:.4g} at lr "
                 f"{result.lr[lowest]:.3g}")
    for name, rule in RULES.items():
        value = result.suggestions.get(name)
        shown = f"{value:.3g}" if value is not None else "none"
        lines.append(f"  {name:<16} {shown:<9} {rule}")
    if all(v is None for v in result.suggestions.values()):
        lines.append("too few steps before the loss diverged to suggest a rate: raise --steps "
                     "or lower --end")
    lines.append(HEURISTICS)
    return lines


def draw(result: RangeTest, out: Path, title: str = "") -> Path:
    """The curve against lr (log scale): the raw loss faint behind the smoothed one, each
    suggestion marked on the smoothed curve and labelled with its rule."""
    from .plots import new_figure, save_figure

    lr, loss, smoothed = (np.asarray(a, float) for a in (result.lr, result.loss, result.smoothed))
    fig = new_figure((7.5, 4.8), dpi=110)
    ax = fig.add_subplot()
    ax.plot(lr, loss, color="tab:blue", alpha=0.25, lw=1, label="loss (each batch)")
    ax.plot(lr, smoothed, color="tab:blue", lw=2, label=f"smoothed (EMA, beta {BETA:g})")
    ax.set_xscale("log")
    finite = np.isfinite(smoothed)
    if finite.any():
        # the descent in view: from the top of the curve before its minimum down to the lowest
        # raw or smoothed loss there; the rise after it (up to 4x, or overflowing) goes off the top
        lowest = int(np.argmin(np.where(finite, smoothed, np.inf)))
        descent = np.concatenate([smoothed[:lowest + 1], loss[:lowest + 1]])
        descent = descent[np.isfinite(descent)]
        low, high = descent.min(), smoothed[:lowest + 1].max()
        pad = 0.05 * (high - low or abs(high) or 1.0)
        ax.set_ylim(low - pad, high + 2 * pad)
    for (name, value), color, marker in zip(result.suggestions.items(),
                                            ("tab:red", "tab:green", "tab:orange"), "ovs"):
        if value is not None:
            at = np.interp(math.log(value), np.log(lr), np.where(np.isfinite(smoothed),
                                                                 smoothed, np.nan))
            ax.plot([value], [at], marker, color=color, ms=8,
                    label=f"{name} {value:.3g}: {RULES[name]}")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"{title}: learning-rate range test" if title else "learning-rate range test")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              title="the suggestions are heuristics", title_fontsize=8)
    ax.grid(True, alpha=0.3)
    return save_figure(fig, out)


# -- --out DIR ---------------------------------------------------------------------------------

CSV, JSON, PICTURE, CONFIG = "lr_find.csv", "lr_find.json", "lr_find.png", "config.yaml"
MAX_JSON_BYTES = 64 * 2**20  # an lr_find.json larger than this is not lr-find's (view skips it)


def write_folder(result: RangeTest, settings: dict, out: Path) -> Path:
    """``--out DIR``: lr_find.csv (step,lr,loss,smoothed), lr_find.json (--json's keys and the
    settings), config.yaml (the config as run) and lr_find.png, written into a hidden folder
    beside DIR and renamed into place: DIR appears whole or not at all."""
    from .runs import check_out_dir, format_value, to_json, write_atomic, write_yaml

    out = check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        tmp.mkdir()
        rows = ["step,lr,loss,smoothed"] + [
            ",".join([str(i + 1), *map(format_value, row)])
            for i, row in enumerate(zip(result.lr, result.loss, result.smoothed))]
        write_atomic(tmp / CSV, "\n".join(rows) + "\n")
        write_atomic(tmp / JSON, to_json({**result.as_dict(), **settings}) + "\n")
        write_yaml(tmp / CONFIG, result.config)
        draw(result, tmp / PICTURE, result.config.get("name") or "")
        os.rename(tmp, out)  # replaces DIR if it is an empty folder
    except OSError as err:
        raise ConfigError(f"could not be written: {err.strerror or err}", f"--out {out}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_folder(folder: Path) -> dict | None:
    """An ``--out`` folder's lr_find.json as --json's keys (lists of numbers or null, one entry
    per step; suggestions by rule), or None when it is missing or not that shape: the folder
    may come from someone else, and nothing in it is trusted (``nntrain view`` draws it)."""
    import json

    from .runs import regular, strict

    path = Path(folder) / JSON
    try:
        if regular(path).stat().st_size > MAX_JSON_BYTES:
            return None
        data = strict(json.loads(path.read_text()))  # NaN and 1e999 parse: they become null
    except (OSError, ValueError, ConfigError):  # UnicodeDecodeError, JSONDecodeError
        return None

    def numbers(values) -> bool:
        return isinstance(values, list) and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)

    if not isinstance(data, dict) or not all(numbers(data.get(k)) for k in ("lr", "loss",
                                                                               "smoothed")):
        return None
    if not len(data["lr"]) == len(data["loss"]) == len(data["smoothed"]):
        return None
    suggestions = data.get("suggestions")
    if not isinstance(suggestions, dict) or not numbers(list(suggestions.values())):
        suggestions = {}
    return {"lr": data["lr"], "loss": data["loss"], "smoothed": data["smoothed"],
            "suggestions": {str(k): v for k, v in suggestions.items()}}


def find_folders(path: Path) -> list[Path]:
    """``--out`` folders of lr-find at or under ``path`` (holding lr_find.json), sorted."""
    path = Path(path)
    if (path / JSON).is_file():
        return [path]
    return sorted(p.parent for p in path.rglob(JSON) if not any(
        part.startswith(".") for part in p.parent.relative_to(path).parts))
