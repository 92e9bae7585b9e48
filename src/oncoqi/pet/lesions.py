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

from oncoqi.errors import OncoQIError
from oncoqi.image import Image
from oncoqi.metrics.lesions import centroid_lps
from oncoqi.pet.indices import PETIndices, compute_indices
from oncoqi.pet.segment import ThresholdResult, ball_around, grow_mm, threshold_segment, transfer_labels


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


def _around_centre(
    suv: Image, ct_labels: Image, label: int, centre_lps: Sequence[float] | None, margin_mm: float
) -> np.ndarray:
    """The PET voxels within ``margin_mm`` of a lesion too small for the PET grid: around ``centre_lps``,
    by default the centre of its CT voxels; empty when that lies outside the PET (or the lesion is empty)."""
    if centre_lps is None:
        mask = ct_labels.array == label
        if not mask.any():
            return np.zeros(suv.array.shape, bool)
        centre_lps = centroid_lps(ct_labels, mask, (0, 0, 0))
    i, j, k = (int(round(float(c))) for c in suv.lps_to_index(np.asarray(centre_lps, float)))
    if not all(0 <= a < n for a, n in zip((k, j, i), suv.array.shape)):
        return np.zeros(suv.array.shape, bool)
    return ball_around(suv, (k, j, i), margin_mm)


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
            area = grow_mm(suv, region, margin_mm)
        else:
            area = _around_centre(suv, ct_labels, label, primary_centroid_lps, margin_mm)
        primary, mask = _threshold_primary(suv, area, label, method, value)
        if mask is not None:
            pet_labels[mask & (pet_labels == 0)] = label
    return CTLesionsOnPET(on_pet, lesions, primary, suv.with_array(pet_labels))
