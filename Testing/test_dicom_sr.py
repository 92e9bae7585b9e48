"""oncoqi.dicom.sr: TID 1500 measurement reports for the segments of a SEG, and reading any report.

* Synthetic CT and PET series (:func:`oncoqi.dicom.write.write_series`) whose statistics are
  worked out here: HU from the voxels written; SUVbw from the definition
  ``SUV = C * W / (A0 * 2**(-t/T))`` with the weight, dose and times written into the headers.
* Tools we did not write read our SR: dicom3tools ``dciodvfy`` (no error, no warning), dcmtk
  ``dsrdump`` and dcmqi's ``tid1500reader`` (the same values).
* Reports others wrote (``../shared/data``): dcmqi's PET SR with the values its README gives,
  and highdicom's example SRs.
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from helpers.datasets import dataset
from helpers.dicom import rotation, tool
from oncoqi.dicom import load_series, scan_series
from oncoqi.dicom.seg import load_metadata, read_segmentation, write_segmentation
from oncoqi.dicom.source import load_source
from oncoqi.dicom.sr import (
    STANDARD_MEASUREMENTS,
    Measurement,
    MeasurementInput,
    load_measurements,
    read_measurement_report,
)
from oncoqi.dicom.write import PetInfo, SeriesInfo, StudyInfo, uid_from, write_series
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet import compute_indices
from oncoqi.pet.peak import suv_peak
from oncoqi.report import build_sr, source_values, write_sr

F18_HALF_LIFE_S = 6586.2
WEIGHT_KG = 75.0
DOSE_BQ = 3.7e8
INJECTION = datetime(2020, 1, 1, 8, 0, 0)
SCAN = datetime(2020, 1, 1, 9, 0, 0)

SEGMENTS = {
    "segments": [
        {
            "label": "GTV",
            "category": "morphologically_abnormal_structure",
            "type": "primary_neoplasm",
            "anatomic_region": "lung",
            "anatomic_region_modifier": "right",
            "tracking_id": "T1",
            "algorithm": {"type": "AUTOMATIC", "name": "OncoQI lung", "version": "0.1"},
        },
        {
            "label": "Node",
            "label_value": 2,
            "category": "morphologically_abnormal_structure",
            "type": "secondary_neoplasm",
        },
    ]
}


def _study(**kw) -> StudyInfo:
    return StudyInfo(study_instance_uid=uid_from("sr study"), frame_of_reference_uid=uid_from("sr for"), **kw)


def _labels(shape) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[3:9, 6:16, 8:20] = 1
    labels[4:7, 18:22, 20:26] = 2
    return labels


@pytest.fixture(scope="module")
def ct_case(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ct")
    rng = np.random.default_rng(11)
    ct = Image(
        rng.integers(-900, 400, size=(12, 26, 30)).astype(np.int16),
        (0.8, 0.8, 2.0),
        (-20.0, -30.0, 40.0),
        rotation(10, 0, -20),
    )
    write_series(ct, root / "ct", modality="CT", study=_study(), series=SeriesInfo(series_description="CT"))
    labels = _labels(ct.array.shape)
    seg = write_segmentation(root / "seg.dcm", ct.with_array(labels), root / "ct", load_metadata(SEGMENTS))
    built = write_sr(root / "sr.dcm", seg, root / "ct")
    return {"root": root, "ct": ct, "labels": labels, "seg": seg, "built": built, "path": root / "sr.dcm"}


@pytest.fixture(scope="module")
def pet_case(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pet")
    rng = np.random.default_rng(5)
    bqml = rng.uniform(2000.0, 6000.0, size=(20, 30, 30))
    labels = _labels(bqml.shape)
    bqml[labels == 1] += 25000.0
    pet = Image(bqml.astype(np.float32), (4.0, 4.0, 3.0), (-60.0, -60.0, -30.0))
    info = PetInfo(injected_dose_bq=DOSE_BQ, injection_datetime=INJECTION, frame_duration_s=0.0)
    write_series(
        pet,
        root / "pt",
        modality="PT",
        study=_study(patient_weight_kg=WEIGHT_KG, study_datetime=SCAN),
        pet=info,
        series=SeriesInfo(series_description="PET"),
    )
    seg = write_segmentation(root / "seg.dcm", pet.with_array(labels), root / "pt", load_metadata(SEGMENTS))
    return {"root": root, "labels": labels, "seg": seg}


def rows_by(report, tracking_id: str) -> dict[tuple[str, str | None], float]:
    """``(quantity code, derivation code) -> value`` of one group of a report read back."""
    return {
        (r["quantity_code"], r["derivation_code"]): r["value"] for r in report.rows() if r["tracking_id"] == tracking_id
    }


# --------------------------------------------------------------------------- statistics


def test_ct_statistics_are_volume_and_hounsfield_units(ct_case):
    report = read_measurement_report(ct_case["path"])
    ct, labels = ct_case["ct"], ct_case["labels"]
    for tracking_id, value in (("T1", 1), ("Node", 2)):
        hu = ct.array[labels == value].astype(float)
        got = rows_by(report, tracking_id)
        assert got == pytest.approx(
            {
                ("118565006 SCT", None): hu.size * 0.8 * 0.8 * 2.0 / 1000.0,
                ("112031 DCM", "373098007 SCT"): hu.mean(),
                ("112031 DCM", "255605001 SCT"): hu.min(),
                ("112031 DCM", "56851009 SCT"): hu.max(),
                ("112031 DCM", "386136009 SCT"): hu.std(),
            },
            rel=1e-9,
        )  # the voxel size is read back from DS strings
    units = {r["quantity_code"]: r["unit"] for r in report.rows()}
    assert units == {"118565006 SCT": "ml", "112031 DCM": "[hnsf'U]"}


def test_pet_statistics_are_suvbw_from_the_headers(pet_case):
    built = build_sr(pet_case["seg"], pet_case["root"] / "pt")
    report = read_measurement_report(built.dataset)
    bqml = load_series(scan_series(pet_case["root"] / "pt").series[0]).array.astype(float)
    factor = WEIGHT_KG * 1000.0 / (DOSE_BQ * 2.0 ** (-(SCAN - INJECTION).total_seconds() / F18_HALF_LIFE_S))
    suv = bqml * factor
    mask = pet_case["labels"] == 1
    got = rows_by(report, "T1")
    peak, _ = suv_peak(suv, mask, (4.0, 4.0, 3.0))
    assert got == pytest.approx(
        {
            ("118565006 SCT", None): mask.sum() * 0.048,
            ("126401 DCM", "373098007 SCT"): suv[mask].mean(),
            ("126401 DCM", "255605001 SCT"): suv[mask].min(),
            ("126401 DCM", "56851009 SCT"): suv[mask].max(),
            ("126401 DCM", "386136009 SCT"): suv[mask].std(),
            ("126401 DCM", "126031 DCM"): peak,
        },
        rel=1e-6,
    )
    assert suv[mask].mean() < peak < suv[mask].max()
    assert {r["unit"] for r in report.rows() if r["quantity_code"] == "126401 DCM"} == {"{SUVbw}g/ml"}
    assert {r["method_code"] for r in report.rows() if r["quantity_code"] == "126401 DCM"} == {"126410 DCM"}


def test_group_content_comes_from_the_seg(ct_case):
    report = read_measurement_report(ct_case["path"])
    seg = ct_case["seg"]
    gtv, node = report.groups
    assert (gtv.tracking_id, gtv.tracking_uid) == ("T1", seg.SegmentSequence[0].TrackingUID)
    assert (node.tracking_id, node.tracking_uid) == ("Node", seg.SegmentSequence[1].TrackingUID)
    assert [(g.segmentation_uid, g.segment_number) for g in report.groups] == [
        (seg.SOPInstanceUID, 1),
        (seg.SOPInstanceUID, 2),
    ]
    assert {g.source_series_uid for g in report.groups} == {seg.ReferencedSeriesSequence[0].SeriesInstanceUID}
    assert gtv.finding.value == "86049000" and node.finding.value == "14799000"
    ((site, laterality),) = gtv.finding_sites
    assert (site.value, laterality.value) == ("39607008", "24028007")
    assert node.finding_sites == []
    assert gtv.algorithm == f"OncoQI segment statistics {__import__('oncoqi').__version__}"
    assert report.observers == [{"type": "DEVICE", "name": "OncoQI", "uid": report.observers[0]["uid"]}]
    assert (report.completion_flag, report.verification_flag) == ("PARTIAL", "UNVERIFIED")
    assert [c.value for c in report.procedures] == ["363679005"]


def test_given_measurements_override_and_extend_the_computed_ones(pet_case):
    given = load_measurements(
        {
            "observer": [{"type": "PERSON", "name": "Doe^Jane", "organization": "OncoQI Lab"}],
            "procedure_reported": {"value": "44139-4", "scheme": "LN", "meaning": "PET whole body"},
            "complete": True,
            "verified": True,
            "verifying_observer": "Doe^Jane",
            "verifying_organization": "OncoQI Lab",
            "session": "1",
            "time_point": "baseline",
            "groups": [
                {
                    "segment": "GTV",
                    "algorithm": {"name": "PET-IndiC", "version": "5.0", "parameters": ["radius: 6.2 mm"]},
                    "measurements": [
                        {"name": "suvbw_peak", "value": 9.5},
                        {"name": "tlg", "value": 123.4},
                        {"name": "mtv", "value": 7.2},
                        {"name": "recist_long_axis", "value": 41.0},
                        {"name": "recist_short_axis", "value": 22.5},
                    ],
                    "qualitative": [
                        {"concept": {"value": "G-A437", "scheme": "SRT", "meaning": "Maximum"}, "value": "lymph_node"}
                    ],
                }
            ],
        }
    )
    built = build_sr(pet_case["seg"], pet_case["root"] / "pt", given)
    report = read_measurement_report(built.dataset)
    got = rows_by(report, "T1")
    assert got[("126401 DCM", "126031 DCM")] == 9.5  # the given peak replaced the computed one
    assert got[("126033 DCM", None)] == 123.4 and got[("126032 DCM", None)] == 7.2
    assert got[("103339001 SCT", None)] == 41.0 and got[("131189007 SCT", None)] == 22.5
    assert len(got) == 10  # volume, mean, min, max, std, peak + 4 given
    algorithms = {
        (r["quantity_code"], r["derivation_code"]): r["algorithm"] for r in report.rows() if r["tracking_id"] == "T1"
    }
    assert algorithms[("126033 DCM", None)] == "PET-IndiC 5.0"  # the group's algorithm
    assert algorithms[("126401 DCM", "373098007 SCT")].startswith("OncoQI segment statistics")  # item-level
    gtv = report.groups[0]
    assert (gtv.session, gtv.time_point) == ("1", "baseline")
    assert gtv.qualitative[0][0].value == "56851009"  # SRT normalised to SCT
    assert (report.completion_flag, report.verification_flag) == ("COMPLETE", "VERIFIED")
    assert report.observers == [{"type": "PERSON", "name": "Doe^Jane"}]
    assert built.dataset.VerifyingObserverSequence[0].VerifyingOrganization == "OncoQI Lab"
    assert built.dataset.PreliminaryFlag == "FINAL"
    assert [c.value for c in report.procedures] == ["44139-4"]


def test_without_statistics_only_given_groups_are_reported(ct_case):
    long_axis = {"segment": 2, "measurements": [{"name": "recist_long_axis", "value": 9}]}
    given = load_measurements({"compute_statistics": False, "groups": [long_axis]})
    built = build_sr(ct_case["seg"], ct_case["root"] / "ct", given)
    report = read_measurement_report(built.dataset)
    assert [(r["tracking_id"], r["quantity"], r["value"]) for r in report.rows()] == [("Node", "Long axis", 9.0)]
    assert any("segment 1 ('GTV') has nothing to report" in w for w in built.warnings)
    with pytest.raises(InputError, match="nothing to report"):
        build_sr(ct_case["seg"], ct_case["root"] / "ct", load_measurements({"compute_statistics": False}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"groups": [{"segment": "Liver", "measurements": []}]}, "matches no segment of the SEG"),
        ({"groups": [{"segment": 1}, {"segment": "GTV"}]}, "two measurement groups name segment 1"),
    ],
)
def test_groups_must_name_distinct_segments(ct_case, data, message):
    with pytest.raises(InputError, match=message):
        build_sr(ct_case["seg"], ct_case["root"] / "ct", load_measurements(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"verified": True, "verifying_observer": "Doe^Jane"}, "verifying observer's name and organization"),
        (
            {"groups": [{"segment": 1, "measurements": [{"name": "suv_max", "value": 1}]}]},
            "unknown measurement name 'suv_max'",
        ),
        ({"groups": [{"segment": 1, "measurements": [{"name": "tlg", "value": "high"}]}]}, "'high' is not a number"),
        ({"groups": [{"segment": 1, "measurements": [{"quantity": "lung", "value": 1}]}]}, "missing 'unit'"),
        (
            {"groups": [{"segment": 1, "measurements": [{"name": "tlg", "value": 1, "unit": "g"}]}]},
            "either 'name' or explicit codes",
        ),
        ({"observer": {"type": "ROBOT", "name": "x"}}, "PERSON or DEVICE"),
        ({"complete": "yes"}, "must be true or false"),
        ({"grups": []}, r"unknown key\(s\) \['grups'\]"),
    ],
)
def test_malformed_measurements_are_refused(data, message):
    with pytest.raises(InputError, match=message):
        load_measurements(data)


def test_measurements_json_roundtrip():
    given = load_measurements(
        {
            "observer": [{"type": "DEVICE", "name": "Scanner AI", "manufacturer": "ACME"}],
            "groups": [
                {
                    "segment": "GTV",
                    "finding_site": "lung",
                    "laterality": "left",
                    "measurements": [
                        {"name": "tlg", "value": 3.5},
                        {
                            "quantity": "neoplasm",
                            "unit": {"value": "1", "scheme": "UCUM", "meaning": "no units"},
                            "derivation": "left",
                            "value": 2,
                        },
                    ],
                }
            ],
        }
    )
    again = load_measurements(json.loads(json.dumps(given.to_json())))
    assert again.to_json() == given.to_json()
    assert given.info.observers[0].uid  # a device observer always gets a UID
    kind = STANDARD_MEASUREMENTS["tlg"]
    assert given.groups[0].measurements[0] == Measurement(kind.quantity, 3.5, kind.unit, name="tlg")


# --------------------------------------------------------------------------- dcmqi TID 1500 JSON


def test_dcmqi_measurement_json_is_accepted(ct_case):
    examples = dataset("dcmqi-examples") / "dcmqi-examples" / "doc" / "examples"
    raw = json.loads((examples / "sr-tid1500-ct-liver-example.json").read_text())
    # dcmqi's example exercises every optional field with made-up 99TEST codes; OncoQI refuses
    # the fields it cannot write rather than dropping them
    with pytest.raises(InputError, match="measurementDerivationParameters.*not supported"):
        load_measurements(raw)
    for item in raw["Measurements"][0]["measurementItems"]:
        for key in (
            "measurementModifiers",
            "measurementDerivationParameters",
            "measurementNumProperties",
            "measurementPopulationDescription",
        ):
            item.pop(key, None)
    liver = load_measurements(raw)
    assert liver.info.observers[0].kind == "DEVICE" and liver.info.observers[0].uid == "1.2.3.4"
    assert liver.info.complete and not liver.info.compute_statistics
    group = liver.groups[0]
    assert group.segment == 1 and group.finding_site.value == "10200004"
    assert group.algorithm.name == "3D Slicer Editor effect (group level)"
    assert group.measurements[0].value == pytest.approx(37.3289)
    assert group.measurements[0].algorithm.name == "3D Slicer Editor effect (measurement level)"
    built = build_sr(ct_case["seg"], ct_case["root"] / "ct", liver)
    report = read_measurement_report(built.dataset)
    items = raw["Measurements"][0]["measurementItems"]
    assert [r["value"] for r in report.rows()] == pytest.approx([float(m["value"]) for m in items])
    assert {r["finding_site"] for r in report.rows()} == {"Liver"}
    with pytest.raises(InputError, match="VERIFIED needs the verifying observer and organization"):
        load_measurements(examples / "sr-tid1500-example.json")
    nan = json.loads((examples / "sr-tid1500-example-nan.json").read_text())
    nan["VerificationFlag"] = "UNVERIFIED"
    with pytest.raises(InputError, match="'nan' is not a finite number"):
        load_measurements(nan)


# --------------------------------------------------------------------------- validators we did not write


def test_dciodvfy_finds_no_error_and_no_warning(ct_case, pet_case, tmp_path):
    pet_sr = tmp_path / "pet-sr.dcm"
    write_sr(pet_sr, pet_case["seg"], pet_case["root"] / "pt")
    for path in (ct_case["path"], pet_sr):
        result = subprocess.run([tool("dciodvfy"), str(path)], capture_output=True, text=True)
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert lines == ["Comprehensive3DSR"], lines  # no error, no warning left to explain


def test_dsrdump_parses_our_report(ct_case):
    result = subprocess.run([tool("dsrdump"), str(ct_case["path"])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Comprehensive 3D SR Document" in out and '"Imaging Measurement Report"' in out
    assert 'TEXT:(,,"Tracking Identifier")="T1"' in out and out.count('CONTAINER:(,,"Measurement Group")') == 2
    assert 'IMAGE:(,,"Referenced Segment")' in out


def test_dcmqi_reads_the_same_values(ct_case, tmp_path):
    out = tmp_path / "dcmqi.json"
    result = subprocess.run(
        [tool("tid1500reader"), "--inputDICOM", str(ct_case["path"]), "--outputMetadata", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    theirs = json.loads(out.read_text())
    ours = read_measurement_report(ct_case["path"])
    assert [g["TrackingIdentifier"] for g in theirs["Measurements"]] == ["T1", "Node"]
    assert [g["ReferencedSegment"] for g in theirs["Measurements"]] == [1, 2]
    for group, mine in zip(theirs["Measurements"], ours.groups, strict=True):
        values = [
            (i["quantity"]["CodeValue"], i.get("derivationModifier", {}).get("CodeValue"), float(i["value"]))
            for i in group["measurementItems"]
        ]
        expected = [(m.concept.value, m.derivation.value if m.derivation else None, m.value) for m in mine.measurements]
        assert [v[:2] for v in values] == [e[:2] for e in expected]
        assert [v[2] for v in values] == pytest.approx([e[2] for e in expected], rel=1e-12)
        assert group["TrackingUniqueIdentifier"] == mine.tracking_uid


# --------------------------------------------------------------------------- reports written by other tools


def test_dcmqi_pet_report_gives_its_reference_values():
    path = dataset("dcmqi-examples") / "dcmqi-examples" / "data" / "sr-example" / "sr.dcm"
    report = read_measurement_report(path)
    got = rows_by(report, "primary tumor")
    assert got[("126401 DCM", "373098007 SCT")] == pytest.approx(6.01529)  # mean (written as SRT R-00317)
    assert got[("126401 DCM", "255605001 SCT")] == pytest.approx(2.91136)  # min
    assert got[("126401 DCM", "56851009 SCT")] == pytest.approx(10.3814)  # max (SRT G-A437)
    assert got[("126401 DCM", "126031 DCM")] == pytest.approx(9.45534)  # peak
    assert got[("118565006 SCT", None)] == pytest.approx(33.5824)  # volume, ml
    assert got[("126033 DCM", None)] == pytest.approx(202.008)  # TLG
    assert got[("126037 DCM", None)] == pytest.approx(107.283)  # SAM
    assert got[("126038 DCM", None)] == pytest.approx(2.82066)  # SAM background
    group = report.groups[0]
    assert group.segment_number == 1 and group.rwvm_uid and group.method.value == "126410"
    assert report.observers == [{"type": "PERSON", "name": "User2"}]
    assert len(report.rows()) == 22  # 12 SUVbw, volume, TLG, 4 glycolysis and 4 percent quartiles, SAM x2


def test_qin_headneck_report_agrees_with_the_pet_indices(tmp_path):
    """The 11 lesions of QIN-HEADNECK-01-0139 on its whole-body PET, against oncoqi.pet's PET-IndiC indices."""
    root = dataset("qin-headneck-01-0139-pet") / "qin-headneck-01-0139" / "test" / "data" / "seg_dicom4qi" / "data_3"
    source = load_source(root / "image")  # read once, for the report and the indices it is checked against
    built = write_sr(tmp_path / "sr.dcm", root / "mask" / "mask.dcm", source)
    report = read_measurement_report(tmp_path / "sr.dcm")
    assert len(report.groups) == 11
    # no Tracking ID in this SEG: the labels, made unique where ten lesions share one
    assert report.groups[0].tracking_id == "Neoplasm, Primary"
    assert report.groups[1].tracking_id == "Neoplasm, Secondary (segment 2)"
    suv, _ = source_values(source)
    labels = read_segmentation(root / "mask" / "mask.dcm", source).labels[0]
    for number in (1, 4, 10):
        indices = compute_indices(suv, labels, number)
        got = rows_by(report, report.groups[number - 1].tracking_id)
        assert got == pytest.approx(
            {
                ("118565006 SCT", None): indices.mtv_ml,
                ("126401 DCM", "373098007 SCT"): indices.suv_mean,
                ("126401 DCM", "255605001 SCT"): indices.suv_min,
                ("126401 DCM", "56851009 SCT"): indices.suv_max,
                ("126401 DCM", "386136009 SCT"): indices.suv_std,
                ("126401 DCM", "126031 DCM"): indices.suv_peak,
            },
            rel=1e-6,
        )
    assert any("RadiopharmaceuticalStartDateTime" in w for w in built.warnings)  # the SUV rules' notes are kept
    result = subprocess.run([tool("dciodvfy"), str(tmp_path / "sr.dcm")], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if line.startswith(("Error", "Warning"))]
    # every remark comes from the inputs, copied as the standard asks: the PET has no Study ID
    # and a one-component Patient's Name, and the SEG's anatomic region "base of tongue" is a
    # retired SRT code (T-53131) without a SNOMED CT mapping in pydicom
    assert sorted(problems) == [
        "Warning - CodingSchemeDesignator is deprecated - attribute <CodingSchemeDesignator> = <SRT>",
        "Warning - Missing attribute or value that would be needed to build DICOMDIR - Study ID",
        "Warning - Value dubious for this VR - (0x0010,0x0010) PN Patient's Name  PN [1] = <QIN-HEADNECK-01-0139> - "
        "Retired Person Name form",
    ]


