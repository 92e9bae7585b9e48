"""Write a TID 1500 Imaging Measurement Report (Comprehensive 3D SR) for the segments of a SEG.

One TID 1411 volumetric measurement group per segment, built with highdicom
(``highdicom.sr.MeasurementReport`` and ``VolumetricROIMeasurementsAndQualitativeEvaluations``),
the layout that dcmqi's ``tid1500reader``, OHIF and Slicer expect:

* Tracking Identifier and Tracking Unique Identifier (the SEG segment's Tracking ID/UID);
* Referenced Segment (SEG instance + segment number) and Source series for segmentation;
* Finding (default: the segment's Segmented Property Type) and Finding Site with laterality
  (default: its Anatomic Region and region modifier);
* Algorithm Identification, Activity Session and Time Point when known;
* the measurements: those computed by the caller's :class:`SegmentStatistics` (OncoQI's volume, HU
  or SUVbw statistics: :class:`oncoqi.report.measure.SourceStatistics`) merged with the given ones,
  a given measurement replacing the computed one of the same quantity and derivation. This layer
  only encodes: it computes nothing from the voxels itself.

The document carries the observer context (person and/or device), Procedure Reported, the
Image Library of the source instances, the Completion and Verification flags, and the SEG and
source instances as evidence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from oncoqi.atomic import save_dataset
from oncoqi.dicom.seg.metadata import SegmentDescription
from oncoqi.dicom.seg.reader import SegmentationData, read_dataset, read_segmentation
from oncoqi.dicom.seg.writer import MANUFACTURER
from oncoqi.dicom.source import SourceSeries, load_source
from oncoqi.dicom.sr.codes import DEVICE, MEASUREMENT_METHOD, PERSON, PROCEDURE_REPORTED, SOURCE_SERIES
from oncoqi.dicom.sr.measurements import (
    ONCOQI_DEVICE,
    Algorithm,
    Measurement,
    MeasurementGroup,
    MeasurementInput,
    ReportInfo,
    merge_measurements,
    with_algorithm,
)
from oncoqi.errors import InputError

#: Laterality values (CID 244) that a segment's anatomic region modifier may carry.
LATERALITY_VALUES = {"7771000", "24028007", "51440002", "66459002"}
#: Concept name of the images of the Image Library (TID 1601).
LIBRARY_SOURCE = hd.sr.CodedConcept("260753009", "SCT", "Source")
#: Code meanings of the modalities (CID 29) of source series.
MODALITY_MEANINGS = {"CT": "Computed Tomography", "PT": "Positron emission tomography", "MR": "Magnetic Resonance"}


class SegmentStatistics(Protocol):
    """What computes the measurements of each segment (made above this layer, which only encodes).

    Attributes
    ----------
    warnings
        Why the statistics of every segment are limited (reported once).
    algorithm
        Credited with the computed measurements.
    """

    warnings: list[str]
    algorithm: Algorithm

    def __call__(self, mask: np.ndarray) -> tuple[list[Measurement], list[str]]:
        """The measurements of one segment (boolean ``mask`` on the source grid) and notes."""
        ...


@dataclass
class BuiltReport:
    """The SR dataset and what went into it.

    Attributes
    ----------
    dataset
        The Comprehensive 3D SR.
    groups
        The groups as written (one per reported segment, measurements merged).
    warnings
        Why some statistics are missing (e.g. a PET without SUV information).
    """

    dataset: hd.sr.Comprehensive3DSR
    groups: list[MeasurementGroup] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _match(group: MeasurementGroup, segments: Sequence[SegmentDescription]) -> SegmentDescription:
    """The segment a group names: by number first, else by a label or tracking id that is unique."""
    key = group.segment
    for seg in segments:
        if key == seg.segment_number or (isinstance(key, str) and key.strip() == str(seg.segment_number)):
            return seg
    found = [seg for seg in segments if key in (seg.label, seg.tracking_id)]
    listing = ", ".join(f"{s.segment_number} {s.label!r}" for s in segments)
    if len(found) > 1:
        raise InputError(f"measurement group for segment {key!r} is ambiguous: name it by number ({listing})")
    if not found:
        raise InputError(f"measurement group for segment {key!r} matches no segment of the SEG ({listing})")
    return found[0]


def resolve_groups(
    segmentation: SegmentationData,
    given: MeasurementInput,
    statistics: SegmentStatistics | None = None,
) -> tuple[list[MeasurementGroup], list[str]]:
    """One complete group per segment: given content, SEG defaults and computed statistics.

    Defaults come from the SEG: tracking identifiers (the label when the SEG has none), finding
    (segmented property type), finding site and laterality (anatomic region and its modifier).
    The group's algorithm is the statistics' when all its measurements are computed; when some
    are given, the group carries the given algorithm (if any) and each computed item names the
    statistics'.

    Parameters
    ----------
    segmentation
        The SEG read on the source grid.
    given
        Document content and given groups.
    statistics
        Computes each segment's measurements when ``given.info.compute_statistics`` is set;
        None computes nothing.

    Returns
    -------
    groups, warnings
        Groups in segment order; segments with neither measurements nor qualitative
        evaluations are left out (with a warning).

    Raises
    ------
    InputError
        When a given group names no segment, two groups name the same segment, or nothing at
        all would be reported.
    """
    by_number = _given_by_segment(given.groups, segmentation.metadata.segments)
    compute = statistics is not None and given.info.compute_statistics
    warnings = list(statistics.warnings) if compute else []
    labels = [s.label for s in segmentation.metadata.segments]
    groups = []
    for seg in segmentation.metadata.segments:
        number = int(seg.segment_number)  # type: ignore[arg-type]
        group = by_number.get(number, MeasurementGroup(segment=number))
        measurements, algorithm = _group_measurements(
            group, seg, segmentation, statistics if compute else None, warnings
        )
        if not measurements and not group.qualitative:
            warnings.append(f"segment {number} ({seg.label!r}) has nothing to report and is left out")
            continue
        groups.append(_with_seg_defaults(group, seg, measurements, algorithm, labels))
    if not groups:
        raise InputError("nothing to report: no segment has a measurement or a qualitative evaluation")
    return groups, warnings


def _given_by_segment(
    given: Sequence[MeasurementGroup], segments: Sequence[SegmentDescription]
) -> dict[int, MeasurementGroup]:
    """The given groups by the number of the segment each names, so that no segment is measured twice."""
    by_number: dict[int, MeasurementGroup] = {}
    for group in given:
        seg = _match(group, segments)
        if seg.segment_number in by_number:
            raise InputError(f"two measurement groups name segment {seg.segment_number} ({seg.label!r})")
        by_number[int(seg.segment_number)] = group  # type: ignore[arg-type]
    return by_number


def _group_measurements(
    group: MeasurementGroup,
    seg: SegmentDescription,
    segmentation: SegmentationData,
    statistics: SegmentStatistics | None,
    warnings: list[str],
) -> tuple[list[Measurement], Algorithm | None]:
    """The given measurements merged with the computed ones (None: none computed), and the group's algorithm."""
    measurements = list(group.measurements)
    algorithm = group.algorithm
    if statistics is not None:
        number = int(seg.segment_number)  # type: ignore[arg-type]
        computed, notes = statistics(segmentation.mask(number).array)
        warnings += [f"segment {number} ({seg.label!r}): {n}" for n in notes]
        if algorithm is None and not measurements:
            algorithm = statistics.algorithm  # all measurements are computed: credit the group
        else:
            computed = with_algorithm(computed, statistics.algorithm)
        measurements = merge_measurements(computed, measurements)
    return measurements, algorithm


