"""A DICOM SEG and its TID 1500 SR written together with OncoQI's statistics, and read back.

:func:`write_report` is what ``oncoqi report write`` and the QuantitativeReporting Slicer module
call: label images on a CT or PET series + segment metadata (+ optional measurements) ->
``seg.dcm`` and ``sr.dcm``. :func:`build_sr` / :func:`write_sr` make the SR of an existing SEG.
Each computes the segments' statistics (:mod:`oncoqi.report.measure`) and hands them to the DICOM
encoders. :func:`read_report` reads either kind of file (ours or another tool's) by its SOP class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from oncoqi.atomic import save_dataset
from oncoqi.dicom.load import read_label_file
from oncoqi.dicom.seg import (
    SegmentationData,
    SegmentationMetadata,
    build_segmentation,
    load_metadata,
    read_segmentation,
)
from oncoqi.dicom.seg.reader import SEGMENTATION_SOP_CLASSES
from oncoqi.dicom.source import SourceSeries, load_source
from oncoqi.dicom.sr import (
    BuiltReport,
    MeasurementInput,
    MeasurementReportData,
    build_measurement_report,
    load_measurements,
    read_measurement_report,
)
from oncoqi.dicom.sr.reader import SR_SOP_CLASSES
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.report.measure import SourceStatistics

log = logging.getLogger(__name__)

#: File names written into the output folder.
SEG_NAME = "seg.dcm"
SR_NAME = "sr.dcm"


@dataclass
class WrittenReport:
    """The files :func:`write_report` wrote and what they hold."""

    seg_path: Path
    sr_path: Path
    segmentation: hd.seg.Segmentation
    report: BuiltReport


def write_report(
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    labels: Sequence[Image | str | os.PathLike] | Image | str | os.PathLike,
    metadata: SegmentationMetadata | str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike,
    measurements: MeasurementInput | str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    series_uid: str | None = None,
    omit_empty_frames: bool = True,
    force: bool = False,
) -> WrittenReport:
    """Write ``seg.dcm`` and ``sr.dcm`` for label images on a source series.

    Parameters
    ----------
    source
        The CT or PET series (folder, file list or loaded :class:`SourceSeries`).
    labels
        Label image(s) or their files (NRRD, NIfTI, MetaImage), in the order the metadata's
        ``labels_file`` indexes.
    metadata
        Segment metadata: loaded, or our/dcmqi JSON (file or parsed).
    out_dir
        Folder for the two files (created).
    measurements
        Document content and given measurements (our or dcmqi's JSON, or loaded); without
        them each segment's statistics are computed.
    series_uid
        Which series of ``source`` when the folder holds several.
    omit_empty_frames
        Leave frames without segment voxels out of the SEG.
    force
        Replace ``seg.dcm``/``sr.dcm`` already in ``out_dir``; without it an existing file is
        an error, because a report may be the only copy of a reader's work.

    Returns
    -------
    WrittenReport

    Raises
    ------
    InputError, GeometryError
        See :func:`oncoqi.dicom.seg.build_segmentation` and :func:`build_sr`; also when an output file exists and
        ``force`` is not set. Both documents are built before either is saved, so on any
        input error nothing is written (only a failure of the disk between the two saves can
        leave ``seg.dcm`` alone).
    """
    out = Path(out_dir)
    if not force:
        existing = [out / name for name in (SEG_NAME, SR_NAME) if (out / name).exists()]
        if existing:
            raise InputError(
                f"{existing[0]}: already exists; not overwritten: choose another output folder or ask to replace it "
                "(force)",
                setting="force",
            )
    series = load_source(source, series_uid)
    label_list = [labels] if isinstance(labels, Image | str | os.PathLike) else list(labels)
    images = [item if isinstance(item, Image) else read_label_file(item) for item in label_list]
    meta = metadata if isinstance(metadata, SegmentationMetadata) else load_metadata(metadata)
    given = measurements if isinstance(measurements, MeasurementInput | None) else load_measurements(measurements)
    seg = build_segmentation(images, series, meta, omit_empty_frames=omit_empty_frames)
    built = build_sr(seg, series, given)
    save_dataset(seg, out / SEG_NAME)
    save_dataset(built.dataset, out / SR_NAME)
    for warning in built.warnings:
        log.warning("%s", warning)
    return WrittenReport(out / SEG_NAME, out / SR_NAME, seg, built)


def build_sr(
    segmentation: Dataset | str | os.PathLike,
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    measurements: MeasurementInput | None = None,
    **uids: str | None,
) -> BuiltReport:
    """The TID 1500 SR of a SEG's segments with OncoQI's statistics (not written).

    :func:`oncoqi.dicom.sr.build_measurement_report` with :class:`~oncoqi.report.measure.SourceStatistics`
    of the source, unless ``measurements`` turn ``compute_statistics`` off (the source's voxels are
    then not read). By default an unverified, partial report by the OncoQI device with computed
    statistics only. ``uids``: ``series_instance_uid``, ``sop_instance_uid``.

    Raises
    ------
    InputError, GeometryError
        As :func:`oncoqi.dicom.sr.build_measurement_report`.
    """
    series = load_source(source)
    given = measurements or MeasurementInput()
    statistics = SourceStatistics.of(series) if given.info.compute_statistics else None
    return build_measurement_report(segmentation, series, given, statistics=statistics, **uids)


def write_sr(
    path: str | os.PathLike,
    segmentation: Dataset | str | os.PathLike,
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    measurements: MeasurementInput | None = None,
    **uids: str | None,
) -> BuiltReport:
    """:func:`build_sr` (same parameters), saved to ``path``; nothing is written on an error."""
    built = build_sr(segmentation, source, measurements, **uids)
    save_dataset(built.dataset, path)
    return built


def read_report(
    path: str | os.PathLike, source: SourceSeries | str | os.PathLike | None = None
) -> SegmentationData | MeasurementReportData:
    """Read a SEG or a TID 1500 SR, whichever ``path`` is.

    Parameters
    ----------
    path
        The DICOM file.
    source
        For a SEG: the series whose grid the labels go on (see
        :func:`oncoqi.dicom.seg.read_segmentation`); ignored for an SR.

    Raises
    ------
    InputError
        When the file is neither a Segmentation nor a Structured Report, or cannot be read.
    """
    path = Path(path)
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable DICOM file ({exc})") from exc
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class in SEGMENTATION_SOP_CLASSES:
        return read_segmentation(path, source)
    if sop_class in SR_SOP_CLASSES:
        return read_measurement_report(path)
    raise InputError(
        f"{path}: SOP class {sop_class or 'absent'} is neither a DICOM Segmentation nor a Structured Report"
    )


__all__ = ["SEG_NAME", "SR_NAME", "WrittenReport", "build_sr", "read_report", "write_report", "write_sr"]
