"""Bad input: exit 2, one line naming the key or file, no traceback, nothing written."""

import numpy as np
import pytest

from conftest import write

BASE = """\
data: {name: xor}
model: {layers: [2, 4, 1], activation: tanh}
optimizer: {name: gd, lr: 0.5}
train: {epochs: 5}
"""


def files_under(path):
    return sorted(p.relative_to(path) for p in path.rglob("*"))


def check_refused(cli, tmp_path, args, fragment):
    before = files_under(tmp_path)
    result = cli("train", *args)
    assert result.exit_code == 2, result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.output
    assert result.stdout == ""
    assert files_under(tmp_path) == before  # no run folder, nothing else written


CONFIG_CASES = {
    # YAML problems
    "syntax error": ("data: {name: xor\nmodel: [\n", "line 2"),
    "top-level list": ("- 1\n- 2\n", "must be a mapping"),
    "unsafe tag": ("data: !!python/object/apply:os.system ['touch pwned']\n", "python/object/apply"),
    # unknown keys at each level
    "unknown top key": (BASE + "modle: {}\n", "modle: unknown key; did you mean 'model'?"),
    "unknown model key": (BASE.replace("activation: tanh", "activaton: tanh"),
                          "model.activaton: unknown key; did you mean 'model.activation'?"),
    "unknown train key": (BASE.replace("epochs: 5", "epoch: 5"), "train.epoch: unknown key"),
    "unknown early_stopping key": (BASE.replace("epochs: 5", "epochs: 5, early_stopping: {patiense: 3}"),
                                   "train.early_stopping.patiense: unknown key; did you mean "
                                   "'train.early_stopping.patience'?"),
    "unknown dataset parameter": (BASE.replace("{name: xor}", "{name: xor, nosie: 0.1}"),
                                  "data: dataset 'xor' has no parameter 'nosie'; did you mean 'noise'?"),
    "unknown optimizer parameter": (BASE.replace("lr: 0.5", "lr: 0.5, betta: 0.9"),
                                    "optimizer: optimizer 'gd' has no parameter 'betta'"),
    # unknown component names
    "unknown activation": (BASE.replace("activation: tanh", "activation: rleu"),
                           "model.activation: unknown activation 'rleu'; did you mean 'relu'?"),
    "unknown output activation": (BASE.replace("activation: tanh", "output_activation: sigmiod"),
                                  "model.output_activation: unknown activation 'sigmiod'"),
    "hidden-only output activation": (BASE.replace("activation: tanh", "output_activation: relu"),
                                      "model.output_activation: relu is not an output activation"),
    "output-only hidden activation": (BASE.replace("activation: tanh", "activation: softmax"),
                                      "model.activation: softmax can only be an output activation"),
    "unknown initializer": (BASE.replace("activation: tanh", "initializer: xavier"),
                            "model.initializer: unknown initializer 'xavier'; did you mean 'xavier_uniform'?"),
    "unknown loss": (BASE + "loss: crossentropy\n", "loss: unknown loss 'crossentropy'; did you mean"),
    "unknown optimizer": (BASE.replace("name: gd", "name: sgd"), "optimizer: unknown optimizer 'sgd'"),
    "unknown schedule": (BASE.replace("lr: 0.5", "lr: 0.5, schedule: cosine"),
                         "optimizer.schedule: unknown schedule 'cosine'"),
    "unknown dataset": (BASE.replace("name: xor", "name: mnist"), "data: unknown dataset 'mnist'"),
    # wrong types
    "epochs not a number": (BASE.replace("epochs: 5", "epochs: ten"),
                            "train.epochs: must be an integer, got 'ten'"),
    "lr not a number": (BASE.replace("lr: 0.5", "lr: fast"), "optimizer.lr: must be a number"),
    "layers not a list": (BASE.replace("[2, 4, 1]", "'2,4,1'"), "model.layers: must be a list"),
    "standardize not a bool": (BASE.replace("{name: xor}", "{name: xor, standardize: yes please}"),
                               "data.standardize: must be true or false"),
    "section not a mapping": (BASE.replace("train: {epochs: 5}", "train: 5"),
                              "train: must be a mapping"),
    "activation param type": (BASE.replace("activation: tanh", "activation: {name: elu, alpha: big}"),
                              "model.activation.alpha: must be a number"),
    # out of range
    "lr zero": (BASE.replace("lr: 0.5", "lr: 0"), "optimizer.lr: must be > 0, got 0"),
    "lr negative": (BASE.replace("lr: 0.5", "lr: -0.1"), "optimizer.lr: must be > 0"),
    "epochs zero": (BASE.replace("epochs: 5", "epochs: 0"), "train.epochs: must be >= 1, got 0"),
    "zero size": (BASE.replace("[2, 4, 1]", "[2, 0, 1]"), "model.layers: needs a list"),
    "negative size": (BASE.replace("[2, 4, 1]", "[2, -4, 1]"), "model.layers"),
    "one size": (BASE.replace("[2, 4, 1]", "[2]"), "model.layers"),
    "input size mismatch": (BASE.replace("[2, 4, 1]", "[3, 4, 1]"),
                            "model.layers: the input size is 3 but the data has 2 features"),
    "output size mismatch": (BASE.replace("[2, 4, 1]", "[2, 4, 2]"),
                             "model.layers: the output size is 2 but a binary task needs 1 output"),
    "per-layer list length": (BASE.replace("activation: tanh", "activation: [tanh, relu]"),
                              "model.activation: a list needs one activation per layer: 1 expected, got 2"),
    "initializer list length": (BASE.replace("activation: tanh", "initializer: [he_normal]"),
                                "model.initializer: a list needs one initializer per layer: 2 expected"),
    "bce after identity": (BASE.replace("activation: tanh", "output_activation: identity") +
                           "loss: bce\n", "loss: bce needs output_activation sigmoid (got identity)"),
    "cross_entropy after sigmoid": (BASE.replace("activation: tanh", "output_activation: sigmoid") +
                                    "loss: cross_entropy\n", "loss: cross_entropy needs output_activation softmax"),
    "val_fraction one": (BASE.replace("{name: xor}", "{name: xor, val_fraction: 1.0}"),
                         "data.val_fraction: must be in [0, 1), got 1.0"),
    "val_fraction negative": (BASE.replace("{name: xor}", "{name: xor, val_fraction: -0.1}"),
                              "data.val_fraction"),
    "batch_size zero": (BASE.replace("lr: 0.5", "lr: 0.5, batch_size: 0"),
                        "optimizer.batch_size: must be >= 1"),
    "initializer param range": (BASE.replace("activation: tanh", "initializer: {name: uniform, limit: -1}"),
                                "model.initializer: initializer 'uniform': limit must be > 0"),
    "missing layers": ("data: {name: xor}\n", "model.layers: is required"),
    "name with a path": (BASE + "name: ../../elsewhere\n", "name: must be a folder name"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(cli, tmp_path, case):
    text, fragment = CONFIG_CASES[case]
    config = write(tmp_path / "c.yaml", text)
    check_refused(cli, tmp_path, [config], fragment)
    assert not (tmp_path / "pwned").exists()


def test_missing_empty_and_directory_config(cli, tmp_path):
    check_refused(cli, tmp_path, [tmp_path / "nope.yaml"], "nope.yaml: no such file")
    empty = write(tmp_path / "empty.yaml", "")
    check_refused(cli, tmp_path, [empty], "empty.yaml: is empty")
    (tmp_path / "adir").mkdir()
    check_refused(cli, tmp_path, [tmp_path / "adir"], "adir: is a directory")


OVERRIDE_CASES = {
    "no equals sign": (["optimizer.lr"], "expected KEY=VALUE"),
    "unknown key": (["train.epoch=3"], "train.epoch: unknown key; did you mean 'train.epochs'?"),
    "unknown section": (["trian.epochs=3"], "trian: unknown key; did you mean 'train'?"),
    "not in the config": (["data.noise=0.1"], "data.noise: not in the config; use +data.noise"),
    "sweep in train": (["optimizer.lr=0.1,0.2"], "to run several values use 'nntrain compare'"),
    "bad value": (["model.layers=[2,4"], "model.layers: cannot parse"),
    "wrong type": (["train.epochs=abc"], "train.epochs: must be an integer"),
    "add existing": (["+optimizer.lr=0.1"], "optimizer.lr: is already in the config"),
    "delete missing": (["~loss"], "loss: cannot delete"),
}


@pytest.mark.parametrize("case", sorted(OVERRIDE_CASES))
def test_bad_override(cli, tmp_path, case):
    overrides, fragment = OVERRIDE_CASES[case]
    config = write(tmp_path / "c.yaml", BASE)
    check_refused(cli, tmp_path, [config, *overrides], fragment)


def csv_config(tmp_path, csv_text, target="label"):
    write(tmp_path / "d.csv", csv_text)
    return write(tmp_path / "c.yaml", f"""\
data: {{name: csv, path: {tmp_path / 'd.csv'}, target: {target}}}
model: {{layers: [2, 3, 1]}}
train: {{epochs: 2}}
""")


CSV_CASES = {
    "missing target column": ("a,b,label\n1,2,0\n3,4,1\n", "nolabel", "data.target: "),
    "non-numeric feature": ("a,b,label\n1,x,0\n3,4,1\n", "label", "line 2, column 'b': 'x' is not a number"),
    "nan feature": ("a,b,label\n1,nan,0\n3,4,1\n", "label", "line 2, column 'b' is NaN"),
    "header only": ("a,b,label\n", "label", "needs a header row and at least one data row"),
    "ragged": ("a,b,label\n1,2,0\n3,4\n", "label", "line 3 has 2 fields, the header has 3"),
    "nan target": ("a,b,label\n1,2,nan\n3,4,1\n", "label", "target column 'label' has NaN"),
    "empty target": ("a,b,label\n1,2,\n3,4,1\n", "label", "line 2 has no value in the target column"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv(cli, tmp_path, case):
    text, target, fragment = CSV_CASES[case]
    config = csv_config(tmp_path, text, target)
    check_refused(cli, tmp_path, [config], fragment)


def test_missing_csv_file(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "data: {name: csv, path: gone.csv}\nmodel: {layers: [2, 1]}\n")
    check_refused(cli, tmp_path, [config], "gone.csv: no such file")


def test_csv_missing_path_parameter(cli, tmp_path):
    config = write(tmp_path / "c.yaml", "data: {name: csv}\nmodel: {layers: [2, 1]}\n")
    check_refused(cli, tmp_path, [config], "data: dataset 'csv' needs parameter 'path'")


def npz_config(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return write(tmp_path / "c.yaml", f"data: {{name: npz, path: {tmp_path / 'd.npz'}}}\n"
                                      "model: {layers: [2, 1]}\ntrain: {epochs: 2}\n")


def test_npz_without_y(cli, tmp_path):
    config = npz_config(tmp_path, X=np.zeros((4, 2)))
    check_refused(cli, tmp_path, [config], "has no array y")


def test_npz_with_object_array(cli, tmp_path):
    config = npz_config(tmp_path, X=np.zeros((2, 2)), y=np.array([{"a": 1}, None], dtype=object))
    check_refused(cli, tmp_path, [config], "cannot load")


def test_out_dir_not_empty(cli, tmp_path):
    config = write(tmp_path / "c.yaml", BASE)
    write(tmp_path / "out" / "keep.txt", "mine")
    check_refused(cli, tmp_path, [config, "--out", tmp_path / "out"], "not an empty folder")


def test_bad_plugin(cli, tmp_path):
    config = write(tmp_path / "c.yaml", BASE)
    write(tmp_path / "broken.py", "raise RuntimeError('oops')\n")
    check_refused(cli, tmp_path, [config, "--plugin", tmp_path / "broken.py"],
                  "failed to import: RuntimeError: oops")
    check_refused(cli, tmp_path, [config, "--plugin", tmp_path / "absent.py"], "no such Python file")


def test_debug_shows_the_traceback(cli, tmp_path):
    config = write(tmp_path / "c.yaml", BASE.replace("lr: 0.5", "lr: 0"))
    from nntrain.registry import ConfigError

    with pytest.raises(ConfigError):
        cli("train", config, "--debug")
