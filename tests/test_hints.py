"""Hints point the right way: an unknown key names the known key with the same meaning (or the
closest spelling) before it ever says to add the key with '+'; short component names name the
usual rule; a config key given as a command-line option names the override to write."""

import re

import pytest
import yaml

from conftest import CONFIGS, write
from nntrain.config import load_config, read_yaml, schema_keys
from nntrain.registry import OTHER_TOOLS, ConfigError


def refusal(overrides=(), path=CONFIGS / "xor.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, list(overrides))
    return caught.value


def suggested(err: ConfigError) -> str:
    """The key a 'did you mean' names."""
    found = re.search(r"did you mean '([^']+)'\?", str(err))
    assert found, str(err)
    return found.group(1)


# (override, the known key it means): other tools' names, short names, close typos; each in
# the section it belongs to, in another section, or at the top level
SAME_MEANING = [
    ("optimizer.learning_rate=0.1", "optimizer.lr"),
    ("learning_rate=0.1", "optimizer.lr"),
    ("train.learning_rate=0.1", "optimizer.lr"),
    ("+optimizer.learning_rate=0.1", "optimizer.lr"),  # the optimizer's parameters' check
    ("n_epochs=5", "train.epochs"),
    ("max_epochs=5", "train.epochs"),
    ("num_epochs=5", "train.epochs"),
    ("train.n_epochs=5", "train.epochs"),
    ("train.max_iter=5", "train.epochs"),
    ("epochs=5", "train.epochs"),
    ("model.epochs=5", "train.epochs"),
    ("optimizer.epochs=5", "train.epochs"),
    ("optimizer.batchsize=2", "optimizer.batch_size"),
    ("batch=2", "optimizer.batch_size"),
    ("model.hidden_layers=[2,4,1]", "model.layers"),
    ("units=[2,4,1]", "model.layers"),
    ("model.act=relu", "model.activation"),
    ("activation_function=relu", "model.activation"),
    ("model.init=he_normal", "model.initializer"),
    ("weight_init=he_normal", "model.initializer"),
    ("model.kernel_initializer=he_normal", "model.initializer"),
    ("optimiser.lr=0.1", "optimizer"),
    ("random_state=1", "seed"),
    ("data.random_state=1", "data.seed"),
    ("model.seed=1", "seed"),
    ("validation_split=0.0", "data.val_fraction"),
    ("train.patience=3", "train.early_stopping.patience"),
    # close typos, of a key and of another tool's name for one
    ("lerning_rate=0.1", "optimizer.lr"),
    ("optimizer.lerning_rate=0.1", "optimizer.lr"),
    ("+optimizer.lerning_rate=0.1", "optimizer.lr"),
    ("train.epoch=5", "train.epochs"),
    ("model.activaton=relu", "model.activation"),
    ("optimizer.bach_size=2", "optimizer.batch_size"),
]


@pytest.mark.parametrize("override, key", SAME_MEANING)
def test_an_unknown_key_names_the_known_key_it_means(override, key):
    err = refusal([override])
    assert suggested(err) == key
    assert "+" not in str(err), str(err)  # a key nntrain knows is set, never added


@pytest.mark.parametrize("override, key", SAME_MEANING)
def test_the_suggested_key_is_accepted(override, key):
    """Following the hint works: the refused key replaced by the suggested one loads."""
    written, value = override.lstrip("+").split("=", 1)
    err = refusal([override])
    rest = written[len(err.key):] if not key.startswith(f"{err.key}.") else ""
    load_config(CONFIGS / "xor.yaml", [f"{key}{rest}={value}"])


# (section, key, the known key it means) written in a YAML file
YAML_CASES = [
    ("optimizer", "learning_rate", "optimizer.lr"),
    ("optimizer", "lerning_rate", "optimizer.lr"),
    ("optimizer", "batchsize", "optimizer.batch_size"),
    ("optimizer", "epochs", "train.epochs"),
    ("train", "max_epochs", "train.epochs"),
    ("model", "hidden_layers", "model.layers"),
    ("model", "activation_function", "model.activation"),
    ("model", "kernel_initializer", "model.initializer"),
    ("data", "random_state", "data.seed"),
    (None, "n_epochs", "train.epochs"),
    (None, "epochs", "train.epochs"),
    (None, "random_state", "seed"),
    (None, "optimiser", "optimizer"),
]


@pytest.mark.parametrize("section, name, key", YAML_CASES)
def test_a_yaml_key_names_the_known_key_it_means(tmp_path, section, name, key):
    raw = read_yaml(CONFIGS / "xor.yaml")
    (raw[section] if section else raw)[name] = 7
    path = write(tmp_path / "c.yaml", yaml.safe_dump(raw))
    err = refusal(path=path)
    assert suggested(err) == key
    assert "+" not in str(err), str(err)


def test_a_component_parameter_keeps_its_own_hint():
    """A parameter of the component itself is nearest: the dataset's n_samples, not data.name."""
    err = refusal(["data.n_sample=10"])
    assert suggested(err) == "data.n_samples" and "use +data.n_samples=... to add it" in str(err)
    err = refusal(["+data.n_sample=10"])
    assert "dataset 'xor' has no parameter 'n_sample'; did you mean 'n_samples'?" in str(err)
    err = refusal(["optimizer.name=adam", "+optimizer.learning_rate=0.1"])
    assert "optimizer 'adam' has no parameter 'learning_rate'; did you mean 'optimizer.lr'?" in str(err)


@pytest.mark.parametrize("override", ["data.noise=0.1", "optimizer.beta1=0.9", "data.colour=1"])
def test_plus_is_suggested_only_when_no_known_key_is_near(override):
    """noise is xor's own parameter, absent from the file; beta1 is not gd's and no key is near
    it (a short alias like eta is never matched by spelling)."""
    key = override.split("=")[0]
    err = refusal([override])
    assert str(err) == f"{key}: not in the config; use +{key}=... to add it"


@pytest.mark.parametrize("name, rule", [
    ("xavier", "xavier_uniform"), ("glorot", "xavier_uniform"), ("Xavier", "xavier_uniform"),
    ("he", "he_normal"), ("kaiming", "he_normal"), ("lecun", "lecun_normal"),
])
def test_short_initializer_names_suggest_the_usual_rule(name, rule):
    err = refusal([f"model.initializer={name}"])
    assert str(err).startswith(f"model.initializer: unknown initializer '{name}'; "
                               f"did you mean '{rule}'?")
    assert "did you mean 'xavier_simple'" not in str(err)  # the notes' slip is never offered


def test_every_name_in_the_table_points_at_a_name_nntrain_has():
    """A target no registry, parameter or config key has would never be suggested."""
    from nntrain.cli import registries_by_kind

    known = {leaf for key in schema_keys() for leaf in key.split(".")}
    for registry in registries_by_kind().values():
        for name in registry:
            known.update([name, *registry.parameters(name)])
    assert {target for target in OTHER_TOOLS.values()} - known == set()


@pytest.mark.parametrize("command, option, value, override", [
    ("train", "--epochs", "10", "train.epochs=10"),
    ("train", "--lr", "0.1", "optimizer.lr=0.1"),
    ("train", "--learning-rate", "0.1", "optimizer.lr=0.1"),
    ("train", "--seed", "3", "seed=3"),
    ("train", "--batch-size", "8", "optimizer.batch_size=8"),
    ("train", "--optimizer", "adam", "optimizer.name=adam"),
    ("compare", "--epochs", "10", "train.epochs=10"),
    ("compare", "--lr", "0.1", "optimizer.lr=0.1"),
    ("compare", "--seed", "3", "seed=3"),
    ("compare", "--batch-size", "8", "optimizer.batch_size=8"),
])
def test_a_config_key_given_as_an_option_names_the_override(cli, command, option, value,
                                                             override):
    for args in ([option, value], [f"{option}={value}"]):
        result = cli(command, CONFIGS / "xor.yaml", *args)
        assert result.exit_code == 2
        assert f"Usage: root {command} [OPTIONS]" in result.output  # Click's usage line stays
        assert f"No such option: {option}" in result.output
        assert f"set the config key with an override after CONFIG: {override}" in result.output
        assert "Possible options: --help" not in result.output


def test_the_option_hint_keeps_clicks_suggestion_and_stays_on_commands_with_overrides(cli):
    result = cli("compare", CONFIGS / "xor.yaml", "--seed", "3")
    assert "(Possible options: --seeds)" in result.output and "seed=3" in result.output
    result = cli("report", "somewhere", "--epochs", "3")
    assert result.exit_code == 2 and "No such option: --epochs" in result.output
    assert "override" not in result.output  # report takes no KEY=VALUE
    result = cli("train", CONFIGS / "xor.yaml", "--quite")
    assert result.exit_code == 2 and "override" not in result.output  # no config key is near