def test_highdicom_reports_read():
    root = dataset("highdicom-test-files") / "highdicom-test-files" / "data" / "test_files"
    planar = read_measurement_report(root / "sr_document.dcm")
    (row,) = planar.rows()
    assert (row["tracking_id"], row["quantity"], row["value"], row["unit"]) == (
        "Planar ROI Measurements",
        "Area of defined region",
        1.7,
        "cm2",
    )
    assert planar.groups[0].roi == "image region"
    multiple = read_measurement_report(root / "sr_document_with_multiple_groups.dcm")
    assert [g.tracking_id for g in multiple.groups] == ["Image0001", "LungNodule0001", "Aorta0001", "Vertebra0001"]
    nodule = multiple.groups[1]
    assert nodule.finding.meaning == "Nodule" and nodule.finding_category.value == "49755003"
    assert [(m.concept.meaning, m.value, m.unit.value) for m in nodule.measurements] == [("Diameter", 10.0, "mm")]
    assert nodule.qualitative[0][1].value == "371928007"  # Level of Significance: Not significant
    assert multiple.groups[3].roi == "volume surface"


def test_table_and_json_forms(ct_case):
    report = read_measurement_report(ct_case["path"])
    lines = report.to_csv(delimiter="\t").splitlines()
    assert lines[0].split("\t")[:3] == ["tracking_id", "tracking_uid", "segment_number"]
    assert len(lines) == 1 + len(report.rows()) == 11
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["kind"] == "SR" and len(doc["groups"]) == 2 and len(doc["measurements"]) == 10
    assert math.isclose(doc["measurements"][0]["value"], report.rows()[0]["value"])


