"""Sweep expressions are counted before they are expanded: range(0,10**12) in an override, a grid
whose axes multiply to millions of runs, or --seeds 10**12 is one line and exit 2, at once,
instead of a list that grows until the machine runs out of memory (docs/configuration.md)."""

import os
import resource
import subprocess
import sys
import time

import pytest

from conftest import CONFIGS
from nntrain.compare import Sweep, make_sweep, parse_seeds
from nntrain.config import MAX_GRID, parse_override
from nntrain.registry import ConfigError

HUGE = 10**12


@pytest.fixture
def bounded_memory():
    """The test process may map 1 GiB more than it has: a regression that lists range(0,10**12)
    fails with MemoryError in a second instead of filling the machine."""
    if not os.path.exists("/proc/self/statm"):  # not Linux: no bound, the test runs as it is
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        limit = os.sysconf("SC_PAGE_SIZE") * int(f.read().split()[0]) + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS,
                       (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_the_documented_limit():
    assert MAX_GRID == 10_000  # the number docs/configuration.md states
    assert len(parse_override(f"optimizer.batch_size=range(1,{MAX_GRID + 1})").values) == MAX_GRID
    with pytest.raises(ConfigError, match=f"optimizer.batch_size: .* {MAX_GRID + 1} grid points, "
                                          f"more than the limit of {MAX_GRID}"):
        parse_override(f"optimizer.batch_size=range(1,{MAX_GRID + 2})")


@pytest.mark.parametrize("override, count", [
    (f"seed=range(0,{HUGE})", str(HUGE)),
    (f"seed=shuffle(range(0,{HUGE}))", str(HUGE)),  # Hydra's shuffle would list it whole
    (f"seed=sort(range({HUGE},0,-1))", str(HUGE)),
    ("optimizer.lr=range(0,1e12)", str(HUGE)),  # a float range: Hydra steps it in Decimal
    ("optimizer.lr=range(0,2,0.0001)", "20000"),
    ("optimizer.lr=range(0,1,1e-300)", "about 10^300"),
    (f"seed=range(-{HUGE},{HUGE},-1)", None),  # empty: counts down only with a negative step
])
def test_a_range_is_counted_not_expanded(override, count, bounded_memory):
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        parse_override(override)
    assert time.perf_counter() - started < 1.0
    key = override.split("=")[0]
    expected = (f"{key}: the sweep has {count} grid points" if count
                else f"{key}: range(-{HUGE}, {HUGE}, -1) holds no values")
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("optimizer.lr=range(0,inf)", "range() needs finite numbers"),
    ("optimizer.lr=range(0,nan)", "range() needs finite numbers"),
    ("optimizer.batch_size=range(1,5,0)", "range() needs a step other than 0"),
    ("optimizer.lr=range(0,1,0.0)", "range() needs a step other than 0"),
    ("optimizer.lr=range(1,1)", "holds no values"),
    ("optimizer.lr=glob(*)", "glob() picks Hydra config groups"),
    (f"seed=range(0,1{'0' * 4400})", "cannot parse the value"),  # over Python's int() limit
])
def test_sweeps_that_cannot_be_counted_are_refused(override, message, bounded_memory):
    with pytest.raises(ConfigError, match=override.split("=")[0]) as err:
        parse_override(override)
    assert message in str(err.value)


def test_small_sweeps_are_expanded_as_before():
    assert parse_override("optimizer.lr=range(0,1,0.25)").values == [0.0, 0.25, 0.5, 0.75]
    assert parse_override("optimizer.batch_size=range(5,0,-2)").values == [5, 3, 1]
    assert parse_override("optimizer.batch_size=sort(range(4,0,-1))").values == [1, 2, 3, 4]
    assert sorted(parse_override("seed=shuffle(range(0,4))").values) == [0, 1, 2, 3]
    assert parse_override("optimizer.batch_size=range(4)").values == [0, 1, 2, 3]


