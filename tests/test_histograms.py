"""`nntrain inspect --histograms`: each hidden layer's activations at initialization, one row per
initializer, one column per layer, the x axis shared within a row."""

import numpy as np
import pytest

from conftest import CONFIGS
from nntrain import load_config, plots
from nntrain.inspection import init_activations
from nntrain.registry import ConfigError


def test_activations_vanish_with_a_tiny_std_and_keep_their_scale_with_he():
    cfg = load_config(CONFIGS / "lessons" / "init_scale.yaml")
    groups = init_activations(cfg, [{"name": "normal", "std": 0.01}, "he_normal"])
    assert [name for name, _ in groups] == ["normal(std=0.01)", "he_normal"]
    (_, tiny), (_, he) = groups
    assert len(tiny) == len(he) == 10  # the hidden layers
    tiny_std = [a.std() for _, _, a in tiny]
    he_std = [a.std() for _, _, a in he]
    assert tiny_std[-1] < 1e-6 * tiny_std[0]  # each layer multiplies the variance by ~0.003
    assert 0.2 < he_std[-1] / he_std[0] < 5  # He keeps it level


@pytest.mark.slow
def test_the_grid_has_a_row_per_initializer_and_shares_x_within_a_row(tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, out):
        drawn["fig"] = fig
        return out

    monkeypatch.setattr(plots, "save_figure", keep)
    cfg = load_config(CONFIGS / "lessons" / "deep_relu.yaml")  # 30 hidden layers: 10 shown
    plots.plot_histograms(init_activations(cfg, ["xavier_uniform", "he_normal"]), tmp_path / "h.png")
    axes = np.array(drawn["fig"].axes).reshape(2, 10)
    for row in axes:
        assert len({ax.get_xlim() for ax in row}) == 1
    assert axes[0, 0].get_xlim() != axes[1, 0].get_xlim()
    assert axes[0, -1].get_title().startswith("layer 30")


@pytest.mark.slow
def test_the_command_writes_the_picture(cli, tmp_path):
    result = cli("inspect", CONFIGS / "lessons" / "init_scale.yaml", "--initializers",
                 "he_normal,xavier_normal", "--histograms", "-o", tmp_path / "h.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_a_network_without_a_hidden_layer_is_refused_before_any_data_is_read(monkeypatch):
    import nntrain.inspection as inspection

    def fail(*args, **kwargs):
        raise AssertionError("the network was built")

    monkeypatch.setattr(inspection, "init_passes", fail)
    cfg = load_config(CONFIGS / "xor.yaml", ["model.layers=[2,1]"])
    with pytest.raises(ConfigError, match=r"^model.layers: \[2, 1\] has no hidden layer"):
        init_activations(cfg, ["he_normal"])


@pytest.mark.slow
def test_the_command_without_a_hidden_layer_says_so_in_one_line(cli, tmp_path):
    result = cli("inspect", CONFIGS / "xor.yaml", "model.layers=[2,1]", "--histograms",
                 "-o", tmp_path / "h.png")
    assert result.exit_code == 2
    assert result.stderr == ("error: model.layers: [2, 1] has no hidden layer, so inspect "
                             "--histograms has no hidden activations to draw\n")
    assert not (tmp_path / "h.png").exists()
