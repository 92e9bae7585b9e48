"""Real-MRML tier: the Qt-free half of the bundle's DICOM plugin (``OncoQISlicer.dicom*``) on ``slicer-core``.

A PET series with known dose, weight and times is written as real DICOM (plus one without the
weight, and a CT, and a SEG + TID 1500 SR on the PET); :func:`examine` must offer SUVbw for the
first, say why not for the second, ignore the CT, and offer the SR as a table; :func:`load` must
give the SUVbw volume (``Bq/ml * weight / decayed dose``, computed here by hand) marked for
OncoQIQuantitativeReporting, and the SR's measurements as table rows. The plugin class itself, on
Slicer's real ``DICOMLib``, runs in ``test_slicer_tier.py``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

pytestmark = pytest.mark.slicer

DOSE_BQ = 370e6
WEIGHT_KG = 80.0
INJECTION = datetime(2020, 1, 1, 8, 0, 0)
SCAN = datetime(2020, 1, 1, 9, 0, 0)
F18_HALF_LIFE_S = 6586.2


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict:
    from oncoqi.dicom.seg import load_metadata, write_segmentation
    from oncoqi.dicom.write import PetInfo, SeriesInfo, StudyInfo, uid_from, write_series
    from oncoqi.image import Image
    from oncoqi.report import write_sr

    root = tmp_path_factory.mktemp("plugin")
    rng = np.random.default_rng(2)
    bqml = rng.uniform(1000.0, 5000.0, size=(6, 12, 10)).astype(np.float32)
    pet = Image(bqml, (4.0, 4.0, 3.0), (-20.0, -24.0, 10.0))
    info = PetInfo(injected_dose_bq=DOSE_BQ, injection_datetime=INJECTION, frame_duration_s=0.0)

    def study(name: str, **kw) -> StudyInfo:
        return StudyInfo(
            study_instance_uid=uid_from(name), frame_of_reference_uid=uid_from(name, "for"), study_datetime=SCAN, **kw
        )

    files = write_series(
        pet,
        root / "pt",
        modality="PT",
        study=study("pt", patient_weight_kg=WEIGHT_KG),
        pet=info,
        series=SeriesInfo(series_description="PET AC", series_number=3),
    )
    no_weight = write_series(pet, root / "pt-no-weight", modality="PT", study=study("nw"), pet=info)
    ct = write_series(
        pet.with_array(np.zeros(pet.array.shape, np.int16)), root / "ct", modality="CT", study=study("ct")
    )
    labels = np.zeros(pet.array.shape, np.uint8)
    labels[1:4, 2:7, 2:6] = 1
    meta = {"segments": [{"label": "GTV", "category": "morphologically_abnormal_structure", "type": "neoplasm"}]}
    seg = write_segmentation(root / "seg.dcm", pet.with_array(labels), root / "pt", load_metadata(meta))
    built = write_sr(root / "sr.dcm", seg, root / "pt")
    return {
        "pet": pet,
        "files": [str(f) for f in files],
        "no_weight": [str(f) for f in no_weight],
        "ct": [str(f) for f in ct],
        "seg": str(root / "seg.dcm"),
        "sr": str(root / "sr.dcm"),
        "labels": labels,
        "built": built,
    }


def examine(file_lists: list[list[str]]) -> list:
    """``OncoQISlicer.dicom_examine.examine`` with a DICOM database that has indexed these files."""
    from OncoQISlicer.dicom_examine import examine as examine_with

    from slicer_layer import FakeDICOMDatabase

    return examine_with(file_lists, FakeDICOMDatabase(f for files in file_lists for f in files))


def test_examine_knows_the_core_s_pet_and_sr_classes(mrml_scene) -> None:
    """``dicom_examine`` cannot import them from the core (Slicer lacks its dependencies): they must agree."""
    from OncoQISlicer import dicom_examine

    from oncoqi.dicom.sr.reader import SR_SOP_CLASSES
    from oncoqi.dicom.write import PET_IMAGE_STORAGE

    assert dicom_examine.PET_IMAGE_STORAGE == PET_IMAGE_STORAGE
    assert dicom_examine.SR_SOP_CLASSES == set(SR_SOP_CLASSES)


def test_examine_offers_suv_for_pet_a_table_for_the_sr_and_nothing_for_the_rest(series, mrml_scene) -> None:
    from OncoQISlicer.dicom_examine import PET_SUV_CONFIDENCE, SR_TABLE_CONFIDENCE

    found = examine([series["files"], series["no_weight"], series["ct"], [series["seg"], series["sr"]]])
    pet, no_weight, sr = found
    assert (pet.kind, pet.name, pet.confidence, pet.selected) == (
        "pet_suv",
        "3: PET AC (SUVbw)",
        PET_SUV_CONFIDENCE,
        True,
    )
    assert sorted(pet.files) == sorted(series["files"])
    assert (no_weight.kind, no_weight.confidence, no_weight.selected) == ("pet_suv", 0.0, False)
    assert "SUVbw cannot be computed" in no_weight.warning and "Weight" in no_weight.warning
    assert (sr.kind, sr.files, sr.confidence) == ("sr_table", [series["sr"]], SR_TABLE_CONFIDENCE)
    assert examine([[series["seg"]], []]) == []


def test_load_gives_an_suvbw_volume_marked_for_reporting(series, mrml_scene) -> None:
    from OncoQISlicer.dicom import load
    from OncoQISlicer.mrml import image_from_volume_node

    from oncoqi.dicom import read_image

    (loadable,) = examine([series["files"]])
    node = load(mrml_scene, loadable)
    decayed_dose = DOSE_BQ * 2 ** (-(SCAN - INJECTION).total_seconds() / F18_HALF_LIFE_S)
    bqml = read_image(series["files"][0]).array  # as stored: quantised to 16 bits per slice
    expected = bqml.astype(np.float64) * WEIGHT_KG * 1000.0 / decayed_dose
    image = image_from_volume_node(node)
    np.testing.assert_allclose(image.array, expected, rtol=2e-7)  # float32 voxels
    assert image.same_grid(series["pet"])
    assert node.GetVoxelValueUnits().GetCodeValue() == "{SUVbw}g/ml"
    assert node.GetVoxelValueQuantity().GetCodeValue() == "126400"
    assert len(node.GetAttribute("DICOM.instanceUIDs").split()) == 6


def test_suv_volume_loaded_by_the_plugin_is_measured_in_suv_by_quantitativereporting(series, mrml_scene) -> None:
    from OncoQISlicer.dicom import load
    from OncoQISlicer.mrml import image_from_volume_node, segmentation_node_from_labels

    from OncoQIQuantitativeReportingLib.report import SUVBW_UNITS, measure

    node = load(mrml_scene, examine([series["files"]])[0])
    suv = image_from_volume_node(node)
    segmentation = segmentation_node_from_labels(
        mrml_scene, suv.with_array(series["labels"]), {1: "GTV"}, reference_volume_node=node
    )
    (row,) = measure(segmentation, node)
    assert row.units == SUVBW_UNITS
    assert row.maximum == pytest.approx(float(suv.array[series["labels"] == 1].max()), rel=1e-12)
    sr_max = next(m.value for m in series["built"].groups[0].measurements if m.name == "suvbw_max")
    assert row.maximum == pytest.approx(sr_max, rel=1e-5)


def test_load_sr_table_gives_one_row_per_measurement(series, mrml_scene) -> None:
    from OncoQISlicer.dicom import load

    from oncoqi.dicom.sr import read_measurement_report
    from oncoqi.dicom.sr.reader import TABLE_COLUMNS

    (loadable,) = examine([[series["sr"]]])
    table = load(mrml_scene, loadable)
    rows = read_measurement_report(series["sr"]).rows()
    assert table.GetNumberOfRows() == len(rows) > 0
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(TABLE_COLUMNS)
    value = TABLE_COLUMNS.index("value")
    for n, row in enumerate(rows):
        assert table.GetCellText(n, 0) == row["tracking_id"]
        assert table.GetTable().GetValue(n, value).ToDouble() == pytest.approx(row["value"], rel=1e-12)
