"""Input that is not what it claims is refused in one line, before it costs memory or a wrong number.

Label maps with NaN, infinite or fractional values (a probability map or a resampled label given
by mistake) are refused wherever labels are read, instead of being counted as lesion; a volume file
whose header declares more than the limit (a small gzip file that would inflate to gigabytes) is
refused from its header alone.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from oncoqi.cli import main
from oncoqi.dicom import read_label_file, read_volume_file
from oncoqi.errors import InputError


def write_labels(path: Path, values: np.ndarray) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path))
    return path


@pytest.fixture
def labels(tmp_path: Path) -> dict[str, Path]:
    good = np.zeros((4, 8, 8), np.float32)
    good[1:3, 2:5, 2:5] = 1
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    fraction = good.copy()
    fraction[1, 2, 2] = 0.4
    return {
        "good": write_labels(tmp_path / "good.nrrd", good),
        "nan": write_labels(tmp_path / "nan.nrrd", nan),
        "fraction": write_labels(tmp_path / "fraction.nrrd", fraction),
    }


def test_a_float_file_of_whole_numbers_is_a_label_map(labels) -> None:
    assert read_label_file(labels["good"]).array.max() == 1


@pytest.mark.parametrize(
    ("kind", "counts"), [("nan", "1 NaN or infinite and 0"), ("fraction", "0 NaN or infinite and 1")]
)
def test_lung_evaluate_refuses_what_is_not_a_label_map(kind: str, counts: str, labels, capsys) -> None:
    assert main(["lung", "evaluate", str(labels[kind]), str(labels["good"])]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"error: {labels[kind]}: is not a label map: {counts} non-integer voxel values (labels are whole numbers)\n"
    )


def test_report_write_and_pet_indices_refuse_nan_labels_the_same_way(labels, tmp_path) -> None:
    from oncoqi.dicom.write import SeriesInfo, StudyInfo, uid_from, write_series
    from oncoqi.image import Image
    from oncoqi.pet.labels import read_segments
    from oncoqi.report import write_report

    ct = Image(np.zeros((4, 8, 8), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    study = StudyInfo(study_instance_uid=uid_from("study", "guards"), frame_of_reference_uid=uid_from("for", "guards"))
    write_series(ct, tmp_path / "ct", modality="CT", study=study, series=SeriesInfo(series_description="CT"))
    with pytest.raises(InputError, match="is not a label map: 1 NaN"):
        write_report(tmp_path / "ct", labels["nan"], {"segments": []}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="is not a label map: 1 NaN"):
        read_segments(labels["nan"], read_volume_file(labels["good"]))


def gzip_bomb(path: Path, side: int = 1600) -> Path:
    """An NRRD whose header declares ``side**3`` 16-bit voxels (8.2 GB for 1600) over a tiny gzip payload."""
    header = (
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
        f"sizes: {side} {side} {side}\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n"
        "kinds: domain domain domain\nendian: little\nencoding: gzip\nspace origin: (0,0,0)\n\n"
    )
    path.write_bytes(header.encode() + gzip.compress(bytes(1 << 20)))
    return path


def test_a_volume_declaring_more_than_the_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.nrrd")
    assert bomb.stat().st_size < 100_000
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"declares a 1600 x 1600 x 1600 volume \(8\.2 GB in memory\), more than"):
        read_volume_file(bomb)
    assert time.perf_counter() - start < 2.0


def test_the_command_line_refuses_the_bomb_in_under_2_s_and_300_mb(tmp_path: Path) -> None:
    """Run in its own process, which reports the command's time (from the call, the interpreter's start
    left out) and its own peak memory when the command returns: ``VmHWM`` of ``/proc/self/status``
    (``ru_maxrss`` would carry the forking test process's size across ``exec``)."""
    bomb = gzip_bomb(tmp_path / "bomb.nrrd")
    script = (
        "import re, sys, time\n"
        "from oncoqi.cli import main\n"
        "start = time.perf_counter()\n"
        f"code = main(['lung', 'evaluate', {str(bomb)!r}, {str(bomb)!r}])\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]\n"
        "print(time.perf_counter() - start, peak)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {bomb}: declares a 1600 x 1600 x 1600 volume")
    assert "Traceback" not in done.stderr
    seconds, peak_kib = done.stdout.split()[-2:]
    assert float(seconds) < 2.0
    assert int(peak_kib) / 1024 < 300


def test_the_limit_can_be_raised_or_lowered(tmp_path: Path, monkeypatch) -> None:
    small = write_labels(tmp_path / "small.nrrd", np.zeros((4, 8, 8), np.uint8))
    monkeypatch.setenv("ONCOQI_MAX_VOLUME_BYTES", "100")
    with pytest.raises(InputError, match=r"declares a 8 x 8 x 4 volume"):
        read_volume_file(small)
    monkeypatch.setenv("ONCOQI_MAX_VOLUME_BYTES", "256")
    assert read_volume_file(small).array.shape == (4, 8, 8)


@pytest.fixture
def series_with_a_cut_slice(tmp_path: Path) -> tuple[Path, Path]:
    """A 6-slice CT series whose fourth file is cut short inside its header (a broken copy)."""
    from oncoqi.dicom.write import SeriesInfo, StudyInfo, uid_from, write_series
    from oncoqi.image import Image

    ct = Image(np.zeros((6, 8, 8), np.int16), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    study = StudyInfo(study_instance_uid=uid_from("study", "cut"), frame_of_reference_uid=uid_from("for", "cut"))
    write_series(ct, tmp_path / "ct", modality="CT", study=study, series=SeriesInfo(series_description="CT"))
    files = sorted((tmp_path / "ct").iterdir())
    cut = files[3]
    cut.write_bytes(cut.read_bytes()[:400])
    return tmp_path / "ct", cut


def test_a_slice_cut_in_its_header_is_named_by_dicom_ls_and_check(series_with_a_cut_slice, capsys) -> None:
    folder, cut = series_with_a_cut_slice
    assert main(["dicom", "ls", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "\t5\t" in captured.out  # the five readable slices
    assert captured.err.startswith(f"warning: {cut}: unreadable DICOM header (")
    assert captured.err.rstrip().endswith("; left out")
    main(["dicom", "check", str(folder)])
    captured = capsys.readouterr()
    assert f"warning: {cut}: unreadable DICOM header" in captured.err
    assert "missing" in captured.out


def test_loading_the_series_names_the_cut_slice_as_the_likely_gap(series_with_a_cut_slice) -> None:
    from oncoqi.dicom import read_image
    from oncoqi.errors import GeometryError

    folder, cut = series_with_a_cut_slice
    with pytest.raises(GeometryError, match="damaged DICOM file\\(s\\) here, maybe the missing slice\\(s\\): ") as info:
        read_image(folder)
    assert str(cut) in str(info.value)
