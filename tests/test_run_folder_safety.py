"""A run folder is data: the commands that read one never import the plugin files it names;
the user passes them with --plugin, checked against the hash the run recorded."""

import json
import os
import subprocess
import sys

import pytest

from conftest import write

PLUGIN = '''\
import numpy as np
from nntrain.activations import ACTIVATIONS, Activation


@ACTIVATIONS.register("cube")
class Cube(Activation):
    """a = z^3;  a' = 3 z^2."""

    def forward(self, z, out=None):
        self.z = z
        return np.power(z, 3, out=out)

    def backward(self, da):
        return da * 3 * self.z ** 2
'''
EVIL = '''\
from pathlib import Path
Path(__file__).with_name("EVIL-RAN").write_text("the run folder's plugin ran")
'''


def nntrain(*args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "nntrain", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def plugin_run(tmp_path):
    """A run trained with a plugin activation; then its plugin file is replaced by one that
    leaves a mark when imported, as a run folder sent by someone else might name."""
    write(tmp_path / "parts" / "cube.py", PLUGIN)
    write(tmp_path / "points.csv", "a,b,label\n" + "".join(
        f"{i % 7 / 7 - 0.4},{i % 5 / 5 - 0.3},{int(i % 7 / 7 + i % 5 / 5 > 0.8)}\n"
        for i in range(60)))
    write(tmp_path / "c.yaml", "data: {name: csv, path: points.csv, target: label}\n"
                               "model: {layers: [2, 4, 1], activation: cube}\n"
                               "train: {epochs: 20}\nplugins: [parts/cube.py]\n")
    assert nntrain("train", "c.yaml", "--out", "run", "-q", cwd=tmp_path).returncode == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [p["sha256"] for p in summary["plugins"]][0]  # the run records the file's hash
    (tmp_path / "good").mkdir()
    (tmp_path / "parts" / "cube.py").replace(tmp_path / "good" / "cube.py")
    write(tmp_path / "parts" / "cube.py", EVIL)  # what the run folder's config now names
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["predict", "run", "points.csv"], ["evaluate", "run", "points.csv"],
    ["plot", "run", "--boundary", "-o", "b.png"], ["resume", "run", "train.epochs=30"]])
def test_a_run_folder_never_runs_the_plugin_files_it_names(plugin_run, command):
    refused = nntrain(*command, cwd=plugin_run)
    assert refused.returncode == 2, refused.stderr
    assert "cube.py" in refused.stderr and "--plugin" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert not (plugin_run / "parts" / "EVIL-RAN").exists()
    used = nntrain(*command, "--plugin", "good/cube.py", cwd=plugin_run)
    assert used.returncode == 0, used.stderr
    assert not (plugin_run / "parts" / "EVIL-RAN").exists()


@pytest.mark.slow
def test_a_plugin_file_that_changed_is_refused_unless_asked_for(plugin_run):
    write(plugin_run / "changed" / "cube.py", PLUGIN + "\n# edited since training\n")
    refused = nntrain("predict", "run", "points.csv", "--plugin", "changed/cube.py",
                      cwd=plugin_run)
    assert refused.returncode == 2 and "SHA-256 differs" in refused.stderr
    assert "--plugin-changed-ok" in refused.stderr
    used = nntrain("predict", "run", "points.csv", "--plugin", "changed/cube.py",
                   "--plugin-changed-ok", cwd=plugin_run)
    assert used.returncode == 0, used.stderr


@pytest.mark.slow
def test_a_run_without_plugin_components_ignores_the_files_it_names(tmp_path):
    write(tmp_path / "points.csv", "a,b,label\n" + "".join(
        f"{i % 7},{i % 5},{i % 2}\n" for i in range(40)))
    write(tmp_path / "c.yaml", "data: {name: csv, path: points.csv, target: label}\n"
                               "model: {layers: [2, 3, 1]}\ntrain: {epochs: 5}\n")
    assert nntrain("train", "c.yaml", "--out", "run", "-q", cwd=tmp_path).returncode == 0
    write(tmp_path / "evil.py", EVIL)
    config = (tmp_path / "run" / "config.yaml").read_text().replace(
        "plugins: []", f"plugins:\n- {tmp_path / 'evil.py'}")
    (tmp_path / "run" / "config.yaml").write_text(config)
    result = nntrain("predict", "run", "points.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "EVIL-RAN").exists()


def test_a_run_of_an_earlier_version_accepts_a_plugin_with_a_warning(tmp_path, monkeypatch):
    from nntrain import load_config, load_run, train

    write(tmp_path / "cube.py", PLUGIN)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(raw={"data": {"name": "xor"}, "model": {"layers": [2, 3, 1],
                           "activation": "cube"}, "train": {"epochs": 3}}, plugins=["cube.py"])
    run = train(cfg, out=tmp_path / "run")
    summary = json.loads((run.path / "summary.json").read_text())
    del summary["plugins"]  # nntrain 0.2 recorded no hashes
    (run.path / "summary.json").write_text(json.dumps(summary))
    with pytest.warns(UserWarning, match="recorded no hash"):
        load_run(run.path, plugins=[tmp_path / "cube.py"])
