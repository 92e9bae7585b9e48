"""Read DICOM RT Structure Sets: list the ROIs and turn their contours into label maps.

An RTSTRUCT stores each region of interest (ROI) as closed planar polygons in patient
coordinates (LPS, mm), one or more per slice. :func:`rois_to_label` rasterises them onto a
reference image grid (normally the CT series the structures were drawn on):

* every contour is mapped to the grid's continuous voxel indices through the grid's own
  geometry (any direction matrix, flipped or oblique);
* it is assigned to the nearest slice; contours a little off the slice plane (rounding in the
  file, or a series with slightly different positions) are accepted, and the largest offset is
  reported in the label's metadata;
* a pixel belongs to the ROI when its centre lies inside the polygon; the contours of one ROI on
  one slice are combined by the even-odd rule (XOR), so an inner contour cuts a hole, whatever
  order the contours come in and whichever way round they are drawn.

Typical use::

    ss = read_rtstruct("LUNG1-001/mask_rtstruct")
    ss.roi_names            # ['GTV-1', 'Spinal-Cord', 'Lung-Left', 'Lung-Right']
    gtv = rois_to_label(ss, ct, ["GTV-1"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from skimage.draw import polygon

from oncoqi.errors import InputError
from oncoqi.image import Image

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


class RTStructError(InputError):
    """An RTSTRUCT cannot be read or does not hold what was asked for (naming the file and ROI)."""


@dataclass
class Roi:
    """One ROI of a structure set.

    Attributes
    ----------
    number
        ROI Number, which links the ROI's name to its contours.
    name
        ROI Name as written in the file.
    frame_of_reference_uid
        Frame of reference the contour points are in.
    contours
        Closed planar contours, each an ``(n, 3)`` array of LPS points (mm).
    skipped
        Contours that are not closed polygons (points, open lines), by geometric type.
    """

    number: int
    name: str
    frame_of_reference_uid: str
    contours: list[np.ndarray] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class StructureSet:
    """The ROIs of one RTSTRUCT file, in the file's order."""

    path: Path
    rois: list[Roi]
    referenced_series_uids: list[str]

    @property
    def roi_names(self) -> list[str]:
        """ROI names in the file's order."""
        return [r.name for r in self.rois]

    def roi(self, name: str) -> Roi:
        """The ROI called ``name`` (exact match first, then ignoring case and surrounding spaces).

        Raises
        ------
        RTStructError
            When no ROI, or more than one ROI ignoring case, has that name; the message lists the names.
        """
        exact = [r for r in self.rois if r.name == name]
        if len(exact) == 1:
            return exact[0]
        loose = [r for r in self.rois if r.name.strip().lower() == name.strip().lower()]
        if len(loose) == 1:
            return loose[0]
        problem = "several ROIs are" if len(exact) + len(loose) > 1 else "no ROI is"
        raise RTStructError(f"{self.path}: {problem} called {name!r}; the ROIs are {self.roi_names}")


