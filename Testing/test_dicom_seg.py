"""oncoqi.dicom.seg: writing label images as DICOM SEG, reading any SEG back, and the metadata JSON.

Three kinds of tests:

* synthetic CT series written with :func:`oncoqi.dicom.write.write_series` (oblique
  orientations, overlapping segments, label grids in another axis order) for the writer, the
  reader and every input they refuse, each with a message that names the problem (a label on
  another grid, an empty or undescribed segment, a source that is not one regular series,
  malformed metadata);
* tools we did not write on our files: dicom3tools ``dciodvfy`` (zero errors and no warnings)
  and dcmqi's ``segimage2itkimage`` (the same masks as ours);
* files other tools wrote (``../shared/data``: dcmqi's and highdicom's SEGs, QIN-HEADNECK's
  11-lesion SEG), each checked against the frame pixels it stores.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from helpers.datasets import dataset
from helpers.dicom import rotation, tool
from oncoqi.dicom.seg import (
    SegmentationMetadata,
    align_to_grid,
    build_segmentation,
    load_metadata,
    read_segmentation,
    write_segmentation,
)
from oncoqi.dicom.source import load_source
from oncoqi.dicom.write import SeriesInfo, StudyInfo, uid_from, write_series
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image


def write_ct(folder: Path, shape=(16, 36, 40), direction=None, name: str = "P1", **kw) -> Image:
    """Write a CT series and return the image it holds (with the files' grid)."""
    rng = np.random.default_rng(3)
    image = Image(
        rng.integers(-200, 200, size=shape).astype(np.int16),
        (0.9, 1.1, 2.5),
        (-30.0, -40.0, 50.0),
        np.eye(3) if direction is None else direction,
    )
    study = StudyInfo(study_instance_uid=uid_from("study", name), frame_of_reference_uid=uid_from("for", name))
    write_series(image, folder, modality="CT", study=study, series=SeriesInfo(series_description=f"CT {name}"), **kw)
    return image


def lesion_labels(shape) -> tuple[np.ndarray, np.ndarray]:
    """Two label maps: GTV (1) and node (2) in the first; an overlapping 'core' in the second."""
    first = np.zeros(shape, np.uint8)
    first[4:10, 8:20, 10:26] = 1
    first[6:12, 22:30, 24:34] = 2
    second = np.zeros(shape, np.uint8)
    second[5:8, 10:16, 14:22] = 1  # inside the GTV: overlaps segment 1
    return first, second


META = {
    "series_description": "Lesions",
    "content_creator": "Doe^Jane",
    "segments": [
        {
            "label": "GTV",
            "label_value": 1,
            "category": "morphologically_abnormal_structure",
            "type": "primary_neoplasm",
            "anatomic_region": "lung",
            "anatomic_region_modifier": "left",
            "algorithm": {"type": "AUTOMATIC", "name": "OncoQI lung", "version": "0.1"},
            "color": [255, 0, 0],
            "tracking_id": "lesion 1",
            "tracking_uid": "1.2.3.4.5.6.7",
        },
        {
            "label": "Node",
            "label_value": 2,
            "category": {"value": "49755003", "scheme": "SCT", "meaning": "Morphologically Abnormal Structure"},
            "type": {"CodeValue": "59441001", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Lymph node"},
            "type_modifier": "right",
            "algorithm": {"type": "SEMIAUTOMATIC", "name": "Editor"},
        },
        {
            "label": "Core",
            "labels_file": 1,
            "category": "tissue",
            "type": "neoplasm",
            "description": "necrotic core",
        },
    ],
}


@pytest.fixture(scope="module")
def oblique(tmp_path_factory) -> dict:
    """An oblique CT, its labels, and the SEG written from them (shared by several tests)."""
    root = tmp_path_factory.mktemp("oblique")
    ct = write_ct(root / "ct", direction=rotation(20, -15, 30))
    first, second = lesion_labels(ct.array.shape)
    labels = [ct.with_array(first), ct.with_array(second)]
    seg = write_segmentation(root / "seg.dcm", labels, root / "ct", load_metadata(META))
    return {"root": root, "ct": ct, "labels": labels, "seg": seg, "path": root / "seg.dcm"}


def expected_masks(labels: list[Image]) -> dict[int, np.ndarray]:
    return {1: labels[0].array == 1, 2: labels[0].array == 2, 3: labels[1].array == 1}


# --------------------------------------------------------------------------- writer and reader


def test_roundtrip_oblique_overlapping_segments(oblique):
    data = read_segmentation(oblique["path"], source=oblique["root"] / "ct")
    for number, mask in expected_masks(oblique["labels"]).items():
        np.testing.assert_array_equal(data.mask(number).array, mask)
    assert len(data.labels) == 2  # overlap forces a second label image
    assert data.labels[0].same_grid(oblique["ct"])
    assert data.segmentation_type == "BINARY" and data.coordinate_system == "PATIENT"
    assert oblique["seg"].SegmentsOverlap == "YES"
    assert data.referenced_series_uids == [
        str(pydicom.dcmread(next((oblique["root"] / "ct").iterdir())).SeriesInstanceUID)
    ]


def test_metadata_survives_the_roundtrip(oblique):
    data = read_segmentation(oblique["path"])
    meta = data.metadata
    assert meta.series_description == "Lesions" and meta.content_creator == "Doe^Jane"
    gtv, node, core = meta.segments
    assert (gtv.segment_number, gtv.label, gtv.type.value, gtv.category.value) == (1, "GTV", "86049000", "49755003")
    assert (gtv.anatomic_region.value, gtv.anatomic_region_modifier.value) == ("39607008", "7771000")
    assert (gtv.algorithm_type, gtv.algorithm_name, gtv.algorithm_version) == ("AUTOMATIC", "OncoQI lung", "0.1")
    assert gtv.algorithm_family.value == "123110"  # default family of AUTOMATIC: Artificial Intelligence
    assert gtv.color == (255, 0, 0)
    assert (gtv.tracking_id, gtv.tracking_uid) == ("lesion 1", "1.2.3.4.5.6.7")
    assert node.type_modifier.value == "24028007"
    # no version given: only the name is written, as dcmqi does
    assert (node.algorithm_name, node.algorithm_version) == ("Editor", None)
    assert "SegmentationAlgorithmIdentificationSequence" not in oblique["seg"].SegmentSequence[1]
    assert core.description == "necrotic core" and core.algorithm_type == "MANUAL"
    # defaults filled in: tracking id = label, a generated UID, a palette colour
    assert core.tracking_id == "Core" and core.tracking_uid and core.color is not None
    # the metadata JSON read back loads again, and gives the same segments
    again = load_metadata(json.loads(json.dumps(meta.to_json())))
    assert [s.to_json() for s in again.segments] == [s.to_json() for s in meta.segments]


def test_frames_reference_their_source_slice_at_its_exact_position(oblique):
    seg = oblique["seg"]
    by_uid = {}
    for f in (oblique["root"] / "ct").iterdir():
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        by_uid[ds.SOPInstanceUID] = ds
    masks = expected_masks(oblique["labels"])
    # empty frames omitted: one frame per (segment, slice holding that segment)
    assert seg.NumberOfFrames == sum(int(m.any(axis=(1, 2)).sum()) for m in masks.values())
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose([float(v) for v in orientation], np.ravel(oblique["ct"].direction[:, :2].T), atol=1e-6)
    pixels = seg.pixel_array
    slices = sorted(by_uid.values(), key=lambda d: int(d.InstanceNumber))
    for n, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        source = by_uid[source_uid]
        assert frame.PlanePositionSequence[0].ImagePositionPatient == source.ImagePositionPatient
        k = slices.index(source)
        number = frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        np.testing.assert_array_equal(pixels[n].astype(bool), masks[number][k])
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert {r.ReferencedSOPInstanceUID for r in referenced} == set(by_uid)  # every source instance


def test_keep_empty_frames_writes_every_slice_of_every_segment(oblique):
    seg = build_segmentation(oblique["labels"], oblique["root"] / "ct", load_metadata(META), omit_empty_frames=False)
    assert seg.NumberOfFrames == 3 * oblique["ct"].array.shape[0]


def test_lesions_far_apart_keep_their_slices(small_ct, tmp_path):
    root, ct = small_ct
    labels = np.zeros(ct.array.shape, np.uint8)
    labels[0, 2:5, 2:5] = 1
    labels[5, 10:14, 10:14] = 2  # four empty slices between the lesions
    meta = load_metadata({"segments": [_segment("A"), _segment("B", 2)]})
    seg = build_segmentation(ct.with_array(labels), root / "ct", meta)
    assert seg.NumberOfFrames == 2
    data = read_segmentation(seg, root / "ct")
    np.testing.assert_array_equal(data.labels[0].array, labels)
    seg.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    result = subprocess.run([tool("dciodvfy"), str(tmp_path / "seg.dcm")], capture_output=True, text=True)
    assert [line for line in result.stderr.splitlines() if line.strip()] == ["Segmentation"]


def test_read_without_source_spans_the_frames_and_keeps_orientation(oblique):
    data = read_segmentation(oblique["path"])
    ct = oblique["ct"]
    grid = data.labels[0]
    # slices 4..11 hold segments: the grid starts at slice 4 of the CT, along the same axes
    assert grid.array.shape == (8, *ct.array.shape[1:])
    np.testing.assert_allclose(grid.direction, ct.direction, atol=1e-6)
    np.testing.assert_allclose(grid.origin, ct.index_to_lps(np.array([0, 0, 4])), atol=1e-4)
    np.testing.assert_allclose(grid.spacing, ct.spacing, atol=1e-6)
    np.testing.assert_array_equal(data.mask(1).array, expected_masks(oblique["labels"])[1][4:12])


def test_label_in_another_axis_order_or_cropped_is_placed_exactly(tmp_path):
    ct = write_ct(tmp_path / "ct", direction=rotation(0, 0, 90))
    first, _ = lesion_labels(ct.array.shape)
    label = ct.with_array(first).to_sitk()
    # a tool that stores the label with reversed i and swapped j/k axes, and one that crops it
    permuted = sitk.PermuteAxes(sitk.Flip(label, [True, False, False]), [0, 2, 1])
    cropped = sitk.RegionOfInterest(label, [30, 30, 12], [5, 4, 2])
    for variant in (permuted, cropped):
        image = Image.from_sitk(variant)
        assert not image.same_grid(ct)
        np.testing.assert_array_equal(align_to_grid(image, ct, "variant"), first)
    meta = {"segments": [dict(META["segments"][0]), dict(META["segments"][1])]}
    seg = build_segmentation(Image.from_sitk(permuted), tmp_path / "ct", load_metadata(meta))
    data = read_segmentation(seg, tmp_path / "ct")
    np.testing.assert_array_equal(data.mask(2).array, first == 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"spacing": (0.9, 1.1, 1.25)}, "spacing"),
        ({"origin": (-30.45, -40.0, 50.0)}, "voxels off"),
        ({"direction": rotation(0, 0, 10)}, "parallel"),
    ],
)
def test_label_on_another_grid_is_refused(tmp_path, change, message):
    ct = write_ct(tmp_path / "ct")
    first, _ = lesion_labels(ct.array.shape)
    geometry = {"spacing": ct.spacing, "origin": ct.origin, "direction": ct.direction, **change}
    label = Image(first, geometry["spacing"], geometry["origin"], geometry["direction"], {"path": "lab.nrrd"})
    with pytest.raises(GeometryError, match=message) as err:
        build_segmentation(label, tmp_path / "ct", load_metadata({"segments": META["segments"][:2]}))
    assert "lab.nrrd" in str(err.value) and "source:" in str(err.value)


