"""Load one DICOM series, or a volume file, into an :class:`~oncoqi.image.Image` with exact geometry.

Every command of OncoQI accepts either a DICOM folder or a volume file (NRRD, NIfTI, MetaImage);
:func:`read_image` is the single entry point that makes that true. DICOM slices are ordered along
the slice normal (see :mod:`oncoqi.dicom.geometry`), each slice gets its own RescaleSlope and
RescaleIntercept (PET series routinely have one slope per slice), and a series that is not one
regular grid is refused with every problem listed, unless the caller explicitly allows it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID

from oncoqi.dicom.geometry import SeriesGeometry, SliceHeader, analyse_slices
from oncoqi.dicom.scan import ScanResult, SeriesInfo, read_header, scan_series, series_from_files
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image

#: File endings read through SimpleITK rather than as DICOM.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
#: Largest volume (bytes in memory) a file may declare; larger ones are refused before they are read,
#: so that a small compressed file cannot fill the memory. ``ONCOQI_MAX_VOLUME_BYTES`` overrides it.
MAX_VOLUME_BYTES = 2 * 1024**3


def max_volume_bytes() -> int:
    """The limit in force: ``ONCOQI_MAX_VOLUME_BYTES`` when set (bytes), else :data:`MAX_VOLUME_BYTES`."""
    value = os.environ.get("ONCOQI_MAX_VOLUME_BYTES", "")
    return int(value) if value.strip().isdigit() else MAX_VOLUME_BYTES


def _check_declared_size(reader: sitk.ImageFileReader, path: Path) -> None:
    """Refuse a file whose header declares more voxels than the limit, before its data is inflated."""
    size = reader.GetSize()
    itemsize = np.dtype(sitk.GetArrayViewFromImage(sitk.Image([1] * len(size), reader.GetPixelID())).dtype).itemsize
    declared = int(np.prod(size, dtype=np.float64)) * itemsize * reader.GetNumberOfComponents()
    if declared > max_volume_bytes():
        raise InputError(
            f"{path}: declares a {' x '.join(map(str, size))} volume ({declared / 1e9:.1f} GB in memory), more "
            f"than the {max_volume_bytes() / 1e9:.1f} GB allowed (ONCOQI_MAX_VOLUME_BYTES); not read"
        )


def _floats(value: object, n: int, attr: str, path: Path) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {attr} is not numeric ({value!r})") from exc
    if len(out) != n:
        raise InputError(f"{path}: {attr} must have {n} values, has {len(out)}")
    return out


def slice_header(ds: pydicom.Dataset, path: Path) -> SliceHeader:
    """Extract the geometry attributes of one instance.

    Raises
    ------
    InputError
        Naming the file and the missing or malformed attribute.
    """
    for attr in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
        if attr not in ds or ds.get(attr) in (None, ""):
            raise InputError(f"{path}: missing {attr}; the file is not an image with plane geometry")
    thickness = ds.get("SliceThickness")
    tilt = ds.get("GantryDetectorTilt")
    return SliceHeader(
        path=path,
        position=_floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", path),  # type: ignore[arg-type]
        orientation=_floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", path),  # type: ignore[arg-type]
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        pixel_spacing=_floats(ds.PixelSpacing, 2, "PixelSpacing", path),  # type: ignore[arg-type]
        slice_thickness=float(thickness) if thickness not in (None, "") else None,
        gantry_tilt=float(tilt) if tilt not in (None, "") else None,
    )


def series_geometry(series: SeriesInfo) -> SeriesGeometry:
    """Read the headers of ``series`` and analyse its slice geometry (no pixel data read)."""
    if not series.is_image:
        raise InputError(f"{series.name}: not a stack of single-frame images (SOP class {series.sop_class_uid})")
    headers = [slice_header(read_header(f), f) for f in series.files]
    return analyse_slices(headers, series.name)


def decoder_problem(transfer_syntax: UID) -> str | None:
    """Why pixel data in ``transfer_syntax`` cannot be decoded here, or None when it can.

    The message names the plugin packages that would make it decodable, since that is what a
    user can do about it.
    """
    if not transfer_syntax.is_compressed:
        return None
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return f"no pixel data decoder exists for transfer syntax {transfer_syntax.name} ({transfer_syntax})"
    if decoder.is_available:
        return None
    plugins = "; ".join(decoder.missing_dependencies) or "a pixel data plugin"
    return (
        f"compressed transfer syntax {transfer_syntax.name} ({transfer_syntax}) cannot be decoded: "
        f"install one of: {plugins}"
    )


def _read_slice(path: Path) -> tuple[np.ndarray, float, float, pydicom.Dataset]:
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: unreadable DICOM file ({exc})") from exc
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if ts is not None:
        problem = decoder_problem(UID(ts))
        if problem:
            raise InputError(f"{path}: {problem}")
    if "PixelData" not in ds:
        raise InputError(f"{path}: no PixelData (the file is truncated or not an image)")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for broken pixel data
        raise InputError(f"{path}: pixel data cannot be read ({exc}); the file may be truncated") from exc
    if pixels.ndim != 2:
        raise InputError(f"{path}: expected one grey-level frame, pixel data has shape {pixels.shape}")
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels, slope, intercept, ds


def load_series(
    series: SeriesInfo | Sequence[str | os.PathLike],
    *,
    allow_irregular: bool = False,
) -> Image:
    """Load one single-frame image series into a volume.

    Parameters
    ----------
    series
        A :class:`SeriesInfo` from :func:`scan_series`, or the files of one series.
    allow_irregular
        Load even when slices are missing or unevenly spaced (the mean step is used); the
        problems are kept in ``metadata["geometry_problems"]``. Mixed orientations, sizes,
        duplicate positions and gantry tilt are always refused: no grid can hold them.

    Returns
    -------
    Image
        Voxel values after RescaleSlope/RescaleIntercept (int16 when that is exact, else
        float32), with ``metadata`` holding modality, UIDs, units, the sorted files, their
        headers (``headers``: pydicom datasets without pixel data, in slice order), and the
        geometry warnings.

    Raises
    ------
    GeometryError
        When the slices do not form one regular grid (``problems`` lists each defect).
    InputError
        For unreadable files, missing attributes or undecodable compressed pixel data.
    """
    if not isinstance(series, SeriesInfo):
        series = series_from_files(series)
    geometry = series_geometry(series)
    hard = [p for p in geometry.problems if "missing slice" not in p and "non-uniform" not in p]
    if geometry.problems and (hard or not allow_irregular):
        raise GeometryError(
            f"{series.name} is not one regular 3D grid: " + "; ".join(geometry.problems), geometry.problems
        )
    spacing = geometry.spacing
    if geometry.problems:  # allowed irregular spacing: use the mean step over the whole extent
        extent = np.array(geometry.slices[-1].position) - np.array(geometry.slices[0].position)
        spacing = (spacing[0], spacing[1], float(np.linalg.norm(extent)) / (len(geometry.slices) - 1))

    frames = [_read_slice(h.path) for h in geometry.slices]
    slopes = np.array([f[1] for f in frames])
    intercepts = np.array([f[2] for f in frames])
    stack = np.stack([f[0] for f in frames])
    exact_int = np.all(slopes == 1) and np.all(intercepts == np.round(intercepts))
    if exact_int:
        values = stack.astype(np.int32) + intercepts.astype(np.int32)[:, None, None]
        dtype = np.int16 if values.min() >= -32768 and values.max() <= 32767 else np.int32
        array = values.astype(dtype)
    else:
        array = (stack * slopes[:, None, None] + intercepts[:, None, None]).astype(np.float32)
    headers = tuple(f[3] for f in frames)
    for ds in headers:  # keep the headers (SUV, SEG references need them), not a second copy of the voxels
        del ds.PixelData
    first = headers[0]
    metadata = {
        "source": "dicom",
        "modality": series.modality,
        "series_uid": series.series_uid,
        "study_uid": series.study_uid,
        "patient_id": series.patient_id,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "series_description": series.description,
        "units": str(first.get("Units", "HU" if series.modality == "CT" else "")),
        "files": [str(h.path) for h in geometry.slices],
        "headers": headers,
        "geometry_warnings": list(geometry.warnings),
        "geometry_problems": list(geometry.problems),
    }
    return Image(array, spacing, geometry.origin, geometry.direction, metadata)


def _is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES)


def read_volume_file(path: str | os.PathLike) -> Image:
    """Read an NRRD, NIfTI or MetaImage file through SimpleITK.

    Raises
    ------
    InputError
        When the file is missing, unreadable or not a 3D image, or declares a volume larger than
        :func:`max_volume_bytes` (checked on its header, before the data is read).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        _check_declared_size(reader, path)
        img = reader.Execute()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise InputError(f"{path}: cannot be read as an image ({first})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar image"
        )
    if img.GetDimension() == 2:
        img = sitk.JoinSeries([img])
    if img.GetDimension() != 3:
        raise InputError(f"{path}: is {img.GetDimension()}D; expected a 3D volume")
    return Image.from_sitk(img, source="file", path=str(path))


