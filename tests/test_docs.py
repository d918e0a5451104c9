"""Every shell command in README.md and docs/*.md runs (with few epochs), exits 0 and writes
the files it names, so that examples cannot rot. Commands that cannot run in a test (the
quick start itself, a remote Dask address, the benchmarks) are in ```text blocks."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(doc, block) for doc in DOCS
          for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.S)]
LESSONS = "".join(b for doc, b in BLOCKS if doc.name == "lessons.md")


def test_lessons_have_commands_for_every_config():
    for config in (ROOT / "configs" / "lessons").glob("*.yaml"):
        assert f"configs/lessons/{config.name}" in LESSONS, config.name


def test_every_doc_has_runnable_commands():
    assert {doc.name for doc, _ in BLOCKS} >= {"README.md", "lessons.md", "cli.md",
                                                "configuration.md"}


@pytest.mark.slow
@pytest.mark.parametrize("doc, block", BLOCKS,
                         ids=[f"{d.name}:{b.splitlines()[0][:50]}" for d, b in BLOCKS])
def test_doc_block_runs_and_writes_its_files(tmp_path, doc, block):
    for folder in ("configs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    short = re.sub(r"(nntrain (?:train|compare) \S+)", r"\1 train.epochs=3", block)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONWARNINGS": "ignore"}
    script = f'set -euo pipefail\nnntrain() {{ "{sys.executable}" -m nntrain "$@"; }}\n{short}'
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in re.findall(r"(?:-o|--csv) (\S+)", block):
        written = tmp_path / name
        assert written.exists() and written.stat().st_size > 0, name
        if name.endswith(".png"):
            assert written.read_bytes()[:4] == b"\x89PNG"


PYTHON = [(doc, block) for doc in DOCS
          for block in re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
          if doc.name == "api.md"]


@pytest.mark.slow
@pytest.mark.parametrize("doc, block", PYTHON, ids=[b.splitlines()[0][:40] for _, b in PYTHON])
def test_api_examples_run(tmp_path, doc, block):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
