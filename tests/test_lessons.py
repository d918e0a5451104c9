"""Every shell command in docs/lessons.md runs (with few epochs) and writes the file it names."""

import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

LESSONS = (ROOT / "docs" / "lessons.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", LESSONS, flags=re.S)


def test_lessons_have_commands_for_every_config():
    text = "".join(BLOCKS)
    for config in (ROOT / "configs" / "lessons").glob("*.yaml"):
        assert f"configs/lessons/{config.name}" in text, config.name


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.split("\n")[0][:60])
def test_lesson_block_runs_and_writes_its_files(tmp_path, block):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    short = re.sub(r"(nntrain train \S+)", r"\1 train.epochs=3", block)
    script = f'set -euo pipefail\nnntrain() {{ "{sys.executable}" -m nntrain "$@"; }}\n{short}'
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in re.findall(r"(?:-o|--csv) (\S+)", block):
        written = tmp_path / name
        assert written.exists() and written.stat().st_size > 0, name
        if name.endswith(".png"):
            assert written.read_bytes()[:4] == b"\x89PNG"
