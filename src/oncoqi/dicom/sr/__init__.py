"""DICOM SR TID 1500 measurement reports: write one group per SEG segment, read any report back.

Main entry points
-----------------
:func:`write_measurement_report` / :func:`build_measurement_report`
    A SEG + its source series (+ optional :class:`MeasurementInput` and the statistics computed
    above this layer, :class:`SegmentStatistics`) -> Comprehensive 3D SR.
:func:`read_measurement_report`
    Any TID 1500 SR -> :class:`MeasurementReportData` (groups, tidy table, JSON).
:func:`load_measurements`
    Measurements and document content from our JSON or dcmqi's TID 1500 JSON.
"""

from oncoqi.dicom.sr.codes import STANDARD_MEASUREMENTS, MeasurementKind
from oncoqi.dicom.sr.measurements import (
    Algorithm,
    Measurement,
    MeasurementGroup,
    MeasurementInput,
    Observer,
    QualitativeEvaluation,
    ReportInfo,
    load_measurements,
)
from oncoqi.dicom.sr.reader import MeasurementReportData, read_measurement_report
from oncoqi.dicom.sr.writer import BuiltReport, SegmentStatistics, build_measurement_report, write_measurement_report

__all__ = [
    "STANDARD_MEASUREMENTS",
    "Algorithm",
    "BuiltReport",
    "Measurement",
    "MeasurementGroup",
    "MeasurementInput",
    "MeasurementKind",
    "MeasurementReportData",
    "Observer",
    "QualitativeEvaluation",
    "ReportInfo",
    "SegmentStatistics",
    "build_measurement_report",
    "load_measurements",
    "read_measurement_report",
    "write_measurement_report",
]
