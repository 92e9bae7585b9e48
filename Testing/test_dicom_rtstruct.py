"""oncoqi.dicom.rtstruct: ROI listing and contour rasterisation, synthetic and on LUNG1-001."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from helpers.datasets import lung1_ct_and_rtstruct, lung1_label
from oncoqi.dicom.rtstruct import RT_STRUCTURE_SET_STORAGE, RTStructError, read_rtstruct, rois_to_label
from oncoqi.image import Image

FRAME = "1.2.826.0.1.3680043.8.498.1"
SHAPE = (5, 40, 50)  # k, j, i


def _write_rtstruct(path: Path, rois: dict[str, list[np.ndarray]], frame: str = FRAME) -> Path:
    """A minimal RT Structure Set with closed planar contours (LPS points, mm)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        ds.StructureSetROISequence.append(roi)
        item = pydicom.Dataset()
        item.ReferencedROINumber = number
        item.ContourSequence = Sequence()
        for points in contours:
            contour = pydicom.Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.4f}" for v in np.asarray(points).ravel()]
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def _grid(direction: np.ndarray) -> Image:
    return Image(
        np.zeros(SHAPE, dtype=np.int16),
        (0.8, 0.8, 2.5),
        (-20.0, -16.0, 50.0),
        direction,
        {"frame_of_reference_uid": FRAME},
    )


def _polygon(grid: Image, ij: list[tuple[float, float]], k: float) -> np.ndarray:
    return grid.index_to_lps(np.array([[i, j, k] for i, j in ij]))


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0])], ids=["identity", "flipped"])
def test_synthetic_contours_become_the_known_mask(tmp_path, direction):
    grid = _grid(direction)
    outer = [(9.5, 5.5), (30.5, 5.5), (30.5, 25.5), (9.5, 25.5)]
    hole = [(14.5, 10.5), (14.5, 15.5), (20.5, 15.5), (20.5, 10.5)]  # drawn the other way round
    off_plane = 0.3 / 2.5  # 0.3 mm above the slice plane
    diamond = [(25.25 + 8 * np.cos(a), 20.25 + 6 * np.sin(a)) for a in np.radians([0, 90, 180, 270])]
    rois = {
        "GTV-1": [_polygon(grid, hole, 2 + off_plane), _polygon(grid, outer, 2 + off_plane)],  # hole listed first
        "Lung-Left": [_polygon(grid, diamond, 3), _polygon(grid, outer, 9)],  # slice 9 is beyond the grid
    }
    path = _write_rtstruct(tmp_path / "rs.dcm", rois)
    ss = read_rtstruct(tmp_path)  # the folder's single RTSTRUCT
    assert ss.roi_names == ["GTV-1", "Lung-Left"]
    label = rois_to_label(path, grid, ["GTV-1", "Lung-Left"])

    expected = np.zeros(SHAPE, dtype=np.uint8)
    expected[2, 6:26, 10:31] = 1
    expected[2, 11:16, 15:21] = 0
    j, i = np.mgrid[0 : SHAPE[1], 0 : SHAPE[2]]
    expected[3][np.abs(i - 25.25) / 8 + np.abs(j - 20.25) / 6 < 1] = 2
    np.testing.assert_array_equal(label.array, expected)
    assert label.same_grid(grid)
    assert label.metadata["labels"] == {1: "GTV-1", 2: "Lung-Left"}
    assert label.metadata["max_off_plane_mm"] == pytest.approx(0.3, abs=1e-3)
    assert label.metadata["contours_outside"] == {"GTV-1": 0, "Lung-Left": 1}


def test_roi_names_are_matched_ignoring_case_and_errors_name_the_problem(tmp_path):
    grid = _grid(np.eye(3))
    square = _polygon(grid, [(9.5, 5.5), (30.5, 5.5), (30.5, 25.5), (9.5, 25.5)], 1)
    path = _write_rtstruct(tmp_path / "rs.dcm", {"Lung-Right": [square], "Empty": []})
    assert rois_to_label(path, grid, "lung-right ").array.sum() == 21 * 20
    with pytest.raises(RTStructError, match=r"no ROI is called 'GTV-1'; the ROIs are \['Lung-Right', 'Empty'\]"):
        rois_to_label(path, grid, "GTV-1")
    with pytest.raises(RTStructError, match="ROI 'Empty' has no closed planar contour"):
        rois_to_label(path, grid, "Empty")
    other = Image(grid.array, grid.spacing, grid.origin, grid.direction, {"frame_of_reference_uid": "1.2.3"})
    with pytest.raises(RTStructError, match="frame of reference"):
        rois_to_label(path, other, "Lung-Right")
    far = Image(grid.array, grid.spacing, (0.0, 0.0, 500.0), grid.direction, {})
    with pytest.raises(RTStructError, match="none of its 1 contours lies within"):
        rois_to_label(path, far, "Lung-Right")


def test_files_that_are_not_a_structure_set_are_refused(tmp_path):
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    with pytest.raises(RTStructError, match="not a readable DICOM file"):
        read_rtstruct(tmp_path / "junk.dcm")
    with pytest.raises(RTStructError, match="holds no RTSTRUCT file"):
        read_rtstruct(tmp_path)


def test_lung1_gtv_and_lungs():
    # read and rasterised once per session (helpers.datasets): the lung isolation's bar uses them too
    ct, ss = lung1_ct_and_rtstruct()
    assert ss.roi_names == ["GTV-1", "Spinal-Cord", "Lung-Left", "Lung-Right"]
    assert ss.referenced_series_uids == [ct.metadata["series_uid"]]
    gtv = lung1_label("GTV-1")
    assert gtv.metadata["max_off_plane_mm"] < 0.01
    volume = gtv.array.sum() * ct.voxel_volume_ml
    assert volume == pytest.approx(156.0, rel=0.02)  # the dataset's documented GTV-1 volume
    lungs = lung1_label("Lung-Right", "Lung-Left").array
    right, left = ((lungs == v).sum() * ct.voxel_volume_ml for v in (1, 2))
    assert 2000 < left < right < 4000
    # the right lung lies on the patient's right (LPS -x) of the left lung
    x = ct.index_to_lps(np.array([[np.nonzero(lungs == v)[2].mean(), 256, 60] for v in (1, 2)]))[:, 0]
    assert x[0] < x[1]
