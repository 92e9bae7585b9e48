"""Write label images on the grid of a CT or PET series as a binary DICOM Segmentation.

The SEG is built with highdicom (``highdicom.seg.Segmentation``): one BINARY frame per source
slice and segment, each frame referencing its source instance (Derivation Image Sequence) at the
source slice's own position and orientation, so the geometry is the source's, exactly, whatever
its orientation. Frames that hold no voxel of their segment are omitted unless asked otherwise.
Segments may overlap (they come from different label images); the SEG then says so
(Segments Overlap ``YES``) and stores each segment's frames separately.

Checks, each an :class:`~oncoqi.errors.OncoQIError` naming the file or segment:

* the source is one regular series of single-frame images (:func:`~oncoqi.dicom.source.load_source`);
* each label image lies on the source grid (:func:`~oncoqi.dicom.seg.grid.align_to_grid`);
* the metadata describes every label image and every label value present, and no segment is empty;
* every segment has its category and type codes, and an algorithm name unless MANUAL.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.valuerep import PersonName

from oncoqi import __version__
from oncoqi.atomic import save_dataset
from oncoqi.dicom.seg.codes import DEFAULT_ALGORITHM_FAMILY
from oncoqi.dicom.seg.grid import align_to_grid
from oncoqi.dicom.seg.metadata import SegmentationMetadata, SegmentDescription
from oncoqi.dicom.source import SourceSeries, load_source
from oncoqi.errors import InputError
from oncoqi.image import Image, require_labelled

#: Equipment written into the SEG (Enhanced General Equipment module).
MANUFACTURER = "OncoQI"
MANUFACTURER_MODEL_NAME = "oncoqi"
DEVICE_SERIAL_NUMBER = "1"


def _coded(code: Code) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning)


def segment_description(segment: SegmentDescription, number: int) -> hd.seg.SegmentDescription:
    """The highdicom Segment Sequence item of ``segment`` as segment ``number``.

    highdicom requires an Algorithm Identification (with version and family) for non-MANUAL
    segments; DICOM requires only Segment Algorithm Name. When no version is known the
    identification sequence is removed again, leaving the name alone, as dcmqi writes it.
    Modifiers, which highdicom's constructor does not take, are added to the code items.

    Parameters
    ----------
    segment
        Our description (with colour and tracking identifiers already defaulted).
    number
        Segment Number (1-based, consecutive).

    Returns
    -------
    highdicom.seg.SegmentDescription

    Raises
    ------
    InputError
        When an anatomic region modifier is given without an anatomic region.
    """
    identification = None
    if segment.algorithm_type != "MANUAL":
        family = segment.algorithm_family or DEFAULT_ALGORITHM_FAMILY[segment.algorithm_type]
        identification = hd.AlgorithmIdentificationSequence(
            name=str(segment.algorithm_name), family=family, version=segment.algorithm_version or "unknown"
        )
    desc = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment.label,
        segmented_property_category=segment.category,
        segmented_property_type=segment.type,
        algorithm_type=segment.algorithm_type,
        algorithm_identification=identification,
        tracking_id=segment.tracking_id,
        tracking_uid=segment.tracking_uid,
        anatomic_regions=[segment.anatomic_region] if segment.anatomic_region else None,
        display_color=hd.color.CIELabColor.from_rgb(*segment.color) if segment.color else None,
    )
    if identification is not None and not segment.algorithm_version:
        del desc.SegmentationAlgorithmIdentificationSequence
    if segment.description:
        desc.SegmentDescription = segment.description
    if segment.type_modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded(segment.type_modifier)
        ]
    if segment.anatomic_region_modifier is not None:
        if segment.anatomic_region is None:
            raise InputError(f"segment {segment.label!r}: an anatomic region modifier needs an anatomic region")
        desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [_coded(segment.anatomic_region_modifier)]
    return desc


def _label_name(image: Image, n: int) -> str:
    path = image.metadata.get("path")
    return f"labels[{n}] ({path})" if path else f"labels[{n}]"


@dataclass
class SegmentFrames:
    """The pixel data handed to highdicom: only the source slices that hold a segment voxel.

    Attributes
    ----------
    slices
        Indices ``k`` of those source slices, ascending.
    pixels
        ``[len(slices), rows, cols]`` label map of segment numbers when no voxel is in two
        segments (one byte per voxel), else ``[..., n_segments]`` booleans, one channel per
        segment.
    """

    slices: np.ndarray
    pixels: np.ndarray


def _integer_labels(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind == "b":
        return array.view(np.uint8)
    if array.dtype.kind == "f":
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{name}: label values must be integers, the image holds fractional values")
        array = array.astype(np.int64)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise InputError(f"{name}: label values must not be negative (found {int(array.min())})")
    return array


def segment_frames(
    labels: Sequence[Image], source: SourceSeries, metadata: SegmentationMetadata, *, all_slices: bool = False
) -> SegmentFrames:
    """Check the label images against the metadata and encode them as SEG frames.

    Work is done on the slices that hold labelled voxels only (a lesion covers a few dozen of
    hundreds of slices), which is what keeps a 512x512x200 export well under a second.

    Parameters
    ----------
    labels
        Label images, indexed by the segments' ``labels_file``.
    source
        The source series; every label image must lie on its grid.
    metadata
        Segment ``n`` is ``metadata.segments[n - 1]``.
    all_slices
        Keep every source slice (for a SEG that keeps empty frames).

    Raises
    ------
    InputError
        When the number of label images does not match the metadata, a label image has no
        labelled voxel, holds values that no segment describes, non-integer or negative values, or a
        segment is empty.
    GeometryError
        When a label image is not on the source grid.
    """
    if len(labels) != metadata.number_of_label_files:
        raise InputError(
            f"{len(labels)} label image(s) given but the segment metadata describes "
            f"{metadata.number_of_label_files} (highest labels_file + 1)"
        )
    names = [_label_name(label, n) for n, label in enumerate(labels)]
    for label, name in zip(labels, names, strict=True):
        require_labelled(label, name, "label file" if label.metadata.get("path") else "label image")
    arrays = [align_to_grid(label, source.grid, name) for label, name in zip(labels, names, strict=True)]
    occupied = np.zeros(source.grid.array.shape[0], dtype=bool)
    for array in arrays:
        occupied |= array.any(axis=(1, 2))
    slices = np.arange(occupied.size) if all_slices else np.flatnonzero(occupied)
    subs = [_integer_labels(array[slices], name) for array, name in zip(arrays, names, strict=True)]
    numbers = np.uint8 if len(metadata.segments) < 256 else np.uint16
    mapped = []
    for n, (sub, name) in enumerate(zip(subs, names, strict=True)):
        values, counts = np.unique(sub[sub != 0], return_counts=True)
        present = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
        described = {s.label_value: number for number, s in enumerate(metadata.segments, start=1) if s.labels_file == n}
        if set(present) - set(described):
            raise InputError(
                f"{name}: voxel value(s) {sorted(set(present) - set(described))} are not described by any segment "
                f"(described: {sorted(described)}); add them to the metadata or clear them"
            )
        for value, number in described.items():
            if value not in present:
                raise InputError(
                    f"segment {metadata.segments[number - 1].label!r} is empty: no voxel of {name} has value {value}"
                )
        lut = np.zeros(max(described) + 1, dtype=numbers)
        for value, number in described.items():
            lut[value] = number
        mapped.append(lut[sub])
    if len(mapped) == 1:
        return SegmentFrames(slices, mapped[0])
    in_segments = np.zeros(mapped[0].shape, dtype=np.uint8)
    for m in mapped:
        in_segments += m != 0
    if in_segments.max() <= 1:  # disjoint: one label map holds them all
        return SegmentFrames(slices, np.sum(mapped, axis=0, dtype=numbers))
    channels = [
        subs[s.labels_file] == s.label_value for s in metadata.segments
    ]  # overlapping: one boolean channel per segment
    return SegmentFrames(slices, np.stack(channels, axis=-1))


def build_segmentation(
    labels: Image | Sequence[Image],
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    metadata: SegmentationMetadata,
    *,
    omit_empty_frames: bool = True,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    workers: int = 0,
) -> hd.seg.Segmentation:
    """Build the SEG dataset (not written).

    Parameters
    ----------
    labels
        Label image(s) on the source grid; ``metadata`` says which value of which image is which
        segment (``labels_file`` indexes this list).
    source
        The source series (see :func:`~oncoqi.dicom.source.load_source` for the forms).
    metadata
        Segment descriptions and document attributes. Missing colours, tracking ids and UIDs
        are filled in (:meth:`SegmentationMetadata.with_defaults`).
    omit_empty_frames
        Leave out frames without a voxel of their segment (smaller files; dcmqi's ``--skip``).
    series_instance_uid, sop_instance_uid
        UIDs to use; generated when None.
    workers
        Processes for frame encoding (highdicom's ``workers``); 0 encodes in this process.

    Returns
    -------
    highdicom.seg.Segmentation
        Segment ``n`` is ``metadata.segments[n - 1]``.

    Raises
    ------
    InputError, GeometryError
        See the module documentation.
    """
    source = load_source(source)
    labels = [labels] if isinstance(labels, Image) else list(labels)
    metadata = metadata.with_defaults()
    frames = segment_frames(labels, source, metadata, all_slices=not omit_empty_frames)
    descriptions = [segment_description(s, n) for n, s in enumerate(metadata.segments, start=1)]
    try:
        seg = hd.seg.Segmentation(
            source_images=[source.datasets[k] for k in frames.slices],
            pixel_array=frames.pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=metadata.series_number,
            sop_instance_uid=sop_instance_uid or hd.UID(),
            instance_number=metadata.instance_number,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MANUFACTURER_MODEL_NAME,
            software_versions=__version__,
            device_serial_number=DEVICE_SERIAL_NUMBER,
            content_label=metadata.content_label,
            content_description=metadata.content_description,
            content_creator_name=PersonName(metadata.content_creator) if metadata.content_creator else None,
            omit_empty_frames=omit_empty_frames,
            series_description=metadata.series_description,
            workers=workers,
        )
    except (ValueError, TypeError, AttributeError) as exc:  # highdicom's checks of the source headers
        raise InputError(f"{source.info.name}: cannot build a SEG on this series ({exc})") from exc
    _reference_every_source_instance(seg, source)
    _add_document_attributes(seg, metadata)
    return seg


def _reference_every_source_instance(seg: Dataset, source: SourceSeries) -> None:
    """List every source instance in Source Image Sequence and Referenced Series Sequence.

    highdicom receives only the slices that hold frames (the pixel work then scales with the
    lesion, not the series) and references those; the slices without a frame were segmented
    too, so they are added here, in slice order. (highdicom's ``further_source_images`` would
    do the same but checks each instance's IOD, about 2 ms an instance.)
    """
    refs = []
    for ds in source.datasets:
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        refs.append(ref)
    seg.SourceImageSequence = refs
    series = Dataset()
    series.SeriesInstanceUID = source.info.series_uid
    series.ReferencedInstanceSequence = [copy.copy(ref) for ref in refs]
    seg.ReferencedSeriesSequence = [series]


def _add_document_attributes(seg: Dataset, metadata: SegmentationMetadata) -> None:
    """Attributes highdicom does not take: body part, clinical trial, an empty creator name."""
    if "ContentCreatorName" not in seg:
        seg.ContentCreatorName = ""  # Type 2 in the Content Identification Macro
    if metadata.body_part_examined:
        seg.BodyPartExamined = metadata.body_part_examined.upper()[:16]
    if metadata.clinical_trial_series_id or metadata.clinical_trial_coordinating_center:
        seg.ClinicalTrialCoordinatingCenterName = metadata.clinical_trial_coordinating_center or ""
        if metadata.clinical_trial_series_id:
            seg.ClinicalTrialSeriesID = metadata.clinical_trial_series_id
    if metadata.clinical_trial_time_point_id:
        seg.ClinicalTrialTimePointID = metadata.clinical_trial_time_point_id


def write_segmentation(
    path: str | os.PathLike,
    labels: Image | Sequence[Image],
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    metadata: SegmentationMetadata,
    *,
    omit_empty_frames: bool = True,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    workers: int = 0,
) -> hd.seg.Segmentation:
    """Build the SEG with :func:`build_segmentation` (same parameters) and save it at ``path``.

    Returns
    -------
    highdicom.seg.Segmentation
        The dataset written (the SR writer references it).

    Raises
    ------
    InputError, GeometryError
        As :func:`build_segmentation`; nothing is written then.
    """
    seg = build_segmentation(
        labels,
        source,
        metadata,
        omit_empty_frames=omit_empty_frames,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
        workers=workers,
    )
    save_dataset(seg, path)
    return seg
