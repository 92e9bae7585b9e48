"""Load one PET series: the rescaled volume plus the headers that SUV needs, in slice order.

This is a thin adapter over :func:`oncoqi.dicom.load_series` (slice ordering along the normal,
per-slice Rescale Slope/Intercept, geometry checks), which it must keep using: it adds only what
the PET family needs on top, i.e. the header of every slice (for the SUV factors and the RWVM
references) and the SOP Instance UID of every slice in ``metadata["sop_instance_uids"]`` (so
per-frame SUV factors reach the right slice). Should ``oncoqi.dicom`` one day return the headers
itself, this module can shrink to that call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from oncoqi.dicom import load_series, scan_series
from oncoqi.dicom.scan import SeriesInfo
from oncoqi.errors import InputError
from oncoqi.image import Image


@dataclass(frozen=True, eq=False)
class PETSeries:
    """A PET series ready for SUV.

    Attributes
    ----------
    image
        Pixel values after each slice's Rescale Slope/Intercept (Bq/ml for BQML), indexed
        ``[k, j, i]``; ``metadata`` also holds ``sop_instance_uids``, ``rescale_slopes`` and
        ``rescale_intercepts`` per slice ``k``.
    datasets
        The header of each slice ``k`` (no pixel data), same order as ``image`` slices.
    """

    image: Image
    datasets: tuple[pydicom.Dataset, ...]


def _pick_pet(path: Path, series_uid: str | None) -> SeriesInfo:
    found = scan_series(path)
    if series_uid:
        return found.find(series_uid)
    pets = [s for s in found.series if s.modality == "PT" and s.is_image]
    if not pets:
        listed = ", ".join(s.name for s in found.series) or "no DICOM series"
        raise InputError(f"{path}: no PET (Modality PT) image series found ({listed})")
    if len(pets) > 1:
        raise InputError(
            f"{path}: {len(pets)} PET series found; choose one by SeriesInstanceUID: " + "; ".join(s.name for s in pets)
        )
    return pets[0]


def load_pet_series(path: str | os.PathLike | SeriesInfo, series_uid: str | None = None) -> PETSeries:
    """Load the PET series in folder ``path`` (searched recursively), or an already scanned series.

    Parameters
    ----------
    path
        Folder holding the series (other series beside it are ignored), or the series'
        :class:`SeriesInfo` from :func:`oncoqi.dicom.scan_series` (loaded as is, no new scan).
    series_uid
        The SeriesInstanceUID to load when the folder holds several PET series (ignored with a
        :class:`SeriesInfo`).

    Returns
    -------
    PETSeries
        The rescaled volume and the per-slice headers.

    Raises
    ------
    InputError
        When no or several PET series are found, or a file is unreadable.
    GeometryError
        When the slices do not form one regular grid.
    """
    info = path if isinstance(path, SeriesInfo) else _pick_pet(Path(path), series_uid)
    image = load_series(info)
    headers = image.metadata["headers"]
    image.metadata["sop_instance_uids"] = [str(h.SOPInstanceUID) for h in headers]
    image.metadata["rescale_slopes"] = np.array([float(h.get("RescaleSlope", 1) or 1) for h in headers])
    image.metadata["rescale_intercepts"] = np.array([float(h.get("RescaleIntercept", 0) or 0) for h in headers])
    return PETSeries(image, headers)


def read_pet_headers(files: Sequence[str | os.PathLike]) -> tuple[pydicom.Dataset, ...]:
    """The headers (no pixel data) of PET files given one by one, e.g. by Slicer's DICOM database.

    Raises
    ------
    InputError
        When a file is not DICOM or cannot be read, naming the file.
    """
    headers = []
    for f in files:
        try:
            headers.append(pydicom.dcmread(f, stop_before_pixels=True))
        except InvalidDicomError as exc:
            raise InputError(f"{f}: not a DICOM file ({exc})") from exc
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{f}: unreadable DICOM header ({exc})") from exc
    return tuple(headers)
