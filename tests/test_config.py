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