def _with_seg_defaults(
    group: MeasurementGroup,
    seg: SegmentDescription,
    measurements: list[Measurement],
    algorithm: Algorithm | None,
    labels: list[str],
) -> MeasurementGroup:
    """The complete group: what was not given comes from the SEG segment, so every group is tracked and located."""
    number = int(seg.segment_number)  # type: ignore[arg-type]
    region_modifier = seg.anatomic_region_modifier
    return replace(
        group,
        segment=number,
        measurements=measurements,
        finding=group.finding or seg.type,
        finding_site=group.finding_site or seg.anatomic_region,
        laterality=group.laterality
        or (region_modifier if region_modifier and region_modifier.value in LATERALITY_VALUES else None),
        algorithm=algorithm,
        # a SEG without Tracking IDs (other tools') falls back to labels, made unique
        tracking_id=group.tracking_id
        or seg.tracking_id
        or (seg.label if labels.count(seg.label) == 1 else f"{seg.label} (segment {number})"),
        tracking_uid=group.tracking_uid or seg.tracking_uid or hd.UID(),
    )


def image_library(source: SourceSeries) -> hd.sr.ContainerContentItem:
    """TID 1600 Image Library listing every source instance.

    One Image Library Group carries the descriptors the instances share (modality and frame
    of reference); the per-image descriptors of TID 1602, optional, are left out. highdicom's
    own ``ImageLibrary`` writes them for every image, which takes about 16 ms an image (9 s for
    a whole-body PET); this takes well under 1 ms an image.
    """
    first = source.datasets[0]
    modality = str(first.Modality)
    shared = [
        hd.sr.CodeContentItem(
            name=codes.DCM.Modality,
            value=hd.sr.CodedConcept(modality, "DCM", MODALITY_MEANINGS.get(modality, modality)),
            relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
        )
    ]
    if "FrameOfReferenceUID" in first:
        shared.append(
            hd.sr.UIDRefContentItem(
                name=codes.DCM.FrameOfReferenceUID,
                value=first.FrameOfReferenceUID,
                relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
            )
        )
    images = [
        hd.sr.ImageContentItem(
            name=LIBRARY_SOURCE,
            referenced_sop_class_uid=ds.SOPClassUID,
            referenced_sop_instance_uid=ds.SOPInstanceUID,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        for ds in source.datasets
    ]
    group = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibraryGroup, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    group.ContentSequence = hd.sr.ContentSequence([*shared, *images])
    library = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibrary, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    library.ContentSequence = hd.sr.ContentSequence([group])
    return library


def _algorithm(algorithm: Algorithm | None) -> hd.sr.AlgorithmIdentification | None:
    if algorithm is None:
        return None
    return hd.sr.AlgorithmIdentification(algorithm.name, algorithm.version, list(algorithm.parameters) or None)


def _observation_context(info: ReportInfo) -> hd.sr.ObservationContext:
    person = device = None
    for observer in info.observers or [ONCOQI_DEVICE]:
        if observer.kind == "PERSON":
            attrs = hd.sr.PersonObserverIdentifyingAttributes(
                name=observer.name, organization_name=observer.organization
            )
            person = hd.sr.ObserverContext(observer_type=PERSON, observer_identifying_attributes=attrs)
        else:
            attrs = hd.sr.DeviceObserverIdentifyingAttributes(
                uid=str(observer.uid),
                name=observer.name,
                manufacturer_name=observer.manufacturer,
                model_name=observer.model,
                serial_number=observer.serial_number,
            )
            device = hd.sr.ObserverContext(observer_type=DEVICE, observer_identifying_attributes=attrs)
    return hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)