def test_not_a_measurement_report_is_refused(ct_case):
    with pytest.raises(InputError, match="not a DICOM Structured Report"):
        read_measurement_report(ct_case["root"] / "seg.dcm")
    ds = pydicom.dcmread(ct_case["path"])
    ds.ContentTemplateSequence[0].TemplateIdentifier = "2000"
    ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"
    with pytest.raises(InputError, match="not a TID 1500 measurement report"):
        read_measurement_report(ds)


def test_statistics_need_the_seg_on_the_source_grid(ct_case, tmp_path):
    other = Image(np.zeros((12, 26, 30), np.int16), (0.8, 0.8, 2.0), (-20.0, -30.0, 41.0), ct_case["ct"].direction)
    write_series(
        other, tmp_path / "other", modality="CT", study=_study(), series=SeriesInfo(series_description="shifted")
    )
    with pytest.raises(GeometryError, match="does not match the source series"):
        build_sr(ct_case["seg"], tmp_path / "other", MeasurementInput())


def test_seg_of_another_series_on_the_same_grid_is_refused(ct_case, tmp_path):
    write_series(
        ct_case["ct"], tmp_path / "copy", modality="CT", study=_study(), series=SeriesInfo(series_description="a copy")
    )
    with pytest.raises(InputError, match="was drawn on series .* not on the source given"):
        build_sr(ct_case["seg"], tmp_path / "copy")