def test_labelled_voxels_outside_the_source_grid_are_refused(tmp_path):
    ct = write_ct(tmp_path / "ct")
    bigger = np.zeros((ct.array.shape[0] + 2, *ct.array.shape[1:]), np.uint8)
    bigger[2, 3, 3] = 1
    bigger[-1, 3, 3] = 1  # one voxel beyond the last slice
    label = Image(bigger, ct.spacing, ct.origin, ct.direction)
    with pytest.raises(GeometryError, match="1 labelled voxels lie outside"):
        build_segmentation(label, tmp_path / "ct", load_metadata({"segments": META["segments"][:1]}))
    bigger[2, 3, 3] = 0  # none inside: the label does not overlap the series at all, and is told so
    with pytest.raises(GeometryError, match=r"does not overlap the source series: its labelled voxels lie at .* z "):
        build_segmentation(label, tmp_path / "ct", load_metadata({"segments": META["segments"][:1]}))


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory) -> tuple[Path, Image]:
    root = tmp_path_factory.mktemp("small")
    return root, write_ct(root / "ct", shape=(6, 20, 24))


def _labels(ct: Image, *values: int) -> Image:
    array = np.zeros(ct.array.shape, np.uint8)
    for n, v in enumerate(values):
        array[1 + n, 2:6, 2:6] = v
    return ct.with_array(array)


