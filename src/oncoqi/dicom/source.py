"""The source series of a segmentation or a report: headers and grid, read once.

A SEG is defined on the grid of its source series, and an SR cites that series' instances; the
report, lung and PET layers measure on it. :func:`load_source` reads the headers of that series
once (no pixel data), checks that it is one regular grid and keeps the headers in slice order,
which is the order of the ``k`` axis of every :class:`~oncoqi.image.Image` that
:func:`oncoqi.dicom.load_series` returns for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from oncoqi.dicom.geometry import analyse_slices
from oncoqi.dicom.load import load_series, slice_header
from oncoqi.dicom.scan import SeriesInfo, read_header, scan_series, series_from_files
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """The image series a segmentation is drawn on.

    Attributes
    ----------
    info
        The series as found on disk.
    datasets
        Header of each slice (no pixel data), in grid order: ``datasets[k]`` is slice ``k``.
    grid
        The geometry as an :class:`Image` whose array is a read-only broadcast of zeros (it
        costs no memory; use ``grid.with_array`` to put values on the grid).
    """

    info: SeriesInfo
    datasets: tuple[Dataset, ...]
    grid: Image

    @property
    def sop_instance_uids(self) -> list[str]:
        """SOP Instance UID of each slice, in grid order."""
        return [str(ds.SOPInstanceUID) for ds in self.datasets]

    def load_image(self) -> Image:
        """Read the pixel data (rescaled) as an Image on :attr:`grid`.

        ``metadata["sop_instance_uids"]`` lists the instance of each slice, which the PET SUV
        conversion needs for per-slice factors.

        Raises
        ------
        InputError, GeometryError
            As :func:`oncoqi.dicom.load_series`.
        """
        image = load_series(self.info)
        if not image.same_grid(self.grid):
            raise GeometryError(f"{self.info.name}: the pixel data loaded on another grid than its headers describe")
        image.metadata["sop_instance_uids"] = self.sop_instance_uids
        return image


def _pick_series(path: Path, series_uid: str | None) -> SeriesInfo:
    scan = scan_series(path.parent if path.is_file() else path)
    if path.is_file():
        series_uid = series_uid or str(read_header(path).get("SeriesInstanceUID", ""))
    if series_uid:
        return scan.find(series_uid)
    images = scan.image_series
    if len(images) != 1:
        found = "; ".join(s.name for s in images) or "none"
        raise InputError(
            f"{path}: the source must be one image series, found {len(images)} ({found}); "
            "choose one by SeriesInstanceUID"
        )
    return images[0]


def load_source(
    source: SourceSeries | SeriesInfo | str | os.PathLike | Sequence[str | os.PathLike],
    series_uid: str | None = None,
) -> SourceSeries:
    """Read the headers of the source series and check that it is one regular grid.

    Parameters
    ----------
    source
        A folder holding the series (searched recursively), one of its files, the list of its
        files, a :class:`SeriesInfo`, or an already loaded :class:`SourceSeries`.
    series_uid
        Which series of the folder to use when it holds several image series.

    Returns
    -------
    SourceSeries
        Headers in grid order and the grid.

    Raises
    ------
    InputError
        When the path does not exist, holds no or several image series (and none was chosen),
        the files given belong to several series, or the series is not made of single-frame
        images with plane geometry (what SEG frames can reference).
    GeometryError
        When the slices do not form one regular grid (missing slices, tilt, mixed sizes...).
    """
    if isinstance(source, SourceSeries):
        return source
    if isinstance(source, SeriesInfo):
        info = source
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such source series folder or file")
        info = _pick_series(path, series_uid)
    else:
        info = series_from_files(source)
    if not info.is_image:
        raise InputError(
            f"{info.name}: not a series of single-frame images with plane geometry (SOP class "
            f"{info.sop_class_uid}); a segmentation needs such a source series"
        )
    datasets = {}
    headers = []
    for f in info.files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{f}: unreadable DICOM header ({exc})") from exc
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet  # empty means the default repertoire; highdicom refuses ''
        datasets[Path(f)] = ds
        headers.append(slice_header(ds, Path(f)))
    geometry = analyse_slices(headers, info.name)
    if not geometry.ok:
        raise GeometryError(
            f"{info.name} is not one regular grid, a segmentation cannot be placed on it: "
            + "; ".join(geometry.problems),
            geometry.problems,
        )
    rows, cols = geometry.slices[0].rows, geometry.slices[0].columns
    zeros = np.broadcast_to(np.zeros((), dtype=np.uint8), (len(geometry.slices), rows, cols))
    grid = Image(zeros, geometry.spacing, geometry.origin, geometry.direction, {"series_uid": info.series_uid})
    ordered = tuple(datasets[h.path] for h in geometry.slices)
    return SourceSeries(info=info, datasets=ordered, grid=grid)
