"""Read a DICOM Segmentation (ours or any other tool's) back into label images and metadata.

Frames are decoded and placed by highdicom (``Segmentation.get_volume``), which handles what
writers vary in: binary frames that are not byte-aligned (dcmqi), omitted empty frames,
overlapping segments, FRACTIONAL segmentations and the label-map SEG of Supplement 243.
Segments are then packed into as few label images as possible: a segment goes into the first
image where it overlaps nothing, with its segment number as voxel value, so a SEG whose segments
do not overlap reads as one label map, and overlapping ones read as several (what dcmqi's
``segimage2itkimage --mergeSegments`` does). :class:`SegmentationData` also gives each segment's
mask directly.

Where the voxels go
-------------------
* With ``source`` (the referenced series, or any image on its grid) the labels are on that grid,
  empty slices included, so that they line up voxel for voxel with the loaded source image.
* Without it, the grid is the one the SEG's own frames span (highdicom's volume geometry), with
  ``k`` along the slice normal as :func:`oncoqi.dicom.load_series` orders it; slices the writer
  omitted at either end are then absent.
* SEGs without patient geometry (a projection radiograph's) give one 2D frame per segment, with
  ``metadata["coordinate_system"]`` None; slide-microscopy SEGs give the total pixel matrix in
  slide coordinates (``"SLIDE"``).

FRACTIONAL segments are binarised at ``fractional_threshold`` (0.5 of the maximum by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from oncoqi.dicom.scan import SeriesInfo
from oncoqi.dicom.seg.grid import align_to_grid
from oncoqi.dicom.seg.metadata import SegmentationMetadata, SegmentDescription
from oncoqi.dicom.source import SourceSeries, load_source
from oncoqi.errors import InputError
from oncoqi.image import Image

#: SOP classes read as segmentations: Segmentation Storage and Label Map Segmentation Storage.
SEGMENTATION_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}


@dataclass
class SegmentationData:
    """A SEG read back: label images on one grid plus what each segment is.

    Attributes
    ----------
    metadata
        Document attributes and segment descriptions; each segment's ``labels_file`` and
        ``label_value`` say where it is in :attr:`labels`, and its ``segment_number`` is the
        SEG's.
    labels
        Label images (uint8, or uint16 beyond 255 segments), all on the same grid; voxel value
        = segment number.
    sop_instance_uid, series_instance_uid, study_instance_uid, sop_class_uid
        Identification of the SEG.
    frame_of_reference_uid
        Its Frame of Reference (None for SEGs without one).
    referenced_series_uids
        Series Instance UIDs the SEG references (its source series).
    segmentation_type
        ``BINARY``, ``FRACTIONAL`` or ``LABELMAP``.
    coordinate_system
        ``"PATIENT"``, ``"SLIDE"`` or None.
    number_of_frames
        Frames stored in the file.
    """

    metadata: SegmentationMetadata
    labels: list[Image]
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str
    frame_of_reference_uid: str | None
    referenced_series_uids: list[str]
    segmentation_type: str
    coordinate_system: str | None
    number_of_frames: int
    warnings: list[str] = field(default_factory=list)

    def segment(self, number: int) -> SegmentDescription:
        """The description of segment ``number``.

        Raises
        ------
        InputError
            When the SEG has no such segment.
        """
        for seg in self.metadata.segments:
            if seg.segment_number == number:
                return seg
        numbers = [s.segment_number for s in self.metadata.segments]
        raise InputError(f"segmentation {self.sop_instance_uid} has no segment {number} (it has {numbers})")

    def mask(self, number: int) -> Image:
        """Segment ``number`` as a boolean image on the labels' grid."""
        seg = self.segment(number)
        label = self.labels[seg.labels_file]
        return label.with_array(label.array == seg.label_value, segment_number=number, label=seg.label)

    def voxel_counts(self) -> dict[int, int]:
        """Number of voxels of each segment, by segment number."""
        return {
            int(s.segment_number): int(np.count_nonzero(self.labels[s.labels_file].array == s.label_value))
            for s in self.metadata.segments
            if s.segment_number is not None
        }

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: identification, grid, and each segment with its size."""
        grid = self.labels[0]
        counts = self.voxel_counts()
        segments = []
        for seg in self.metadata.segments:
            entry = seg.to_json()
            n = counts[int(seg.segment_number)]  # type: ignore[arg-type]
            entry["voxels"] = n
            if self.coordinate_system == "PATIENT":
                entry["volume_ml"] = n * grid.voxel_volume_ml
            segments.append(entry)
        meta = self.metadata.to_json()
        meta["segments"] = segments
        return {
            "kind": "SEG",
            "sop_class": SEGMENTATION_SOP_CLASSES.get(self.sop_class_uid, self.sop_class_uid),
            "sop_instance_uid": self.sop_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "referenced_series_uids": self.referenced_series_uids,
            "segmentation_type": self.segmentation_type,
            "coordinate_system": self.coordinate_system,
            "number_of_frames": self.number_of_frames,
            "grid": {
                "size": list(grid.size),
                "spacing": list(grid.spacing),
                "origin": list(grid.origin),
                "direction": grid.direction.tolist(),
            },
            "warnings": self.warnings,
            "metadata": meta,
        }


def read_dataset(path: str | os.PathLike, what: str) -> Dataset:
    """Read a DICOM file completely, turning pydicom's failures into :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable DICOM {what} ({exc})") from exc