def _segment(label: str, value: int = 1, **kw) -> dict:
    return {"label": label, "label_value": value, "category": "tissue", "type": "neoplasm", **kw}


def test_empty_segment_is_refused(small_ct):
    root, ct = small_ct
    meta = load_metadata({"segments": [_segment("A"), _segment("B", 2)]})
    with pytest.raises(InputError, match="segment 'B' is empty.*value 2"):
        build_segmentation(_labels(ct, 1), root / "ct", meta)


def test_undescribed_label_values_are_refused(small_ct):
    root, ct = small_ct
    with pytest.raises(InputError, match=r"voxel value\(s\) \[3\] are not described"):
        build_segmentation(_labels(ct, 1, 3), root / "ct", load_metadata({"segments": [_segment("A")]}))


def test_label_file_count_must_match_the_metadata(small_ct):
    root, ct = small_ct
    meta = load_metadata({"segments": [_segment("A"), _segment("B", labels_file=1)]})
    with pytest.raises(InputError, match="1 label image.*describes 2"):
        build_segmentation(_labels(ct, 1), root / "ct", meta)


def test_source_must_be_one_regular_series(tmp_path):
    write_ct(tmp_path / "two" / "a", shape=(6, 20, 24), name="A")
    write_ct(tmp_path / "two" / "b", shape=(6, 20, 24), name="B")
    with pytest.raises(InputError, match="must be one image series, found 2"):
        load_source(tmp_path / "two")
    write_ct(tmp_path / "gap", shape=(6, 20, 24))
    middle = next(f for f in (tmp_path / "gap").iterdir() if pydicom.dcmread(f).InstanceNumber == 3)
    middle.unlink()
    with pytest.raises(GeometryError, match="missing slice"):
        load_source(tmp_path / "gap")
    with pytest.raises(InputError, match="no such source"):
        load_source(tmp_path / "absent")


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ({"label": "A", "category": "tissue"}, "missing the 'type' code"),
        ({"label": "A", "category": "tissue", "type": "tumour-ish"}, "not a known code name"),
        ({"label": "A", "category": "tissue", "type": {"value": "1", "scheme": "SCT"}}, "is not a code"),
        (
            {"label": "A", "category": "tissue", "type": "mass", "algorithm": {"type": "AUTOMATIC"}},
            "needs the algorithm name",
        ),
        ({"label": "A", "category": "tissue", "type": "mass", "colour": [1, 2, 3]}, r"unknown key\(s\) \['colour'\]"),
        ({"label": "A", "category": "tissue", "type": "mass", "color": [1, 2, 300]}, "outside 0-255"),
        ({"category": "tissue", "type": "mass"}, "no 'label'"),
    ],
)
def test_malformed_segment_metadata_is_refused(segment, message):
    with pytest.raises(InputError, match=message):
        load_metadata({"segments": [segment]})


