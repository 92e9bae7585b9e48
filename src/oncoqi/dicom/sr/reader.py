"""Read a TID 1500 measurement report (ours, dcmqi's, highdicom's, ...) into a tidy table.

The content tree is walked with pydicom directly rather than through a template parser, so that
reports that bend TID 1500 (a TEXT Person Observer Name, retired SNOMED-RT codes, measurement
groups with planar regions instead of segments, NUM items without a value) read without error.
Codes are normalised (SRT to SCT, :func:`oncoqi.dicom.seg.codes.normalise_code`).

:meth:`MeasurementReportData.rows` gives one row per numeric measurement, with the group's
tracking identifier, finding and referenced segment repeated on each row; :meth:`to_json`
gives the document with its groups.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.coding import Code

from oncoqi.dicom.seg.codes import code_from_item, code_to_json
from oncoqi.dicom.seg.reader import read_dataset
from oncoqi.dicom.sr.codes import (
    ACTIVITY_SESSION,
    ALGORITHM_NAME,
    ALGORITHM_VERSION,
    DERIVATION,
    DEVICE_OBSERVER_NAME,
    DEVICE_OBSERVER_UID,
    FINDING,
    FINDING_SITE,
    IMAGING_MEASUREMENT_REPORT,
    LATERALITY,
    MEASUREMENT_GROUP,
    MEASUREMENT_METHOD,
    OBSERVER_TYPE,
    PERSON_OBSERVER_NAME,
    PROCEDURE_REPORTED,
    REFERENCED_SEGMENT,
    SOURCE_SERIES,
    TIME_POINT,
    TRACKING_IDENTIFIER,
    TRACKING_UID,
)
from oncoqi.errors import InputError

#: SR storage SOP classes that may hold a TID 1500 report.
SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}
FINDING_CATEGORY = Code("276214006", "SCT", "Finding category")
REAL_WORLD_VALUE_MAP = Code("126100", "DCM", "Real World Value Map used for measurement")
#: Concepts of items that mark the region a group measures, by the name the table gives it.
ROI_CONCEPTS = {
    ("121191", "DCM"): "segment",
    ("111030", "DCM"): "image region",
    ("121231", "DCM"): "volume surface",
    ("121214", "DCM"): "segmentation frames",
}


def _same(code: Code | None, other: Code) -> bool:
    return code is not None and code.value == other.value and code.scheme_designator == other.scheme_designator


@dataclass
class Item:
    """One content item: value type, concept name, value, children."""

    value_type: str
    concept: Code | None
    value: Any
    children: list[Item]
    relationship: str = ""

    def find(self, concept: Code) -> Item | None:
        """First direct child with this concept name."""
        return next((c for c in self.children if _same(c.concept, concept)), None)


def _value(ds: Dataset, where: str) -> Any:
    vt = ds.get("ValueType", "")
    if vt == "TEXT":
        return str(ds.get("TextValue", ""))
    if vt == "CODE":
        seq = ds.get("ConceptCodeSequence")
        return code_from_item(seq[0], where) if seq else None
    if vt == "NUM":
        seq = ds.get("MeasuredValueSequence")
        if not seq:
            qualifier = ds.get("NumericValueQualifierCodeSequence")
            return {
                "value": None,
                "unit": None,
                "qualifier": code_from_item(qualifier[0], where) if qualifier else None,
            }
        mv = seq[0]
        value = mv.get("FloatingPointValue")
        value = float(value) if value is not None else float(mv.NumericValue)
        units = mv.get("MeasurementUnitsCodeSequence")
        return {"value": value, "unit": code_from_item(units[0], where) if units else None, "qualifier": None}
    if vt == "UIDREF":
        return str(ds.get("UID", ""))
    if vt == "PNAME":
        return str(ds.get("PersonName", ""))
    if vt in ("IMAGE", "COMPOSITE"):
        seq = ds.get("ReferencedSOPSequence")
        if not seq:
            return None
        ref = seq[0]
        out = {
            "sop_class_uid": str(ref.get("ReferencedSOPClassUID", "")),
            "sop_instance_uid": str(ref.get("ReferencedSOPInstanceUID", "")),
        }
        if "ReferencedSegmentNumber" in ref:
            numbers = ref.ReferencedSegmentNumber
            out["segment_number"] = int(numbers[0] if isinstance(numbers, MultiValue) else numbers)
        return out
    if vt in ("SCOORD", "SCOORD3D"):
        return str(ds.get("GraphicType", ""))
    if vt in ("DATE", "TIME", "DATETIME"):
        return str(ds.get({"DATE": "Date", "TIME": "Time", "DATETIME": "DateTime"}[vt], ""))
    return None


def parse_item(ds: Dataset, where: str) -> Item:
    """Parse a content item and its subtree."""
    names = ds.get("ConceptNameCodeSequence")
    concept = code_from_item(names[0], where) if names else None
    label = concept.meaning if concept else ds.get("ValueType", "item")
    children = [parse_item(c, f"{where} > {label}") for c in ds.get("ContentSequence", [])]
    return Item(str(ds.get("ValueType", "")), concept, _value(ds, where), children, str(ds.get("RelationshipType", "")))


@dataclass
class MeasurementRecord:
    """One NUM item of a measurement group."""

    concept: Code
    value: float | None
    unit: Code | None
    derivation: Code | None = None
    method: Code | None = None
    qualifier: Code | None = None
    finding_site: Code | None = None
    algorithm: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {"concept": code_to_json(self.concept), "value": self.value}
        for name in ("unit", "derivation", "method", "qualifier", "finding_site"):
            code = getattr(self, name)
            if code is not None:
                out[name] = code_to_json(code)
        if self.algorithm:
            out["algorithm"] = self.algorithm
        return out


@dataclass
class GroupRecord:
    """One measurement group (TID 1411 / 1410 / 1501)."""

    tracking_id: str | None = None
    tracking_uid: str | None = None
    finding: Code | None = None
    finding_category: Code | None = None
    finding_sites: list[tuple[Code, Code | None]] = field(default_factory=list)
    roi: str | None = None
    segmentation_uid: str | None = None
    segment_number: int | None = None
    source_series_uid: str | None = None
    rwvm_uid: str | None = None
    method: Code | None = None
    algorithm: str | None = None
    session: str | None = None
    time_point: str | None = None
    qualitative: list[tuple[Code, Code]] = field(default_factory=list)
    measurements: list[MeasurementRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {}
        for name in (
            "tracking_id",
            "tracking_uid",
            "roi",
            "segmentation_uid",
            "segment_number",
            "source_series_uid",
            "rwvm_uid",
            "algorithm",
            "session",
            "time_point",
        ):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("finding", "finding_category", "method"):
            if getattr(self, name) is not None:
                out[name] = code_to_json(getattr(self, name))
        if self.finding_sites:
            out["finding_sites"] = [
                {"site": code_to_json(s), **({"laterality": code_to_json(lat)} if lat else {})}
                for s, lat in self.finding_sites
            ]
        if self.qualitative:
            out["qualitative"] = [{"concept": code_to_json(c), "value": code_to_json(v)} for c, v in self.qualitative]
        out["measurements"] = [m.to_json() for m in self.measurements]
        return out


#: Columns of :meth:`MeasurementReportData.rows`, in order.
TABLE_COLUMNS = (
    "tracking_id",
    "tracking_uid",
    "segment_number",
    "segmentation_uid",
    "source_series_uid",
    "finding",
    "finding_site",
    "quantity",
    "quantity_code",
    "value",
    "unit",
    "derivation",
    "derivation_code",
    "method",
    "method_code",
    "algorithm",
)


def _code_str(code: Code | None) -> str | None:
    return f"{code.value} {code.scheme_designator}" if code is not None else None


@dataclass
class MeasurementReportData:
    """A TID 1500 report read back.

    Attributes
    ----------
    sop_instance_uid, series_instance_uid, study_instance_uid, sop_class_uid
        Identification.
    title
        Concept name of the root container (126000 DCM "Imaging Measurement Report").
    completion_flag, verification_flag
        As written (``COMPLETE``/``PARTIAL``, ``VERIFIED``/``UNVERIFIED``).
    observers
        Observer context items in order (``{"type": "PERSON", "name": ...}`` or a device).
    procedures
        Procedure Reported codes.
    groups
        Measurement groups in document order.
    """

    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str
    title: Code | None
    completion_flag: str
    verification_flag: str
    observers: list[dict[str, str]] = field(default_factory=list)
    procedures: list[Code] = field(default_factory=list)
    groups: list[GroupRecord] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """The tidy table: one dict per numeric measurement, keys :data:`TABLE_COLUMNS`."""
        out = []
        for g in self.groups:
            site = g.finding_sites[0][0] if g.finding_sites else None
            for m in g.measurements:
                out.append(
                    {
                        "tracking_id": g.tracking_id,
                        "tracking_uid": g.tracking_uid,
                        "segment_number": g.segment_number,
                        "segmentation_uid": g.segmentation_uid,
                        "source_series_uid": g.source_series_uid,
                        "finding": g.finding.meaning if g.finding else None,
                        "finding_site": (m.finding_site or site).meaning if (m.finding_site or site) else None,
                        "quantity": m.concept.meaning,
                        "quantity_code": _code_str(m.concept),
                        "value": m.value,
                        "unit": m.unit.value if m.unit else None,
                        "derivation": m.derivation.meaning if m.derivation else None,
                        "derivation_code": _code_str(m.derivation),
                        "method": (m.method or g.method).meaning if (m.method or g.method) else None,
                        "method_code": _code_str(m.method or g.method),
                        "algorithm": m.algorithm or g.algorithm,
                    }
                )
        return out

    def to_csv(self, delimiter: str = ",") -> str:
        """The tidy table as CSV (or TSV) text with a header row."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, delimiter=delimiter, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready document: identification, flags, observers, groups and the table."""
        return {
            "kind": "SR",
            "sop_class": SR_SOP_CLASSES.get(self.sop_class_uid, self.sop_class_uid),
            "sop_instance_uid": self.sop_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "title": code_to_json(self.title) if self.title else None,
            "completion_flag": self.completion_flag,
            "verification_flag": self.verification_flag,
            "observers": self.observers,
            "procedure_reported": [code_to_json(c) for c in self.procedures],
            "groups": [g.to_json() for g in self.groups],
            "measurements": self.rows(),
        }