def image_from_volume(volume: hd.Volume, **metadata: Any) -> Image:
    """Convert a highdicom Volume (axes slice, row, column) to an Image (k, j, i).

    The ``k`` axis is turned to run along row x column direction (as
    :func:`oncoqi.dicom.load_series` orders slices) when the volume runs the other way.
    """
    affine = volume.affine
    columns = [affine[:3, 2], affine[:3, 1], affine[:3, 0]]  # i = column, j = row, k = slice
    spacing = [float(np.linalg.norm(c)) for c in columns]
    direction = np.stack([c / s for c, s in zip(columns, spacing, strict=True)], axis=1)
    array = volume.array
    if array.ndim == 4:
        array = array[..., 0]
    origin = affine[:3, 3]
    if np.linalg.det(direction) < 0:
        origin = origin + direction[:, 2] * spacing[2] * (array.shape[0] - 1)
        direction[:, 2] *= -1
        array = array[::-1]
    return Image(np.ascontiguousarray(array), spacing, origin, direction, dict(metadata))


def _grid_of(source: SourceSeries | Image | SeriesInfo | str | os.PathLike | None) -> Image | None:
    if source is None:
        return None
    if isinstance(source, Image):
        return source
    return load_source(source).grid


def _segment_volumes(seg: hd.seg.Segmentation, numbers: list[int], threshold: float, name: str) -> list[Image]:
    """Each segment as a boolean Image, from the frames' patient or slide positions."""
    geometry = seg.get_volume_geometry()
    if geometry is None:
        raise InputError(f"{name}: the frames of this segmentation do not form a regular volume")
    reference = image_from_volume(
        hd.Volume(np.zeros(geometry.spatial_shape, dtype=np.uint8), geometry.affine, geometry.coordinate_system)
    )
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    out = []
    for number in numbers:
        volume = seg.get_volume(segment_numbers=[number], rescale_fractional=True)
        image = image_from_volume(volume)
        mask = image.array >= threshold if fractional else image.array != 0
        out.append(reference.with_array(align_to_grid(image.with_array(mask), reference, f"{name} segment {number}")))
    return out


def _single_frames(ds: Dataset, numbers: list[int], threshold: float, name: str) -> list[Image]:
    """Segments of a SEG without patient or slide geometry: one frame per segment."""
    pixels = ds.pixel_array
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    measures = shared.get("PixelMeasuresSequence")
    row, col = (float(v) for v in measures[0].PixelSpacing) if measures else (1.0, 1.0)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    fractional = ds.get("SegmentationType") == "FRACTIONAL"
    scale = float(ds.get("MaximumFractionalValue", 1) or 1) if fractional else 1.0
    out = []
    for number in numbers:
        mask = np.zeros(pixels.shape[1:], dtype=bool)
        for f, frame in enumerate(pixels):
            ident = (per_frame[f] if f < len(per_frame) else shared).get("SegmentIdentificationSequence")
            frame_number = int(ident[0].ReferencedSegmentNumber) if ident else None
            if ds.get("SegmentationType") == "LABELMAP":
                mask |= frame == number
            elif frame_number == number:
                mask |= (frame / scale >= threshold) if fractional else frame != 0
        out.append(Image(mask[None], (col, row, 1.0)))
    if not out:
        raise InputError(f"{name}: no segment frames")
    return out


