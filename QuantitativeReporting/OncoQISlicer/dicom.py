"""What the bundle's DICOM plugin offers and loads, without Qt or ``DICOMLib``.

Slicer >= 5.12 loads DICOM SEG and TID 1500 SR natively (its ``DICOMSegmentationPlugin`` and
``DICOMTID1500Plugin``), so ``DICOMOncoQIPlugin`` adds only what core lacks:

* a PET series as a volume in **SUVbw**, with the factors of :mod:`oncoqi.pet.suv` computed from
  the series' own headers (per slice, decay rules and vendor quirks included), the voxel value
  quantity/units Slicer and OncoQIQuantitativeReporting recognise (126400 DCM, ``{SUVbw}g/ml``) and the
  ``DICOM.instanceUIDs`` attribute, so the volume can be reported on as DICOM SEG + SR;
* a TID 1500 measurement report as a **table node**: one row per measurement, as
  ``oncoqi report read`` prints it.

:func:`examine` decides from the headers alone (no pixel data); :func:`load` builds the nodes on
any MRML scene. ``DICOMOncoQIPlugin.py`` wraps both in Slicer's ``DICOMPlugin`` interface.
This module imports ``oncoqi``; import it only after :func:`OncoQISlicer.dependencies.ensure_core`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pydicom
import slicer
import vtk
from pydicom.errors import InvalidDicomError

from oncoqi.dicom.seg import load_source
from oncoqi.dicom.sr import read_measurement_report
from oncoqi.dicom.sr.reader import SR_SOP_CLASSES, TABLE_COLUMNS
from oncoqi.dicom.write import PET_IMAGE_STORAGE
from oncoqi.errors import OncoQIError
from oncoqi.pet.enums import SUVType
from oncoqi.pet.suv import apply_suv, compute_suv_factors
from OncoQISlicer.mrml import volume_node_from_image

#: Confidence of a PET SUV loadable: above Slicer's plain scalar volume (0.5), so SUV is the default.
PET_SUV_CONFIDENCE = 0.95
#: Confidence of an SR table loadable: below Slicer core's TID 1500 plugin, offered beside it.
SR_TABLE_CONFIDENCE = 0.4
#: Template Identifier of a TID 1500 Measurement Report.
TID1500 = "1500"
#: Voxel value quantity of an SUV volume (DICOM CID 7180 "Standardized Uptake Value").
SUV_QUANTITY = ("126400", "DCM", "Standardized Uptake Value")


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


def _headers(files: Sequence[str]) -> list[pydicom.Dataset] | None:
    """Headers of every file, or None when one is not readable DICOM (then the list is not ours)."""
    try:
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError):
        return None


def _series_name(ds: pydicom.Dataset) -> str:
    number = ds.get("SeriesNumber")
    description = str(ds.get("SeriesDescription", "") or ds.get("Modality", "DICOM"))
    return f"{number}: {description}" if number is not None else description


def _examine_pet(files: list[str], headers: list[pydicom.Dataset]) -> Loadable:
    try:
        factors = compute_suv_factors(headers)
    except OncoQIError as exc:  # not SUV-ready: Slicer's scalar volume plugin still loads it in its units
        return Loadable("pet_suv", files, f"{_series_name(headers[0])} (SUVbw)", "PET in SUVbw", 0.0,
                        selected=False, warning=f"SUVbw cannot be computed: {exc}")  # fmt: skip
    warnings = list(factors.warnings)
    return Loadable(
        "pet_suv", files, f"{_series_name(headers[0])} (SUVbw)",
        f"PET in SUVbw (body weight {factors.weight_kg} kg)", PET_SUV_CONFIDENCE,
        warning="; ".join(warnings), warnings=warnings,
    )  # fmt: skip


def examine(file_lists: Sequence[Sequence[str]]) -> list[Loadable]:
    """What can be loaded from each list of files (Slicer passes one list per series).

    A list of PET Image Storage files gives an SUVbw loadable (not selected, confidence 0, and the
    reason as its warning when the headers lack what SUV needs); each TID 1500 SR file gives a
    table loadable. Anything else gives nothing.
    """
    out = []
    for file_list in file_lists:
        files = [str(f) for f in file_list]
        headers = _headers(files) if files else None
        if not headers:
            continue
        sop_classes = {str(ds.get("SOPClassUID", "")) for ds in headers}
        if sop_classes == {PET_IMAGE_STORAGE}:
            out.append(_examine_pet(files, headers))
            continue
        for f, ds in zip(files, headers, strict=True):
            templates = [str(t.get("TemplateIdentifier", "")) for t in ds.get("ContentTemplateSequence", [])]
            if str(ds.get("SOPClassUID", "")) in SR_SOP_CLASSES and TID1500 in templates:
                out.append(Loadable("sr_table", [f], f"{_series_name(ds)} (measurements table)",
                                    "TID 1500 measurements as a table", SR_TABLE_CONFIDENCE))  # fmt: skip
    return out


def load_pet_suv(scene: slicer.vtkMRMLScene, files: Sequence[str], name: str) -> slicer.vtkMRMLScalarVolumeNode:
    """Load a PET series as a volume node in SUVbw, marked as such for Slicer and OncoQIQuantitativeReporting.

    Raises
    ------
    oncoqi.errors.InputError, oncoqi.errors.GeometryError
        When the files are not one regular PET series or SUVbw cannot be computed.
    """
    source = load_source(list(files))
    suv = apply_suv(source.load_image(), compute_suv_factors(source.datasets), SUVType.BW)
    node = volume_node_from_image(scene, suv, name)
    quantity, units = slicer.vtkCodedEntry(), slicer.vtkCodedEntry()
    quantity.SetValueSchemeMeaning(*SUV_QUANTITY)
    units.SetValueSchemeMeaning(SUVType.BW.ucum, "UCUM", SUVType.BW.meaning)
    node.SetVoxelValueQuantity(quantity)
    node.SetVoxelValueUnits(units)
    node.SetAttribute("DICOM.instanceUIDs", " ".join(source.sop_instance_uids))
    return node


def load_sr_table(scene: slicer.vtkMRMLScene, file: str, name: str) -> slicer.vtkMRMLTableNode:
    """Load a TID 1500 SR as a table node: one row per measurement (``oncoqi.dicom.sr.reader.TABLE_COLUMNS``).

    The ``value`` column is numeric (NaN for a measurement without a value), the others text.

    Raises
    ------
    oncoqi.errors.InputError
        When the file is not a readable measurement report.
    """
    rows = read_measurement_report(file).rows()
    table = vtk.vtkTable()
    for column in TABLE_COLUMNS:
        array = vtk.vtkDoubleArray() if column == "value" else vtk.vtkStringArray()
        array.SetName(column)
        array.SetNumberOfValues(len(rows))
        for n, row in enumerate(rows):
            value = row[column]
            if column == "value":
                array.SetValue(n, float("nan") if value is None else float(value))
            else:
                array.SetValue(n, "" if value is None else str(value))
        table.AddColumn(array)
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.SetAndObserveTable(table)
    return node


def load(scene: slicer.vtkMRMLScene, loadable: Loadable) -> slicer.vtkMRMLNode:
    """Build the node ``loadable`` describes (see :func:`load_pet_suv`, :func:`load_sr_table`).

    Raises
    ------
    ValueError
        For a loadable kind this module does not make.
    """
    if loadable.kind == "pet_suv":
        return load_pet_suv(scene, loadable.files, loadable.name)
    if loadable.kind == "sr_table":
        return load_sr_table(scene, loadable.files[0], loadable.name)
    raise ValueError(f"unknown loadable kind {loadable.kind!r}")
