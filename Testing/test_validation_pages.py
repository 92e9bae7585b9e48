"""Every page of ``Docs/validation/`` says how it was made.

A page written by a benchmark starts with its provenance (``Testing/benchmarks/provenance.py``: the
date, the machine, the OncoQI commit and the exact command). The lung segmentation pages written
before the benchmark recorded that are listed here by name and must say so in their first line; no
new page may join them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO_ROOT / "Docs" / "validation").glob("*.md"))
#: Pages written before 2026-12-07 without provenance (closed list).
HISTORICAL = {
    "lung-segmentation.md",
    "lung-segmentation-2.5d.md",
    "lung-segmentation-2.5d-anatomy.md",
    "lung-segmentation-2.5d-confidence.md",
    "lung-segmentation-2.5d-junction.md",
    "lung-segmentation-2.5d-large-mirror.md",
    "lung-segmentation-2.5d-large.md",
    "lung-segmentation-2.5d-negatives.md",
    "lung-segmentation-2.5d-wide.md",
    "lung-segmentation-ensemble-gh.md",
    "lung-segmentation-ensemble-hf.md",
    "lung-segmentation-ensemble-hh1.md",
    "lung-segmentation-flip-finetune-mirror.md",
    "lung-segmentation-flip-mirror.md",
    "lung-segmentation-long-mirror.md",
    "lung-segmentation-one-slice.md",
    "lung-segmentation-shipped-anatomy.md",
    "lung-segmentation-shipped-junction.md",
}
#: The provenance block: the run line (commit in backticks) and the command in a code block.
PROVENANCE = re.compile(
    r"^Run \d{4}-\d\d-\d\d \d\d:\d\d UTC on .+, \d+ CPUs available .*OncoQI `[0-9a-f]{7,}(-dirty)?`\. "
    r"Command, from the checkout root:\n\n```sh\nPYTHONPATH=src python Testing/benchmarks/\S+\.py.*\n```",
    re.M,
)


def test_there_are_pages() -> None:
    assert len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_says_how_it_was_made(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    if page.name in HISTORICAL:
        assert text.startswith("_Historical page:"), f"{page.name}: a page without provenance must say so first"
        commit = re.search(r"in commit `([0-9a-f]{7,})`", text)
        assert commit, f"{page.name}: a historical page names the commit its figures entered the repository in"
        found = subprocess.run(["git", "cat-file", "-e", f"{commit[1]}^{{commit}}"], cwd=REPO_ROOT, capture_output=True)
        assert found.returncode == 0, f"{page.name}: commit {commit[1]} is not in this repository's history"
    else:
        assert PROVENANCE.search(text), f"{page.name}: no provenance block (date, machine, commit, command)"


def test_the_provenance_check_can_fail() -> None:
    assert not PROVENANCE.search("Model `lung_unet.onnx`, benchmark run 2026-12-06 on AMD EPYC, 2 CPUs.")