def test_two_segments_on_one_label_value_are_refused():
    with pytest.raises(InputError, match="both claim label value 1"):
        load_metadata({"segments": [_segment("A"), _segment("B")]})


def test_metadata_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "meta.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="meta.json: not a readable JSON"):
        load_metadata(bad)
    bad.write_text(json.dumps({"labels": []}), encoding="utf-8")
    with pytest.raises(InputError, match="neither OncoQI segmentation metadata"):
        load_metadata(bad)


# --------------------------------------------------------------------------- dcmqi metadata JSON


def _dcmqi_code(value: str, scheme: str, meaning: str) -> dict[str, str]:
    return {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}


DCMQI_META = {
    "ContentCreatorName": "Doe^John",
    "SeriesDescription": "Segmentation",
    "SeriesNumber": "300",
    "segmentAttributes": [
        [
            {
                "labelID": 1,
                "SegmentLabel": "Liver",
                "SegmentAlgorithmType": "SEMIAUTOMATIC",
                "SegmentAlgorithmName": "SlicerEditor",
                "recommendedDisplayRGBValue": [221, 130, 101],
                "SegmentedPropertyCategoryCodeSequence": _dcmqi_code("85756007", "SCT", "Tissue"),
                "SegmentedPropertyTypeCodeSequence": _dcmqi_code("10200004", "SCT", "Liver"),
            },
            {
                "labelID": 2,
                "SegmentAlgorithmType": "MANUAL",
                "SegmentedPropertyCategoryCodeSequence": _dcmqi_code("T-D0050", "SRT", "Tissue"),
                "SegmentedPropertyTypeCodeSequence": _dcmqi_code("80891009", "SCT", "Heart"),
            },
        ],
        [
            {
                "labelID": 1,
                "SegmentLabel": "Spine",
                "SegmentAlgorithmType": "MANUAL",
                "SegmentedPropertyCategoryCodeSequence": _dcmqi_code("123037004", "SCT", "Anatomical Structure"),
                "SegmentedPropertyTypeCodeSequence": _dcmqi_code("122495006", "SCT", "Thoracic spine"),
            },
        ],
    ],
}