def read_rtstruct(path: str | os.PathLike) -> StructureSet:
    """Read an RTSTRUCT file, or the single RTSTRUCT file in a folder tree.

    Raises
    ------
    RTStructError
        When the file is not a readable RT Structure Set, or a folder holds none or several.
    """
    path = Path(path)
    if path.is_dir():
        path = _find_one(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise RTStructError(f"{path}: not a readable DICOM file ({exc})") from exc
    if str(ds.get("SOPClassUID", "")) != RT_STRUCTURE_SET_STORAGE and ds.get("Modality") != "RTSTRUCT":
        raise RTStructError(f"{path}: not an RT Structure Set (Modality {ds.get('Modality', '?')})")
    rois = {
        int(item.ROINumber): Roi(
            int(item.ROINumber), str(item.get("ROIName", "")), str(item.get("ReferencedFrameOfReferenceUID", ""))
        )
        for item in ds.get("StructureSetROISequence", [])
    }
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        if number not in rois:
            raise RTStructError(
                f"{path}: contours reference ROI number {number}, which the structure set does not define"
            )
        roi = rois[number]
        for contour in item.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR"))
            if kind != "CLOSED_PLANAR":
                roi.skipped[kind] = roi.skipped.get(kind, 0) + 1
                continue
            data = np.asarray([float(v) for v in contour.ContourData], dtype=float)
            if data.size % 3 or data.size < 9:
                raise RTStructError(
                    f"{path}: ROI {roi.name!r} has a contour of {data.size} coordinates (need x, y, z for 3+ points)"
                )
            roi.contours.append(data.reshape(-1, 3))
    series = [
        str(s.SeriesInstanceUID)
        for f in ds.get("ReferencedFrameOfReferenceSequence", [])
        for st in f.get("RTReferencedStudySequence", [])
        for s in st.get("RTReferencedSeriesSequence", [])
    ]
    return StructureSet(path=path, rois=list(rois.values()), referenced_series_uids=series)


def _find_one(folder: Path) -> Path:
    found = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        if ds.get("Modality") == "RTSTRUCT" or str(ds.get("SOPClassUID", "")) == RT_STRUCTURE_SET_STORAGE:
            found.append(file)
    if len(found) != 1:
        what = "no RTSTRUCT file" if not found else f"{len(found)} RTSTRUCT files ({', '.join(map(str, found))})"
        raise RTStructError(f"{folder}: holds {what}; give the file to read")
    return found[0]


def rois_to_label(
    structure_set: StructureSet | str | os.PathLike, reference: Image, names: Sequence[str] | str
) -> Image:
    """Rasterise ROIs onto the grid of ``reference``.

    Parameters
    ----------
    structure_set
        A :class:`StructureSet` or the path of an RTSTRUCT (file or folder).
    reference
        Image whose grid the label is made on (the CT series the ROIs were drawn on).
    names
        ROI name(s); the i-th gets label ``i + 1``; where ROIs overlap, the later one wins.

    Returns
    -------
    Image
        uint8 label on ``reference``'s grid; ``metadata`` holds ``labels`` (value to ROI name),
        ``max_off_plane_mm`` (largest distance of a contour from its slice plane) and
        ``contours_outside`` (contours beyond the grid's slices, per ROI).

    Raises
    ------
    RTStructError
        When a name is not in the structure set, an ROI has no closed contour, its frame of
        reference differs from ``reference``'s, or none of its contours lies on the grid.
    """
    ss = structure_set if isinstance(structure_set, StructureSet) else read_rtstruct(structure_set)
    names = [names] if isinstance(names, str) else list(names)
    label = np.zeros(reference.array.shape, dtype=np.uint8)
    off_plane = 0.0
    outside: dict[str, int] = {}
    for value, name in enumerate(names, start=1):
        roi = ss.roi(name)
        mask, offset, n_outside = roi_mask(ss, roi, reference)
        label[mask] = value
        off_plane = max(off_plane, offset)
        outside[roi.name] = n_outside
    return reference.with_array(
        label,
        labels={value: name for value, name in enumerate(names, start=1)},
        source=str(ss.path),
        max_off_plane_mm=off_plane,
        contours_outside=outside,
    )


def roi_mask(ss: StructureSet, roi: Roi, reference: Image) -> tuple[np.ndarray, float, int]:
    """Boolean mask of one ROI on ``reference``'s grid (see :func:`rois_to_label`).

    Returns
    -------
    tuple
        The mask, the largest contour distance from its slice plane (mm), and the number of
        contours that lie beyond the grid's slices.

    Raises
    ------
    RTStructError
        As :func:`rois_to_label`.
    """
    where = f"{ss.path}: ROI {roi.name!r}"
    if not roi.contours:
        skipped = f" (only {roi.skipped})" if roi.skipped else ""
        raise RTStructError(f"{where} has no closed planar contour{skipped}")
    frame = str(reference.metadata.get("frame_of_reference_uid") or "")
    if frame and roi.frame_of_reference_uid and frame != roi.frame_of_reference_uid:
        raise RTStructError(
            f"{where} is in frame of reference {roi.frame_of_reference_uid}, the reference image in {frame}: "
            "the contours were not drawn on this image's patient position"
        )
    nk, ny, nx = reference.array.shape
    slice_mm = reference.spacing[2]
    slices: dict[int, np.ndarray] = {}
    off_plane, outside = 0.0, 0
    for points in roi.contours:
        ijk = reference.lps_to_index(points)
        k_mean = float(ijk[:, 2].mean())
        k = int(np.rint(k_mean))
        if not 0 <= k < nk:
            outside += 1
            continue
        off_plane = max(off_plane, float(np.abs(ijk[:, 2] - k).max()) * slice_mm)
        rr, cc = polygon(ijk[:, 1], ijk[:, 0], shape=(ny, nx))
        filled = np.zeros((ny, nx), dtype=bool)
        filled[rr, cc] = True
        slices[k] = slices[k] ^ filled if k in slices else filled
    if not slices:
        raise RTStructError(
            f"{where}: none of its {len(roi.contours)} contours lies within the reference image's slices"
        )
    mask = np.zeros((nk, ny, nx), dtype=bool)
    for k, filled in slices.items():
        mask[k] = filled
    return mask, off_plane, outside
