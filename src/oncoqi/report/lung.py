"""Lung tumour segmentation results as a DICOM SEG + TID 1500 SR, through :func:`oncoqi.report.write_report`.

Each lesion of the label image becomes one SEG segment coded as Slicer's terminology and the
QIICR tools code tumours: category 49755003 SCT "Morphologically abnormal structure", type 86049000 SCT
"Neoplasm, Primary" for GTV-1 (label 1) and 108369006 SCT "Neoplasm" for the other lesions,
anatomic region 39607008 SCT "Lung" with the lesion's side as modifier, algorithm type AUTOMATIC
(SEMIAUTOMATIC for a lesion a reader added with a point, :mod:`oncoqi.lung.click`) with the
algorithm name and version. The SR group of each lesion holds the volume and the CT
statistics (HU mean/min/max/std, :mod:`oncoqi.report.measure`) computed from the CT, plus the RECIST long axis
(103339001 SCT) and its perpendicular (131189007 SCT) measured by :mod:`oncoqi.lung.measure`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from oncoqi import __version__
from oncoqi.dicom.seg import SegmentationMetadata, SegmentDescription
from oncoqi.dicom.source import SourceSeries
from oncoqi.dicom.sr import Measurement, MeasurementGroup, MeasurementInput, ReportInfo
from oncoqi.dicom.sr.measurements import Algorithm
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.measure import LesionMeasurement
from oncoqi.lung.naming import ALGORITHM_NAME, lesion_name
from oncoqi.report.write import WrittenReport, write_report

_SIDES = {"left": "left", "right": "right"}


def write_lesion_report(
    ct: SourceSeries | str | os.PathLike | Sequence[str | os.PathLike],
    labels: Image,
    lesions: Sequence[LesionMeasurement],
    out_dir: str | os.PathLike,
    *,
    series_uid: str | None = None,
    force: bool = False,
) -> WrittenReport:
    """Write ``seg.dcm`` and ``sr.dcm`` for the lesions of a lung tumour label image.

    Parameters
    ----------
    ct
        The CT series the labels were computed on (folder, files or loaded source).
    labels
        Label image on the CT grid: 1 GTV-1, 2..n other lesions.
    lesions
        The measurements of each label (from :func:`oncoqi.lung.measure.measure_lesions`).
    out_dir
        Folder for the two files.
    series_uid
        SeriesInstanceUID of the CT when the folder holds several series.
    force
        Replace existing ``seg.dcm``/``sr.dcm``.

    Raises
    ------
    InputError
        When there is no lesion to report, or as :func:`oncoqi.report.write_report`.
    """
    if not lesions:
        raise InputError(f"{out_dir}: no lesion to report (the segmentation is empty)")
    segments = []
    for lesion in lesions:
        kind = "SEMIAUTOMATIC" if lesion.source == "point" else "AUTOMATIC"
        algorithm = {"type": kind, "name": ALGORITHM_NAME, "version": __version__}
        data = {
            "label": lesion_name(lesion.label),
            "category": "morphologically_abnormal_structure",
            "type": "primary_neoplasm" if lesion.label == 1 else "neoplasm",
            "anatomic_region": "lung",
            "label_value": int(lesion.label),
            "algorithm": algorithm,
            "tracking_id": lesion_name(lesion.label),
        }
        if lesion.side in _SIDES:
            data["anatomic_region_modifier"] = _SIDES[lesion.side]
        segments.append(SegmentDescription.from_json(data, f"lesion {lesion.label}"))
    metadata = SegmentationMetadata(segments=segments, series_description="Lung tumours (OncoQI)")
    tool = Algorithm(ALGORITHM_NAME, __version__)
    groups = [
        MeasurementGroup(
            segment=n,
            measurements=[
                Measurement.named("recist_long_axis", lesion.recist_mm, tool),
                Measurement.named("recist_short_axis", lesion.perpendicular_mm, tool),
            ],
        )
        for n, lesion in enumerate(lesions, start=1)
    ]
    given = MeasurementInput(ReportInfo(compute_statistics=True), groups)
    return write_report(ct, [labels], metadata, Path(out_dir), given, series_uid=series_uid, force=force)
