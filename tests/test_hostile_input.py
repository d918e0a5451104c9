"""Hostile config and data input (issue 14, items 7-13 and 15-18): refused in one line, exit 2,
nothing written, no hang; a plugin that exits or raises is named."""

import dataclasses
import inspect
import json
import math
import time
import typing

import numpy as np
import pytest

from conftest import write
from nntrain import datasets
from nntrain.cli import registries_by_kind
from nntrain.config import Config, load_config, safe_load
from nntrain.datasets import load_data
from nntrain.registry import QUOTE_LIMIT, ConfigError, Registry, describe, shorten
from test_bad_input import BASE, check_refused, files_under

NON_FINITE = [math.nan, math.inf, -math.inf]


def refused(cli, tmp_path, text, fragment, *args):
    config = write(tmp_path / "c.yaml", text)
    check_refused(cli, tmp_path, [config, *args], fragment)


# -- 7: alias bombs, deep nesting, long values in errors ------------------------------------


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nseed: *a{levels - 1}\n"


@pytest.mark.parametrize("levels", [7, 9])
def test_alias_bomb_is_refused_quickly_with_a_short_message(cli, tmp_path, levels):
    start = time.perf_counter()
    refused(cli, tmp_path, alias_bomb(levels), "aliases (*name) expand to more than 100000 values")
    assert time.perf_counter() - start < 5


def test_aliases_of_a_sane_size_still_work():
    raw = safe_load("base: &b {name: gd, lr: 0.1}\noptimizer: {<<: *b, lr: 0.5}\nother: *b\n")
    assert raw["optimizer"] == {"name": "gd", "lr": 0.5}  # a merge key may override on purpose
    assert raw["other"] == {"name": "gd", "lr": 0.1}


@pytest.mark.parametrize("text", [
    "seed: " + "[" * 5000 + "]" * 5000 + "\n",
    "seed:\n" + "".join(" " * i + "- \n" for i in range(1000)),
    "seed: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
])
def test_deep_nesting_is_a_config_error(cli, tmp_path, text):
    refused(cli, tmp_path, text, "nested deeper than 100 levels")


@pytest.mark.parametrize("value", [
    "x" * 100_000,
    "[" + ", ".join(["123456789"] * 20_000) + "]",
    "{" + ", ".join(f"k{i}: {i}" for i in range(5000)) + "}",
])
@pytest.mark.slow
def test_a_value_quoted_in_an_error_is_cut(cli, tmp_path, value):
    config = write(tmp_path / "c.yaml", BASE + f"seed: {value}\n")
    result = cli("train", config)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: seed: must be an integer, got ")
    assert len(result.stderr) < 2 * QUOTE_LIMIT, result.stderr


def test_describe_and_shorten_cut_values():
    assert describe("relu") == "'relu'" and describe(0.5) == "0.5" and describe(None) == "None"
    assert len(describe(list(range(10**5)))) <= QUOTE_LIMIT
    assert len(describe("y" * 10**6)) <= QUOTE_LIMIT
    assert describe(10**5000) == "a huge integer"  # str() of it would raise
    cut = shorten("a" * 50 + "b" * 50)
    assert len(cut) == QUOTE_LIMIT and cut.startswith("aaa") and cut.endswith("bbb")


# -- 9: NaN and inf in every numeric parameter ----------------------------------------------


def numeric_parameters():
    """(kind, component, parameter) for every float or int parameter of every registered component."""
    cases = []
    for kind, registry in registries_by_kind().items():
        for name in registry:
            component = registry.get(name)
            target = component.__init__ if inspect.isclass(component) else component
            hints = typing.get_type_hints(target)
            for p in inspect.signature(component).parameters.values():
                default_is_number = (isinstance(p.default, (int, float))
                                     and not isinstance(p.default, bool))
                hinted = hints.get(p.name)
                if default_is_number or hinted in (float, int) or (
                        float in typing.get_args(hinted) or int in typing.get_args(hinted)):
                    cases.append((kind, name, p.name))
    return cases


NUMERIC = numeric_parameters()


def test_the_registry_wide_list_is_not_empty():
    names = {(kind, param) for kind, _, param in NUMERIC}
    for expected in [("optimizers", "weight_decay"), ("optimizers", "eps"), ("schedules", "gamma"),
                     ("schedules", "decay"), ("initializers", "std"), ("initializers", "gain"),
                     ("initializers", "scale"), ("activations", "alpha"), ("losses", "delta"),
                     ("datasets", "noise"), ("datasets", "n_samples")]:
        assert expected in names


