"""Export the PET-IndiC indices of a segmentation as DICOM SEG + TID 1500 SR.

The writer is OncoQIQuantitativeReporting's (:func:`oncoqi.report.write_report`, reached through
:func:`oncoqi.report.pet.write_indices_report`, which turns the indices into coded measurements):
the SEG references the PET series, so the PET's DICOM files are needed, either found through
Slicer's DICOM database (the node was loaded from DICOM) or given by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import slicer
from OncoQISlicer.mrml import segment_algorithm

from oncoqi.dicom.source import load_source
from oncoqi.errors import InputError
from oncoqi.pet.enums import SUVType
from oncoqi.report import WrittenReport
from oncoqi.report.pet import write_indices_report
from OncoQIPETIndiCLib.indices import segmentation_indices_from_nodes
from OncoQIPETIndiCLib.suv import pet_dicom_files


def check_export_folder(out_dir: str | os.PathLike | None) -> Path:
    """The export folder as an absolute path, or an error saying why nothing can be written there.

    Checked before any work, so a bad choice costs nothing and writes nothing: no folder chosen
    (an unset ``pathlib.Path`` parameter is ``.``, the process's working directory, which the user
    never sees), a relative path, a file on the way, or a folder the user cannot write into.

    Raises
    ------
    InputError
        Naming the folder and the reason.
    """
    if out_dir is None or str(out_dir).strip() in ("", "."):
        raise InputError("Choose an export folder first (Export section).")
    folder = Path(out_dir).expanduser()
    if not folder.is_absolute():
        raise InputError(f"export folder '{out_dir}' is relative: choose a folder with the folder button")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"export folder '{folder}' cannot be written: '{existing}' is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"export folder '{folder}' cannot be written: '{existing}' is not writable")
    return folder


def export_indices_report(
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    out_dir: str | os.PathLike,
    pet_dicom: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
) -> WrittenReport:
    """Write ``seg.dcm`` and ``sr.dcm`` with every non-empty segment and its indices (SUVbw).

    Parameters
    ----------
    pet_node, segmentation_node
        The PET volume (loaded from ``pet_dicom``) and the lesion segmentation.
    out_dir
        Output folder.
    pet_dicom
        The PET series (folder or files); by default the node's files in Slicer's DICOM database.

    Raises
    ------
    InputError
        When the folder cannot be written (:func:`check_export_folder`), the PET's DICOM files are
        unknown, no segment is non-empty, or as the writers.
    """
    out_dir = check_export_folder(out_dir)
    source = pet_dicom if pet_dicom is not None else pet_dicom_files(pet_node)
    if not source:
        raise InputError(
            f"'{pet_node.GetName()}' was not loaded from DICOM (or its files are not in the DICOM database): "
            "the SEG and SR must reference the PET series, so load it from DICOM or give its folder"
        )
    series = load_source(source)
    _, rows = segmentation_indices_from_nodes(pet_node, segmentation_node, series.datasets)
    if not rows:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no non-empty segment on the PET grid")
    masks = [(row.name, row.mask, 1) for row in rows]
    algorithms = [segment_algorithm(segmentation_node, row.segment_id) for row in rows]  # untagged: MANUAL
    return write_indices_report(
        series, masks, [row.indices for row in rows], out_dir, SUVType.BW, algorithms=algorithms
    )