def _walk(items: list[Item]) -> Iterator[Item]:
    for item in items:
        yield item
        yield from _walk(item.children)


def _algorithm(item: Item) -> str | None:
    name = item.find(ALGORITHM_NAME)
    if name is None:
        return None
    version = item.find(ALGORITHM_VERSION)
    return f"{name.value} {version.value}" if version is not None else str(name.value)


def _measurement(item: Item) -> MeasurementRecord:
    num = item.value or {"value": None, "unit": None, "qualifier": None}
    derivation = item.find(DERIVATION)
    method = item.find(MEASUREMENT_METHOD)
    site = item.find(FINDING_SITE)
    return MeasurementRecord(
        concept=item.concept,  # type: ignore[arg-type]
        value=num["value"],
        unit=num["unit"],
        derivation=derivation.value if derivation else None,
        method=method.value if method else None,
        qualifier=num["qualifier"],
        finding_site=site.value if site else None,
        algorithm=_algorithm(item),
    )


def _group(container: Item) -> GroupRecord:
    g = GroupRecord(algorithm=_algorithm(container))
    for child in container.children:
        c = child.concept
        if child.value_type == "NUM" and c is not None:
            g.measurements.append(_measurement(child))
        elif _same(c, TRACKING_IDENTIFIER):
            g.tracking_id = child.value
        elif _same(c, TRACKING_UID):
            g.tracking_uid = child.value
        elif _same(c, FINDING):
            g.finding = child.value
        elif _same(c, FINDING_CATEGORY):
            g.finding_category = child.value
        elif _same(c, FINDING_SITE) and child.value is not None:
            lat = child.find(LATERALITY)
            g.finding_sites.append((child.value, lat.value if lat else None))
        elif _same(c, SOURCE_SERIES):
            g.source_series_uid = child.value
        elif _same(c, MEASUREMENT_METHOD):
            g.method = child.value
        elif _same(c, ACTIVITY_SESSION):
            g.session = child.value
        elif _same(c, TIME_POINT):
            g.time_point = child.value
        elif _same(c, REAL_WORLD_VALUE_MAP) and child.value:
            g.rwvm_uid = child.value["sop_instance_uid"]
        elif c is not None and (c.value, c.scheme_designator) in ROI_CONCEPTS:
            g.roi = ROI_CONCEPTS[(c.value, c.scheme_designator)]
            if _same(c, REFERENCED_SEGMENT) and child.value:
                g.segmentation_uid = child.value["sop_instance_uid"]
                g.segment_number = child.value.get("segment_number")
        elif child.value_type == "CODE" and child.relationship == "CONTAINS" and child.value is not None:
            g.qualitative.append((c, child.value))  # type: ignore[arg-type]
    named = {m.algorithm for m in g.measurements}
    if g.algorithm is None and len(named) == 1:
        # OncoQI (like dcmqi) names the algorithm on each measurement, which template validators
        # accept; one name on all of them is the group's.
        g.algorithm = named.pop()
    return g


