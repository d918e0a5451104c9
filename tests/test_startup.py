"""Start-up and the loop's own cost (docs/performance.md, "Start-up and the loop's own cost"):
what `nntrain --help` and the config loader import, the override fast path against hydra-core's
own parser, and metrics.csv / layers.csv rows written as format_value writes them."""

import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from nntrain.config import HYDRA_PREFIX, Override, parse_override, plain_override
from nntrain.runs import CsvLog, WriteError, format_value

from conftest import CONFIGS, ROOT

HEAVY = ("numpy", "pandas", "matplotlib", "plotly", "hydra", "dask", "yaml", "pydantic")


def modules_after(code: str) -> set[str]:
    """The top-level packages (and nntrain's modules) loaded after running ``code`` in a fresh
    interpreter; ``code`` may end the process with SystemExit (a Typer command does)."""
    script = (f"import sys\ntry:\n    exec({code!r})\nexcept SystemExit:\n    pass\n"
              "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    loaded = done.stderr.strip().splitlines()[-1].split()
    return {m.split(".")[0] for m in loaded} | {m for m in loaded if m.startswith("nntrain.")}


@pytest.mark.slow
def test_help_imports_no_numpy():
    loaded = modules_after("import sys, runpy\nsys.argv = ['nntrain', '--help']\n"
                           "runpy.run_module('nntrain', run_name='__main__')")
    assert "typer" in loaded  # the help was printed by the real command
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.slow
def test_plain_overrides_do_not_load_hydra_and_the_config_no_datasets():
    xor = CONFIGS / "xor.yaml"
    loaded = modules_after("import nntrain.config")
    assert "nntrain.datasets" not in loaded and "hydra" not in loaded
    loaded = modules_after("from nntrain.config import load_config\n"
                           f"load_config({str(xor)!r}, ['optimizer.lr=0.3', "
                           "'model.initializer=zeros', '+train.threads=1'])")
    assert "hydra" not in loaded
    loaded = modules_after("from nntrain.config import load_config\n"
                           f"load_config({str(xor)!r}, ['model.layers=[2,8,1]'])")
    assert "hydra" in loaded  # a list is Hydra's to parse


@pytest.mark.slow
def test_report_does_not_load_the_training_loop(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "nntrain", "train", str(CONFIGS / "xor.yaml"),
                           "train.epochs=3", "--out", str(out), "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = modules_after("import sys, runpy\n"
                           f"sys.argv = ['nntrain', 'report', {str(out)!r}]\n"
                           "runpy.run_module('nntrain', run_name='__main__')")
    assert "nntrain.results" in loaded  # the report was made
    assert not {"nntrain.loop", "nntrain.experiment", "nntrain.network"} & loaded


# -- the override fast path against hydra-core's parser -----------------------------------------

hydra_parser = pytest.importorskip("hydra.core.override_parser.overrides_parser")
PARSER = hydra_parser.OverridesParser.create()


def by_hydra(text: str):
    """(prefix, key, value) as hydra-core parses ``text``; None if it is no plain change."""
    try:
        parsed = PARSER.parse_override(text)
    except Exception:  # noqa: BLE001  any refusal: the fast path must not have accepted it
        return None
    if parsed.package is not None or parsed.is_sweep_override():
        return None
    return HYDRA_PREFIX[parsed.type.name], parsed.key_or_group, parsed.value()


def same_value(a, b) -> bool:
    """Equal and of the same type (1 is not 1.0 nor True); nan equals nan of the same sign."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b) and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def assert_as_hydra(text: str) -> None:
    fast = plain_override(text)
    if fast is None:
        return
    expected = by_hydra(text)
    assert expected is not None, f"{text!r}: the fast path took what hydra refuses or sweeps"
    prefix, key, value = expected
    assert (fast.prefix, fast.key, fast.sweep) == (prefix, key, False), text
    assert len(fast.values) == 1 and same_value(fast.values[0], value), (text, fast, value)


PLAIN = [  # each is taken by the fast path, and each gives hydra's value
    "a=1", "a=0", "a=-1", "a=+1", "a=1_000", "a=007", "a=0_1", "a=1_", "a=_1", "a=1__0",
    "a=0x10", "a=1.", "a=.5", "a=-.5", "a=+.5", "a=1.5", "a=1e3", "a=1E-3", "a=1.5e+2",
    "a=1.e5", "a=.5e1", "a=1e", "a=1e+", "a=1_0.5_5", "a=1e1_0", "a=1e999", "a=-1e999",
    "a=1.2.3", "a=1-2", "a=inf", "a=-Inf", "a=+INF", "a=NaN", "a=-nan", "a=nanx", "a=infinity",
    "a=true", "a=TRUE", "a=False", "a=fAlSe", "a=truex", "a=null", "a=NULL", "a=nullx",
    "a=relu", "a=leaky-relu", "a=he_normal", "a=xavier_uniform", "a=_", "a=-", "a=.", "a=+",
    "a=/", "a=data/x.csv", "a=./x", "a=../data/moons.csv", "a=x.", "a=-x", "a=1x", "a=e5",
    "optimizer.lr=0.5", "model.initializer=zeros", "+data.n_samples=200", "++train.threads=1",
    "train.dtype=float32", "data.path=/tmp/a-b_c.csv", "optimizer.batch_size=null",
]
NOT_PLAIN = [  # each is left to hydra-core's parser
    "a='1'", 'a="x y"', "a=[1,2]", "a={b:1}", "a=1,2", "a=${x}", "a=${x.y}", "a=$x", "a=\\,",
    "a=x\\ y", "~a", "~a=1", "a=", "a= 1", "a=1 ", "a=x y", "a=x:y", "a@b=1", "a=range(1,3)",
    "a=choice(x,y)", "a=interval(0,1)", "a.0=1", "a-b=1", "a=é", "a=1²", "+++a=1", "a==1",
    "a=x=y", "a=%x", "a=*", "a=x?", "a=x|y", "a=@x", "a=~x", "a=(1)", "a=" + "1" * 101, "=1",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_override_is_hydras(text):
    assert plain_override(text) is not None, text
    assert_as_hydra(text)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_anything_else_goes_to_hydra(text):
    assert plain_override(text) is None


@pytest.mark.parametrize("alphabet", [
    "eEiInNfFaA_0123+-./tTrRuUlLsSxX",  # plain characters: numbers, words, paths
    "aeinf_019+-./ ,:$@{}[]()\\'\"=~*%?|tTrRuUlLsSxX\t",  # everything Hydra's grammar treats
])
def test_random_overrides_parse_as_hydra_parses_them(alphabet):
    rng = random.Random(24)
    keys = ["a", "lr", "optimizer.lr", "+a.b", "++x", "~a", "a-b", "a.0", "_x.y_z", "a@p"]
    taken = 0
    for _ in range(2500):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        text = f"{rng.choice(keys)}={value}"
        assert_as_hydra(text)
        taken += plain_override(text) is not None
    assert taken > 100  # the fast path was exercised, not only declined


def test_parse_override_gives_the_same_either_way():
    assert parse_override("optimizer.lr=1e-3") == Override("", "optimizer.lr", [0.001])
    assert parse_override("+data.noise=0.1") == Override("+", "data.noise", [0.1])
    assert parse_override("model.layers=[2,8,1]") == Override("", "model.layers", [[2, 8, 1]])
    assert parse_override("seed=1,2") == Override("", "seed", [1, 2], sweep=True)
    assert parse_override("~train.threads") == Override("~", "train.threads", [])


# -- metrics.csv and layers.csv rows -------------------------------------------------------------

ROW = {"epoch": 3, "loss": 0.1 + 0.2, "none": None, "name": "tanh", "flag": True,
       "f32": np.float32(0.1), "f64": np.float64(1 / 3), "i64": np.int64(7), "big": 10**20,
       "nan": float("nan"), "inf": -math.inf, "zero": -0.0, "tiny": 5e-324}


def test_rows_are_format_values_text_and_on_disk_when_written(tmp_path):
    columns = [*ROW, "missing"]
    log = CsvLog(tmp_path / "m.csv", columns)
    log.write(ROW)
    # flushed: another reader sees the whole row before the next epoch would start
    header, line = (tmp_path / "m.csv").read_text().splitlines()
    assert header == ",".join(columns)
    assert line.split(",") == [format_value(ROW.get(c)) for c in columns]
    assert line == ("3,0.30000000000000004,,tanh,True,0.10000000149011612,0.3333333333333333,"
                    "7,100000000000000000000,nan,-inf,-0.0,5e-324,")
    log.close()


def test_a_row_of_floats_and_ints_is_format_values_text_too(tmp_path):
    plain = {k: v for k, v in ROW.items() if type(v) in (int, float)}
    assert len(plain) == 7  # the %-format's path: every cell a float or an int
    log = CsvLog(tmp_path / "m.csv", list(plain))
    log.write(plain)
    log.close()
    line = (tmp_path / "m.csv").read_text().splitlines()[1]
    assert line == ",".join(format_value(v) for v in plain.values())
    assert line == "3,0.30000000000000004,100000000000000000000,nan,-inf,-0.0,5e-324"


def test_rows_of_text_and_blanks_are_format_values_text(tmp_path):
    """layers.csv's rows (an activation's name; a blank grad_norm at epoch 0) and rows of
    NumPy scalars or bools in the same columns: each line is format_value's text."""
    layer = {"epoch": 0, "layer": 2, "activation": "tanh", "act_mean": 0.1 + 0.2,
             "grad_norm": None, "ratio": 5e-324}
    rows = [layer, {**layer, "epoch": 10, "grad_norm": 1 / 3}, {**layer, "activation": "a%sb"},
            {**layer, "act_mean": np.float32(0.1)}, {**layer, "layer": True}, layer]
    log = CsvLog(tmp_path / "l.csv", list(layer))
    for row in rows:
        log.write(row)
    log.close()
    lines = (tmp_path / "l.csv").read_text().splitlines()[1:]
    assert lines == [",".join(format_value(v) for v in row.values()) for row in rows]
    assert lines[0] == "0,2,tanh,0.30000000000000004,,5e-324"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors by /proc")
