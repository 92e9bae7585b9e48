"""``oncoqi demo`` runs the batch pipeline on the embedded sample and agrees with its ground truth."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from oncoqi.cli import main
from oncoqi.lung.segment import default_model_path


def _check_common(out: str, tmp_path) -> dict:
    """What holds whatever the model: series choice, lungs, SUV factor, the cohort files."""
    assert re.search(r"CT chosen \(only candidate\): CT #2 .*72 slices", out) and re.search(r"PET chosen: PT #3", out)
    dice = float(re.search(r"Dice (\d\.\d+) against the true lung mask", out).group(1))
    assert dice >= 0.95
    truth = json.loads((tmp_path / "sample" / "truth" / "truth.json").read_text())
    factor = float(re.search(r"SUVbw factor (\S+) g/ml", out).group(1))
    assert abs(factor / truth["pet"]["suvbw_factor"] - 1) < 1e-6
    assert out.count("true tumour ") >= len(truth["tumours"])
    for name in ("results.csv", "failures.csv", "report.html"):
        assert (tmp_path / "batch" / name).is_file()
    assert "5. lesion table (results.csv)" in out and re.search(r"^\s+GTV-1\s", out, re.MULTILINE)
    return truth


def test_demo_plumbing_with_a_known_output_model(tmp_path, capsys):
    from helpers.known_models import identity_model
    from oncoqi.lung.preprocess import PreprocessOptions

    model = identity_model(tmp_path / "identity.onnx", PreprocessOptions(pixel_mm=3.0, columns=128, rows=128), 0.77)
    assert main(["demo", "--out", str(tmp_path), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    _check_common(out, tmp_path)
    assert ": processed" in out
    assert main(["demo", "--out", str(tmp_path), "--model", str(model)]) == 0
    assert "complete from an earlier run" in capsys.readouterr().out
    # a plain install has no pyarrow (the batch extra): the first thing the demo showed was then a line
    # "WARNING oncoqi.batch.cohort: results.parquet not written"; now its stderr is empty (its own process,
    # where the command line sets up logging as for a user)
    script = "import sys\nsys.modules['pyarrow'] = None\nfrom oncoqi.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    argv = ["demo", "--out", str(tmp_path), "--model", str(model)]
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("sample study unpacked in ") and "complete from an earlier run" in done.stdout
    assert not (tmp_path / "batch" / "results.parquet").exists()  # the run without pyarrow it was


@pytest.mark.skipif(not default_model_path().is_file(), reason=f"no trained model at {default_model_path()} yet")
def test_demo_on_embedded_sample(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    truth = _check_common(out, tmp_path)
    # GTV-1 must be the largest true tumour, well outlined (the sample was drawn with a new seed on
    # 2026-12-07, without looking at the model's result on it).
    largest = max(truth["tumours"], key=lambda t: t["volume_ml"])
    gtv = re.search(r"GTV-1 \S+ ml, Dice (\d\.\d+) against true tumour (\d+)", out)
    assert gtv, "GTV-1 overlaps no true tumour"
    assert int(gtv.group(2)) == largest["label"] and float(gtv.group(1)) >= 0.7, gtv.group(0)
    seconds = float(re.search(r"done in (\S+) s", out).group(1))
    print(f"demo took {seconds:.1f} s")
