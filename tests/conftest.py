import os
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
