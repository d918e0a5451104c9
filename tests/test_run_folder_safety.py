"""A run folder is data: the commands that read one never import the plugin files it names;
the user passes them with --plugin, checked against the hash the run recorded."""

import json
import os
import subprocess
import sys

import numpy as np
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


def small_run(tmp_path):
    from nntrain import load_config, train

    return train(load_config(raw={"data": {"name": "xor"}, "model": {"layers": [2, 3, 1]},
                                  "train": {"epochs": 50, "snapshot_every": 10}}),
                 out=tmp_path / "r").path


@pytest.mark.parametrize("name", ["snapshots.bin", "layers.csv", "metrics.csv", "checkpoint.npz"])
def test_resume_refuses_a_symlink_in_the_run_folder_and_changes_nothing(tmp_path, name):
    from nntrain.registry import ConfigError
    from nntrain.resume import resume

    run = small_run(tmp_path)
    victim = write(tmp_path / "victim.txt", "a secret first line\nmore\n")
    (run / name).replace(tmp_path / f"moved-{name}")
    (run / name).symlink_to(victim)
    before = {p.name: (p.read_bytes() if not p.is_symlink() else "link")
              for p in run.iterdir()}
    with pytest.raises(ConfigError, match=f"{name}: is a symbolic link"):
        resume(run, ["train.epochs=55"])
    assert victim.read_text() == "a secret first line\nmore\n"
    assert {p.name: (p.read_bytes() if not p.is_symlink() else "link")
            for p in run.iterdir()} == before


def test_a_small_npz_claiming_a_huge_array_is_refused_before_it_is_loaded(tmp_path):
    import zipfile

    from nntrain import load_run
    from nntrain.registry import ConfigError

    run = small_run(tmp_path)
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    npy = b"\x93NUMPY\x01\x00" + (len(header) + 1).to_bytes(2, "little") + header + b"\n"
    with zipfile.ZipFile(run / "model.npz", "a") as archive:
        archive.writestr("huge.npy", npy + b"\0" * 64)  # claims 8 TB, holds 64 bytes
    with pytest.raises(ConfigError, match="model.npz: is not a readable npz file.*over 1024 MiB"):
        load_run(run)


def test_an_npz_with_an_extra_array_is_refused_before_anything_is_decompressed(tmp_path):
    import numpy as np

    from nntrain import load_run
    from nntrain.registry import ConfigError

    run = small_run(tmp_path)
    with np.load(run / "model.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez_compressed(run / "model.npz", **arrays, extra=np.zeros(20_000_000))  # 160 MB
    assert (run / "model.npz").stat().st_size < 1_000_000
    with pytest.raises(ConfigError, match="extra arrays extra.*nothing was loaded"):
        load_run(run)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["summary.json", "metrics.csv"])
def test_a_named_pipe_in_a_run_folder_hangs_no_reader(tmp_path, name):
    run = small_run(tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    for command in (["report", tmp_path], ["plot", tmp_path, "-o", tmp_path / "p.png"]):
        result = nntrain(*command, cwd=tmp_path)  # a timeout of 120 s fails the test
        assert "Traceback" not in result.stderr
        assert f"{name} is not a regular file" in result.stderr or result.returncode == 2


@pytest.mark.parametrize("damage, message", [
    (lambda info: info.pop("feature_names"), "no list of feature_names"),
    (lambda info: info.update(classes=np.array([5])), "1 classes for a binary network"),
    (lambda info: info.update(feature_names=np.array(["a"])), "1 feature names for 2 inputs"),
    (lambda info: info.update(task=np.array("tabular")), "unknown task 'tabular'"),
])
def test_a_damaged_data_npz_is_one_line_not_a_wrong_answer(tmp_path, cli, damage, message):
    run = small_run(tmp_path)
    with np.load(run / "data.npz") as npz:
        info = {k: npz[k] for k in npz.files}
    damage(info)
    np.savez(run / "data.npz", **info)
    write(tmp_path / "x.csv", "x1,x2\n0,1\n")
    result = cli("predict", run, tmp_path / "x.csv")
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_an_npz_holding_python_objects_is_never_unpickled(tmp_path):
    from nntrain import load_run
    from nntrain.registry import ConfigError

    run = small_run(tmp_path)
    with np.load(run / "data.npz") as npz:
        info = {k: npz[k] for k in npz.files}
    info["classes"] = np.array([object(), 1], dtype=object)  # np.savez pickles it
    np.savez(run / "data.npz", **info)
    with pytest.raises(ConfigError, match="classes.npy holds Python objects"):
        load_run(run)


def test_a_text_target_for_a_regression_run_is_one_line(tmp_path, cli):
    from nntrain import load_config, train

    run = train(load_config(raw={"data": {"name": "sine", "n_samples": 40},
                                 "model": {"layers": [1, 4, 1]}, "train": {"epochs": 3}}),
                out=tmp_path / "r").path
    write(tmp_path / "t.csv", "x1,y\n0.5,high\n")
    result = cli("evaluate", run, tmp_path / "t.csv")
    assert result.exit_code == 2 and "'high' is not a number" in result.stderr


def test_a_users_own_input_may_be_a_symlink_a_run_folders_file_may_not(tmp_path, cli):
    run = small_run(tmp_path)
    np.savez(tmp_path / "real.npz", X=np.zeros((2, 2)))
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")  # DVC, git-annex, shared data
    assert cli("predict", run, tmp_path / "link.npz").exit_code == 0


def test_the_package_still_reaches_its_modules_as_attributes():
    import nntrain

    assert nntrain.losses.Loss and nntrain.callbacks.Callback  # what plugin authors subclass
    assert callable(nntrain.train) and nntrain.train.__module__ == "nntrain.loop"