def test_a_label_shared_by_segments_must_be_named_by_number(tmp_path):
    ct = Image(np.zeros((6, 12, 12), np.int16), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    write_series(ct, tmp_path / "ct", modality="CT", study=_study(), series=SeriesInfo(series_description="CT"))
    labels = np.zeros(ct.array.shape, np.uint8)
    labels[1, 2:4, 2:4], labels[4, 6:9, 6:9] = 1, 2
    twins = {
        "segments": [
            {"label": "Node", "category": "tissue", "type": "lymph_node", "tracking_id": "Node"},
            {"label": "Node", "label_value": 2, "category": "tissue", "type": "lymph_node"},
        ]
    }
    seg = write_segmentation(tmp_path / "seg.dcm", ct.with_array(labels), tmp_path / "ct", load_metadata(twins))
    by_label = load_measurements({"groups": [{"segment": "Node", "measurements": [{"name": "tlg", "value": 1}]}]})
    with pytest.raises(InputError, match="'Node' is ambiguous: name it by number"):
        build_sr(seg, tmp_path / "ct", by_label)
    by_number = load_measurements({"groups": [{"segment": "2", "measurements": [{"name": "tlg", "value": 1}]}]})
    report = read_measurement_report(build_sr(seg, tmp_path / "ct", by_number).dataset)
    assert [r["value"] for r in report.rows() if r["quantity_code"] == "126033 DCM"] == [1.0]
    assert [g.segment_number for g in report.groups] == [1, 2]


def test_written_file_is_complete_or_absent(ct_case, tmp_path):
    path = tmp_path / "out" / "sr.dcm"
    with pytest.raises(InputError):
        write_sr(path, ct_case["seg"], ct_case["root"] / "ct", load_measurements({"compute_statistics": False}))
    assert not path.exists() and not list(path.parent.glob("*partial*"))
    write_sr(path, ct_case["seg"], ct_case["root"] / "ct")
    assert Path(path).is_file() and pydicom.dcmread(path).Modality == "SR"
