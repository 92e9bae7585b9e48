"""Issue 26's bar: bad input never shows a traceback. Every command that reads an input is given each kind
of bad input there (a missing path, a file that is not DICOM, an empty folder, a truncated NRRD, a label
map with NaN, a file that is not a model or a manifest), through the real command line in a separate
process whose file descriptors 1 and 2 are captured (so that C libraries' output counts too).

Each case must end with exit code 2 and one ``error:`` line on stderr naming the bad path, and no
"Traceback" anywhere in its output. The cases run in one process, one after the other (a process each
would spend most of the time importing); two of them also run as ``python -m oncoqi``, for the exit
code a shell sees. ``dicom ls`` and ``dicom check`` report a folder without DICOM series with exit
code 1 and a line without ``error:`` (as ``grep`` finding nothing), which ``test_dicom_io.py`` fixes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO_ROOT
from helpers.pet import write_pet_series

#: Runs ``oncoqi`` on every case of a JSON file in this one process, each with fds 1 and 2 captured.
RUNNER = """
import json, os, sys, tempfile, traceback
from oncoqi.cli import main

def run(argv):
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = "escaped"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        out.seek(0)
        err.seek(0)
        return {"code": code, "out": out.read().decode(errors="replace"), "err": err.read().decode(errors="replace")}