def test_dcmqi_metadata_maps_files_and_label_ids():
    meta = load_metadata(DCMQI_META)
    assert [(s.label, s.labels_file, s.label_value) for s in meta.segments] == [
        ("Liver", 0, 1),
        ("Heart", 0, 2),
        ("Spine", 1, 1),
    ]
    liver, heart, _ = meta.segments
    assert liver.algorithm_name == "SlicerEditor" and liver.color == (221, 130, 101)
    assert meta.content_creator == "Doe^John" and meta.series_number == 300
    assert heart.category.scheme_designator == "SCT" and heart.category.value == "85756007"  # SRT normalised
    # and back: dcmqi's own layout, loadable again to the same segments
    again = SegmentationMetadata.from_dcmqi(meta.to_dcmqi())
    assert [s.to_json() for s in again.segments] == [s.to_json() for s in meta.segments]


def test_dcmqi_metadata_errors_use_dcmqi_key_names():
    broken = json.loads(json.dumps(DCMQI_META))
    del broken["segmentAttributes"][1][0]["SegmentedPropertyTypeCodeSequence"]
    with pytest.raises(InputError, match=r"segmentAttributes\[1\]\[0\]: missing SegmentedPropertyTypeCodeSequence"):
        load_metadata(broken)
    with pytest.raises(InputError, match="list .*of lists"):
        load_metadata({"segmentAttributes": [DCMQI_META["segmentAttributes"][0][0]]})


def test_every_dcmqi_example_metadata_file_loads():
    examples = sorted((dataset("dcmqi-examples") / "dcmqi-examples" / "doc" / "examples").glob("seg-example*.json"))
    assert len(examples) >= 8
    for path in examples:
        meta = load_metadata(path)
        raw = json.loads(path.read_text())
        assert len(meta.segments) == sum(len(f) for f in raw["segmentAttributes"]), path.name


# --------------------------------------------------------------------------- validators we did not write


def test_dciodvfy_finds_no_error_and_no_warning(oblique):
    result = subprocess.run([tool("dciodvfy"), str(oblique["path"])], capture_output=True, text=True)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    problems = [line for line in lines if line.startswith(("Error", "Warning"))]
    assert problems == [], problems  # no warning remains to be explained
    assert result.returncode == 0 and lines == ["Segmentation"]