def read_label_file(path: str | os.PathLike) -> Image:
    """Read a label map (NRRD, NIfTI, MetaImage) and refuse values that are not labels.

    A label is a whole number: NaN, infinities and fractions (a probability map or a resampled
    label given by mistake) would otherwise be counted as lesion voxels.

    Raises
    ------
    InputError
        As :func:`read_volume_file`, and when any voxel is NaN, infinite or not a whole number
        (the message gives how many).
    """
    image = read_volume_file(path)
    values = image.array
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        fractional = np.isfinite(values) & (np.mod(np.where(np.isfinite(values), values, 0), 1) != 0)
        if bad.any() or fractional.any():
            raise InputError(
                f"{path}: is not a label map: {int(bad.sum())} NaN or infinite and {int(fractional.sum())} "
                "non-integer voxel values (labels are whole numbers)"
            )
    return image


def read_image(path: str | os.PathLike, series_uid: str | None = None, *, allow_irregular: bool = False) -> Image:
    """Read a volume from a DICOM folder, a DICOM file's series, or a volume file.

    Parameters
    ----------
    path
        A folder holding DICOM (searched recursively), one DICOM file (its whole series is
        loaded from the same folder), or an NRRD/NIfTI/MetaImage file.
    series_uid
        Which series to load when the folder holds more than one image series.
    allow_irregular
        Passed to :func:`load_series`.

    Raises
    ------
    InputError
        When nothing loadable is found, or several image series are found and none was chosen
        (the message lists them).
    GeometryError
        When the chosen series is not a regular grid.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and _is_volume_file(path):
        return read_volume_file(path)
    root = path.parent if path.is_file() else path
    scan = scan_series(root)
    if path.is_file():
        header = read_header(path)
        series_uid = series_uid or str(header.get("SeriesInstanceUID", ""))
    if series_uid:
        return _load_naming_damaged(scan, scan.find(series_uid), allow_irregular)
    candidates = scan.image_series
    if not candidates:
        reasons = (
            f" ({len(scan.skipped)} files skipped, e.g. {scan.skipped[0][0].name}: {scan.skipped[0][1]})"
            if scan.skipped
            else ""
        )
        raise InputError(f"{root}: no DICOM image series found{reasons}")
    if len(candidates) > 1:
        listing = "; ".join(f"{s.name}, {s.number_of_instances} instances" for s in candidates)
        raise InputError(f"{root}: {len(candidates)} image series found, choose one by SeriesInstanceUID: {listing}")
    return _load_naming_damaged(scan, candidates[0], allow_irregular)


def _load_naming_damaged(scan: ScanResult, series: SeriesInfo, allow_irregular: bool) -> Image:
    """:func:`load_series`; a series that does not form a grid also names the damaged DICOM files
    found beside it, the likely missing slices."""
    try:
        return load_series(series, allow_irregular=allow_irregular)
    except GeometryError as exc:
        if not scan.damaged:
            raise
        raise GeometryError(f"{exc}{scan.damaged_note()}", exc.problems) from exc
