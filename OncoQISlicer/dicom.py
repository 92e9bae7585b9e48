"""How the bundle's DICOM plugin loads what it offers, without Qt or ``DICOMLib``.

Slicer >= 5.12 loads DICOM SEG and TID 1500 SR natively (its ``DICOMSegmentationPlugin`` and
``DICOMTID1500Plugin``), so ``DICOMOncoQIPlugin`` adds only what core lacks:

* a PET series as a volume in **SUVbw**, with the factors of :mod:`oncoqi.pet.suv` computed from
  the series' own headers (per slice, decay rules and vendor quirks included), the voxel value
  quantity/units Slicer and OncoQIQuantitativeReporting recognise (126400 DCM, ``{SUVbw}g/ml``) and
  the ``DICOM.instanceUIDs`` attribute, so the volume can be reported on as DICOM SEG + SR;
* a TID 1500 measurement report as a **table node**: one row per measurement, as
  ``oncoqi report read`` prints it.

What to offer is decided by :mod:`OncoQISlicer.dicom_examine` from the DICOM database (it imports
nothing Slicer lacks); :func:`load` builds the nodes on any MRML scene. It imports the whole core:
import it only after :func:`OncoQISlicer.dependencies.ensure_core`.
"""

from __future__ import annotations

from collections.abc import Sequence

import slicer
import vtk

from oncoqi.dicom.source import load_source
from oncoqi.dicom.sr import read_measurement_report
from oncoqi.dicom.sr.reader import TABLE_COLUMNS
from oncoqi.pet.enums import SUVType
from oncoqi.pet.suv import apply_suv, compute_suv_factors
from OncoQISlicer.dicom_examine import Loadable
from OncoQISlicer.mrml import volume_node_from_image

#: Voxel value quantity of an SUV volume (DICOM CID 7180 "Standardized Uptake Value").
SUV_QUANTITY = ("126400", "DCM", "Standardized Uptake Value")


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