def prepare_with(kind: str, name: str, param: str, value):
    registry = registries_by_kind()[kind]
    component = registry.get(name)
    # what nntrain itself supplies (rng, a layer's activation, a file path) is passed as context
    context = {p.name: None for p in inspect.signature(component).parameters.values()
               if p.name != param}
    return registry.prepare({"name": name, param: value}, "key", **context)


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("kind,name,param", NUMERIC, ids=["-".join(c) for c in NUMERIC])
def test_every_numeric_component_parameter_refuses_nan_and_inf(kind, name, param, value):
    with pytest.raises(ConfigError, match=rf"key\.{param}: must be .*(a finite number|an integer)"):
        prepare_with(kind, name, param, value)


def test_a_plugin_parameter_without_annotation_refuses_nan_too():
    registry = Registry("thing")

    @registry.register("mine")
    def mine(alpha=0.5, label="x"):
        return alpha

    assert registry.build({"name": "mine", "alpha": 2.0}) == 2.0
    with pytest.raises(ConfigError, match="alpha: must be a finite number, got nan"):
        registry.build({"name": "mine", "alpha": math.nan})


def numeric_config_keys(cls=Config, prefix=""):
    """Dotted keys of the config schema whose annotation is a number (nested sections included)."""
    keys = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        options = typing.get_args(hint) or (hint,)
        nested = [o for o in options if dataclasses.is_dataclass(o)]
        if nested:
            keys += numeric_config_keys(nested[0], f"{prefix}{f.name}.")
        elif float in options or int in options:
            keys.append(prefix + f.name)
    return keys


PARAM_KEYS = ["data.noise", "optimizer.weight_decay", "data.n_samples"]


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", numeric_config_keys() + PARAM_KEYS)
def test_every_numeric_config_key_refuses_nan_and_inf(key, value):
    raw = safe_load(BASE)
    node = raw
    *sections, last = key.split(".")
    for part in sections:
        if node.get(part) is None:  # train.early_stopping: null, or a section BASE leaves out
            node[part] = {}
        node = node[part]
    node[last] = value
    with pytest.raises(ConfigError, match=f"{key}: must be (a finite number|an integer)"):
        load_config(raw=raw)


def test_numeric_config_keys_cover_the_ones_the_issue_names():
    keys = numeric_config_keys()
    assert {"optimizer.lr", "train.early_stopping.min_delta", "data.val_fraction"} <= set(keys)


@pytest.mark.parametrize("override,fragment", [
    # Hydra's grammar: nan, inf (YAML's .nan is a string there, refused as not a number)
    ("optimizer.lr=nan", "optimizer.lr: must be a finite number, got nan"),
    ("+train.early_stopping={min_delta: nan}", "train.early_stopping.min_delta: must be a finite"),
    ("+data.noise=inf", "data.noise: must be a finite number, got inf"),
    ("optimizer.lr=.nan", "optimizer.lr: must be a number, got '.nan'"),
    ("optimizer.schedule={name: step, gamma: -1}", "gamma must be in (0, 1], got -1"),
    ("optimizer.schedule={name: step, gamma: 0}", "gamma must be in (0, 1]"),
    ("optimizer={name: adam, eps: 0}", "eps must be > 0"),
    ("model.initializer={name: xavier_uniform, gain: 0}", "gain must be > 0"),
    ("model.initializer={name: xavier_normal, gain: 1e200}", "too large to compute with"),
    ("model.initializer={name: orthogonal, gain: -1}", "gain must be > 0"),
])
def test_out_of_range_parameters_are_refused_by_the_cli(cli, tmp_path, override, fragment):
    refused(cli, tmp_path, BASE, fragment, override)


# -- 10: silent acceptance ------------------------------------------------------------------


@pytest.mark.parametrize("text,fragment", [
    (BASE + "seed: 1\nseed: 2\n", "line 6, column 1: duplicate key 'seed'"),
    (BASE.replace("lr: 0.5", "lr: 0.5, lr: 0.1"), "line 3, column 32: duplicate key 'lr'"),
    ("data:\n  name: xor\n  name: moons\n" + BASE.split("\n", 1)[1],
     "line 3, column 3: duplicate key 'name'"),
])
def test_duplicate_keys_are_refused_with_their_line(cli, tmp_path, text, fragment):
    refused(cli, tmp_path, text, fragment)