def test_a_grid_over_the_limit_is_refused_naming_its_axes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = ["optimizer.batch_size=range(1,101)", "train.epochs=range(1,51)"]
    with pytest.raises(ConfigError) as err:
        make_sweep(CONFIGS / "xor.yaml", overrides, None, "3", None)
    assert str(err.value).startswith(
        "optimizer.batch_size x train.epochs x --seeds: 100 x 50 x 3 = 15000 grid points, "
        f"more than the limit of {MAX_GRID}")
    with pytest.raises(ConfigError, match="model.initializer x --seeds: 2 x 5001 = 10002"):
        make_sweep(CONFIGS / "xor.yaml", [], ["zeros", "he_normal"], "5001", None)
    with pytest.raises(ConfigError, match="a x b x --seeds: 101 x 100 x 1 = 10100 grid points"):
        Sweep({}, {"a": list(range(101)), "b": list(range(100))}, [0])


def test_a_grid_at_the_limit_still_runs_its_points(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = make_sweep(CONFIGS / "xor.yaml", ["optimizer.batch_size=range(1,5)",
                                              "model.activation=tanh,relu"], None, "3", None)
    assert sweep.axes == {"optimizer.batch_size": [1, 2, 3, 4], "model.activation": ["tanh", "relu"]}
    assert len(sweep.points()) == 4 * 2 * 3
    sweep = make_sweep(CONFIGS / "xor.yaml", ["optimizer.batch_size=range(1,2501)"], None, "4", None)
    assert len(sweep.points()) == MAX_GRID


def test_seeds_are_counted_before_they_are_listed(bounded_memory):
    assert parse_seeds(str(MAX_GRID), 7)[-1] == 7 + MAX_GRID - 1
    for text in (str(HUGE), str(10**400), ",".join(["1"] * (MAX_GRID + 1))):
        with pytest.raises(ConfigError, match=r"--seeds: asks for .* grid points, more than"):
            parse_seeds(text, 0)


def test_the_commands_say_it_in_one_line(cli, tmp_path):
    result = cli("train", CONFIGS / "xor.yaml", f"seed=range(0,{MAX_GRID + 1})")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: seed: the sweep has {MAX_GRID + 1} grid points, "
                                     f"more than the limit of {MAX_GRID}; split it into smaller "
                                     "sweeps")
    result = cli("compare", CONFIGS / "xor.yaml", "optimizer.lr=0.1,0.5", "--seeds", "5001")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: optimizer.lr x --seeds: 2 x 5001 = 10002")
    assert list(tmp_path.iterdir()) == []  # refused before any folder is made


def limited_memory():
    """The child may map 4 GiB: a sweep expanded whole fails there fast (MemoryError, exit 1)
    instead of filling the machine, so a regression is a failing test, not a stuck one."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["train", CONFIGS / "xor.yaml", f"seed=range(0,{HUGE})"],
     f"error: seed: the sweep has {HUGE} grid points"),
    (["compare", CONFIGS / "xor.yaml", f"optimizer.batch_size=range(1,{HUGE})"],
     f"error: optimizer.batch_size: the sweep has {HUGE - 1} grid points"),
    (["compare", CONFIGS / "xor.yaml", "optimizer.batch_size=range(1,10001)",
      "train.epochs=range(1,10001)"],
     "error: optimizer.batch_size x train.epochs x --seeds: 10000 x 10000 x 1 = 100000000"),
    (["compare", CONFIGS / "xor.yaml", "--seeds", str(HUGE)],
     f"error: --seeds: asks for {HUGE} grid points"),
])
def test_huge_sweeps_are_refused_at_once_in_a_real_process(tmp_path, args, expected):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OPENBLAS_NUM_THREADS": "1"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nntrain", *map(str, args)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=60,
                            preexec_fn=limited_memory)
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert time.perf_counter() - started < 30
    assert list(tmp_path.iterdir()) == []  # no compare folder, no run folder