def _seg_dataset(path: str | os.PathLike | Dataset) -> tuple[Dataset, str]:
    """The SEG's dataset and its name for messages; anything but a DICOM Segmentation is refused here."""
    if isinstance(path, Dataset):
        ds, name = path, f"SEG {path.get('SOPInstanceUID', '')}"
    else:
        ds, name = read_dataset(path, "segmentation"), str(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in SEGMENTATION_SOP_CLASSES:
        raise InputError(f"{name}: SOP class {sop_class or 'absent'} is not a DICOM Segmentation")
    return ds, name


def _decoded(ds: Dataset, name: str, copy: bool) -> hd.seg.Segmentation:
    """highdicom's view of the SEG (``copy``: never alter a caller's dataset); what it cannot read is an InputError."""
    try:
        return hd.seg.Segmentation.from_dataset(ds, copy=copy)
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise InputError(f"{name}: highdicom cannot interpret this segmentation ({exc})") from exc


def _masks_on_grid(
    ds: Dataset,
    seg: hd.seg.Segmentation,
    coordinate_system: str | None,
    numbers: list[int],
    source: SourceSeries | Image | SeriesInfo | str | os.PathLike | None,
    threshold: float,
    name: str,
) -> list[Image]:
    """One mask per segment, on the source grid when one is given (frames without a coordinate system as they are)."""
    if coordinate_system is None:
        return _single_frames(ds, numbers, threshold, name)
    masks = _segment_volumes(seg, numbers, threshold, name)
    grid = _grid_of(source)
    if grid is not None:
        if coordinate_system != "PATIENT":
            raise InputError(f"{name}: a {coordinate_system} segmentation cannot be put on a patient grid")
        masks = [
            grid.with_array(align_to_grid(m, grid, f"{name} segment {n}").astype(bool))
            for m, n in zip(masks, numbers, strict=True)
        ]
    return masks


def _label_images(
    masks: list[Image],
    numbers: list[int],
    metadata: SegmentationMetadata,
    coordinate_system: str | None,
    sop_instance_uid: str,
) -> list[Image]:
    """The masks packed into label images, each segment description told which file and value hold it."""
    labels, files = pack_labels(masks, numbers)
    for desc, n in zip(metadata.segments, files, strict=True):
        desc.labels_file = n
        desc.label_value = int(desc.segment_number)  # type: ignore[arg-type]
    for image in labels:
        image.metadata.update(coordinate_system=coordinate_system, segmentation=sop_instance_uid)
    return labels


def pack_labels(masks: list[Image], numbers: list[int]) -> tuple[list[Image], list[int]]:
    """Pack boolean masks (one grid) into the fewest label images without overlap.

    Returns
    -------
    labels, files
        The label images (voxel value = segment number) and, per mask, the index of the label
        image it went into.
    """
    dtype = np.uint8 if max(numbers, default=0) < 256 else np.uint16
    layers: list[np.ndarray] = []
    files = []
    for mask, number in zip(masks, numbers, strict=True):
        free = [n for n, layer in enumerate(layers) if not layer[mask.array].any()]
        if not free:
            layers.append(np.zeros(mask.array.shape, dtype=dtype))
            free = [len(layers) - 1]
        layers[free[0]][mask.array] = number
        files.append(free[0])
    grid = masks[0]
    return [grid.with_array(layer) for layer in layers], files


def read_segmentation(
    path: str | os.PathLike | Dataset,
    source: SourceSeries | Image | SeriesInfo | str | os.PathLike | None = None,
    *,
    fractional_threshold: float = 0.5,
) -> SegmentationData:
    """Read a SEG file into label images and segment metadata.

    Parameters
    ----------
    path
        The SEG file (or its dataset, already read).
    source
        The grid to put the labels on: the source series (folder, :class:`SeriesInfo` or
        :class:`~oncoqi.dicom.source.SourceSeries`) or an Image on its grid. Without it, the
        grid spanned by the SEG's frames is used.
    fractional_threshold
        Fraction of the maximum above which a FRACTIONAL voxel belongs to the segment.

    Returns
    -------
    SegmentationData
        Labels and metadata (see the module documentation for the grid).

    Raises
    ------
    InputError
        When the file is not a SEG, cannot be decoded, or its segment descriptions are unusable.
    GeometryError
        When ``source`` is given and a frame does not lie on its grid.
    """
    given = isinstance(path, Dataset)
    ds, name = _seg_dataset(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    metadata = SegmentationMetadata.from_dataset(ds, name)
    numbers = [int(s.segment_number) for s in metadata.segments]  # type: ignore[arg-type]
    seg = _decoded(ds, name, copy=given)
    coordinate_system = seg.coordinate_system.value if seg.coordinate_system is not None else None
    warnings = []
    masks = _masks_on_grid(ds, seg, coordinate_system, numbers, source, fractional_threshold, name)
    if seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL:
        warnings.append(f"FRACTIONAL segments binarised at {fractional_threshold:g} of the maximum")
    labels = _label_images(masks, numbers, metadata, coordinate_system, str(ds.SOPInstanceUID))
    referenced = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]
    return SegmentationData(
        metadata=metadata,
        labels=labels,
        sop_instance_uid=str(ds.SOPInstanceUID),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        sop_class_uid=sop_class,
        frame_of_reference_uid=str(ds.FrameOfReferenceUID) if "FrameOfReferenceUID" in ds else None,
        referenced_series_uids=referenced,
        segmentation_type=seg.segmentation_type.value,
        coordinate_system=coordinate_system,
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        warnings=warnings,
    )
