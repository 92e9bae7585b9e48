"""Segments for the PET indices: a label-map file or a DICOM SEG, brought onto the PET grid.

A label map (NRRD, NIfTI, MetaImage) gives one segment per non-zero value. A DICOM SEG gives one
segment per Segment Number, each read on its own, so overlapping segments (common in SEGs such
as the QIN-HEADNECK lesion SEG) stay intact. Whatever the source, every segment is resampled
onto the PET grid by nearest neighbour when its grid differs (a warning says so), because the
indices are defined on the PET voxels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk

from oncoqi.dicom import read_label_file
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image, require_labelled, require_overlap


@dataclass(frozen=True, eq=False)
class Segment:
    """One segment on the PET grid.

    Attributes
    ----------
    label
        The label value (label map) or Segment Number (SEG).
    mask
        Image on the PET grid whose voxels equal to ``value`` form the segment.
    value
        Voxel value of the segment in ``mask`` (the label for label maps, 1 for SEG masks).
    name
        Segment Label of a SEG segment, else empty.
    warnings
        Assumptions made while reading it (resampling).
    algorithm
        The algorithm that made a SEG segment, in the SEG metadata's JSON spelling (``{"type":
        "AUTOMATIC", "name": ...}``), so that a SEG derived from it can say so; None for a label
        map, whose origin is unknown.
    """

    label: int
    mask: Image
    value: int
    name: str = ""
    warnings: tuple[str, ...] = ()
    algorithm: dict[str, Any] | None = None


def resample_to(labels: Image, reference: Image) -> Image:
    """Nearest-neighbour resampling of a label image onto ``reference``'s grid (0 outside)."""
    ref = sitk.Image([int(x) for x in reference.size], sitk.sitkUInt8)
    ref.SetSpacing(reference.spacing)
    ref.SetOrigin(reference.origin)
    ref.SetDirection(tuple(reference.direction.flatten()))
    src = sitk.GetImageFromArray(labels.array.astype(np.int32))
    src.SetSpacing(labels.spacing)
    src.SetOrigin(labels.origin)
    src.SetDirection(tuple(labels.direction.flatten()))
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkInt32)
    return reference.with_array(sitk.GetArrayFromImage(out))


def voxel_aligned(img: Image, reference: Image, tol: float = 0.05) -> bool:
    """True when every voxel centre of ``img`` is a voxel centre of ``reference``, e.g. a SEG
    covering some of the PET's slices, possibly in reverse slice order.

    That is, the map from ``img`` indices to ``reference`` indices has an integer matrix and an
    integer shift, within ``tol`` voxel (SEG frame positions are often rounded to 0.01-0.1 mm;
    anything well below half a voxel leaves nearest neighbour unambiguous).
    """
    ref_inv = np.linalg.inv(reference.affine)
    m = ref_inv @ img.affine
    return bool(np.allclose(m[:3, :4], np.round(m[:3, :4]), atol=tol))


def _on_grid(img: Image, reference: Image, what: str) -> tuple[Image, tuple[str, ...]]:
    if reference.same_grid(img):
        return reference.with_array(img.array), ()
    out = resample_to(img, reference)
    if voxel_aligned(img, reference):  # nearest neighbour then only copies voxels: no assumption
        return out, ()
    return out, (f"{what} resampled onto the PET grid (nearest neighbour)",)


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _seg_segments(path: Path, reference: Image, only: int | None) -> list[Segment]:
    # Read through the project's SEG reader, straight onto the PET grid; a SEG whose frames do
    # not lie on that grid is read on its own grid and resampled by _on_grid (with a warning).
    from oncoqi.dicom.seg import read_segmentation

    try:
        data = read_segmentation(path, reference)
    except GeometryError:
        data = read_segmentation(path)
    numbers = [int(s.segment_number) for s in data.metadata.segments if s.segment_number is not None]
    if only is not None:
        if only not in numbers:
            raise InputError(f"{path}: no segment number {only} (segments: {numbers})")
        numbers = [only]
    out = []
    for n in numbers:
        mask = data.mask(n)
        img = mask.with_array(mask.array.astype(np.uint8))
        require_overlap(img, reference, f"{path} segment {n}", "PET image")
        on_grid, warnings = _on_grid(img, reference, f"SEG segment {n}")
        description = data.segment(n)
        out.append(Segment(n, on_grid, 1, description.label, warnings, description.to_json()["algorithm"]))
    return out


def read_segments(path: str | os.PathLike, reference: Image, label: int | None = None) -> list[Segment]:
    """Read the segments of a label-map file or DICOM SEG onto the grid of ``reference``.

    Parameters
    ----------
    path
        Label map (NRRD/NIfTI/MetaImage) or DICOM SEG file.
    reference
        The PET (or SUV) image whose grid the indices use.
    label
        Read only this label value / Segment Number.

    Returns
    -------
    list of Segment
        In increasing label order; empty segments (after resampling) are kept out.

    Raises
    ------
    InputError
        When the file cannot be read, holds non-integer labels or no labelled voxel, or ``label`` is
        absent.
    GeometryError
        When the labelled voxels lie wholly outside the PET image (the message gives both extents).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if _is_dicom(path) and str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", "")) == "SEG":
        segments = _seg_segments(path, reference, label)
    else:
        img = read_label_file(path)
        require_labelled(img, str(path))
        require_overlap(img, reference, str(path), "PET image")
        as_int = Image(img.array.astype(np.int32), img.spacing, img.origin, img.direction)
        labels, warnings = _on_grid(as_int, reference, path.name)
        values = [int(v) for v in np.unique(labels.array) if v != 0]
        if label is not None:
            if label not in values:
                raise InputError(f"{path}: label {label} is absent on the PET grid (labels present: {values})")
            values = [label]
        segments = [Segment(v, labels, v, "", warnings) for v in values]
    kept = [s for s in segments if np.any(s.mask.array == s.value)]
    if label is not None and not kept:
        raise InputError(f"{path}: segment {label} is empty on the PET grid")
    return sorted(kept, key=lambda s: s.label)
