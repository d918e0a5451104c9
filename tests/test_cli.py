"""CLI conventions: one error handler, plain metavars, choices in --help, components that are
open to plugins (as outputs too), `list --plugin`, and quiet exits when a pipe closes."""

import subprocess
import sys

import pytest

from conftest import CONFIGS, write
from nntrain.activations import ACTIVATIONS

SOFTSIGN = '''
import numpy as np
from nntrain.activations import ACTIVATIONS, Activation

@ACTIVATIONS.register("softsign_test")
class Softsign(Activation):
    """a = z/(1+|z|);  a' = 1/(1+|z|)^2."""
    output = True
    def forward(self, z, out=None):
        self.z = z
        return np.divide(z, 1 + np.abs(z), out=out)
    def backward(self, da):
        da /= (1 + np.abs(self.z)) ** 2
        return da
'''


def test_built_in_output_activations_are_the_designs():
    outputs = {name for name in ACTIVATIONS if ACTIVATIONS.get(name).output}
    assert outputs == {"identity", "sigmoid", "softmax", "tanh", "softplus"}


def test_a_plugin_activation_can_be_the_output(cli, tmp_path):
    plugin = write(tmp_path / "parts.py", SOFTSIGN)
    config = write(tmp_path / "c.yaml", "data: {name: sine, n_samples: 50}\n"
                   "model: {layers: [1, 8, 1], activation: softsign_test, "
                   "output_activation: softsign_test}\ntrain: {epochs: 3}\n")
    result = cli("train", config, "--plugin", plugin, "--json")
    assert result.exit_code == 0, result.stderr
    listing = cli("list", "activations", "--plugin", plugin)
    assert "softsign_test\ta = z/(1+|z|)" in listing.stdout


def test_an_activation_that_is_not_an_output_is_refused_with_the_known_ones(cli):
    result = cli("train", CONFIGS / "xor.yaml", "model.output_activation=relu")
    assert result.exit_code == 2
    assert "relu is not an output activation; known: identity, sigmoid, softmax" in result.stderr


@pytest.mark.parametrize("command", ["train", "compare", "report", "inspect", "plot",
                                     "gradcheck", "list"])
def test_help_shows_plain_metavars(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    options = result.stdout.split("Options:")[1]
    assert "<bool>" not in options and "<str>" not in options and "<path>" not in options
    if command in ("train", "compare"):
        assert "--out DIR" in result.stdout
    if command == "compare":
        assert "--executor [local|dask]" in result.stdout or "<local|dask>" in result.stdout


def test_executor_is_a_choice(cli, tmp_path):
    result = cli("compare", CONFIGS / "xor.yaml", "--executor", "threads", "--out", tmp_path / "c")
    assert result.exit_code == 2
    assert "threads" in result.stderr and not (tmp_path / "c").exists()


def test_debug_shows_the_traceback_only_for_its_own_command(cli):
    with pytest.raises(Exception, match="unknown activation"):
        cli("train", CONFIGS / "xor.yaml", "model.activation=rleu", "--debug")
    result = cli("train", CONFIGS / "xor.yaml", "model.activation=rleu")
    assert result.exit_code == 2 and result.stderr.startswith("error: model.activation")


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path):
    script = f'"{sys.executable}" -m nntrain list | head -1'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1
    assert "Error" not in result.stderr and "Exception" not in result.stderr, result.stderr


def test_help_shows_arguments_as_typed_without_type_placeholders(cli):
    for name in ["train", "compare", "report", "inspect", "plot", "gradcheck", "list", "explain",
                 "predict", "evaluate", "resume"]:
        text = cli(name, "--help").stdout
        usage = text.splitlines()[0]
        assert "{" not in usage and "[[" not in usage, usage
        assert "<path>" not in text and "<list" not in text and "<text>" not in text, name
    assert " train [OPTIONS] CONFIG [KEY=VALUE]...\n" in cli("train", "--help").stdout
    assert " evaluate [OPTIONS] RUN [INPUT]\n" in cli("evaluate", "--help").stdout