cases = json.loads(open(sys.argv[1]).read())
open(sys.argv[2], "w").write(json.dumps({name: run(case["argv"]) for name, case in cases.items()}))
"""


def _write(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((3.0, 3.0, 3.0))
    image.SetOrigin((-30.0, -36.0, 90.0))
    sitk.WriteImage(image, str(path), compress)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A good PET series and label map, and one input of each bad kind."""
    root = tmp_path_factory.mktemp("bad-inputs")
    write_pet_series(root / "pet", np.full((16, 20, 24), 2000.0), (3.0, 3.0, 3.0), (-30.0, -36.0, 90.0))
    box = np.zeros((16, 20, 24), np.float32)
    box[5:11, 6:13, 8:15] = 1
    nan = box.copy()
    nan[0, 0, 0] = np.nan
    raw = _write(root / "raw.nrrd", box, compress=False).read_bytes()
    (root / "truncated.nrrd").write_bytes(raw[: len(raw) // 2])
    (root / "notes.txt").write_text("not DICOM, not an image, not a model: just text\n")
    (root / "empty").mkdir()
    (root / "meta.json").write_text(
        json.dumps({"segments": [{"label": "GTV", "category": "tissue", "type": "neoplasm"}]})
    )
    return {
        "root": root,
        "pet": root / "pet",
        "good": _write(root / "good.nrrd", box),
        "nan": _write(root / "nan.nrrd", nan),
        "truncated": root / "truncated.nrrd",
        "notes": root / "notes.txt",
        "empty": root / "empty",
        "missing": root / "no-such-input",
        "meta": root / "meta.json",
    }


def _cases(i: dict[str, Path]) -> dict[str, tuple[list[str], Path]]:
    """Every case: its arguments and the bad path its message must name."""
    out = i["root"] / "out"
    pet, good, meta = str(i["pet"]), str(i["good"]), str(i["meta"])
    series = {"missing": i["missing"], "not DICOM": i["notes"], "empty folder": i["empty"]}
    volumes = {**series, "truncated NRRD": i["truncated"]}
    labels = {"missing": i["missing"], "not an image": i["notes"], "truncated NRRD": i["truncated"], "NaN": i["nan"]}
    labels["a folder"] = i["empty"]
    files = {"missing": i["missing"], "not a model or manifest": i["notes"]}
    cases: dict[str, tuple[list[str], Path]] = {}
    for kind, p in series.items():
        cases |= {
            f"dicom ls: {kind}": (["dicom", "ls", str(p)], p),
            f"dicom check: {kind}": (["dicom", "check", str(p)], p),
            f"pet suv: {kind}": (["pet", "suv", str(p)], p),
            f"pet indices --pet: {kind}": (["pet", "indices", "--pet", str(p), "--labels", good], p),
            f"batch: {kind}": (["batch", str(p), "--out", str(out / f"batch {kind}"), "--no-progress"], p),
            f"report write --source: {kind}": (
                ["report", "write", "--source", str(p), "--labels", good, "--meta", meta, "--out", str(out / kind)],
                p,
            ),
            f"report read: {kind}": (["report", "read", str(p)], p),
        }
    for kind, p in volumes.items():
        cases[f"lung isolate: {kind}"] = (["lung", "isolate", str(p), "--out", str(out / f"isolate {kind}")], p)
        cases[f"lung segment: {kind}"] = (["lung", "segment", str(p), "--out", str(out / f"segment {kind}")], p)
    for kind, p in labels.items():
        cases |= {
            f"lung evaluate: {kind}": (["lung", "evaluate", str(p), good], p),
            f"pet indices --labels: {kind}": (["pet", "indices", "--pet", pet, "--labels", str(p)], p),
            f"pet segment --region: {kind}": (
                ["pet", "segment", "--pet", pet, "--region", str(p), "--method", "fixed", "--value", "2"]
                + ["--out", str(out / f"region {kind}.nrrd")],
                p,
            ),
            f"pet transfer: {kind}": (
                ["pet", "transfer", "--pet", pet, "--labels", str(p), "--out", str(out / f"transfer {kind}.nrrd")],
                p,
            ),
            f"report write --labels: {kind}": (
                ["report", "write", "--source", pet, "--labels", str(p), "--meta", meta, "--out", str(out / kind)],
                p,
            ),
        }
    for kind, p in {**files, "a folder": i["empty"]}.items():
        cases[f"report write --meta: {kind}"] = (
            ["report", "write", "--source", pet, "--labels", good, "--meta", str(p), "--out", str(out / f"m {kind}")],
            p,
        )
    for kind, p in files.items():
        cases |= {
            f"lung segment --model: {kind}": (["lung", "segment", pet, "--model", str(p), "--out", str(out / kind)], p),
            f"lung ensemble: {kind}": (["lung", "ensemble", str(p), str(p), "--out", str(out / f"{kind}.onnx")], p),
            f"lung tune --model: {kind}": (["lung", "tune", "--model", str(p)], p),
            f"batch --model: {kind}": (["batch", pet, "--model", str(p), "--out", str(out / f"b {kind}")], p),
            f"demo --model: {kind}": (["demo", "--model", str(p), "--out", str(out / f"demo {kind}")], p),
            f"tcia download --manifest: {kind}": (
                ["tcia", "download", "--manifest", str(p), "--out", str(out / f"tcia {kind}")],
                p,
            ),
        }
    return cases


#: Cases whose command reports "nothing found" with exit code 1 and a plain line (see the module documentation).
NOTHING_FOUND = {f"dicom {c}: {kind}" for c in ("ls", "check") for kind in ("not DICOM", "empty folder")}


def test_no_bad_input_shows_a_traceback_and_each_is_one_line_naming_it(inputs, tmp_path) -> None:
    cases = _cases(inputs)
    assert len(cases) == 69
    (tmp_path / "cases.json").write_text(json.dumps({n: {"argv": a} for n, (a, _) in cases.items()}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "cases.json"), str(tmp_path / "results.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    wrong = []
    for name, (_, bad) in cases.items():
        r = results[name]
        lines = r["err"].splitlines()
        code, prefix = (1, "") if name in NOTHING_FOUND else (2, "error: ")
        fine = (
            "Traceback" not in r["out"] + r["err"]
            and r["code"] == code
            and len(lines) == 1
            and lines[0].startswith(prefix)
            and str(bad) in lines[0]
        )
        if not fine:
            wrong.append(f"{name}: exit {r['code']}, stderr {r['err']!r}")
    assert not wrong, "\n".join(wrong)
    # nothing written by any case: no output file or folder (batch may leave the folder above its own, created
    # with it as mkdir -p does)
    assert not (inputs["root"] / "out").exists() or not any((inputs["root"] / "out").iterdir())


@pytest.mark.parametrize("case", ["pet indices --labels: NaN", "demo --model: missing"])
def test_the_shell_sees_exit_code_2(inputs, case) -> None:
    argv, bad = _cases(inputs)[case]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "oncoqi", *argv], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {bad}: ") and len(done.stderr.splitlines()) == 1
