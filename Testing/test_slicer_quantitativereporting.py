"""Real-MRML tier: OncoQIQuantitativeReporting's Logic (measurement table, SEG + SR export) on ``slicer-core``.

A small oblique CT series is written as real DICOM, loaded into a volume node the way the DICOM
module leaves it (voxels plus the ``DICOM.instanceUIDs`` attribute), and segmented with two
overlapping segments. The DICOM database exists only in the application; here a dictionary
``uid -> file`` stands in for ``slicer.dicomDatabase.fileForInstance`` (named as such below).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slicer

TERMINOLOGY = (
    "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Altered Structure"
    "~SCT^4147007^Mass~^^~Anatomic codes - DICOM master list~SCT^39607008^Lung~SCT^24028007^Right"
)


@pytest.fixture
def scene_with_ct(mrml_scene, tmp_path):
    """CT written as DICOM, its volume node (as loaded from DICOM), and a segmentation with overlap."""
    import pydicom
    import slicer
    from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

    from oncoqi.dicom import read_image
    from oncoqi.dicom.write import SeriesInfo, StudyInfo, uid_from, write_series
    from oncoqi.image import Image

    angle = np.deg2rad(15.0)
    direction = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    values = (np.arange(6 * 10 * 12, dtype=np.int16).reshape(6, 10, 12) % 97) * 5 - 200
    study = StudyInfo(study_instance_uid=uid_from("qr study"), frame_of_reference_uid=uid_from("qr for"))
    files = write_series(
        Image(values, (0.8, 0.9, 2.0), (-10.0, 20.0, 30.0), direction),
        tmp_path / "ct",
        modality="CT",
        study=study,
        series=SeriesInfo(series_description="QR CT"),
    )
    ct = read_image(tmp_path / "ct")
    volume = volume_node_from_image(mrml_scene, ct, "CT")
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): str(f) for f in files}
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(uids))

    labels = np.zeros(ct.array.shape, np.uint8)
    labels[1:4, 2:6, 3:8] = 1  # tumour: 3 x 4 x 5 = 60 voxels
    segmentation = segmentation_node_from_labels(
        mrml_scene, ct.with_array(labels), {1: "tumour"}, reference_volume_node=volume
    )
    core = segmentation.GetSegmentation().AddEmptySegment("", "core")
    core_mask = np.zeros_like(labels)
    core_mask[2:5, 3:5, 4:6] = 1  # 3 x 2 x 2 = 12 voxels, 8 of them inside the tumour
    slicer.util.updateSegmentBinaryLabelmapFromArray(core_mask, segmentation, core, volume)
    segmentation.GetSegmentation().GetSegment(core).SetTag("TerminologyEntry", TERMINOLOGY)
    return {
        "ct": ct,
        "volume": volume,
        "segmentation": segmentation,
        "masks": [labels == 1, core_mask == 1],
        "database_stand_in": uids,
        "folder": tmp_path / "ct",
        "out": tmp_path / "out",
    }


def test_measurement_table_counts_overlapping_segments_in_full(scene_with_ct, mrml_scene) -> None:
    from OncoQIQuantitativeReportingLib.report import TABLE_COLUMNS, fill_table, measure

    case = scene_with_ct
    rows = measure(case["segmentation"], case["volume"])
    assert [r.name for r in rows] == ["tumour", "core"]
    for row, mask in zip(rows, case["masks"], strict=True):
        hu = case["ct"].array[mask].astype(float)
        assert row.volume_ml == pytest.approx(mask.sum() * case["ct"].voxel_volume_ml, rel=1e-12)
        assert (row.mean, row.minimum, row.maximum, row.std) == pytest.approx(
            (hu.mean(), hu.min(), hu.max(), hu.std()), rel=1e-12
        )
        assert row.suv_peak is None
    case["segmentation"].GetSegmentation().AddEmptySegment("", "not painted yet")
    empty = measure(case["segmentation"], case["volume"])[2]
    assert empty.name == "not painted yet" and empty.volume_ml == 0.0 and np.isnan(empty.mean)
    table = fill_table(mrml_scene.AddNewNodeByClass("vtkMRMLTableNode"), rows)
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(TABLE_COLUMNS)
    assert table.GetNumberOfRows() == 2
    assert table.GetCellText(1, 0) == "core"
    assert float(table.GetCellText(0, 1)) == pytest.approx(rows[0].volume_ml, rel=1e-6)


def test_suv_volume_gets_suv_peak(scene_with_ct) -> None:
    import slicer

    from oncoqi.pet.peak import suv_peak
    from OncoQIQuantitativeReportingLib.report import SUVBW_UNITS, measure

    case = scene_with_ct
    units = slicer.vtkCodedEntry()
    units.SetValueSchemeMeaning(SUVBW_UNITS, "UCUM", "Standardized Uptake Value body weight")
    case["volume"].SetVoxelValueUnits(units)
    rows = measure(case["segmentation"], case["volume"])
    expected = suv_peak(case["ct"].array, case["masks"][0], case["ct"].spacing)
    assert rows[0].units == SUVBW_UNITS
    assert (rows[0].suv_peak is None) == (expected is None)
    if expected is not None:
        assert rows[0].suv_peak == pytest.approx(expected[0], rel=1e-12)


def test_terminology_tag_gives_the_codes_and_neoplasm_is_the_default(scene_with_ct) -> None:
    from OncoQIQuantitativeReportingLib.report import segmentation_metadata

    meta = segmentation_metadata(scene_with_ct["segmentation"], reader="Doe^Jane", series_description="Reading 1")
    tumour, core = meta.segments
    assert (tumour.category.value, tumour.type.value, tumour.anatomic_region) == ("49755003", "108369006", None)
    assert (core.category.value, core.type.meaning, core.anatomic_region.meaning) == ("49755003", "Mass", "Lung")
    assert core.anatomic_region_modifier.value == "24028007" and core.type_modifier is None
    assert (core.labels_file, core.label_value) == (1, 1)
    assert (meta.content_creator, meta.series_description) == ("Doe^Jane", "Reading 1")


def test_algorithm_tags_of_a_segment_reach_the_seg_metadata(scene_with_ct) -> None:
    """A segment made by an algorithm (as OncoQILungTumorSegmentation tags it) is not exported as hand-drawn."""
    from OncoQIQuantitativeReportingLib.report import segmentation_metadata

    segmentation = scene_with_ct["segmentation"].GetSegmentation()
    segment = segmentation.GetSegment(segmentation.GetSegmentIDs()[1])
    segment.SetTag("DICOM.SegmentAlgorithmType", "AUTOMATIC")
    segment.SetTag("DICOM.SegmentAlgorithmName", "OncoQI LungTumorSegmentation")
    segment.SetTag("DICOM.SegmentAlgorithmVersion", "0.1.0 lung_unet.onnx")
    drawn, automatic = segmentation_metadata(scene_with_ct["segmentation"]).segments
    assert (drawn.algorithm_type, drawn.algorithm_name) == ("SEMIAUTOMATIC", "3D Slicer Segment Editor")
    assert (automatic.algorithm_type, automatic.algorithm_name, automatic.algorithm_version) == (
        "AUTOMATIC",
        "OncoQI LungTumorSegmentation",
        "0.1.0 lung_unet.onnx",
    )


def test_export_writes_seg_and_sr_that_read_back(scene_with_ct) -> None:
    from oncoqi.report import read_report
    from OncoQIQuantitativeReportingLib.report import export

    case = scene_with_ct
    written = export(
        case["segmentation"],
        case["volume"],
        case["out"],
        reader="Doe^Jane",
        series_description="Reading 1",
        file_for_instance=case["database_stand_in"].get,
    )
    seg = read_report(written.seg_path, case["folder"])
    for number, mask in enumerate(case["masks"], start=1):
        np.testing.assert_array_equal(seg.mask(number).array, mask)
    assert seg.segment(2).anatomic_region.meaning == "Lung"
    sr = read_report(written.sr_path)
    volumes = {r["segment_number"]: r["value"] for r in sr.rows() if r["quantity_code"] == "118565006 SCT"}
    assert volumes == pytest.approx(
        {n: m.sum() * seg.labels[0].voxel_volume_ml for n, m in enumerate(case["masks"], 1)}
    )
    assert sr.observers[0]["name"] == "Doe^Jane"
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy is not installed (apt install dicom3tools)")
    for path, iod in ((written.seg_path, "Segmentation"), (written.sr_path, "Comprehensive3DSR")):
        result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert lines == [iod], lines  # Slicer's terminology codes and the reader: no error, no warning


def test_export_without_dicom_source_says_why_and_how_to_fix_it_and_writes_nothing(scene_with_ct) -> None:
    from oncoqi.errors import InputError
    from OncoQIQuantitativeReportingLib.report import NO_DICOM_FIX, export

    case = scene_with_ct
    case["volume"].RemoveAttribute("DICOM.instanceUIDs")
    with pytest.raises(InputError, match="was not loaded from DICOM") as error:
        export(case["segmentation"], case["volume"], case["out"])
    assert NO_DICOM_FIX in str(error.value)
    assert not case["out"].exists()
    # the fix: give the series folder
    written = export(case["segmentation"], case["volume"], case["out"], source=case["folder"])
    assert written.seg_path.is_file() and written.sr_path.is_file()
    with pytest.raises(InputError, match="already exists"):
        export(case["segmentation"], case["volume"], case["out"], source=case["folder"])


def test_export_with_instances_missing_from_the_database_is_refused(scene_with_ct) -> None:
    from oncoqi.errors import InputError
    from OncoQIQuantitativeReportingLib.report import export

    case = scene_with_ct
    partial = dict(case["database_stand_in"])
    partial.pop(next(iter(partial)))
    with pytest.raises(InputError, match="1 of its 6 DICOM instances are not in the DICOM database"):
        export(case["segmentation"], case["volume"], case["out"], file_for_instance=lambda uid: partial.get(uid, ""))
    with pytest.raises(InputError, match="no DICOM database is open"):
        export(case["segmentation"], case["volume"], case["out"])
    assert not Path(case["out"]).exists()