def _content_group(
    group: MeasurementGroup, seg_ds: Dataset, source: SourceSeries, info: ReportInfo
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    site: list[hd.sr.FindingSite] | None = None
    if group.finding_site is not None:
        site = [hd.sr.FindingSite(group.finding_site, laterality=group.laterality)]
    elif group.laterality is not None:
        raise InputError(f"segment {group.segment}: a laterality needs a finding site")
    measurements = [
        hd.sr.Measurement(
            name=m.quantity,
            value=m.value,
            unit=m.unit,
            derivation=m.derivation,
            method=m.method,
            algorithm_id=_algorithm(m.algorithm or group.algorithm),
        )
        for m in group.measurements
    ]
    content = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=group.tracking_uid, identifier=group.tracking_id),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg_ds.SOPClassUID,
            sop_instance_uid=seg_ds.SOPInstanceUID,
            segment_number=int(group.segment),
            source_series=hd.sr.SourceSeriesForSegmentation(source.info.series_uid),
        ),
        finding_type=group.finding,
        finding_sites=site,
        method=group.method,
        # The algorithm goes on each measurement (TID 300), as dcmqi writes it: template validators
        # (pixelmed) do not accept TID 4019 at the group level of TID 1411.
        session=info.session,
        time_point_context=hd.sr.TimePointContext(info.time_point) if info.time_point else None,
        measurements=measurements or None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(q.concept, q.value) for q in group.qualitative] or None,
    )
    _follow_tid_1419(content[0])
    return content


def _follow_tid_1419(group_container: Dataset) -> None:
    """Correct two details of highdicom's Measurement Group that template validators flag.

    TID 1411 includes TID 1419, whose group-level Measurement Method (row 1) is HAS CONCEPT MOD, not
    CONTAINS (pixelmed's DicomSRValidator: "Incorrect relationship"; dcmqi writes it so); and TID
    1411 spells concept 121232 "Source series for segmentation" (highdicom uses pydicom's capitalised
    meaning).
    """
    for item in group_container.ContentSequence:
        concept = item.ConceptNameCodeSequence[0]
        key = (str(concept.CodeValue), str(concept.CodingSchemeDesignator))
        if key == (MEASUREMENT_METHOD.value, MEASUREMENT_METHOD.scheme_designator):
            item.RelationshipType = "HAS CONCEPT MOD"
        elif key == (SOURCE_SERIES.value, SOURCE_SERIES.scheme_designator):
            concept.CodeMeaning = "Source series for segmentation"


