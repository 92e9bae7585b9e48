"""The measurement model of a TID 1500 report and its JSON forms.

A report is a :class:`ReportInfo` (observer, procedure, flags, series attributes) and one
:class:`MeasurementGroup` per segment, each holding :class:`Measurement` items (quantity, value,
unit, derivation, method). Groups given in JSON name their segment by number, label or tracking
id; the writer fills in the rest from the SEG (tracking identifiers, finding = segmented
property type, finding site = anatomic region).

Measurements JSON, ours::

    {"observer": {"type": "PERSON", "name": "Doe^Jane"},
     "procedure_reported": {"value": "44139-4", "scheme": "LN", "meaning": "PET whole body"},
     "complete": true, "verified": true, "verifying_observer": "Doe^Jane", "verifying_organization": "BWH",
     "session": "1", "time_point": "baseline", "compute_statistics": true,
     "groups": [{"segment": "GTV", "finding_site": "lung", "laterality": "left",
                 "measurements": [{"name": "suvbw_peak", "value": 9.45},
                                  {"quantity": {...}, "unit": {...}, "derivation": {...}, "value": 1.2}]}]}

and dcmqi's ``tid1500writer --metaDataFileName`` JSON (``Measurements`` with ``measurementItems``),
whose file lists (``compositeContext``, ``imageLibrary``) and UIDs are ignored: the SEG and the
source series given to the writer define them.

The statistics OncoQI computes (volume, HU or SUVbw statistics) are made above this layer, in
:mod:`oncoqi.report.measure`, and merged here with the given measurements.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from oncoqi import __version__
from oncoqi.dicom.seg.codes import code_from_json, code_to_json
from oncoqi.dicom.sr.codes import IMAGING_PROCEDURE, MEASUREMENT_METHOD, STANDARD_MEASUREMENTS
from oncoqi.errors import InputError
from oncoqi.jsonio import load_json_object


@dataclass(frozen=True)
class Algorithm:
    """Algorithm Identification (TID 4019): name, version, parameters."""

    name: str
    version: str
    parameters: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling."""
        out: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.parameters:
            out["parameters"] = list(self.parameters)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str, dcmqi: bool = False) -> Algorithm:
        """Parse ``{"name", "version", "parameters"}`` (dcmqi: ``AlgorithmName``, ...).

        Raises
        ------
        InputError
            When it is not an object, has unknown keys, or lacks name or version.
        """
        keys = (
            ("AlgorithmName", "AlgorithmVersion", "AlgorithmParameters") if dcmqi else ("name", "version", "parameters")
        )
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: the algorithm must be an object with {list(keys)}")
        _unknown(data, set(keys), where)
        name, version = (str(data.get(k, "")).strip() for k in keys[:2])
        if not name or not version:
            raise InputError(f"{where}: an algorithm needs both {keys[0]!r} and {keys[1]!r}")
        params = data.get(keys[2], [])
        if not isinstance(params, list):
            raise InputError(f"{where}: {keys[2]!r} must be a list of strings")
        return cls(name, version, tuple(str(p) for p in params))