def test_duplicate_keys_in_an_override_value_are_refused(cli, tmp_path):
    refused(cli, tmp_path, BASE, "duplicate key 'lr'", "optimizer={name: gd, lr: 1, lr: 2}")


def npz_config(tmp_path, layers="[2, 1]", **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return write(tmp_path / "c.yaml", f"data: {{name: npz, path: {tmp_path / 'd.npz'}}}\n"
                                      f"model: {{layers: {layers}}}\ntrain: {{epochs: 2}}\n")


X4 = np.arange(8.0).reshape(4, 2)

NPZ_CASES = {
    "single class": (dict(X=X4, y=np.zeros(4, int)), "single class (0)"),
    "complex X": (dict(X=X4 + 1j, y=np.array([0, 1, 0, 1])), "X must be a 2-D array of real"),
    "complex y": (dict(X=X4, y=np.array([0, 1, 0, 1]) + 1j), "y must be numbers or strings"),
    "scalar y": (dict(X=X4, y=np.array(1)), "y must be numbers or strings"),
    "3-D y": (dict(X=X4, y=np.zeros((4, 1, 1))), "float64 (4, 1, 1)"),
    "structured y": (dict(X=X4, y=np.zeros(4, dtype=[("a", "f8")])), "y must be numbers"),
    "zero rows": (dict(X=np.zeros((0, 2)), y=np.zeros(0)), "must have at least one row"),
    "zero features": (dict(X=np.zeros((4, 0)), y=np.array([0, 1, 0, 1])), "one feature"),
    "3-D X": (dict(X=np.zeros((4, 2, 1)), y=np.array([0, 1, 0, 1])), "X must be a 2-D array"),
    "inf in y": (dict(X=X4, y=np.array([0.5, 1, np.inf, 2])), "y has infinite values"),
    "nan in X": (dict(X=X4 * np.nan, y=np.array([0, 1, 0, 1])), "X has NaN values"),
    "rows differ": (dict(X=X4, y=np.array([0, 1, 0])), "X has 4 rows but y has 3"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_bad_npz_arrays(cli, tmp_path, case):
    arrays, fragment = NPZ_CASES[case]
    config = npz_config(tmp_path, **arrays)
    check_refused(cli, tmp_path, [config], fragment)


@pytest.mark.parametrize("content,fragment", [
    (lambda good: good[: len(good) // 2], "cannot load"),  # a truncated (corrupt) zip
    (lambda good: good[:30] + b"\0" * 200 + good[230:], "cannot load"),  # damaged inside
    (lambda good: b"root:x:0:0:root:/root:/bin/bash\n", "not an .npz file"),
    (lambda good: b"", "not an .npz file"),
])
def test_corrupt_npz_files(cli, tmp_path, content, fragment):
    config = npz_config(tmp_path, X=np.arange(2000.0).reshape(1000, 2), y=np.arange(1000) % 2)
    good = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(content(good))
    check_refused(cli, tmp_path, [config], fragment)
    assert "root:x" not in (cli("train", config).stderr)


def test_single_class_csv_and_n_samples_zero(cli, tmp_path):
    write(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,4,0\n")
    refused(cli, tmp_path, f"data: {{name: csv, path: {tmp_path / 'd.csv'}}}\n"
            "model: {layers: [2, 1]}\n", "data: the data has a single class (0.0)")
    refused(cli, tmp_path, BASE, "data: dataset 'xor': n_samples must be >= 1, got 0",
            "+data.n_samples=0")
    refused(cli, tmp_path, BASE, "data.n_samples: must be an integer", "+data.n_samples=nan")


def test_a_plugin_dataset_goes_through_the_same_checks(tmp_path):
    plugin = write(tmp_path / "complex_data.py", """\
import numpy as np
from nntrain.datasets import DATASETS

@DATASETS.register("complex_points")
def complex_points():
    \"\"\"Points with an imaginary part.\"\"\"
    return np.ones((4, 2)) * 1j, np.array([0, 1, 0, 1]), "classes"
""")
    load_config(raw=safe_load(BASE), plugins=[str(plugin)])
    with pytest.raises(ConfigError, match="dataset 'complex_points': X must be a 2-D array of real"):
        load_data({"name": "complex_points"})


# -- 12: run names over 255 bytes -----------------------------------------------------------


def test_a_name_over_255_bytes_is_refused_before_runs_is_made(cli, tmp_path):
    refused(cli, tmp_path, BASE + f"name: {'n' * 256}\n", "name: is 256 bytes long")
    assert not (tmp_path / "runs").exists()
    assert load_config(raw={**safe_load(BASE), "name": "n" * 255}).name == "n" * 255


# -- 13: plugins that exit or raise ---------------------------------------------------------


@pytest.mark.parametrize("code,fragment", [
    ("import sys\nsys.exit(0)\n", "failed to import: SystemExit(0)"),
    ("raise SystemExit('bye')\n", "failed to import: SystemExit('bye')"),
    ("class Odd(BaseException):\n    pass\nraise Odd('x' * 10000)\n", "failed to import: Odd: xxx"),
    ("raise RuntimeError('line one\\nline two')\n", "failed to import: RuntimeError: line one line"),
])
def test_a_plugin_that_exits_at_import_is_a_config_error(cli, tmp_path, code, fragment):
    plugin = write(tmp_path / "quits.py", code)
    config = write(tmp_path / "c.yaml", BASE)
    check_refused(cli, tmp_path, [config, "--plugin", plugin], f"plugins: {plugin}: {fragment}")
    assert len(cli("train", config, "--plugin", plugin).stderr) < 300


QUITTER = """\
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("quitter")
class Quitter(Activation):
    \"\"\"a = z, until it {what}.\"\"\"

    def forward(self, z, out=None):
        if len(z) > 10:
            {what}
        return z

    def backward(self, da):
        return da
"""


@pytest.mark.parametrize("what,fragment", [
    ("raise SystemExit(0)", "SystemExit(0)"),
    ("raise ZeroDivisionError('oops')", "ZeroDivisionError: oops"),
])
def test_a_plugin_that_exits_during_a_run_fails_the_run(cli, tmp_path, what, fragment):
    plugin = write(tmp_path / "quitter.py", QUITTER.format(what=what))
    config = write(tmp_path / "c.yaml", "data: {name: xor, n_samples: 40}\n"
                   "model: {layers: [2, 4, 1], activation: quitter}\ntrain: {epochs: 3}\n"
                   "plugins: [quitter.py]\n")
    result = cli("train", config)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"error: {fragment} in plugin {plugin}" in lines[0], lines
    [summary] = tmp_path.glob("runs/c/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "failed"


# -- 8, 15-18: CSV files ---------------------------------------------------------------------


def csv_config(tmp_path, text, target="label", layers="[2, 1]", extra="", encoding="utf-8"):
    (tmp_path / "d.csv").write_text(text, encoding=encoding)
    return write(tmp_path / "c.yaml", f"data: {{name: csv, path: {tmp_path / 'd.csv'}, "
                                      f"target: {target}{extra}}}\nmodel: {{layers: {layers}}}\n"
                                      "train: {epochs: 2}\n")


GOOD = "a,b,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def test_semicolons_get_a_separator_hint_and_data_sep_reads_them(cli, tmp_path):
    config = csv_config(tmp_path, GOOD.replace(",", ";"))
    check_refused(cli, tmp_path, [config], "read 1 column(s): 'a;b;label'; is the separator ';'?")
    config = csv_config(tmp_path, GOOD.replace(",", ";"), target=-1)
    check_refused(cli, tmp_path, [config], "needs feature columns besides the target")
    result = cli("train", csv_config(tmp_path, GOOD.replace(",", ";"), extra=", sep: ';'"))
    assert result.exit_code == 0, result.stderr
    check_refused(cli, tmp_path, [csv_config(tmp_path, GOOD, extra=", sep: ';;'")],
                  "sep must be one character")


def test_size_hints_are_never_impossible(cli, tmp_path):
    config = npz_config(tmp_path, X=np.zeros((4, 0)), y=np.array([0, 1, 0, 1]))
    result = cli("train", config)
    assert result.exit_code == 2 and "use [0" not in result.stderr


def test_a_byte_order_mark_is_not_part_of_the_first_column(cli, tmp_path):
    config = csv_config(tmp_path, "label,a,b\n0,0,0\n1,0,1\n1,1,0\n0,1,1\n",
                        encoding="utf-8-sig")
    assert (tmp_path / "d.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    result = cli("train", config)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("text,fragment", [
    ("a,b,label\n1,2,0\n3,4,inf\n", "line 3: the target column 'label' has an infinite value"),
    ("a,b,label\n1,2,0\n3,4,-inf\n", "has an infinite value"),
    ("a,b,label\n1,2,0\n3,4,nan\n", "line 3: the target column 'label' has NaN"),
    ("a,b,label\n1,inf,0\n3,4,1\n", "line 2, column 'b' is infinite"),
    ("a,b,label\n1,2,0\n3,,1\n", "line 3, column 'b': '' is not a number"),
    ("a,b,label\n1,2,0\n3,4,1,5\n", "line 3 has 4 fields, the header has 3"),
    ("a,b,label\n1,2,0\n\n3,4\n", "line 4 has 2 fields, the header has 3"),
    ("a,b,label\n1,2,cat\n3,4,\n", "line 3 has no value in the target column 'label'"),
])
def test_csv_problems_use_the_right_word_and_line(cli, tmp_path, text, fragment):
    check_refused(cli, tmp_path, [csv_config(tmp_path, text)], fragment)


SECRET = "root:$6$" + "s3cr3t" * 40 + ":19000:0:99999:7:::"


@pytest.mark.parametrize("text,target", [
    (SECRET + "\nbin:x:1\n", "label"),
    (",".join(f"{SECRET}{i}" for i in range(50)) + "\n" + ",".join("1" * 50) + "\n", "label"),
    (SECRET + "\nbin:x:1\n", "-1"),
    (SECRET + "\nbin:x:1\n", "5"),
])
def test_errors_quote_little_of_a_file(cli, tmp_path, target, text):
    result = cli("train", csv_config(tmp_path, text, target=target))
    assert result.exit_code == 2
    assert len(result.stderr) < 400 and "s3cr3t" * 5 not in result.stderr, result.stderr
    assert result.stderr.count("root:") <= 5


def test_non_utf8_and_binary_files_are_refused(cli, tmp_path):
    (tmp_path / "d.csv").write_bytes(b"a,b,label\n1,2,\xff\xfe\n")
    config = csv_config(tmp_path, "x")
    (tmp_path / "d.csv").write_bytes(b"a,b,label\n1,2,\xff\xfe\n")
    check_refused(cli, tmp_path, [config], "not UTF-8 text")
    (tmp_path / "d.csv").write_bytes(b"\x00" * (2 << 20))
    check_refused(cli, tmp_path, [config], "the first line is over")


def test_class_names_pandas_would_call_missing_stay_classes(tmp_path):
    write(tmp_path / "d.csv", "a,b,region\n1,2,NA\n3,4,None\n5,6,NA\n7,8,null\n")
    data = load_data({"name": "csv", "path": str(tmp_path / "d.csv"), "target": "region"})
    assert data.classes == ["NA", "None", "null"]


@pytest.mark.parametrize("labels,expected", [
    (["0", "1"] * 5, [0.0, 1.0]),
    (["0", "1"] * 4 + ["cat", "1"], ["0", "1", "cat"]),  # a string in a later chunk
    ([" x", "y "] * 5, ["x", "y"]),
])
def test_csv_read_in_small_chunks_equals_the_whole(tmp_path, monkeypatch, labels, expected):
    monkeypatch.setattr(datasets, "CHUNK_ROWS", 3)
    rows = [f"{i},{i * 0.5},{label}" for i, label in enumerate(labels)]
    write(tmp_path / "d.csv", "a,b,label\n" + "\n".join(rows) + "\n")
    X, y, _ = datasets.read_csv(tmp_path / "d.csv", "label")
    assert X.dtype == np.float64 and X.flags.c_contiguous
    np.testing.assert_array_equal(X, [[i, i * 0.5] for i in range(len(labels))])
    assert sorted(set(y.tolist())) == expected


def test_shipped_csv_files_read_as_before():
    iris = load_data({"name": "iris"})
    assert iris.X_train.shape == (150, 4) and iris.classes == ["setosa", "versicolor", "virginica"]
    digits = load_data({"name": "digits"})
    assert digits.X_train.shape == (1797, 64) and len(digits.classes) == 10


def test_nothing_is_written_for_refused_data(cli, tmp_path):
    config = csv_config(tmp_path, "a,b,label\n1,2,0\n3,4,inf\n")
    before = files_under(tmp_path)
    cli("train", config)
    assert files_under(tmp_path) == before


def test_a_dataset_too_large_for_memory_is_a_config_error(cli, tmp_path):
    refused(cli, tmp_path, BASE, "data: dataset 'xor': needs more memory than there is",
            "+data.n_samples=10000000000000")


def test_endless_or_huge_config_files_are_refused(cli, tmp_path):
    check_refused(cli, tmp_path, ["/dev/zero"], "/dev/zero: is over 1048576 characters long")
    big = write(tmp_path / "big.yaml", BASE + "# padding\n" * 200_000)
    check_refused(cli, tmp_path, [big], "big.yaml: is over 1048576 characters long")


@pytest.mark.parametrize("name", ["csv", "npz"])
def test_data_files_that_are_pipes_or_devices_are_refused(cli, tmp_path, name):
    import os

    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", "/dev/zero"):
        config = write(tmp_path / "c.yaml", f"data: {{name: {name}, path: {path}}}\n"
                                            "model: {layers: [2, 1]}\n")
        check_refused(cli, tmp_path, [config], f"{path}: is not a regular file")
    (tmp_path / "fifo").unlink()


def test_a_network_too_large_for_memory_is_a_config_error(cli, tmp_path):
    refused(cli, tmp_path, BASE, "model.layers: the network needs more memory than there is",
            "model.layers=[2,10000000000,1]")


@pytest.mark.parametrize("what,fragment", [
    ("sys.exit(0)", "SystemExit(0) while the components were built"),
    ("raise RuntimeError('bug')", "RuntimeError: bug while the components were built"),
])
def test_a_plugin_component_that_fails_when_built_is_a_config_error(cli, tmp_path, what, fragment):
    plugin = write(tmp_path / "exits.py", f"""\
import sys
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("exits")
class Exits(Activation):
    \"\"\"Never built.\"\"\"

    def __init__(self):
        {what}
""")
    refused(cli, tmp_path, BASE.replace("activation: tanh", "activation: exits") +
            "plugins: [exits.py]\n", f"plugins: {plugin}: {fragment}")


@pytest.mark.parametrize("override", [
    "optimizer.lr=" + ",".join(["1"] * 50_000),  # a sweep in train: the list is quoted
    "x" * 50_000,  # no '=': the text is quoted
    "+data.noise=" + "[" * 50 + "]" * 50,
])
@pytest.mark.slow
def test_no_error_line_is_unbounded_whatever_it_quotes(cli, tmp_path, override):
    config = write(tmp_path / "c.yaml", BASE)
    result = cli("train", config, override)
    assert result.exit_code == 2 and len(result.stderr) < 6 * QUOTE_LIMIT + 100, result.stderr


@pytest.mark.parametrize("text,fragment", [
    (BASE.replace("lr: 0.5", "lr: 1" + "0" * 400), "optimizer.lr: must be a finite number, got a huge"),
    (BASE + "seed: 1" + "0" * 5000 + "\n", "line 5, column 7: an integer with too many digits"),
    (BASE.replace("lr: 0.5", "lr: 1e999"), "optimizer.lr: must be a finite number, got inf"),
])
def test_numbers_too_large_for_python_or_a_float(cli, tmp_path, text, fragment):
    refused(cli, tmp_path, text, fragment)


def test_plugins_must_be_file_names(cli, tmp_path):
    refused(cli, tmp_path, BASE + "plugins: [123]\n", "plugins: must be a list of Python files")


@pytest.mark.parametrize("dataset", ["xor", "circles", "moons", "spiral", "blobs", "sine", "plane"])
@pytest.mark.parametrize("param,value,fragment", [
    ("n_samples", -5, "n_samples must be >= 1, got -5"),
    ("noise", -0.1, "noise must be >= 0"),
])
def test_generator_options_have_ranges(dataset, param, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_data({"name": dataset, param: value})


@pytest.mark.parametrize("value", [-0.5, 1.5])
def test_outliers_is_a_share(value):
    with pytest.raises(ConfigError, match=r"outliers must be a share in \[0, 1\]"):
        load_data({"name": "sine", "outliers": value})


def test_csv_numbers_are_read_exactly_as_python_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2000, 2)) * 10.0 ** rng.integers(-300, 300, (2000, 2))
    lines = [f"{a!r},{b:.6g},{i % 2}" for i, (a, b) in enumerate(values.tolist())]
    write(tmp_path / "d.csv", "a,b,label\n" + "\n".join(lines) + "\n")
    X, y, _ = datasets.read_csv(tmp_path / "d.csv", "label")
    expected = [[float(v) for v in line.split(",")[:2]] for line in lines]
    np.testing.assert_array_equal(X, expected)  # bit for bit, as the csv-module reader was
