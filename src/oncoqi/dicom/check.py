"""Validate DICOM series before anyone computes on them.

``oncoqi dicom check`` is what a researcher runs on a fresh archive export: it finds every series
and reports each defect that would make a volume wrong (missing or duplicate slices, uneven
spacing, gantry tilt, mixed orientations or sizes), every file whose pixel data is truncated,
and every compressed transfer syntax that this installation cannot decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from oncoqi.dicom.load import decoder_problem, series_geometry
from oncoqi.dicom.scan import SeriesInfo
from oncoqi.errors import InputError


@dataclass
class SeriesCheck:
    """The outcome of checking one series."""

    series: SeriesInfo
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked_geometry: bool = True

    @property
    def ok(self) -> bool:
        """True when nothing prevents loading the series."""
        return not self.problems


def expected_pixel_bytes(rows: int, columns: int, samples: int, frames: int, bits: int) -> int:
    """Bytes native Pixel Data needs (before its even-length padding)."""
    return (rows * columns * samples * frames * bits + 7) // 8


def _expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 8) or 8)
    return expected_pixel_bytes(int(ds.Rows), int(ds.Columns), samples, frames, bits)


def file_problem(path: Path) -> str | None:
    """The reason one file's pixel data cannot be used, or None.

    Reads the whole file: a truncated file usually has an intact header, so only the pixel data
    length betrays it.
    """
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        return f"{path}: unreadable DICOM file ({exc})"
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if ts is not None:
        problem = decoder_problem(UID(ts))
        if problem:
            return f"{path}: {problem}"
        if UID(ts).is_compressed:
            return None
    if "PixelData" not in ds:
        return f"{path}: no PixelData (truncated or not an image)"
    expected = _expected_pixel_bytes(ds)
    actual = len(ds.PixelData)
    if actual < expected:
        return f"{path}: truncated pixel data ({actual} of {expected} bytes)"
    return None


def check_series(series: SeriesInfo, *, read_pixels: bool = True) -> SeriesCheck:
    """Check the geometry and, optionally, every file's pixel data of one series.

    Parameters
    ----------
    series
        The series to check.
    read_pixels
        Also read each file whole to find truncated or undecodable pixel data.

    Returns
    -------
    SeriesCheck
        Problems (each names the series or file) and warnings.
    """
    result = SeriesCheck(series)
    if not series.is_image:
        result.checked_geometry = False
        return result
    try:
        geometry = series_geometry(series)
    except InputError as exc:
        result.problems.append(str(exc))
        return result
    result.problems.extend(geometry.problems)
    result.warnings.extend(geometry.warnings)
    if read_pixels:
        result.problems.extend(p for p in map(file_problem, series.files) if p)
    return result
