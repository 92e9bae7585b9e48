"""Scanning, loading and checking DICOM series (oncoqi.dicom) on series written to disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from oncoqi.cli import main
from oncoqi.dicom import check_series, load_series, read_image, scan_series
from oncoqi.dicom.write import DatasetEdits, SeriesInfo, StudyInfo, uid_from, write_series
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image

REPO = Path(__file__).resolve().parents[1]


def _study(name: str = "P1") -> StudyInfo:
    return StudyInfo(
        study_instance_uid=uid_from("study", name),
        frame_of_reference_uid=uid_from("for", name),
        patient_id=name,
        patient_name=f"Test^{name}",
    )


def _volume(shape=(6, 20, 16), direction=None, spacing=(0.8, 0.7, 2.5), origin=(-50.0, -60.0, 100.0)) -> Image:
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    return Image(arr, spacing, origin, np.eye(3) if direction is None else direction)


def _write(image: Image, folder: Path, name: str = "P1", **kw) -> list[Path]:
    return write_series(
        image,
        folder,
        modality="CT",
        study=_study(name),
        series=SeriesInfo(series_description="test"),
        edits=DatasetEdits(**kw),
    )


def test_load_roundtrip_with_oblique_direction_and_shuffled_instance_numbers(tmp_path):
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    img = _volume(direction=rot)
    # Reverse InstanceNumber so that neither it nor file names give the order.
    n = img.array.shape[0]
    _write(img, tmp_path, slice_overrides={k: {"InstanceNumber": n - k} for k in range(n)})
    loaded = read_image(tmp_path)
    assert loaded.size == img.size
    np.testing.assert_allclose(loaded.origin, img.origin, atol=1e-3)
    np.testing.assert_allclose(loaded.spacing, img.spacing, atol=1e-3)
    np.testing.assert_allclose(loaded.direction, img.direction, atol=1e-6)
    np.testing.assert_array_equal(loaded.array, img.array)
    assert loaded.metadata["modality"] == "CT" and loaded.metadata["units"] == "HU"
    # SimpleITK's reader agrees on geometry and voxels
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path)))
    ref = reader.Execute()
    np.testing.assert_allclose(ref.GetOrigin(), loaded.origin, atol=1e-3)
    np.testing.assert_allclose(ref.GetDirection(), loaded.direction.flatten(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), loaded.array)


def test_rescale_slope_and_intercept_per_slice(tmp_path):
    img = _volume(shape=(3, 8, 8))
    files = _write(img, tmp_path)
    # Rewrite slice 1 with slope 2 and intercept -10: stored = (value + 10) / 2 must be recovered.
    ds = pydicom.dcmread(files[1])
    values = img.array[1].astype(np.int32)
    values = values - (values % 2)  # exact under slope 2
    ds.RescaleSlope, ds.RescaleIntercept = 2, -10
    ds.PixelRepresentation = 1
    ds.PixelData = ((values + 10) // 2).astype(np.int16).tobytes()
    ds.save_as(files[1])
    loaded = read_image(tmp_path)
    np.testing.assert_array_equal(loaded.array[1], values)
    np.testing.assert_array_equal(loaded.array[0], img.array[0])


def test_scan_nested_mixed_patients_modalities_and_junk(tmp_path):
    _write(_volume(shape=(3, 8, 8)), tmp_path / "a" / "deep" / "ct")
    _write(_volume(shape=(4, 8, 8)), tmp_path / "b", name="P2")
    (tmp_path / "a" / "notes.txt").write_text("not dicom")
    (tmp_path / "b" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    scan = scan_series(tmp_path)
    assert sorted((s.patient_id, s.number_of_instances) for s in scan.series) == [("P1", 3), ("P2", 4)]
    assert {p.name for p, _ in scan.skipped} == {"notes.txt", "image.png"}
    assert all("not a DICOM file" in why for _, why in scan.skipped)
    with pytest.raises(InputError, match="2 image series found"):
        read_image(tmp_path)
    chosen = read_image(tmp_path, series_uid=scan.series[1].series_uid)
    assert chosen.metadata["patient_id"] == scan.series[1].patient_id


def test_missing_middle_slice_refused_and_reported(tmp_path):
    files = _write(_volume(shape=(7, 8, 8)), tmp_path)
    files[3].unlink()
    with pytest.raises(GeometryError, match="1 missing slice") as err:
        read_image(tmp_path)
    assert "between 105.000 and 110.000 mm" in str(err.value)
    loaded = load_series(scan_series(tmp_path).series[0], allow_irregular=True)
    assert loaded.array.shape[0] == 6 and loaded.metadata["geometry_problems"]


def test_duplicate_positions_and_mixed_sizes(tmp_path):
    _write(_volume(shape=(4, 8, 8)), tmp_path, slice_overrides={2: {"ImagePositionPatient": [-50.0, -60.0, 102.5]}})
    problems = check_series(scan_series(tmp_path).series[0]).problems
    assert any("duplicate slice position" in p for p in problems)


def test_gantry_tilt_reported(tmp_path):
    _write(
        _volume(shape=(4, 8, 8)),
        tmp_path,
        slice_overrides={k: {"ImagePositionPatient": [-50.0, -60.0 + 0.6 * k, 100.0 + 2.5 * k]} for k in range(4)},
    )
    (problem,) = check_series(scan_series(tmp_path).series[0]).problems
    assert "gantry tilt" in problem


def test_truncated_file_named(tmp_path):
    files = _write(_volume(shape=(3, 16, 16)), tmp_path)
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) - 200])
    problems = check_series(scan_series(tmp_path).series[0]).problems
    assert len(problems) == 1 and files[1].name in problems[0] and "truncated" in problems[0]
    with pytest.raises(InputError, match=files[1].name):
        read_image(tmp_path)


def test_transfer_syntax_without_decoder_named(tmp_path):
    files = _write(_volume(shape=(2, 8, 8)), tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML  # a video syntax: no decoder exists in pydicom
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 16])
    ds.save_as(files[0], enforce_file_format=True)
    problems = check_series(scan_series(tmp_path).series[0]).problems
    assert any("no pixel data decoder" in p and pydicom.uid.MPEG2MPML in p for p in problems)


def test_missing_decoder_plugin_is_named():
    """With pylibjpeg not importable, HTJ2K is refused naming the plugin to install."""
    code = (
        "import sys; sys.modules['pylibjpeg'] = sys.modules['openjpeg'] = None\n"
        "from pydicom.uid import HTJ2KLossless\n"
        "from oncoqi.dicom.load import decoder_problem\n"
        "print(decoder_problem(HTJ2KLossless))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "cannot be decoded" in out and "pylibjpeg-openjpeg" in out


def test_volume_files_nrrd_nifti_mha(tmp_path):
    img = _volume(shape=(5, 9, 7))
    for name in ("v.nrrd", "v.nii.gz", "v.mha"):
        sitk.WriteImage(img.to_sitk(), str(tmp_path / name))
        back = read_image(tmp_path / name)
        assert back.same_grid(img)
        np.testing.assert_array_equal(back.array, img.array)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM image series found"):
        read_image(tmp_path / "empty")
    (tmp_path / "fake.nrrd").write_text("this is not an image")
    with pytest.raises(InputError, match="fake.nrrd: cannot be read as an image"):
        read_image(tmp_path / "fake.nrrd")


def test_cli_ls_json_and_check_exit_codes(tmp_path, capsys):
    good = tmp_path / "good"
    _write(_volume(shape=(4, 8, 8)), good)
    assert main(["dicom", "ls", str(good), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["modality"] == "CT" and row["number_of_instances"] == 4 and row["patient_id"] == "P1"
    assert main(["dicom", "check", str(good)]) == 0
    assert "ok:" in capsys.readouterr().out

    bad = tmp_path / "bad"
    files = _write(_volume(shape=(5, 8, 8)), bad, name="P2")
    files[2].unlink()
    assert main(["dicom", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("problem:") == 1 and "missing slice" in out and "ok:" in out

    (tmp_path / "nodicom").mkdir()
    assert main(["dicom", "ls", str(tmp_path / "nodicom")]) == 1
    assert "no DICOM series found" in capsys.readouterr().err


def test_cli_reports_expected_errors_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "oncoqi", "dicom", "check", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
