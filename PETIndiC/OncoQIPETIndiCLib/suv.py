"""The PET volume node as an SUV image, stating where the SUV scale came from.

A PET loaded by Slicer's DICOM module holds rescaled values (Bq/ml for Units BQML); the indices
are defined on SUV. A volume whose voxel value units are ``{SUVbw}g/ml`` (as OncoQI's DICOM plugin
and Slicer's PET plugins mark the PET they load in SUV) is taken as it is, even though it too
names its DICOM files. Otherwise, in order of preference, the SUVbw factor comes from:

1. the PET DICOM headers: given by the caller, or read from the files that the node's
   ``DICOM.instanceUIDs`` attribute names in Slicer's DICOM database; the factor is computed by
   :mod:`oncoqi.pet.suv` (QIBA vendor-neutral rules, warnings kept);
2. the node attribute :data:`SUV_FACTOR_ATTRIBUTE` (the SUVbw factor per stored unit, as the
   shared DICOM plugin or a script records it);
3. nothing: the values are taken as SUV as they are, and the note says so (right for a volume
   already in SUV, e.g. saved from ``oncoqi pet suv --suv-volume``; wrong for raw Bq/ml).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import slicer
from OncoQISlicer.mrml import image_from_volume_node

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.enums import SUVType
from oncoqi.pet.series import read_pet_headers
from oncoqi.pet.suv import compute_suv_factors

if TYPE_CHECKING:  # the headers are pydicom datasets; this library imports only slicer, vtk, numpy, oncoqi
    from pydicom import Dataset

#: Node attribute holding the SUVbw factor (SUV per stored voxel unit).
SUV_FACTOR_ATTRIBUTE = "OncoQI.SUVbwFactor"
#: Attribute Slicer's DICOM module sets on volumes it loads: space-separated SOP Instance UIDs.
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"


@dataclass(frozen=True)
class SUVImage:
    """An SUV volume and the provenance of its scale.

    Attributes
    ----------
    image
        SUVbw values on the node's grid (LPS); ``metadata["units"]`` is ``{SUVbw}g/ml``.
    factor
        The factor applied (None when the values were taken as they are).
    source
        ``"units"`` (already SUVbw), ``"dicom"``, ``"attribute"`` or ``"as-is"``.
    notes
        What the user should know: SUV warnings, or that the values were taken as SUV.
    """

    image: Image
    factor: float | None
    source: str
    notes: tuple[str, ...]


def pet_dicom_files(volume_node: slicer.vtkMRMLScalarVolumeNode) -> list[str]:
    """The node's DICOM files through Slicer's DICOM database (empty when unknown or unavailable)."""
    uids = (volume_node.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        return []
    files = [database.fileForInstance(uid) for uid in uids]
    return [f for f in files if f and os.path.isfile(f)]


def suv_factor_from_headers(headers: Sequence[Dataset]) -> tuple[float, tuple[str, ...]]:
    """The SUVbw factor of a PET series and its warnings.

    Raises
    ------
    InputError
        When the factor cannot be computed (the missing tag is named), or it differs between
        frames (then a single volume node cannot be scaled by one number).
    """
    factors = compute_suv_factors(headers)
    factor = factors.factor(SUVType.BW)
    if factor is None:
        if factors.frames(SUVType.BW) is None:
            raise factors.unavailable(SUVType.BW)
        raise InputError(
            "the SUVbw factor differs between the PET frames: load the SUV volume written by "
            "'oncoqi pet suv --suv-volume' instead of the raw PET"
        )
    return float(factor), tuple(factors.warnings)


def suv_scale_of_node(
    volume_node: slicer.vtkMRMLScalarVolumeNode, dicom_headers: Sequence[Dataset] | None = None
) -> tuple[float | None, str, tuple[str, ...]]:
    """The SUVbw factor of the node's voxels, its source and notes (module docs), without the voxels.

    Parameters
    ----------
    volume_node
        The PET volume.
    dicom_headers
        Headers of the PET series the node was loaded from (e.g. ``load_source(folder).datasets``);
        by default they are looked up in Slicer's DICOM database.

    Returns
    -------
    tuple
        ``(factor or None, "units" | "dicom" | "attribute" | "as-is", notes)``.

    Raises
    ------
    InputError
        When the DICOM headers cannot give a factor, or the attribute is not a positive number.
    """
    units = volume_node.GetVoxelValueUnits()
    if units is not None and units.GetCodeValue() == SUVType.BW.ucum:
        return None, "units", ()
    if not dicom_headers:
        files = pet_dicom_files(volume_node)
        dicom_headers = read_pet_headers(files) if files else None
    if dicom_headers:
        factor, warnings = suv_factor_from_headers(dicom_headers)
        return factor, "dicom", tuple(f"SUV: {w}" for w in warnings)
    text = volume_node.GetAttribute(SUV_FACTOR_ATTRIBUTE)
    if text:
        try:
            factor = float(text)
        except ValueError as exc:
            raise InputError(
                f"'{volume_node.GetName()}': attribute {SUV_FACTOR_ATTRIBUTE}={text!r} is not a number"
            ) from exc
        if not np.isfinite(factor) or factor <= 0:
            raise InputError(f"'{volume_node.GetName()}': attribute {SUV_FACTOR_ATTRIBUTE}={text!r} is not positive")
        return factor, "attribute", ()
    note = (
        f"SUV: '{volume_node.GetName()}' has neither PET DICOM headers nor an {SUV_FACTOR_ATTRIBUTE} attribute: "
        "its values are taken as SUVbw as they are"
    )
    return None, "as-is", (note,)


def suv_image_from_node(
    volume_node: slicer.vtkMRMLScalarVolumeNode, dicom_headers: Sequence[Dataset] | None = None
) -> SUVImage:
    """The node's voxels in SUVbw, scaled by :func:`suv_scale_of_node` (same parameters and errors)."""
    factor, source, notes = suv_scale_of_node(volume_node, dicom_headers)
    image = image_from_volume_node(volume_node)
    values = image.array if factor is None else image.array.astype(np.float64) * factor
    suv = Image(values, image.spacing, image.origin, image.direction, {**image.metadata, "units": "{SUVbw}g/ml"})
    return SUVImage(suv, factor, source, notes)