def test_dcmqi_reads_our_seg_into_the_same_masks(oblique, tmp_path):
    out = tmp_path / "dcmqi"
    out.mkdir()
    result = subprocess.run(
        [
            tool("segimage2itkimage"),
            "--inputDICOM",
            str(oblique["path"]),
            "--outputDirectory",
            str(out),
            "--prefix",
            "s",
            "--outputType",
            "nrrd",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "s-meta.json").read_text())
    assert [a[0]["SegmentLabel"] for a in meta["segmentAttributes"]] == ["GTV", "Node", "Core"]
    assert meta["segmentAttributes"][0][0]["TrackingUniqueIdentifier"] == "1.2.3.4.5.6.7"
    for number, mask in expected_masks(oblique["labels"]).items():
        image = Image.from_sitk(sitk.ReadImage(str(out / f"s-{number}.nrrd")))
        np.testing.assert_array_equal(align_to_grid(image, oblique["ct"], f"dcmqi segment {number}") != 0, mask)


# --------------------------------------------------------------------------- SEGs written by other tools


def _frame_pixels(path: Path) -> dict[int, int]:
    """Labelled pixels per segment counted from the stored frames (independent of our reader)."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.reshape(int(ds.get("NumberOfFrames", 1)), ds.Rows, ds.Columns)
    if ds.SegmentationType == "LABELMAP":
        return {int(v): int((pixels == v).sum()) for v in np.unique(pixels) if v}
    counts: dict[int, int] = {}
    for n, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        threshold = 0.5 * float(ds.get("MaximumFractionalValue", 1)) if ds.SegmentationType == "FRACTIONAL" else 0.5
        counts[number] = counts.get(number, 0) + int((pixels[n] >= threshold).sum())
    return counts


def _shared_segs() -> list[str]:
    return [
        "dcmqi-examples/data/segmentations/liver.dcm",
        "dcmqi-examples/data/segmentations/partial_overlaps.dcm",
        "dcmqi-examples/data/segmentations/sparse-labelmap-noppv.dcm",
        "dcmqi-examples/data/segmentations/sparse-labelmap-ppv5.dcm",
        "dcmqi-examples/data/segmentations/23x38x3/seg/label.seg",
        "dcmqi-examples/data/segmentations/24x38x3/seg/label.seg",
        "dcmqi-examples/data/sr-example/seg.dcm",
        "highdicom-test-files/data/test_files/seg_image_ct_binary.dcm",
        "highdicom-test-files/data/test_files/seg_image_ct_binary_overlap.dcm",
        "highdicom-test-files/data/test_files/seg_image_ct_binary_fractional.dcm",
        "highdicom-test-files/data/test_files/seg_image_ct_true_fractional.dcm",
        "highdicom-test-files/data/test_files/seg_image_ct_binary_single_frame.dcm",
        "highdicom-test-files/data/test_files/seg_image_cr_binary.dcm",
    ]


@pytest.mark.parametrize("relative", _shared_segs())
def test_seg_written_by_another_tool_reads_its_frames(relative):
    archive = relative.split("/")[0]
    path = dataset(archive) / relative
    data = read_segmentation(path)
    counts = data.voxel_counts()
    assert counts == _frame_pixels(path)
    assert [s.segment_number for s in data.metadata.segments] == sorted(counts)
    if pydicom.dcmread(path, stop_before_pixels=True).get("SegmentsOverlap") == "NO":
        assert len(data.labels) == 1  # non-overlapping segments read as one label map


def test_a_label_map_seg_keeps_its_background_segment_description(capsys):
    """Segment 0 of a label-map SEG (Supplement 243) is the background: read and printed, not dropped."""
    from oncoqi.cli import main

    path = dataset("dcmqi-examples") / "dcmqi-examples/data/segmentations/sparse-labelmap-noppv.dcm"
    data = read_segmentation(path)
    assert data.metadata.background == "Background"
    assert data.metadata.to_json()["background"] == "Background"
    assert main(["report", "read", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "0\tBackground\tbackground\t-\t-"


def test_overlapping_segments_of_another_tool_read_as_several_label_images():
    path = dataset("dcmqi-examples") / "dcmqi-examples/data/segmentations/partial_overlaps.dcm"
    data = read_segmentation(path)
    masks = [data.mask(s.segment_number).array for s in data.metadata.segments]
    assert np.max(np.sum(masks, axis=0)) > 1  # some voxels are in two segments
    assert len(data.labels) > 1
    for image in data.labels:  # each label image holds disjoint segments: values are whole segments
        for value in set(np.unique(image.array)) - {0}:
            np.testing.assert_array_equal(image.array == value, data.mask(int(value)).array)


def test_slide_microscopy_segs_read_as_total_pixel_matrices():
    root = dataset("highdicom-test-files") / "highdicom-test-files" / "data" / "test_files"
    tiled = read_segmentation(root / "seg_image_sm_dots_tiled_full.dcm")
    sparse = read_segmentation(root / "seg_image_sm_dots.dcm")
    assert tiled.coordinate_system == "SLIDE" and tiled.labels[0].array.shape == (1, 50, 50)
    assert tiled.voxel_counts() == sparse.voxel_counts()  # TILED_FULL and per-frame positions agree
    labelmap = read_segmentation(root / "seg_image_sm_control_labelmap.dcm")
    binary = read_segmentation(root / "seg_image_sm_control.dcm")
    assert labelmap.voxel_counts() == binary.voxel_counts()


def test_qin_headneck_seg_lands_on_the_pet_grid():
    root = dataset("qin-headneck-01-0139-pet") / "qin-headneck-01-0139" / "test" / "data" / "seg_dicom4qi" / "data_3"
    data = read_segmentation(root / "mask" / "mask.dcm", source=root / "image")
    assert len(data.metadata.segments) == 11
    assert [s.type.meaning for s in data.metadata.segments].count("Neoplasm, Secondary") == 10
    assert data.labels[0].array.shape == (545, 168, 168)
    assert data.voxel_counts() == _frame_pixels(root / "mask" / "mask.dcm")
    assert len(data.labels) == 1  # the 11 lesions do not overlap


def test_dcmqi_written_seg_matches_its_nrrd_input():
    root = dataset("dcmqi-examples") / "dcmqi-examples" / "data" / "segmentations"
    data = read_segmentation(root / "liver.dcm", source=root / "ct-3slice")
    truth = Image.from_sitk(sitk.ReadImage(str(root / "liver_seg.nrrd")))
    grid = load_source(root / "ct-3slice").grid
    np.testing.assert_array_equal(data.mask(1).array, align_to_grid(truth, grid, "liver_seg.nrrd") != 0)


def test_dcmqi_inputs_give_the_seg_dcmqi_gave(tmp_path):
    """dcmqi's example label, CT and metadata JSON: our SEG holds dcmqi's liver.dcm masks."""
    root = dataset("dcmqi-examples") / "dcmqi-examples"
    data = root / "data" / "segmentations"
    label = Image.from_sitk(sitk.ReadImage(str(data / "liver_seg.nrrd")))
    meta = load_metadata(root / "doc" / "examples" / "seg-example.json")
    seg = write_segmentation(tmp_path / "liver.dcm", label, data / "ct-3slice", meta)
    assert (seg.ClinicalTrialSeriesID, seg.ClinicalTrialTimePointID, seg.ClinicalTrialCoordinatingCenterName) == (
        "Session1",
        "1",
        "BWH",
    )
    ours = read_segmentation(tmp_path / "liver.dcm", data / "ct-3slice")
    theirs = read_segmentation(data / "liver.dcm", data / "ct-3slice")
    np.testing.assert_array_equal(ours.mask(1).array, theirs.mask(1).array)
    assert ours.segment(1).tracking_uid == "1.2.3"
    result = subprocess.run([tool("dciodvfy"), str(tmp_path / "liver.dcm")], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if line.startswith(("Error", "Warning"))]
    # the only remark is about the source's own Patient's Name ("JANCT000", one component),
    # which a SEG must copy as it is; dcmqi's liver.dcm carries it too
    assert problems == [
        "Warning - Value dubious for this VR - (0x0010,0x0010) PN Patient's Name  PN [1] = <JANCT000> - "
        "Retired Person Name form"
    ]


def test_not_a_segmentation_is_refused(oblique):
    ct_file = next((oblique["root"] / "ct").iterdir())
    with pytest.raises(InputError, match="is not a DICOM Segmentation"):
        read_segmentation(ct_file)
