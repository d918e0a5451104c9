import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nntrain.cli import app

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `nntrain ARGS...` in-process with tmp_path as the working directory."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def run_nntrain(*args, cwd, **kwargs):
    """`nntrain ARGS...` in a subprocess (the installed console script's module)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "nntrain", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, **kwargs)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def isolated_registries():
    """Components a test's plugin registers are gone after the test."""
    from nntrain import config
    from nntrain.cli import registries_by_kind

    registries = registries_by_kind().values()
    saved = [dict(r._items) for r in registries]
    plugins = set(config._LOADED_PLUGINS)
    yield
    for registry, items in zip(registries, saved):
        registry._items = items
    config._LOADED_PLUGINS.clear()
    config._LOADED_PLUGINS.update(plugins)


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
LAYOUT = re.compile(r"[\s\u2500-\u257f]+")  # whitespace and box drawing: a table's padding


def printed_alike(got: str, expected: str, rtol: float = 1e-6, tiny: float = 1e-6) -> bool:
    """Two print-outs say the same: the same words in the same order, and numbers equal to
    ``rtol``, any two below ``tiny`` in size counting as equal. Printed digits depend on the
    CPU and its BLAS (a gradient check's 5.9e-10 on one machine is 6e-10 on another, and the
    table around it is narrower), so neither digits nor column widths are compared."""
    def split(text):
        numbers = [float(n) for n in NUMBER.findall(text)]
        return LAYOUT.sub("", NUMBER.sub("#", text)), numbers

    (words_a, a), (words_b, b) = split(got), split(expected)
    return words_a == words_b and len(a) == len(b) and all(
        (abs(x) < tiny and abs(y) < tiny) or math.isclose(x, y, rel_tol=rtol, abs_tol=tiny * rtol)
        for x, y in zip(a, b))
