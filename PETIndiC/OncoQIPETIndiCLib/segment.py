"""Threshold segmentation of a PET lesion from MRML nodes, added as a new segment.

The thresholds are :func:`oncoqi.pet.segment.threshold_segment`'s (fixed SUV, percentage of the
local SUVmax, background-adapted), computed on the SUV image of the PET node
(:func:`OncoQIPETIndiCLib.suv.suv_image_from_node`). The lesion is grown from a seed point (RAS, as
Slicer's markups give it) or restricted to an existing segment, or both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import slicer
from OncoQISlicer.mrml import ALGORITHM_NAME_TAG, ALGORITHM_TYPE_TAG, LPS_TO_RAS, add_segment_from_mask

from oncoqi.pet.segment import THRESHOLD_ALGORITHM_NAME, ThresholdOptions, ThresholdResult, threshold_segment
from OncoQIPETIndiCLib.indices import segment_masks_on_pet
from OncoQIPETIndiCLib.suv import suv_image_from_node

if TYPE_CHECKING:  # the headers are pydicom datasets; this library imports only slicer, vtk, numpy, oncoqi
    from pydicom import Dataset


def threshold_segment_from_nodes(
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    method: str,
    value: float,
    *,
    seed_ras: Sequence[float] | None = None,
    region_segment_id: str | None = None,
    background: float | None = None,
    name: str | None = None,
    dicom_headers: Sequence[Dataset] | None = None,
) -> tuple[str, ThresholdResult]:
    """Segment a lesion on the PET and add it to ``segmentation_node`` as a new segment.

    Parameters
    ----------
    pet_node, segmentation_node
        The PET volume and the segmentation that receives the segment (its geometry becomes the
        PET grid when it has none yet).
    method, value
        ``fixed`` (SUV), ``percent`` or ``background`` (percentage).
    seed_ras
        Seed point in RAS mm (e.g. a markups control point).
    region_segment_id
        A segment of ``segmentation_node`` restricting the lesion.
    background
        Background SUV of the ``background`` method (default: mean of the shell around the region).
    name
        Segment name; default e.g. ``"PET percent 41"``.
    dicom_headers
        Passed to :func:`OncoQIPETIndiCLib.suv.suv_image_from_node`.

    Returns
    -------
    tuple
        The new segment's ID and the core's result (threshold, local max, warnings).

    Raises
    ------
    oncoqi.errors.InputError
        As :func:`oncoqi.pet.segment.threshold_segment` (no seed nor region, nothing above the
        threshold, ...).
    """
    suv = suv_image_from_node(pet_node, dicom_headers)
    region = None
    if region_segment_id:
        ((_, _, region, _),) = segment_masks_on_pet(segmentation_node, pet_node, suv.image, [region_segment_id])
    seed_lps = None if seed_ras is None else tuple(float(c) for c in LPS_TO_RAS @ np.asarray(seed_ras, dtype=float))
    result = threshold_segment(
        suv.image, method, value, region=region, seed_lps=seed_lps, options=ThresholdOptions(background=background)
    )
    segmentation = segmentation_node.GetSegmentation()
    geometry = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    if not segmentation.GetConversionParameter(geometry):
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(pet_node)
    segment_id = add_segment_from_mask(
        segmentation_node, suv.image, result.mask.array, name or f"PET {result.method.value} {value:g}"
    )
    segment = segmentation.GetSegment(segment_id)  # the tags Slicer's DICOM SEG export reads
    segment.SetTag(ALGORITHM_TYPE_TAG, "SEMIAUTOMATIC")  # a user chose the seed and the threshold
    segment.SetTag(ALGORITHM_NAME_TAG, THRESHOLD_ALGORITHM_NAME)
    return segment_id, result
