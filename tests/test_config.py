import re

import pytest
import yaml

from conftest import CONFIGS, write
from nntrain import ConfigError, load_config
from nntrain.config import parse_override, split_top_level


def test_defaults_fill_the_resolved_config():
    cfg = load_config(raw={"model": {"layers": [2, 3, 1]}})
    assert cfg.data.name == "xor" and cfg.optimizer.name == "gd" and cfg.train.epochs == 100
    assert cfg.train.dtype == "float64" and cfg.train.diagnostics_every == 10
    assert cfg.model.initializer == "xavier_uniform" and cfg.loss is None


def test_name_defaults_to_file_stem(tmp_path):
    path = write(tmp_path / "my_exp.yaml", "model: {layers: [2, 1]}\n")
    assert load_config(path).name == "my_exp"


def test_override_grammar():
    raw = {"data": {"name": "moons", "noise": 0.1}, "model": {"layers": [2, 4, 1]}}
    cfg = load_config(raw=raw, overrides=[
        "optimizer.lr=1e-3",            # YAML 1.2 float
        "model.layers=[2,8,8,1]",
        "+data.n_samples=50",
        "~data.noise",
        "+train.early_stopping={patience: 7}",
        "model.activation=leaky_relu",
        "+model.activation.alpha=0.2",  # a name becomes {name: ..., alpha: ...}
        "++seed=3",
    ])
    assert cfg.optimizer.lr == 0.001
    assert cfg.model.layers == (2, 8, 8, 1)
    assert cfg.data.params == {"n_samples": 50}
    assert cfg.train.early_stopping.patience == 7
    assert cfg.model.activation == {"name": "leaky_relu", "alpha": 0.2}
    assert cfg.seed == 3
    assert raw["data"] == {"name": "moons", "noise": 0.1}  # the caller's mapping is not changed


def test_split_and_parse_override():
    assert split_top_level("0.1,[1,2],{a: 1, b: 2},'x,y'") == ["0.1", "[1,2]", "{a: 1, b: 2}", "'x,y'"]
    assert parse_override("optimizer.lr=0.01,0.1") == ("", "optimizer.lr", [0.01, 0.1], True)
    assert parse_override("~train.early_stopping") == ("~", "train.early_stopping", [], False)
    assert parse_override("model.output_activation=null") == (
        "", "model.output_activation", [None], False)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CONFIGS / "iris.yaml")
    path = write(tmp_path / "again.yaml", yaml.safe_dump(cfg.to_dict()))
    assert load_config(path) == cfg
    assert load_config(path).hash() == cfg.hash()


def test_config_hash_tracks_numbers():
    a = load_config(CONFIGS / "xor.yaml")
    b = load_config(CONFIGS / "xor.yaml", overrides=["optimizer.lr=0.4"])
    assert a.hash() != b.hash() and a.hash() == load_config(CONFIGS / "xor.yaml").hash()


def test_plugin_from_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "myloss.py", '''
from nntrain.losses import LOSSES, MSE

@LOSSES.register("mse_twice_test")
class Twice(MSE):
    """E = 2 mse."""
    def value(self, o, y):
        return 2 * super().value(o, y)
    def grad(self, o, y):
        return 2 * super().grad(o, y)
''')
    with pytest.raises(ConfigError, match="unknown loss 'mse_twice_test'"):
        load_config(raw={"model": {"layers": [2, 1]}, "loss": "mse_twice_test"})
    cfg = load_config(raw={"model": {"layers": [2, 1]}, "loss": "mse_twice_test"},
                      plugins=["myloss.py"])
    assert cfg.loss == "mse_twice_test"


# -- overrides in Hydra's grammar (hydra-core's parser) ------------------------------------------


@pytest.mark.parametrize("override, key, value", [
    ("+train.early_stopping={patience:20}", "train.early_stopping", {"patience": 20}),
    ("+train.early_stopping={patience: 20, restore_best: false}", "train.early_stopping",
     {"patience": 20, "restore_best": False}),
    ("optimizer.lr=1e-3", "optimizer.lr", 0.001),
    ("model.output_activation=null", "model.output_activation", None),
    ("model.layers=[2,8,1]", "model.layers", [2, 8, 1]),
    ("model.initializer={name: normal, std: 0.01}", "model.initializer",
     {"name": "normal", "std": 0.01}),
    ("name='a b'", "name", "a b"),
])
def test_hydra_values(override, key, value):
    parsed = parse_override(override)
    assert parsed.key == key and parsed.values == [value] and not parsed.sweep