def _observers(root: Item) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for child in root.children:
        c = child.concept
        if _same(c, OBSERVER_TYPE) and child.value is not None:
            out.append({"type": "PERSON" if child.value.value == "121006" else "DEVICE"})
        elif out and (_same(c, PERSON_OBSERVER_NAME) or _same(c, DEVICE_OBSERVER_NAME)):
            out[-1]["name"] = str(child.value)
        elif out and _same(c, DEVICE_OBSERVER_UID):
            out[-1]["uid"] = str(child.value)
        elif _same(c, PERSON_OBSERVER_NAME):  # a name without Observer Type: a person by default
            out.append({"type": "PERSON", "name": str(child.value)})
    return out


def read_measurement_report(path: str | os.PathLike | Dataset) -> MeasurementReportData:
    """Read a TID 1500 Imaging Measurement Report.

    Parameters
    ----------
    path
        The SR file, or its dataset.

    Returns
    -------
    MeasurementReportData
        Document, groups and the tidy table.

    Raises
    ------
    InputError
        When the file is not an SR, or its content is not a TID 1500 report (neither template
        1500 nor an "Imaging Measurement Report" root).
    """
    if isinstance(path, Dataset):
        ds, name = path, f"SR {path.get('SOPInstanceUID', '')}"
    else:
        ds, name = read_dataset(path, "structured report"), str(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in SR_SOP_CLASSES:
        raise InputError(f"{name}: SOP class {sop_class or 'absent'} is not a DICOM Structured Report")
    templates = ds.get("ContentTemplateSequence")
    template = str(templates[0].get("TemplateIdentifier", "")) if templates else ""
    root = parse_item(ds, name)
    if template != "1500" and not _same(root.concept, IMAGING_MEASUREMENT_REPORT):
        title = root.concept.meaning if root.concept else "no title"
        raise InputError(f"{name}: not a TID 1500 measurement report (template {template or 'none'}, '{title}')")
    procedures = [c.value for c in root.children if _same(c.concept, PROCEDURE_REPORTED) and c.value is not None]
    groups = [_group(item) for item in _walk(root.children) if _same(item.concept, MEASUREMENT_GROUP)]
    return MeasurementReportData(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        sop_class_uid=sop_class,
        title=root.concept,
        completion_flag=str(ds.get("CompletionFlag", "")),
        verification_flag=str(ds.get("VerificationFlag", "")),
        observers=_observers(root),
        procedures=procedures,
        groups=groups,
    )
