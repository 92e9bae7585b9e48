"""PET-IndiC indices as a DICOM SEG + TID 1500 SR, through :func:`oncoqi.report.write_report`.

The indices become TID 300 measurements with the codes PET-IndiC and QuantitativeReporting
write, so that dcmqi's ``tid1500reader``, OHIF and Slicer read them under the names they know:

================  =============================================  ===============================
index             quantity                                       derivation
================  =============================================  ===============================
suv_mean/min/max  SUV quantity of the flavour (126401 DCM SUVbw)  mean / minimum / maximum
suv_std           same                                           standard deviation
median            same                                           373099004 SCT Median
suv_peak          same                                           126031 DCM Peak Value Within ROI
mtv_ml            126032 DCM Metabolic Volume (ml)               -
tlg               126033 DCM Total Lesion Glycolysis (g)         -
sam               126037 DCM Standardized Added Metabolic        -
                  Activity (g)
sam_background    126038 DCM SAM Background (SUV unit)           -
================  =============================================  ===============================

The SUV quantities carry the flavour's calculation method (e.g. 126410 DCM "SUV body weight
calculation method"). TLG and SAM are SUV x ml, i.e. grams for every flavour. The other indices
(RMS, quartiles, glycolysis and distribution per quarter) have no standard code: they stay in the
JSON output. No statistics are computed here (``compute_statistics`` off), so the report holds
exactly the values printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydicom.sr.codedict import codes

from oncoqi import __version__
from oncoqi.dicom.seg import SegmentationMetadata, SegmentDescription
from oncoqi.dicom.source import SourceSeries
from oncoqi.dicom.sr import Measurement, MeasurementGroup, MeasurementInput, ReportInfo
from oncoqi.dicom.sr.codes import DERIVATIONS, GRAM, PEAK
from oncoqi.dicom.sr.measurements import Algorithm
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.enums import SUVType
from oncoqi.pet.indices import PETIndices
from oncoqi.report.write import WrittenReport, write_report

#: The algorithm credited with the indices in the SR.
INDICES_ALGORITHM = Algorithm("OncoQI PET-IndiC indices", __version__)


def indices_measurements(indices: PETIndices, suv_type: SUVType = SUVType.BW) -> list[Measurement]:
    """The SR measurements of one segment's indices (table in the module docs).

    Indices that could not be computed (None: SUVpeak near the border, SAM of a segment
    filling the image) are left out.
    """
    q, unit, method = suv_type.quantity_code, suv_type.unit_code, suv_type.method_code
    suv_values = [
        (indices.suv_mean, DERIVATIONS["mean"]),
        (indices.suv_min, DERIVATIONS["min"]),
        (indices.suv_max, DERIVATIONS["max"]),
        (indices.suv_std, DERIVATIONS["std"]),
        (indices.median, codes.SCT.Median),
        (indices.suv_peak, PEAK),
    ]
    out = [Measurement(q, float(v), unit, d, method, INDICES_ALGORITHM) for v, d in suv_values if v is not None]
    out.append(Measurement.named("mtv", indices.mtv_ml, INDICES_ALGORITHM))
    out.append(Measurement.named("tlg", indices.tlg, INDICES_ALGORITHM))
    if indices.sam is not None and indices.sam_background is not None:
        sam_q = codes.DCM.StandardizedAddedMetabolicActivity
        bg_q = codes.DCM.StandardizedAddedMetabolicActivityBackground
        out.append(Measurement(sam_q, float(indices.sam), GRAM, algorithm=INDICES_ALGORITHM))
        out.append(Measurement(bg_q, float(indices.sam_background), unit, method=method, algorithm=INDICES_ALGORITHM))
    return out


def write_indices_report(
    pet: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    masks: Sequence[tuple[str, Image, int]],
    results: Sequence[PETIndices],
    out_dir: str | os.PathLike,
    suv_type: SUVType = SUVType.BW,
    *,
    series_uid: str | None = None,
    algorithms: Sequence[Mapping[str, Any] | None] | None = None,
) -> WrittenReport:
    """Write ``seg.dcm`` (one segment per entry of ``masks``) and ``sr.dcm`` with their indices.

    Parameters
    ----------
    pet
        The PET series the masks lie on: folder, files or loaded :class:`SourceSeries`.
    masks
        ``(name, label image on the PET grid, value)`` per segment, in the order of ``results``.
    results
        The indices of each segment.
    out_dir
        Folder for the two files.
    suv_type
        The SUV flavour the indices were computed in.
    series_uid
        SeriesInstanceUID of the PET when the folder holds several series.
    algorithms
        What made each mask, in the SEG metadata's JSON spelling (``{"type": "AUTOMATIC", "name":
        "OncoQI LungTumorSegmentation"}``), one per mask: a SEG segment's own algorithm, the lung
        network's, the PET threshold's. None (for all, or for one) means the origin is unknown,
        such as a label map given by the user: the segment is then MANUAL, which names no algorithm.

    Raises
    ------
    InputError
        When ``masks`` and ``results`` differ in length, or as :func:`oncoqi.report.write_report`.
    """
    if len(masks) != len(results) or not masks:
        raise InputError(f"{len(masks)} segment(s) but {len(results)} result(s): one result per segment is needed")
    algorithms = list(algorithms) if algorithms is not None else [None] * len(masks)
    if len(algorithms) != len(masks):
        raise InputError(f"{len(masks)} segment(s) but {len(algorithms)} algorithm(s)")
    segments = [
        SegmentDescription.from_json(
            {
                "label": name,
                "category": "morphologically_abnormal_structure",
                "type": "neoplasm",
                "labels_file": n,
                "label_value": int(value),
                "algorithm": dict(algorithm) if algorithm else {"type": "MANUAL"},
            },
            f"segment {name!r}",
        )
        for n, ((name, _, value), algorithm) in enumerate(zip(masks, algorithms, strict=True))
    ]
    metadata = SegmentationMetadata(segments=segments, series_description="PET lesions (OncoQI PET-IndiC)")
    groups = [  # by segment number (the metadata order), since names need not be unique
        MeasurementGroup(segment=n, measurements=indices_measurements(r, suv_type), method=suv_type.method_code)
        for n, r in enumerate(results, start=1)
    ]
    given = MeasurementInput(ReportInfo(compute_statistics=False), groups)
    return write_report(pet, [m for _, m, _ in masks], metadata, Path(out_dir), given, series_uid=series_uid)