@pytest.mark.parametrize("override, values", [
    ("optimizer.lr=0.01,0.1", [0.01, 0.1]),
    ("optimizer.batch_size=range(1,4)", [1, 2, 3]),
    ("model.activation=choice(tanh,relu)", ["tanh", "relu"]),
    ("model.initializer=he_normal,{name:normal,std:0.5}", ["he_normal", {"name": "normal", "std": 0.5}]),
])
def test_sweeps_are_compare_axes_and_train_errors(override, values, tmp_path, monkeypatch):
    from nntrain.compare import make_sweep

    monkeypatch.chdir(tmp_path)
    assert parse_override(override).values == values and parse_override(override).sweep
    sweep = make_sweep(CONFIGS / "xor.yaml", [override], None, None, None)
    assert list(sweep.axes.values()) == [values] and len(sweep.points()) == len(values)
    with pytest.raises(ConfigError, match="takes one value.*use 'nntrain compare'"):
        load_config(CONFIGS / "xor.yaml", [override])


def test_the_documented_overrides_work():
    cfg = load_config(CONFIGS / "moons.yaml", ["+train.early_stopping={patience:20}"])
    assert cfg.train.early_stopping.patience == 20
    cfg = load_config(CONFIGS / "moons.yaml", ["data.noise=0.3", "~data.val_fraction"])
    assert cfg.data.params["noise"] == 0.3 and cfg.data.val_fraction == 0.0
    with pytest.raises(ConfigError, match="data.noise: is already in the config"):
        load_config(CONFIGS / "moons.yaml", ["+data.noise=0.3"])
    with pytest.raises(ConfigError, match="interval"):
        load_config(CONFIGS / "xor.yaml", ["optimizer.lr=interval(0,1)"])
    with pytest.raises(ConfigError, match="model.layers: cannot parse the value"):
        load_config(CONFIGS / "xor.yaml", ["model.layers=[2,4"])


def test_bare_component_name_for_the_optimizer(tmp_path):
    assert load_config(CONFIGS / "xor.yaml", ["optimizer=adam"]).optimizer.name == "adam"
    path = write(tmp_path / "c.yaml", "model: {layers: [2, 4, 1]}\noptimizer: momentum\n")
    assert load_config(path).optimizer.name == "momentum"
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'; did you mean 'gd'?"):
        load_config(CONFIGS / "xor.yaml", ["optimizer=sgd"])


@pytest.mark.parametrize("override, hint", [
    ("epochs=10", "did you mean 'train.epochs'?"),
    ("+lr=0.1", "did you mean 'optimizer.lr'?"),
    ("model.epochs=10", "did you mean 'train.epochs'?"),
    ("model.initializer=glorot_uniform", "did you mean 'xavier_uniform'?"),
    ("model.initializer=kaiming_normal", "did you mean 'he_normal'?"),
    ("model.initializer=GlorotUniform", "did you mean 'xavier_uniform'?"),
    ("loss=binary_crossentropy", "did you mean 'bce'?"),
    ("loss=categorical_crossentropy", "did you mean 'cross_entropy'?"),
    ("loss=kl_div", "did you mean 'kl'?"),
    ("loss=mean_squared_error", "did you mean 'mse'?"),
    ("loss=MSELoss", "did you mean 'mse'?"),
    ("optimizer.name=sgd", "did you mean 'gd'?"),
    ("model.activation=ReLU", "did you mean 'relu'?"),
])
def test_mistyped_settings_get_the_name_that_exists(override, hint):
    with pytest.raises(ConfigError, match=re.escape(hint)):
        load_config(CONFIGS / "xor.yaml", [override])


def test_other_tools_names_are_suggestions_not_aliases():
    from nntrain.initializers import INITIALIZERS

    assert "glorot_uniform" not in INITIALIZERS


def test_data_path_is_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    write(folder / "data" / "d.csv", "a,b,label\n" + "".join(
        f"{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    config = write(folder / "c.yaml", "data: {name: csv, path: data/d.csv, target: label}\n"
                   "model: {layers: [2, 3, 1]}\ntrain: {epochs: 2}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(config)
    assert cfg.data.params["path"] == str(folder / "data" / "d.csv")
    from nntrain.loop import train

    run = train(cfg, out=elsewhere / "run")
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved["data"]["path"] == str(folder / "data" / "d.csv")
    assert load_config(run.path / "config.yaml").data.params["path"] == saved["data"]["path"]
    from nntrain.compare import make_sweep

    sweep = make_sweep(config, ["optimizer.lr=0.1,0.2"], None, None, None)
    assert sweep.base["data"]["path"] == str(folder / "data" / "d.csv")
    monkeypatch.chdir(folder)  # a path typed on the command line: relative to where one is
    assert load_config(config, ["data.path=data/d.csv"]).data.params["path"] == str(
        folder / "data" / "d.csv")
