"""PET indices of lesions drawn on the CT, and the PET-thresholded lesion around the primary.

The step between a CT segmentation and a PET/CT report: each CT lesion is carried to the PET grid
(nearest neighbour, so the PET grid is kept and its voxels are not resampled) and gets its PET-IndiC
indices; around the primary, the PET-defined lesion is segmented by an SUV threshold
(:func:`oncoqi.pet.segment.threshold_segment`) within the CT lesion grown by a margin, or, when
the lesion is smaller than a PET voxel, within that margin of its centroid. The cohort runner and
the PETIndiC module both use :func:`ct_lesions_on_pet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from oncoqi.errors import OncoQIError
from oncoqi.image import Image
from oncoqi.pet.indices import PETIndices, compute_indices
from oncoqi.pet.segment import ThresholdResult, threshold_segment, transfer_labels


@dataclass
class LesionOnPET:
    """One CT lesion on the PET grid.

    Attributes
    ----------
    label
        Its value in the CT label image.
    region
        Boolean ``[k, j, i]`` on the PET grid (empty when smaller than a PET voxel there).
    indices
        Its PET-IndiC indices, None for an empty region.
    notes
        What limits them (from the indices, or why there are none).
    """

    label: int
    region: np.ndarray
    indices: PETIndices | None
    notes: list[str] = field(default_factory=list)


@dataclass
class PrimaryOnPET:
    """The PET-thresholded lesion around the primary.

    Attributes
    ----------
    label
        The primary's value in the CT label image.
    threshold
        The threshold segmentation, None when none could be made (see ``notes``).
    indices
        Its PET-IndiC indices, None without a segmentation.
    notes
        Why there is none, or the assumptions of the threshold and the indices.
    """

    label: int
    threshold: ThresholdResult | None
    indices: PETIndices | None
    notes: list[str] = field(default_factory=list)


@dataclass
class CTLesionsOnPET:
    """What :func:`ct_lesions_on_pet` found.

    Attributes
    ----------
    on_pet
        The CT label image on the PET grid (nearest neighbour).
    lesions
        One entry per requested label, in the order asked.
    primary
        The PET-thresholded lesion around the primary; None when the primary is not among the
        labels.
    pet_labels
        int16 label image on the PET grid: the PET-thresholded lesion with the primary's label.
    """

    on_pet: Image
    lesions: list[LesionOnPET]
    primary: PrimaryOnPET | None
    pet_labels: Image


def grow_mm(mask: np.ndarray, spacing_kji: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """``mask`` grown by ``margin_mm`` (Euclidean, in mm), computed in its bounding box plus the margin."""
    idx = np.argwhere(mask)
    pad = [int(np.ceil(margin_mm / s)) + 1 for s in spacing_kji]
    lo = [max(0, int(a) - p) for a, p in zip(idx.min(axis=0), pad)]
    hi = [min(n, int(b) + p + 1) for b, p, n in zip(idx.max(axis=0), pad, mask.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    out = np.zeros_like(mask, dtype=bool)
    out[box] = ndimage.distance_transform_edt(~mask[box], sampling=spacing_kji) <= margin_mm
    return out


def ball_around(image: Image, centre_lps: Sequence[float], margin_mm: float) -> np.ndarray:
    """The voxels of ``image`` within ``margin_mm`` of the voxel holding ``centre_lps`` (empty outside it)."""
    mask = np.zeros(image.array.shape, bool)
    i, j, k = (int(round(float(c))) for c in image.lps_to_index(np.asarray(centre_lps, float)))
    if all(0 <= a < n for a, n in zip((k, j, i), mask.shape)):
        mask[k, j, i] = True
        return grow_mm(mask, _spacing_kji(image), margin_mm)
    return mask


def _spacing_kji(image: Image) -> tuple[float, float, float]:
    return (image.spacing[2], image.spacing[1], image.spacing[0])


def _centroid_lps(labels: Image, label: int) -> np.ndarray | None:
    """Centre of the voxels holding ``label`` (LPS mm), None when there are none."""
    idx = np.argwhere(labels.array == label)
    return None if idx.size == 0 else labels.index_to_lps(idx.mean(axis=0)[::-1])


def _threshold_primary(
    suv: Image, area: np.ndarray, label: int, method: str, value: float
) -> tuple[PrimaryOnPET, np.ndarray | None]:
    """The threshold segmentation within ``area``, its indices, and its mask (None when it failed)."""
    try:
        if not area.any():
            raise OncoQIError("the lesion lies outside the PET field of view")
        thr = threshold_segment(suv, method, value, region=suv.with_array(area.astype(np.uint8)))
    except OncoQIError as exc:
        return PrimaryOnPET(label, None, None, [f"no PET-thresholded lesion ({exc})"]), None
    indices = compute_indices(suv, thr.mask, 1)
    return PrimaryOnPET(label, thr, indices, [*thr.warnings, *indices.warnings]), thr.mask.array > 0


def ct_lesions_on_pet(
    suv: Image,
    ct_labels: Image,
    labels: Sequence[int],
    *,
    primary_label: int = 1,
    primary_centroid_lps: Sequence[float] | None = None,
    method: str = "background",
    value: float = 50.0,
    margin_mm: float = 10.0,
) -> CTLesionsOnPET:
    """PET indices of the CT lesions ``labels``, and the PET-thresholded lesion around the primary.

    Parameters
    ----------
    suv
        The SUV volume (any flavour; the indices are in its unit).
    ct_labels
        The lesions' label image on the CT grid.
    labels
        The label values to measure, in the order wanted.
    primary_label
        The lesion around which the PET-defined lesion is sought (GTV-1).
    primary_centroid_lps
        Its centre, used when it is smaller than a PET voxel on the PET grid; by default the centre
        of its CT voxels.
    method, value
        The threshold (:class:`oncoqi.pet.segment.ThresholdMethod` and its value).
    margin_mm
        The PET-defined lesion is sought within the primary grown by this margin on the PET grid.

    Returns
    -------
    CTLesionsOnPET
    """
    on_pet = transfer_labels(ct_labels, suv, "nearest")
    pet_labels = np.zeros(suv.array.shape, np.int16)
    lesions: list[LesionOnPET] = []
    primary: PrimaryOnPET | None = None
    for label in labels:
        region = on_pet.array == label
        if region.any():
            indices = compute_indices(suv, on_pet, label)
            lesions.append(LesionOnPET(label, region, indices, list(indices.warnings)))
        else:
            note = "smaller than a PET voxel on the PET grid: no CT-defined PET indices"
            lesions.append(LesionOnPET(label, region, None, [note]))
        if label != primary_label:
            continue
        if region.any():
            area = grow_mm(region, _spacing_kji(suv), margin_mm)
        else:
            centre = primary_centroid_lps if primary_centroid_lps is not None else _centroid_lps(ct_labels, label)
            area = ball_around(suv, centre, margin_mm) if centre is not None else region
        primary, mask = _threshold_primary(suv, area, label, method, value)
        if mask is not None:
            pet_labels[mask & (pet_labels == 0)] = label
    return CTLesionsOnPET(on_pet, lesions, primary, suv.with_array(pet_labels))
