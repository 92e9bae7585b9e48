"""A label that misses the image, or labels nothing, is told so: one line that says which, not a symptom.

A label 5 m from the PET used to be "0.105 voxels off the source's" (``report write``) or "no
non-empty segment on the PET grid" (``pet indices``), and ``pet transfer`` wrote an empty label
without a word; an all-zero label file was blamed on the PET grid. Now each command names the file
and says that it does not overlap the image, with both extents (LPS mm, the voxels to their faces),
or that the label file has no labelled voxel. Every command is run through the real ``oncoqi``
command line on a small synthetic PET series (16 x 20 x 24 voxels of 3 mm).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from helpers.pet import write_pet_series
from oncoqi.cli import main

SPACING = (3.0, 3.0, 3.0)
ORIGIN = (-30.0, -36.0, 90.0)
#: The PET's extent: voxel centres from the origin to origin + (n - 1) spacing, each voxel 1.5 mm beyond.
PET_EXTENT = "x -31.5..40.5, y -37.5..22.5, z 88.5..136.5 mm (LPS)"
#: The labelled box ``[5:11, 6:13, 8:15]`` (k, j, i) 5 m away along x: i 8..14 is x 4970 + 22.5..43.5.
FAR_EXTENT = "x 4992.5..5013.5, y -19.5..1.5, z 103.5..121.5 mm (LPS)"
META = {"segments": [{"label": "GTV", "category": "tissue", "type": "neoplasm", "algorithm": {"type": "MANUAL"}}]}


def write_pet(folder: Path, bqml: np.ndarray, origin=ORIGIN) -> str:
    """A PET series with the patient and study attributes a SEG copies (the helper's has only what SUV needs)."""
    write_pet_series(folder, bqml, SPACING, origin)
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "SYNTH^PET", "", "M"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "100000", "1", ""
        ds.ReferringPhysicianName, ds.SeriesNumber, ds.Manufacturer = "", 1, "OncoQI tests"
        ds.save_as(f)
    return str(folder)


def write_label(path: Path, array: np.ndarray, origin=ORIGIN) -> str:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict[str, str]:
    """The PET, a label on it, the same label 5 m away along x, one half off the PET's edge, and an all-zero one."""
    root = tmp_path_factory.mktemp("labels")
    bqml = np.full((16, 20, 24), 2000.0)
    bqml[5:11, 6:13, 8:15] = 30000.0
    write_pet(root / "pet", bqml)
    box = np.zeros(bqml.shape, np.uint8)
    box[5:11, 6:13, 8:15] = 1
    (root / "meta.json").write_text(json.dumps(META), encoding="utf-8")
    return {
        "pet": str(root / "pet"),
        "meta": str(root / "meta.json"),
        "good": write_label(root / "good.nrrd", box),
        "far": write_label(root / "far.nrrd", box, (ORIGIN[0] + 5000.0, ORIGIN[1], ORIGIN[2])),
        "edge": write_label(root / "edge.nrrd", box, (ORIGIN[0] + 11 * SPACING[0], ORIGIN[1], ORIGIN[2])),
        "empty": write_label(root / "empty.nrrd", np.zeros_like(box)),
    }


def commands(case: dict[str, str], label: str, out: Path) -> dict[str, list[str]]:
    """Each command that reads a label map, on ``label``, writing under ``out``."""
    pet = case["pet"]
    return {
        "pet indices": ["pet", "indices", "--pet", pet, "--labels", label],
        "pet transfer": ["pet", "transfer", "--pet", pet, "--labels", label, "--out", str(out / "t.nrrd")],
        "pet segment": ["pet", "segment", "--pet", pet, "--region", label, "--method", "fixed", "--value", "2"]
        + ["--out", str(out / "s.nrrd")],
        "report write": ["report", "write", "--source", pet, "--labels", label, "--meta", case["meta"]]
        + ["--out", str(out / "report")],
    }


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``oncoqi ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


COMMANDS = ["pet indices", "pet transfer", "pet segment", "report write"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_label_far_from_the_image_is_said_not_to_overlap_it_with_both_extents(case, command, tmp_path, capsys):
    code, _, err = run(commands(case, case["far"], tmp_path)[command], capsys)
    shown, image = (
        (f"labels[0] ({case['far']})", "source series") if command == "report write" else (case["far"], "PET image")
    )
    assert code == 2 and "Traceback" not in err, err
    assert err == (
        f"error: {shown}: the label does not overlap the {image}: its labelled voxels lie at {FAR_EXTENT}, "
        f"the {image} at {PET_EXTENT}\n"
    )
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("command", COMMANDS)
def test_an_all_zero_label_is_said_to_have_no_labelled_voxel(case, command, tmp_path, capsys):
    code, _, err = run(commands(case, case["empty"], tmp_path)[command], capsys)
    shown = f"labels[0] ({case['empty']})" if command == "report write" else case["empty"]
    assert code == 2 and err == f"error: {shown}: the label file has no labelled voxel (every voxel is 0)\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("label", "voxels"), [("good", 6 * 7 * 7), ("edge", 6 * 7 * 5)])
def test_a_label_on_the_image_or_across_its_edge_is_measured(case, label, voxels, capsys):
    """Only a label wholly outside is refused: one moved 11 voxels along x, 5 of its 7 columns still on
    the PET, is measured there."""
    code, out, err = run(["pet", "indices", "--pet", case["pet"], "--labels", case[label], "--json"], capsys)
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["voxel_count"] == voxels


def test_a_seg_far_from_the_pet_is_said_not_to_overlap_it(case, tmp_path, capsys):
    """A DICOM SEG made on one PET, given with a PET 5 m away: the same message, naming its segment."""
    code, _, err = run(commands(case, case["good"], tmp_path)["report write"], capsys)
    assert code == 0, err
    far_pet = tmp_path / "far-pet"
    write_pet(far_pet, np.full((16, 20, 24), 2000.0), (ORIGIN[0] - 5000.0, ORIGIN[1], ORIGIN[2]))
    seg = tmp_path / "report" / "seg.dcm"
    code, _, err = run(["pet", "indices", "--pet", str(far_pet), "--labels", str(seg)], capsys)
    assert code == 2 and "Traceback" not in err, err
    assert err == (
        f"error: {seg} segment 1: the label does not overlap the PET image: its labelled voxels lie at "
        "x -7.5..13.5, y -19.5..1.5, z 103.5..121.5 mm (LPS), "
        "the PET image at x -5031.5..-4959.5, y -37.5..22.5, z 88.5..136.5 mm (LPS)\n"
    )
