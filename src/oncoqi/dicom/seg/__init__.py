"""DICOM Segmentation (SEG): write label images on a CT/PET series' grid, read any SEG back.

Main entry points
-----------------
:func:`write_segmentation` / :func:`build_segmentation`
    Label image(s) + :class:`SegmentationMetadata` + the source series -> binary SEG.
:func:`read_segmentation`
    A SEG (ours, dcmqi's, highdicom's, ...) -> :class:`SegmentationData` (label images on the
    source grid and the segment metadata).
:func:`load_metadata`
    Segment metadata from our JSON or dcmqi's ``segmentAttributes`` JSON.

The source series the SEG lies on is read by :func:`oncoqi.dicom.source.load_source`.
"""

from oncoqi.dicom.seg.codes import NAMED_CODES, AlgorithmType, code_from_json, code_to_json, normalise_code
from oncoqi.dicom.seg.grid import align_to_grid
from oncoqi.dicom.seg.metadata import SegmentationMetadata, SegmentDescription, load_metadata
from oncoqi.dicom.seg.reader import SegmentationData, read_segmentation
from oncoqi.dicom.seg.writer import build_segmentation, write_segmentation

__all__ = [
    "NAMED_CODES",
    "AlgorithmType",
    "SegmentDescription",
    "SegmentationData",
    "SegmentationMetadata",
    "align_to_grid",
    "build_segmentation",
    "code_from_json",
    "code_to_json",
    "load_metadata",
    "normalise_code",
    "read_segmentation",
    "write_segmentation",
]
