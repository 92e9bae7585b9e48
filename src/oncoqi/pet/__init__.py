"""PET quantification: SUV normalisation from DICOM headers and PET-IndiC segment indices.

Building blocks
---------------
:func:`compute_suv_factors` -> :class:`SUVFactors`
    SUVbw, SUL (Janmahasatian lean body mass) and SUVbsa (Du Bois) factors of every frame,
    following the QIBA vendor-neutral rules (:mod:`oncoqi.pet.suv`).
:func:`apply_suv`
    The SUV volume of a rescaled PET volume.
:func:`build_rwvm` / :func:`write_rwvm` / :func:`apply_rwvm`
    The factors as a DICOM Real World Value Mapping object, and its application
    (:mod:`oncoqi.pet.rwvm`).
:func:`compute_indices` -> :class:`PETIndices`
    Mean, SD, min, max, RMS, MTV, quartiles, upper adjacent value, TLG, glycolysis and
    distribution per intensity quarter, SAM and its background, SUVpeak (:mod:`oncoqi.pet.indices`).
:func:`load_pet_series` -> :class:`PETSeries`
    The rescaled PET volume with the per-slice headers.
:func:`threshold_segment` -> :class:`ThresholdResult`
    Lesion segmentation by a fixed SUV, a percentage of the local SUVmax or a background-adapted
    threshold, in a region or grown from a seed (:mod:`oncoqi.pet.segment`).
:func:`transfer_labels` / :func:`coverage_fraction`
    A CT tumour label on the PET grid, nearest neighbour or volume-preserving.
:func:`ct_lesions_on_pet` -> :class:`CTLesionsOnPET`
    PET indices of lesions drawn on the CT, and the PET-thresholded lesion around the primary
    (:mod:`oncoqi.pet.lesions`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Where each public name lives. The package imports a sub-module only when one of its names is
#: first used, so ``import oncoqi.pet.suv`` needs only numpy, pydicom and SimpleITK (what Slicer
#: bundles): the DICOM plugin reads SUV factors in the DICOM browser before anything is installed.
_LOCATIONS = {
    "DecayCorrection": "enums",
    "PixelUnits": "enums",
    "SUVType": "enums",
    "PETIndices": "indices",
    "compute_indices": "indices",
    "CTLesionsOnPET": "lesions",
    "ct_lesions_on_pet": "lesions",
    "Segment": "labels",
    "read_segments": "labels",
    "PEAK_RADIUS_MM": "peak",
    "sphere_kernel": "peak",
    "suv_peak": "peak",
    "RWVM_SOP_CLASS_UID": "rwvm",
    "RWVMOptions": "rwvm",
    "apply_rwvm": "rwvm",
    "build_rwvm": "rwvm",
    "read_rwvm_mappings": "rwvm",
    "write_rwvm": "rwvm",
    "ThresholdMethod": "segment",
    "ThresholdOptions": "segment",
    "ThresholdResult": "segment",
    "coverage_fraction": "segment",
    "threshold_segment": "segment",
    "transfer_labels": "segment",
    "PETSeries": "series",
    "load_pet_series": "series",
    "SUVFactors": "suv",
    "apply_suv": "suv",
    "body_surface_area_dubois": "suv",
    "compute_suv_factors": "suv",
    "lean_body_mass_janmahasatian": "suv",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'oncoqi.pet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"oncoqi.pet.{_LOCATIONS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PEAK_RADIUS_MM",
    "RWVM_SOP_CLASS_UID",
    "CTLesionsOnPET",
    "DecayCorrection",
    "PETIndices",
    "PETSeries",
    "PixelUnits",
    "SUVFactors",
    "SUVType",
    "RWVMOptions",
    "Segment",
    "ThresholdMethod",
    "ThresholdOptions",
    "ThresholdResult",
    "apply_rwvm",
    "apply_suv",
    "body_surface_area_dubois",
    "build_rwvm",
    "compute_indices",
    "compute_suv_factors",
    "ct_lesions_on_pet",
    "coverage_fraction",
    "lean_body_mass_janmahasatian",
    "load_pet_series",
    "read_rwvm_mappings",
    "read_segments",
    "sphere_kernel",
    "suv_peak",
    "threshold_segment",
    "transfer_labels",
    "write_rwvm",
]