def build_measurement_report(
    segmentation: Dataset | str | os.PathLike,
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    measurements: MeasurementInput | None = None,
    *,
    statistics: SegmentStatistics | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> BuiltReport:
    """Build the TID 1500 SR for the segments of ``segmentation`` (not written).

    Parameters
    ----------
    segmentation
        The SEG (dataset, or file) whose segments are measured and referenced.
    source
        Its source series (see :func:`~oncoqi.dicom.source.load_source`); the SEG must lie
        on its grid.
    measurements
        Document content and given measurements; by default an unverified, partial report by
        the OncoQI device.
    statistics
        Computes each segment's measurements (see :func:`resolve_groups`); OncoQI's are
        :class:`oncoqi.report.measure.SourceStatistics`, which :func:`oncoqi.report.build_sr`
        passes.
    series_instance_uid, sop_instance_uid
        UIDs to use; generated when None.

    Returns
    -------
    BuiltReport
        The SR dataset, the groups as written, and warnings.

    Raises
    ------
    InputError
        For a file that is not a SEG, a SEG drawn on another series, unmatched groups, nothing
        to report, or content highdicom refuses.
    GeometryError
        When the SEG does not lie on the source grid.
    """
    seg_ds = read_dataset(segmentation, "segmentation") if isinstance(segmentation, str | os.PathLike) else segmentation
    source = load_source(source)
    given = measurements or MeasurementInput()
    data = _segmentation_on(seg_ds, source)
    groups, warnings = resolve_groups(data, given, statistics)
    info = given.info
    try:
        report = _report_content(groups, seg_ds, source, info)
        sr = _sr_document(report, seg_ds, source, info, series_instance_uid, sop_instance_uid)
    except (ValueError, TypeError) as exc:  # highdicom's checks of the content and of the headers
        raise InputError(f"cannot build the measurement report on {source.info.name} ({exc})") from exc
    return BuiltReport(sr, groups, warnings)


def _segmentation_on(seg_ds: Dataset, source: SourceSeries) -> SegmentationData:
    """The SEG read on the source grid; one drawn on another series is refused, its measurements would be wrong."""
    data = read_segmentation(seg_ds, source)
    if data.referenced_series_uids and source.info.series_uid not in data.referenced_series_uids:
        raise InputError(
            f"SEG {data.sop_instance_uid} was drawn on series {', '.join(data.referenced_series_uids)}, "
            f"not on the source given ({source.info.name})"
        )
    return data


def _report_content(
    groups: Sequence[MeasurementGroup], seg_ds: Dataset, source: SourceSeries, info: ReportInfo
) -> hd.sr.MeasurementReport:
    """The TID 1500 content tree, with the Image Library after Procedure Reported, where TID 1500 places it."""
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(info),
        procedure_reported=list(info.procedure_reported),
        imaging_measurements=[_content_group(g, seg_ds, source, info) for g in groups],
    )
    root = report[0].ContentSequence
    procedures = [
        n for n, item in enumerate(root) if item.ConceptNameCodeSequence[0].CodeValue == PROCEDURE_REPORTED.value
    ]
    root.insert(procedures[-1] + 1, image_library(source))
    return report


def _sr_document(
    report: hd.sr.MeasurementReport,
    seg_ds: Dataset,
    source: SourceSeries,
    info: ReportInfo,
    series_instance_uid: str | None,
    sop_instance_uid: str | None,
) -> hd.sr.Comprehensive3DSR:
    """The Comprehensive 3D SR instance around the content, with the SEG and source as evidence and the flags."""
    return hd.sr.Comprehensive3DSR(
        evidence=[seg_ds, *source.datasets],
        content=report,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=info.series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=info.instance_number,
        manufacturer=MANUFACTURER,
        is_complete=info.complete,
        is_verified=info.verified,
        is_final=info.complete and info.verified,
        verifying_observer_name=info.verifying_observer if info.verified else None,
        verifying_organization=info.verifying_organization if info.verified else None,
        series_description=info.series_description,
    )


def write_measurement_report(
    path: str | os.PathLike,
    segmentation: Dataset | str | os.PathLike,
    source: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    measurements: MeasurementInput | None = None,
    *,
    statistics: SegmentStatistics | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> BuiltReport:
    """Build the SR with :func:`build_measurement_report` (same parameters) and save it.

    Raises
    ------
    InputError, GeometryError
        As :func:`build_measurement_report`; nothing is written then.
    """
    built = build_measurement_report(
        segmentation,
        source,
        measurements,
        statistics=statistics,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
    )
    save_dataset(built.dataset, path)
    return built
