"""The statistics OncoQI computes for each segment of a report, in HU for CT and SUVbw for PET.

As QuantitativeReporting's segment statistics give them: the volume (voxel count x voxel volume,
method "sum of segmented voxels"), and over the segment's voxels of the source image the mean,
minimum, maximum and population standard deviation, in HU for CT and in SUVbw for PET (converted
with :mod:`oncoqi.pet.suv`), plus SUVpeak (:func:`oncoqi.pet.peak.suv_peak`, 1 ml sphere) for PET.

They live here, above the PET family, and not in :mod:`oncoqi.dicom.sr`: the DICOM layer only
encodes, and takes them as a :class:`SourceStatistics` (see
:func:`oncoqi.dicom.sr.build_measurement_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from oncoqi import __version__
from oncoqi.dicom.source import SourceSeries
from oncoqi.dicom.sr.codes import DERIVATIONS
from oncoqi.dicom.sr.measurements import Algorithm, Measurement
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.enums import SUVType
from oncoqi.pet.peak import suv_peak
from oncoqi.pet.suv import apply_suv, compute_suv_factors

#: The algorithm credited with the measurements OncoQI computes.
STATISTICS_ALGORITHM = Algorithm("OncoQI segment statistics", __version__)


def source_values(source: SourceSeries) -> tuple[Image | None, list[str]]:
    """The source's voxel values in the quantity that statistics report.

    CT: Hounsfield units as stored. PET: SUVbw, converted with the series' own SUV factors.
    Anything else (or a PET whose SUV cannot be computed): None, and the reason.

    Returns
    -------
    image, warnings
        The value image on the source grid (or None) and why statistics are limited.
    """
    modality = source.info.modality
    if modality not in ("CT", "PT"):
        return None, [f"no standard quantity for {modality or 'unknown'} voxel values: only volumes are computed"]
    image = source.load_image()
    if modality == "CT":
        return image, []
    try:
        factors = compute_suv_factors(source.datasets)
        suv = apply_suv(image, factors, SUVType.BW)
    except InputError as exc:
        return None, [f"SUVbw statistics left out: {exc}"]
    return suv, list(factors.warnings)


def _quantity_prefix(values: Image) -> str | None:
    if values.metadata.get("suv_type") == SUVType.BW.key:
        return "suvbw"
    if values.metadata.get("modality") == "CT":
        return "ct"
    return None


def segment_statistics(mask: np.ndarray, grid: Image, values: Image | None) -> tuple[list[Measurement], list[str]]:
    """Volume and intensity statistics of one segment.

    Parameters
    ----------
    mask
        Boolean segment ``[k, j, i]`` on ``grid``.
    grid
        The source grid (for the voxel volume).
    values
        From :func:`source_values`: HU (CT) or SUVbw (PET) on the same grid, or None for the
        volume alone.

    Returns
    -------
    measurements, warnings
        Volume; mean/min/max/std when ``values`` is given; SUVbw peak for PET unless no sphere
        centre of the segment lies far enough inside the image (then a warning).

    Raises
    ------
    InputError
        When the mask is empty or ``values`` is on another grid.
    """
    count = int(np.count_nonzero(mask))
    if count == 0:
        raise InputError("an empty segment has no statistics")
    out = [Measurement.named("volume", count * grid.voxel_volume_ml)]
    warnings: list[str] = []
    if values is None:
        return out, warnings
    if not values.same_grid(grid):
        raise InputError("the value image is not on the segmentation's grid")
    prefix = _quantity_prefix(values)
    if prefix is None:
        return out, [f"voxel values in {values.metadata.get('units') or 'unknown units'}: only volumes are computed"]
    voxels = values.array[mask].astype(np.float64)
    stats = {"mean": voxels.mean(), "min": voxels.min(), "max": voxels.max(), "std": voxels.std()}
    out += [Measurement.named(f"{prefix}_{key}", float(stats[key])) for key in DERIVATIONS]
    if prefix == "suvbw":
        peak = suv_peak(values.array, mask, values.spacing)
        if peak is None:
            warnings.append("SUVpeak left out: no voxel of the segment has its 1 ml sphere inside the image")
        else:
            out.append(Measurement.named("suvbw_peak", peak[0]))
    return out, warnings


@dataclass
class SourceStatistics:
    """The statistics of any segment on one source series, as the SR writer asks for them.

    Attributes
    ----------
    grid
        The source grid.
    values
        HU or SUVbw on that grid (:func:`source_values`), or None for volumes alone.
    warnings
        Why the statistics of every segment are limited (e.g. a PET without SUV information).
    algorithm
        Credited with the computed measurements.
    """

    grid: Image
    values: Image | None
    warnings: list[str] = field(default_factory=list)
    algorithm: Algorithm = STATISTICS_ALGORITHM

    @classmethod
    def of(cls, source: SourceSeries) -> SourceStatistics:
        """Read the source's values once, for all its segments."""
        values, warnings = source_values(source)
        return cls(source.grid, values, warnings)

    def __call__(self, mask: np.ndarray) -> tuple[list[Measurement], list[str]]:
        """:func:`segment_statistics` of one segment ``mask`` on the source grid."""
        return segment_statistics(mask, self.grid, self.values)
