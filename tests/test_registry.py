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


def test_an_unknown_parameter_can_point_at_a_key_beside_the_parameters():
    """config_key answers only when no parameter of the component's own is near: its own come
    first (alpah -> alpha), the caller's keys second (learning_rate -> optimizer.lr)."""
    registry = Registry("thing")
    registry.register("t")(lambda alpha=1.0, rng=None: alpha)
    asked = []

    def config_key(param):
        asked.append(param)
        return {"learning_rate": "optimizer.lr"}.get(param)

    with pytest.raises(ConfigError, match="has no parameter 'learning_rate'; did you mean "
                                          r"'optimizer\.lr'\? parameters: alpha$"):
        registry.prepare({"name": "t", "learning_rate": 1}, "k", config_key=config_key, rng=None)
    with pytest.raises(ConfigError, match="has no parameter 'alpah'; did you mean 'alpha'"):
        registry.prepare({"name": "t", "alpah": 1}, "k", config_key=config_key, rng=None)
    with pytest.raises(ConfigError, match=r"has no parameter 'gamma' parameters: alpha$"):
        registry.prepare({"name": "t", "gamma": 1}, "k", config_key=config_key, rng=None)
    assert asked == ["learning_rate", "gamma"]
    assert registry.parameters("t") == ["alpha", "rng"]


@pytest.mark.parametrize("word, known, meant", [
    ("he", INITIALIZERS, "he_normal"),
    ("xavier", INITIALIZERS, "xavier_uniform"),
    ("glorot_unifrom", INITIALIZERS, "xavier_uniform"),  # a misspelt other tool's name
    ("learning_rate", ["lr", "epochs"], "lr"),
    ("lerning_rate", ["lr", "epochs"], "lr"),
    ("beta1", ["lr", "epochs"], None),  # a short alias (eta) is never matched by spelling
    ("momentum", ACTIVATIONS, None),  # an alias is offered only where its target is known
])
def test_closest_knows_other_names_and_short_names(word, known, meant):
    from nntrain.registry import closest, did_you_mean

    assert closest(word, known) == meant
    assert did_you_mean(word, known) == (f"; did you mean '{meant}'?" if meant else "")


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
