"""What the bundle's DICOM plugin offers, decided from Slicer's DICOM database (no Qt, no install).

Slicer calls a plugin's ``examineForImport`` on every series a user browses, on a fresh install,
before any OncoQI module has run (so before the core's PyPI dependencies could be installed). This
module therefore imports only what every Slicer >= 5.10 bundles (pydicom, numpy, SimpleITK) and
``oncoqi.pet.suv``, and reads the headers the way Slicer plugins do: the top-level tags through
``slicer.dicomDatabase.fileValue`` (cached by the database; :data:`PRECACHE_TAGS` are what the
plugin asks it to cache at import). ``ctkDICOMDatabase`` does not look inside sequences, so the
two things that live in one are read from the file with pydicom, once per series: the PET's
Radiopharmaceutical Information Sequence (dose, half-life, injection time) from its first file,
and an SR's Content Template Sequence (is it TID 1500?).

:func:`examine` never raises for a series: a series it cannot judge gives no loadable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword

#: PET Image Storage.
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
#: The SR storage classes a TID 1500 report may use (``oncoqi.dicom.sr.reader.SR_SOP_CLASSES``).
SR_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.11",
        "1.2.840.10008.5.1.4.1.1.88.22",
        "1.2.840.10008.5.1.4.1.1.88.33",
        "1.2.840.10008.5.1.4.1.1.88.34",
        "1.2.840.10008.5.1.4.1.1.88.35",
    }
)
#: Template Identifier of a TID 1500 Measurement Report.
TID1500 = "1500"
#: Confidence of a PET SUV loadable: above Slicer's plain scalar volume (0.5), so SUV is the default.
PET_SUV_CONFIDENCE = 0.95
#: Confidence of an SR table loadable: below Slicer core's TID 1500 plugin, offered beside it.
SR_TABLE_CONFIDENCE = 0.4

#: Top-level attributes ``oncoqi.pet.suv.compute_suv_factors`` reads, by keyword.
SUV_KEYWORDS = (
    "Modality",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Units",
    "DecayCorrection",
    "CorrectedImage",
    "SUVType",
    "PatientWeight",
    "PatientSize",
    "PatientSex",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "FrameReferenceTime",
    "ActualFrameDuration",
)
#: Vendor private attributes SUV may need, at their conventional block (``oncoqi.pet.suv_tags``):
#: GE's creator and post-injection date-time, Philips' creator and two scale factors.
PRIVATE_TAGS = ("0009,0010", "0009,100D", "7053,0010", "7053,1000", "7053,1009")
#: What the plugin asks the database to cache at import (``DICOMPlugin.tags``).
PRECACHE_TAGS = {
    keyword: f"{tag_for_keyword(keyword) >> 16:04X},{tag_for_keyword(keyword) & 0xFFFF:04X}" for keyword in SUV_KEYWORDS
} | {f"OncoQIPrivate{tag.replace(',', '')}": tag for tag in PRIVATE_TAGS}


@dataclass
class Loadable:
    """One thing the plugin can load from one list of files (Slicer's ``DICOMLoadable`` fields).

    ``kind`` is ``"pet_suv"`` or ``"sr_table"``; ``warning`` is shown to the user before loading.
    """

    kind: str
    files: list[str]
    name: str
    tooltip: str
    confidence: float
    selected: bool = True
    warning: str = ""
    warnings: list[str] = field(default_factory=list)


def header_from_database(database: Any, file: str) -> pydicom.Dataset:
    """A header with the top-level SUV attributes of ``file``, as the database gives them."""
    ds = pydicom.Dataset()
    for keyword in SUV_KEYWORDS:
        text = database.fileValue(file, PRECACHE_TAGS[keyword])
        if text != "":
            tag = tag_for_keyword(keyword)
            values = text.split("\\")
            ds.add_new(tag, dictionary_VR(tag), values if len(values) > 1 else text)
    for key in PRIVATE_TAGS:
        text = database.fileValue(file, key)
        if text != "":
            group, element = (int(part, 16) for part in key.split(","))
            ds.add_new((group, element), "LO", text)
    return ds


def _series_name(ds: pydicom.Dataset) -> str:
    number = ds.get("SeriesNumber")
    description = str(ds.get("SeriesDescription", "") or ds.get("Modality", "DICOM"))
    return f"{number}: {description}" if number not in (None, "") else description


def examine_pet(files: list[str], database: Any) -> Loadable:
    """The SUVbw loadable of one PET series (not selected, with the reason, when SUV is impossible)."""
    from oncoqi.errors import OncoQIError
    from oncoqi.pet.suv import compute_suv_factors

    headers = [header_from_database(database, f) for f in files]
    first = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["RadiopharmaceuticalInformationSequence"])
    if "RadiopharmaceuticalInformationSequence" in first:
        for ds in headers:
            ds.RadiopharmaceuticalInformationSequence = first.RadiopharmaceuticalInformationSequence
    name = f"{_series_name(headers[0])} (SUVbw)"
    try:
        factors = compute_suv_factors(headers)
    except OncoQIError as exc:  # not SUV-ready: Slicer's scalar volume plugin still loads it in its units
        return Loadable(
            "pet_suv", files, name, "PET in SUVbw", 0.0, selected=False, warning=f"SUVbw cannot be computed: {exc}"
        )
    warnings = list(factors.warnings)
    return Loadable(
        "pet_suv",
        files,
        name,
        f"PET in SUVbw (body weight {factors.weight_kg} kg)",
        PET_SUV_CONFIDENCE,
        warning="; ".join(warnings),
        warnings=warnings,
    )


def _is_tid1500(file: str) -> bool:
    ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["ContentTemplateSequence"])
    return any(str(item.get("TemplateIdentifier", "")) == TID1500 for item in ds.get("ContentTemplateSequence", []))


def examine_files(files: Sequence[str], database: Any) -> list[Loadable]:
    """What can be loaded from one list of files (Slicer passes one list per series)."""
    files = [str(f) for f in files]
    if not files:
        return []
    sop_classes = {database.fileValue(f, PRECACHE_TAGS["SOPClassUID"]) for f in files}
    if sop_classes == {PET_IMAGE_STORAGE}:
        return [examine_pet(files, database)]
    out = []
    for f in files:
        if database.fileValue(f, PRECACHE_TAGS["SOPClassUID"]) in SR_SOP_CLASSES and _is_tid1500(f):
            header = header_from_database(database, f)
            out.append(
                Loadable(
                    "sr_table",
                    [f],
                    f"{_series_name(header)} (measurements table)",
                    "TID 1500 measurements as a table",
                    SR_TABLE_CONFIDENCE,
                )
            )
    return out


def examine(file_lists: Sequence[Sequence[str]], database: Any) -> list[Loadable]:
    """The loadables of every list of files; a list that cannot be judged is logged and skipped.

    Parameters
    ----------
    file_lists
        One list of files per series, as Slicer's DICOM browser passes them.
    database
        ``slicer.dicomDatabase`` (``fileValue(file, "gggg,eeee")``).
    """
    out = []
    for files in file_lists:
        try:
            out.extend(examine_files(files, database))
        except Exception as exc:  # noqa: BLE001 - one odd series must not hide the others' loadables
            first = str(files[0]) if files else "(no files)"
            logging.warning("OncoQI DICOM plugin: cannot examine the series of %s: %s", first, exc)
    return out
