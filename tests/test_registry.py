import pytest

from nntrain.activations import ACTIVATIONS
from nntrain.initializers import INITIALIZERS
from nntrain.losses import LOSSES
from nntrain.registry import ConfigError, Registry


def test_duplicate_registration_fails():
    registry = Registry("thing")
    registry.register("a")(lambda: 1)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("a")(lambda: 2)


def test_unknown_name_suggests_closest_and_lists_known():
    with pytest.raises(ConfigError) as err:
        ACTIVATIONS.get("rleu", key="model.activation")
    message = str(err.value)
    assert message.startswith("model.activation: unknown activation 'rleu'")
    assert "did you mean 'relu'?" in message
    assert "known: " + ", ".join(sorted(ACTIVATIONS.names())) in message


def test_unknown_parameter_fails_with_suggestion():
    with pytest.raises(ConfigError, match="has no parameter 'alpah'; did you mean 'alpha'"):
        ACTIVATIONS.build({"name": "leaky_relu", "alpah": 0.1}, "model.activation")


def test_wrong_parameter_type_names_the_parameter():
    with pytest.raises(ConfigError, match=r"loss\.delta: must be a number, got 'big'"):
        LOSSES.build({"name": "huber", "delta": "big"}, "loss")
    with pytest.raises(ConfigError, match="must be true or false"):
        ACTIVATIONS.build({"name": "prelu", "per_unit": "yes"}, "a")
    with pytest.raises(ConfigError, match="must be one of fan_in, fan_out, fan_avg"):
        INITIALIZERS.build({"name": "variance_scaling", "mode": "fan_sum"}, "i")


def test_out_of_range_parameter_is_a_config_error():
    with pytest.raises(ConfigError, match="limit must be > 0"):
        INITIALIZERS.build({"name": "uniform", "limit": -1}, "model.initializer")


def test_mapping_without_name_and_bad_spec():
    with pytest.raises(ConfigError, match="needs a 'name' key"):
        LOSSES.build({"delta": 1}, "loss")
    with pytest.raises(ConfigError, match="expected a loss name"):
        LOSSES.build(3, "loss")


def test_mapping_params_become_keyword_arguments():
    act = ACTIVATIONS.build({"name": "elu", "alpha": 2})
    assert act.alpha == 2.0 and isinstance(act.alpha, float)
    assert ACTIVATIONS.build("relu") is not ACTIVATIONS.build("relu")  # fresh instance per layer