@dataclass(frozen=True)
class Measurement:
    """One numeric measurement (TID 300 NUM item).

    Attributes
    ----------
    quantity, unit
        Concept name and UCUM unit codes.
    value
        The number.
    derivation, method
        Optional Derivation (121401 DCM) and Measurement Method (370129005 SCT) codes.
    algorithm
        Algorithm of this measurement, when it differs from its group's.
    name
        The :data:`~oncoqi.dicom.sr.codes.STANDARD_MEASUREMENTS` key it was made from, if any.
    """

    quantity: Code
    value: float
    unit: Code
    derivation: Code | None = None
    method: Code | None = None
    algorithm: Algorithm | None = None
    name: str | None = None

    @classmethod
    def named(cls, name: str, value: float, algorithm: Algorithm | None = None) -> Measurement:
        """A standard measurement by key (``"volume"``, ``"suvbw_peak"``, ``"recist_long_axis"``...).

        Raises
        ------
        InputError
            For an unknown key (the message lists the known ones).
        """
        kind = STANDARD_MEASUREMENTS.get(name)
        if kind is None:
            raise InputError(f"unknown measurement name {name!r}; known: {sorted(STANDARD_MEASUREMENTS)}")
        return cls(kind.quantity, float(value), kind.unit, kind.derivation, kind.method, algorithm, name)

    @property
    def identity(self) -> tuple[str, str, str | None, str | None]:
        """What makes two measurements "the same" (quantity and derivation); a given
        measurement replaces a computed one with the same identity."""
        d = self.derivation
        return (
            self.quantity.value,
            self.quantity.scheme_designator,
            d.value if d else None,
            d.scheme_designator if d else None,
        )

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling: the standard name, or the explicit codes."""
        if self.name:
            out: dict[str, Any] = {"name": self.name, "value": self.value}
            if self.algorithm is not None:
                out["algorithm"] = self.algorithm.to_json()
            return out
        out = {"quantity": code_to_json(self.quantity), "value": self.value, "unit": code_to_json(self.unit)}
        if self.derivation is not None:
            out["derivation"] = code_to_json(self.derivation)
        if self.method is not None:
            out["method"] = code_to_json(self.method)
        if self.algorithm is not None:
            out["algorithm"] = self.algorithm.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Measurement:
        """Parse ``{"name": key, "value": v}`` or ``{"quantity", "unit", "value", ...}``.

        Raises
        ------
        InputError
            For unknown keys, a missing or non-numeric value, missing codes, or a name that
            is not standard.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a measurement must be a JSON object")
        _unknown(data, {"name", "quantity", "unit", "value", "derivation", "method", "algorithm"}, where)
        value = _number(data.get("value"), f"{where} value")
        algorithm = Algorithm.from_json(data["algorithm"], f"{where} algorithm") if "algorithm" in data else None
        if "name" in data:
            extra = {"quantity", "unit", "derivation", "method"} & set(data)
            if extra:
                raise InputError(f"{where}: give either 'name' or explicit codes, not both ({sorted(extra)})")
            try:
                return cls.named(str(data["name"]), value, algorithm)
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from exc
        for required in ("quantity", "unit"):
            if required not in data:
                raise InputError(f"{where}: missing {required!r} (or give a standard 'name')")
        return cls(
            quantity=code_from_json(data["quantity"], f"{where} quantity"),
            value=value,
            unit=code_from_json(data["unit"], f"{where} unit"),
            derivation=code_from_json(data["derivation"], f"{where} derivation") if data.get("derivation") else None,
            method=code_from_json(data["method"], f"{where} method") if data.get("method") else None,
            algorithm=algorithm,
        )

    @classmethod
    def from_dcmqi(cls, data: Any, where: str) -> Measurement:
        """Parse a dcmqi ``measurementItems`` entry.

        A ``measurementModifiers`` entry is accepted only for the Measurement Method; the
        other optional dcmqi fields (derivation parameters, NUM properties, population
        description) are refused rather than dropped.

        Raises
        ------
        InputError
            As :meth:`from_json`, with dcmqi's key names.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a measurement item must be a JSON object")
        supported = {
            "value",
            "quantity",
            "units",
            "derivationModifier",
            "measurementAlgorithmIdentification",
            "measurementModifiers",
        }
        unsupported = set(data) - supported
        if unsupported:
            raise InputError(f"{where}: dcmqi field(s) {sorted(unsupported)} are not supported by OncoQI's writer")
        for required in ("value", "quantity", "units"):
            if required not in data:
                raise InputError(f"{where}: missing {required!r}")
        method = None
        for n, modifier in enumerate(data.get("measurementModifiers", [])):
            concept = code_from_json(modifier.get("modifier"), f"{where} measurementModifiers[{n}] modifier")
            if concept != MEASUREMENT_METHOD:
                raise InputError(f"{where}: only the Measurement Method modifier is supported, not {concept.meaning!r}")
            method = code_from_json(modifier.get("modifierValue"), f"{where} measurementModifiers[{n}] modifierValue")
        ident = data.get("measurementAlgorithmIdentification")
        return cls(
            quantity=code_from_json(data["quantity"], f"{where} quantity"),
            value=_number(data["value"], f"{where} value"),
            unit=code_from_json(data["units"], f"{where} units"),
            derivation=(
                code_from_json(data["derivationModifier"], f"{where} derivationModifier")
                if data.get("derivationModifier")
                else None
            ),
            method=method,
            algorithm=Algorithm.from_json(ident, f"{where} algorithm", dcmqi=True) if ident else None,
        )


@dataclass(frozen=True)
class QualitativeEvaluation:
    """A coded statement about a finding (e.g. "Response" = "Partial response")."""

    concept: Code
    value: Code


@dataclass
class MeasurementGroup:
    """The measurements of one segment, and how the report describes the finding.

    Attributes
    ----------
    segment
        Which SEG segment: its number, label or tracking id.
    measurements
        Numeric measurements given by the caller (merged with the computed ones).
    finding, finding_site, laterality
        Override the SEG's segmented property type / anatomic region / region modifier.
    method
        Group-level Measurement Method (e.g. the SUV calculation method).
    algorithm
        Algorithm of the given measurements.
    qualitative
        Qualitative evaluations.
    tracking_id, tracking_uid
        Override the SEG's Tracking ID/UID of the segment.
    """

    segment: int | str
    measurements: list[Measurement] = field(default_factory=list)
    finding: Code | None = None
    finding_site: Code | None = None
    laterality: Code | None = None
    method: Code | None = None
    algorithm: Algorithm | None = None
    qualitative: list[QualitativeEvaluation] = field(default_factory=list)
    tracking_id: str | None = None
    tracking_uid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling."""
        out: dict[str, Any] = {"segment": self.segment}
        for name in ("tracking_id", "tracking_uid"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("finding", "finding_site", "laterality", "method"):
            if getattr(self, name) is not None:
                out[name] = code_to_json(getattr(self, name))
        if self.algorithm is not None:
            out["algorithm"] = self.algorithm.to_json()
        if self.qualitative:
            out["qualitative"] = [
                {"concept": code_to_json(q.concept), "value": code_to_json(q.value)} for q in self.qualitative
            ]
        out["measurements"] = [m.to_json() for m in self.measurements]
        return out


@dataclass(frozen=True)
class Observer:
    """Observer context: a person (name, organization) or a device (uid, name, ...)."""

    kind: str
    name: str
    organization: str | None = None
    uid: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("PERSON", "DEVICE"):
            raise InputError(f"observer type {self.kind!r} must be PERSON or DEVICE")
        if not self.name:
            raise InputError(f"a {self.kind} observer needs a name")

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling."""
        out = {"type": self.kind, "name": self.name}
        for name in ("organization", "uid", "manufacturer", "model", "serial_number"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


#: The device observer of reports when the caller names no observer.
ONCOQI_DEVICE = Observer(
    "DEVICE",
    "OncoQI",
    uid=generate_uid(entropy_srcs=["OncoQI device observer"]),
    manufacturer="OncoQI",
    model="oncoqi " + __version__,
)


@dataclass
class ReportInfo:
    """Document-level content of the report.

    Attributes
    ----------
    observers
        At most one person and one device; :data:`ONCOQI_DEVICE` when empty.
    procedure_reported
        Procedure Reported codes (363679005 SCT "Imaging procedure" by default).
    complete, verified
        Completion Flag COMPLETE/PARTIAL and Verification Flag VERIFIED/UNVERIFIED. A
        verified report needs ``verifying_observer`` and ``verifying_organization`` (both
        Type 1 in the Verifying Observer Sequence).
    series_description, series_number, instance_number
        Of the SR.
    session, time_point
        Activity Session and Time Point of every group (optional).
    compute_statistics
        Compute each segment's volume and intensity statistics (given measurements win).
    """

    observers: list[Observer] = field(default_factory=list)
    procedure_reported: list[Code] = field(default_factory=lambda: [IMAGING_PROCEDURE])
    complete: bool = False
    verified: bool = False
    verifying_observer: str | None = None
    verifying_organization: str | None = None
    series_description: str = "Measurement Report"
    series_number: int = 301
    instance_number: int = 1
    session: str | None = None
    time_point: str | None = None
    compute_statistics: bool = True

    def __post_init__(self) -> None:
        kinds = [o.kind for o in self.observers]
        if len(kinds) != len(set(kinds)):
            raise InputError("a report has at most one PERSON and one DEVICE observer")
        if self.verified and not (self.verifying_observer and self.verifying_organization):
            raise InputError(
                "a VERIFIED report needs the verifying observer's name and organization "
                "('verifying_observer', 'verifying_organization')"
            )
        if not self.procedure_reported:
            raise InputError("a report needs at least one procedure reported code")

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling (without groups)."""
        out: dict[str, Any] = {
            "observer": [o.to_json() for o in self.observers],
            "procedure_reported": [code_to_json(c) for c in self.procedure_reported],
            "complete": self.complete,
            "verified": self.verified,
        }
        if self.verifying_observer:
            out.update(verifying_observer=self.verifying_observer, verifying_organization=self.verifying_organization)
        out.update(
            series_description=self.series_description,
            series_number=self.series_number,
            instance_number=self.instance_number,
            compute_statistics=self.compute_statistics,
        )
        for name in ("session", "time_point"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


@dataclass
class MeasurementInput:
    """What the caller gives the SR writer: document content and per-segment groups."""

    info: ReportInfo = field(default_factory=ReportInfo)
    groups: list[MeasurementGroup] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Our JSON spelling (loadable by :func:`load_measurements`)."""
        return {**self.info.to_json(), "groups": [g.to_json() for g in self.groups]}


# -- JSON parsing ------------------------------------------------------------------------------
def _unknown(given: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(given) - known)
    if extra:
        raise InputError(f"{where}: unknown key(s) {extra}; known keys: {sorted(known)}")


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {value!r} is not a number") from exc
    if not np.isfinite(number):
        raise InputError(f"{where}: {value!r} is not a finite number")
    return number


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: must be true or false, got {value!r}")
    return value


def _observer(data: Any, where: str) -> Observer:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: an observer must be an object with 'type' and 'name'")
    _unknown(data, {"type", "name", "organization", "uid", "manufacturer", "model", "serial_number"}, where)
    kind = str(data.get("type", "")).upper()
    uid = data.get("uid")
    if kind == "DEVICE" and not uid:
        uid = generate_uid(entropy_srcs=["device observer", str(data.get("name"))])
    return Observer(
        kind,
        str(data.get("name", "")).strip(),
        data.get("organization"),
        uid,
        data.get("manufacturer"),
        data.get("model"),
        data.get("serial_number"),
    )


def _codes(value: Any, where: str) -> list[Code]:
    items = value if isinstance(value, list) else [value]
    return [code_from_json(v, f"{where}[{n}]") for n, v in enumerate(items)]


def _group(data: Any, where: str) -> MeasurementGroup:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: a group must be a JSON object")
    _unknown(
        data,
        {
            "segment",
            "measurements",
            "finding",
            "finding_site",
            "laterality",
            "method",
            "algorithm",
            "qualitative",
            "tracking_id",
            "tracking_uid",
        },
        where,
    )
    segment = data.get("segment")
    if not isinstance(segment, int | str) or isinstance(segment, bool) or segment == "":
        raise InputError(f"{where}: 'segment' must name the segment by number, label or tracking id")
    where = f"{where} (segment {segment!r})"
    measurements = data.get("measurements", [])
    if not isinstance(measurements, list):
        raise InputError(f"{where}: 'measurements' must be a list")
    qualitative = []
    for n, q in enumerate(data.get("qualitative", [])):
        if not isinstance(q, Mapping) or set(q) != {"concept", "value"}:
            raise InputError(f"{where} qualitative[{n}]: must be {{'concept': code, 'value': code}}")
        qualitative.append(
            QualitativeEvaluation(
                code_from_json(q["concept"], f"{where} qualitative[{n}] concept"),
                code_from_json(q["value"], f"{where} qualitative[{n}] value"),
            )
        )
    return MeasurementGroup(
        segment=segment,
        measurements=[Measurement.from_json(m, f"{where} measurements[{n}]") for n, m in enumerate(measurements)],
        **{
            name: code_from_json(data[name], f"{where} {name}")
            for name in ("finding", "finding_site", "laterality", "method")
            if data.get(name)
        },
        algorithm=Algorithm.from_json(data["algorithm"], f"{where} algorithm") if "algorithm" in data else None,
        qualitative=qualitative,
        tracking_id=data.get("tracking_id"),
        tracking_uid=data.get("tracking_uid"),
    )


_OUR_KEYS = {
    "observer",
    "procedure_reported",
    "complete",
    "verified",
    "verifying_observer",
    "verifying_organization",
    "series_description",
    "series_number",
    "instance_number",
    "session",
    "time_point",
    "compute_statistics",
    "groups",
}


def measurements_from_json(data: Mapping[str, Any]) -> MeasurementInput:
    """Parse our measurements JSON (see the module documentation).

    Raises
    ------
    InputError
        For unknown keys or any malformed observer, code, group or measurement.
    """
    _unknown(data, _OUR_KEYS, "measurements")
    observers = data.get("observer", [])
    observers = observers if isinstance(observers, list) else [observers]
    info = ReportInfo(
        observers=[_observer(o, f"observer[{n}]") for n, o in enumerate(observers)],
        procedure_reported=_codes(data["procedure_reported"], "procedure_reported")
        if "procedure_reported" in data
        else [IMAGING_PROCEDURE],
        complete=_flag(data.get("complete", False), "complete"),
        verified=_flag(data.get("verified", False), "verified"),
        verifying_observer=data.get("verifying_observer"),
        verifying_organization=data.get("verifying_organization"),
        series_description=str(data.get("series_description", "Measurement Report")),
        series_number=int(data.get("series_number", 301)),
        instance_number=int(data.get("instance_number", 1)),
        session=data.get("session"),
        time_point=data.get("time_point"),
        compute_statistics=_flag(data.get("compute_statistics", True), "compute_statistics"),
    )
    groups = data.get("groups", [])
    if not isinstance(groups, list):
        raise InputError("measurements: 'groups' must be a list")
    return MeasurementInput(info, [_group(g, f"groups[{n}]") for n, g in enumerate(groups)])


_DCMQI_KEYS = {
    "@schema",
    "compositeContext",
    "imageLibrary",
    "observerContext",
    "activitySession",
    "timePoint",
    "procedureReported",
    "VerificationFlag",
    "CompletionFlag",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "Measurements",
}
_DCMQI_GROUP_KEYS = {
    "TrackingIdentifier",
    "TrackingUniqueIdentifier",
    "ReferencedSegment",
    "SourceSeriesForImageSegmentation",
    "segmentationSOPInstanceUID",
    "rwvmMapUsedForMeasurement",
    "MeasurementMethod",
    "Finding",
    "FindingSite",
    "Laterality",
    "measurementItems",
    "qualitativeEvaluations",
    "measurementAlgorithmIdentification",
    "activitySession",
    "timePoint",
}


def measurements_from_dcmqi(data: Mapping[str, Any]) -> MeasurementInput:
    """Parse dcmqi's TID 1500 JSON (``tid1500writer --metaDataFileName``).

    Groups are matched to segments by ``ReferencedSegment``. dcmqi's measurements are the
    complete list, so statistics are not computed (``compute_statistics`` False). A VERIFIED
    report is refused: DICOM requires the verifying organization, which dcmqi's JSON cannot
    say (our JSON can).

    Raises
    ------
    InputError
        For unknown keys, a group without ``ReferencedSegment``, a DEVICE/PERSON observer
        without its name, or an unsupported measurement field.
    """
    _unknown(data, _DCMQI_KEYS, "dcmqi measurements")
    observers = _dcmqi_observers(data.get("observerContext"))
    if str(data.get("VerificationFlag", "UNVERIFIED")).upper() == "VERIFIED":
        raise InputError(
            "VerificationFlag VERIFIED needs the verifying observer and organization, which dcmqi's JSON "
            "cannot give; write the measurements in OncoQI's JSON ('verified', 'verifying_observer', "
            "'verifying_organization') or set UNVERIFIED"
        )
    info = _dcmqi_report_info(data, observers)
    groups = [_dcmqi_group(g, f"Measurements[{n}]") for n, g in enumerate(data.get("Measurements", []))]
    return MeasurementInput(info, groups)


def _dcmqi_observers(ctx: Any) -> list[Observer]:
    """The observer of dcmqi's ``observerContext`` (none without it): dcmqi names one person or one device."""
    observers = []
    if ctx:
        kind = str(ctx.get("ObserverType", "PERSON")).upper()
        if kind == "PERSON":
            observers.append(Observer("PERSON", str(ctx.get("PersonObserverName", "")).strip()))
        else:
            name = str(ctx.get("DeviceObserverName", "")).strip()
            observers.append(
                Observer(
                    "DEVICE",
                    name,
                    uid=ctx.get("DeviceObserverUID") or generate_uid(entropy_srcs=["device observer", name]),
                    manufacturer=ctx.get("DeviceObserverManufacturer"),
                    model=ctx.get("DeviceObserverModelName"),
                    serial_number=ctx.get("DeviceObserverSerialNumber"),
                )
            )
    return observers


def _dcmqi_report_info(data: Mapping[str, Any], observers: list[Observer]) -> ReportInfo:
    """The report's header from dcmqi's top-level keys, with dcmqi's defaults; its measurements are complete."""
    return ReportInfo(
        observers=observers,
        procedure_reported=_codes(data["procedureReported"], "procedureReported")
        if "procedureReported" in data
        else [IMAGING_PROCEDURE],
        complete=str(data.get("CompletionFlag", "PARTIAL")).upper() == "COMPLETE",
        series_description=str(data.get("SeriesDescription", "Measurements")),
        series_number=int(data.get("SeriesNumber", 400)),
        instance_number=int(data.get("InstanceNumber", 1)),
        session=data.get("activitySession"),
        time_point=data.get("timePoint"),
        compute_statistics=False,
    )


def _dcmqi_group(g: Any, where: str) -> MeasurementGroup:
    """One of dcmqi's ``Measurements``, matched to its segment by ``ReferencedSegment``."""
    if not isinstance(g, Mapping):
        raise InputError(f"{where}: a measurement group must be a JSON object")
    _unknown(g, _DCMQI_GROUP_KEYS, where)
    if "ReferencedSegment" not in g:
        raise InputError(f"{where}: missing ReferencedSegment (the segment number in the SEG)")
    qualitative = [
        QualitativeEvaluation(
            code_from_json(q.get("conceptCode"), f"{where} qualitativeEvaluations[{m}]"),
            code_from_json(q.get("conceptValue"), f"{where} qualitativeEvaluations[{m}]"),
        )
        for m, q in enumerate(g.get("qualitativeEvaluations", []))
    ]
    ident = g.get("measurementAlgorithmIdentification")
    return MeasurementGroup(
        segment=int(g["ReferencedSegment"]),
        measurements=[
            Measurement.from_dcmqi(m, f"{where} measurementItems[{k}]")
            for k, m in enumerate(g.get("measurementItems", []))
        ],
        **{
            name: code_from_json(g[key], f"{where} {key}")
            for key, name in (
                ("Finding", "finding"),
                ("FindingSite", "finding_site"),
                ("Laterality", "laterality"),
                ("MeasurementMethod", "method"),
            )
            if g.get(key)
        },
        algorithm=Algorithm.from_json(ident, f"{where} algorithm", dcmqi=True) if ident else None,
        qualitative=qualitative,
        tracking_id=g.get("TrackingIdentifier"),
        tracking_uid=g.get("TrackingUniqueIdentifier"),
    )


def load_measurements(source: str | os.PathLike | Mapping[str, Any]) -> MeasurementInput:
    """Read measurements JSON in our spelling or dcmqi's (told apart by ``Measurements``).

    Raises
    ------
    InputError
        When the file is missing or not JSON, or its content is malformed (the message names
        the file and the item).
    """
    data, name = load_json_object(source, "measurements")
    try:
        return measurements_from_dcmqi(data) if "Measurements" in data else measurements_from_json(data)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc


# -- merging -----------------------------------------------------------------------------------
def merge_measurements(computed: Sequence[Measurement], given: Sequence[Measurement]) -> list[Measurement]:
    """Computed measurements, each replaced by a given one of the same quantity and derivation,
    followed by the other given ones (in their order)."""
    given_by_identity = {m.identity: m for m in given}
    merged = [given_by_identity.pop(m.identity, m) for m in computed]
    used = {m.identity for m in merged}
    return merged + [m for m in given if m.identity not in used]


def with_algorithm(measurements: Sequence[Measurement], algorithm: Algorithm) -> list[Measurement]:
    """The measurements, crediting ``algorithm`` where they name none."""
    return [m if m.algorithm is not None else replace(m, algorithm=algorithm) for m in measurements]