def test_a_log_whose_header_cannot_be_written_keeps_no_file_open(tmp_path, monkeypatch):
    import nntrain.runs
    from nntrain.snapshots import SnapshotFile

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(nntrain.runs.os, "write", full_disk)
    for attempt in range(5):
        with pytest.raises(WriteError, match="no space left"):
            CsvLog(tmp_path / f"m{attempt}.csv", ["epoch", "loss"])
        with pytest.raises(WriteError, match="no space left"):
            SnapshotFile(tmp_path / f"s{attempt}.bin", ["b1"], [np.zeros(3)])
    monkeypatch.undo()
    assert len(os.listdir("/proc/self/fd")) == before


def test_floats_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = [float(x) for x in rng.standard_normal(200) * 10.0 ** rng.integers(-300, 300, 200)]
    log = CsvLog(tmp_path / "m.csv", ["x"])
    for x in values:
        log.write({"x": x})
    log.close()
    assert [float(t) for t in (tmp_path / "m.csv").read_text().split()[1:]] == values


def test_a_failed_row_write_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import nntrain.runs

    log = CsvLog(tmp_path / "m.csv", ["epoch"])
    real_write = os.write

    def full_disk(fd, data):
        if fd == log.fd:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(nntrain.runs.os, "write", full_disk)
    with pytest.raises(WriteError, match=r"no space left on device while writing .*m\.csv"):
        log.write({"epoch": 1})
