"""The code is linted and formatted by ruff, with the settings in ``pyproject.toml``.

One formatter and one set of lint rules, so a diff shows what changed and not how someone types.
``.ci/run`` runs the same two commands before the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT


def ruff() -> str:
    """The ruff of this environment, or skip saying how to get it."""
    found = Path(sys.executable).parent / "ruff"
    if found.exists():
        return str(found)
    on_path = shutil.which("ruff")
    if on_path is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return on_path


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes_on_the_whole_repository(command: list[str]) -> None:
    result = subprocess.run([ruff(), *command, "."], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
