"""Quantitative reports: results as a DICOM SEG and its TID 1500 SR, with OncoQI's statistics.

The reporting layer sits above the science (:mod:`oncoqi.lung`, :mod:`oncoqi.pet`) and below the
cohort runner: it takes their results, computes the segment statistics and hands everything to the
DICOM encoders (:mod:`oncoqi.dicom.seg`, :mod:`oncoqi.dicom.sr`), which compute nothing themselves.

:mod:`oncoqi.report.write`
    :func:`write_report` (labels + metadata (+ measurements) -> ``seg.dcm`` and ``sr.dcm``),
    :func:`build_sr` / :func:`write_sr` (the SR of an existing SEG), :func:`read_report`.
:mod:`oncoqi.report.measure`
    The statistics of each segment: volume, HU (CT) or SUVbw (PET) mean/min/max/std, SUVpeak.
:mod:`oncoqi.report.lung`
    Lung tumour lesions as a SEG + SR (:func:`write_lesion_report`).
:mod:`oncoqi.report.pet`
    PET-IndiC indices as a SEG + SR (:func:`write_indices_report`).
:mod:`oncoqi.report.evidence`
    GTV-1 by evidence with a PET: the CT lesions' SUVmax (:func:`oncoqi.pet.ct_lesions_on_pet`)
    given to :func:`oncoqi.lung.primary.order_by_evidence` (``order_lesions_on_pet``).
"""

from oncoqi.report.lung import write_lesion_report
from oncoqi.report.measure import STATISTICS_ALGORITHM, SourceStatistics, segment_statistics, source_values
from oncoqi.report.pet import INDICES_ALGORITHM, indices_measurements, write_indices_report
from oncoqi.report.write import SEG_NAME, SR_NAME, WrittenReport, build_sr, read_report, write_report, write_sr

__all__ = [
    "INDICES_ALGORITHM",
    "SEG_NAME",
    "SR_NAME",
    "STATISTICS_ALGORITHM",
    "SourceStatistics",
    "WrittenReport",
    "build_sr",
    "indices_measurements",
    "read_report",
    "segment_statistics",
    "source_values",
    "write_indices_report",
    "write_lesion_report",
    "write_report",
    "write_sr",
]
