"""Measurement table and DICOM SEG + SR export of a segmentation on its reference volume.

The Slicer side of ``oncoqi report write``: the segments of a ``vtkMRMLSegmentationNode`` are
rasterised one by one on the grid of the reference volume (so overlapping segments keep all
their voxels), measured into a ``vtkMRMLTableNode``, and exported through
:func:`oncoqi.report.write_report`, which needs the reference volume's DICOM files because a SEG
references its source instances and lies on their grid.

Where the DICOM files come from
-------------------------------
Slicer's DICOM module stores the SOP Instance UIDs of a loaded volume in the node attribute
``DICOM.instanceUIDs`` (space separated) and the files in its DICOM database. The caller passes
a lookup ``uid -> file`` (``slicer.dicomDatabase.fileForInstance`` in the application; the
database does not exist on ``slicer-core``) or the files/folder explicitly. A volume loaded from
NRRD has neither: :func:`source_files` then says so and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import slicer
import vtk
from OncoQISlicer.mrml import image_from_volume_node, labels_from_segmentation_node
from pydicom.sr.coding import Code

from oncoqi.dicom.seg import SegmentationMetadata, SegmentDescription
from oncoqi.dicom.seg.codes import NAMED_CODES
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet.peak import suv_peak
from oncoqi.report import WrittenReport, write_report

#: Node attribute where Slicer's DICOM module lists the SOP Instance UIDs a volume was loaded from.
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
#: UCUM code of SUVbw voxel values (what Slicer's PET plugins and dcmqi set as voxel value units).
SUVBW_UNITS = "{SUVbw}g/ml"
#: How to fix an export whose reference volume has no DICOM source.
NO_DICOM_FIX = "load the volume from DICOM (DICOM module) or give the source series folder"
#: Columns of the measurement table, in order (``SUVbw peak`` only for a SUV PET).
TABLE_COLUMNS = ("Segment", "Volume (ml)", "Mean", "Minimum", "Maximum", "Standard deviation", "SUVbw peak", "Units")
#: Terminology used when a segment carries none: a neoplasm, as a tumour report expects.
DEFAULT_CATEGORY = NAMED_CODES["morphologically_abnormal_structure"]
DEFAULT_TYPE = NAMED_CODES["neoplasm"]


@dataclass(frozen=True)
class SegmentRow:
    """One row of the measurement table: a segment's volume and voxel value statistics.

    Statistics are in the reference volume's units (``units``); ``suv_peak`` is set only for a
    SUVbw volume whose segment has a voxel with its 1 ml sphere inside the image.
    """

    segment_id: str
    name: str
    volume_ml: float
    mean: float
    minimum: float
    maximum: float
    std: float
    suv_peak: float | None
    units: str


def voxel_units(volume_node: slicer.vtkMRMLScalarVolumeNode) -> str:
    """The UCUM code of the volume's voxel values (``"{SUVbw}g/ml"``, ``"[hnsf'U]"``...), or ``""``."""
    units = volume_node.GetVoxelValueUnits()
    return str(units.GetCodeValue() or "") if units is not None else ""


def segment_masks(
    segmentation_node: slicer.vtkMRMLSegmentationNode, volume_node: slicer.vtkMRMLScalarVolumeNode
) -> list[tuple[str, str, Image]]:
    """Each segment as a boolean mask on the volume's grid: ``(segment id, name, mask)``, in order.

    Segments are rasterised one at a time, because a merged label image would give the voxels
    of overlapping segments to one of them only.
    """
    out = []
    for segment_id in segmentation_node.GetSegmentation().GetSegmentIDs():
        labels, names = labels_from_segmentation_node(segmentation_node, volume_node, [segment_id])
        out.append((segment_id, names[1], labels.with_array(labels.array == 1)))
    return out


def _extent(bounds: Sequence[float]) -> str:
    return " x ".join(f"[{bounds[2 * i]:.0f}, {bounds[2 * i + 1]:.0f}]" for i in range(3))


def _painted(segment: slicer.vtkSegment) -> bool:
    """Whether the segment has a voxel of its own (its labelmap may be allocated and still empty)."""
    from vtk.util.numpy_support import vtk_to_numpy

    labelmap = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    scalars = labelmap.GetPointData().GetScalars() if labelmap is not None else None
    return scalars is not None and bool((vtk_to_numpy(scalars) == segment.GetLabelValue()).any())


def _check_inside(
    segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str, volume_node: slicer.vtkMRMLScalarVolumeNode
) -> None:
    """Refuse a segment that has voxels but none of them on the volume (an empty one is fine)."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if not _painted(segment):
        return
    segment_bounds, volume_bounds = [0.0] * 6, [0.0] * 6
    segment.GetBounds(segment_bounds)
    volume_node.GetRASBounds(volume_bounds)
    raise GeometryError(
        f"segment '{segment.GetName()}' of '{segmentation_node.GetName()}' lies outside '{volume_node.GetName()}' "
        f"(segment RAS mm {_extent(segment_bounds)}, volume RAS mm {_extent(volume_bounds)}): "
        "choose the volume the segmentation was drawn on"
    )


def measure(
    segmentation_node: slicer.vtkMRMLSegmentationNode, volume_node: slicer.vtkMRMLScalarVolumeNode
) -> list[SegmentRow]:
    """Volume and voxel statistics of every segment on the reference volume.

    An empty segment (just added, not painted yet) gets volume 0 and NaN statistics rather than
    an error, because the table follows edits live; exporting it is refused by the core.

    Raises
    ------
    oncoqi.errors.InputError
        When the volume has no voxels.
    oncoqi.errors.GeometryError
        When a node is under a transform, or a painted segment lies wholly outside the volume
        (a segmentation drawn on another image): both extents are named.
    """
    values = image_from_volume_node(volume_node)
    units = voxel_units(volume_node)
    rows = []
    for segment_id, name, mask in segment_masks(segmentation_node, volume_node):
        if not mask.array.any():
            _check_inside(segmentation_node, segment_id, volume_node)
        voxels = values.array[mask.array].astype(np.float64)
        stats = (voxels.mean(), voxels.min(), voxels.max(), voxels.std()) if voxels.size else (np.nan,) * 4
        peak = suv_peak(values.array, mask.array, values.spacing) if units == SUVBW_UNITS and voxels.size else None
        rows.append(
            SegmentRow(
                segment_id=segment_id,
                name=name,
                volume_ml=voxels.size * values.voxel_volume_ml,
                mean=float(stats[0]),
                minimum=float(stats[1]),
                maximum=float(stats[2]),
                std=float(stats[3]),
                suv_peak=None if peak is None else float(peak[0]),
                units=units,
            )
        )
    return rows


def fill_table(table_node: slicer.vtkMRMLTableNode, rows: Sequence[SegmentRow]) -> slicer.vtkMRMLTableNode:
    """Replace the content of ``table_node`` with one row per segment (:data:`TABLE_COLUMNS`).

    The SUVbw peak column is empty (NaN) where no peak was computed.
    """
    table = vtk.vtkTable()
    for column in TABLE_COLUMNS:
        array = vtk.vtkStringArray() if column in ("Segment", "Units") else vtk.vtkDoubleArray()
        array.SetName(column)
        array.SetNumberOfValues(len(rows))
        table.AddColumn(array)
    for n, row in enumerate(rows):
        cells = (
            row.name,
            row.volume_ml,
            row.mean,
            row.minimum,
            row.maximum,
            row.std,
            np.nan if row.suv_peak is None else row.suv_peak,
            row.units,
        )
        for column, value in enumerate(cells):
            table.GetColumn(column).SetValue(n, value)
    table_node.SetAndObserveTable(table)
    return table_node


def _code(text: str) -> Code | None:
    """A code from Slicer's ``scheme^value^meaning`` spelling; None when empty."""
    parts = text.split("^")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    return Code(parts[1], parts[0], parts[2] or parts[1])


def segment_codes(segment: slicer.vtkSegment) -> dict[str, Code]:
    """The codes of a segment's terminology entry (tag ``TerminologyEntry``), by :class:`SegmentDescription` field.

    Slicer serialises a terminology entry as ``context~category~type~typeModifier~anatomicContext~
    region~regionModifier``, each code as ``scheme^value^meaning``. Slicer gives every new segment
    the generic entry "Tissue / Tissue"; that entry, like an entry lacking category or type, says
    no one chose a terminology, and the segment is described as a neoplasm
    (:data:`DEFAULT_CATEGORY`, :data:`DEFAULT_TYPE`), the finding a tumour report is about.
    """
    entry = segment.GetTerminology() or ""
    defaults = {"category": DEFAULT_CATEGORY, "type": DEFAULT_TYPE}
    if entry == slicer.vtkSegment().GetTerminology():
        return defaults
    fields = entry.split("~")
    parsed = {
        name: _code(fields[n]) if n < len(fields) else None
        for n, name in (
            (1, "category"),
            (2, "type"),
            (3, "type_modifier"),
            (5, "anatomic_region"),
            (6, "anatomic_region_modifier"),
        )
    }
    if parsed["category"] is None or parsed["type"] is None:
        return defaults
    return {name: code for name, code in parsed.items() if code is not None}


#: Segment tags that describe the algorithm that made a segment (Slicer's DICOM SEG exporters read
#: the first two; OncoQI's OncoQILungTumorSegmentation sets all three).
ALGORITHM_TAGS = ("DICOM.SegmentAlgorithmType", "DICOM.SegmentAlgorithmName", "DICOM.SegmentAlgorithmVersion")


def segment_algorithm(segment: slicer.vtkSegment) -> dict[str, str | None]:
    """The algorithm type, name and version of a segment from its tags.

    A segment without an algorithm type tag was drawn with Slicer's tools: SEMIAUTOMATIC, "3D
    Slicer Segment Editor". A segment made by an algorithm (e.g. AUTOMATIC from
    OncoQILungTumorSegmentation) keeps its type, name and version in the SEG.
    """
    values = []
    for tag in ALGORITHM_TAGS:
        value = vtk.reference("")
        values.append(str(value) if segment.GetTag(tag, value) and str(value) else None)
    kind, name, version = values
    if not kind:
        return {
            "algorithm_type": "SEMIAUTOMATIC",
            "algorithm_name": "3D Slicer Segment Editor",
            "algorithm_version": None,
        }
    return {"algorithm_type": kind, "algorithm_name": name, "algorithm_version": version}


def segmentation_metadata(
    segmentation_node: slicer.vtkMRMLSegmentationNode, reader: str = "", series_description: str = ""
) -> SegmentationMetadata:
    """SEG metadata of the segments in order: label, colour, codes and algorithm from each segment.

    Segment ``n`` (1-based) is described as ``labels_file`` ``n - 1``, value 1: each segment is
    exported from its own mask, so overlapping segments stay whole. The algorithm comes from the
    segment's tags (:func:`segment_algorithm`), and the reader, when given, is the SEG's content
    creator.
    """
    segmentation = segmentation_node.GetSegmentation()
    segments = []
    for n, segment_id in enumerate(segmentation.GetSegmentIDs()):
        segment = segmentation.GetSegment(segment_id)
        color = tuple(round(255 * c) for c in segment.GetColor())
        segments.append(
            SegmentDescription(
                label=segment.GetName(),
                color=color,
                labels_file=n,
                label_value=1,
                **segment_algorithm(segment),
                **segment_codes(segment),  # type: ignore[arg-type]
            )
        )
    if not segments:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no segment to export")
    return SegmentationMetadata(
        segments=segments,
        series_description=series_description.strip() or "Segmentation",
        content_creator=reader.strip() or None,
    )


def source_files(
    volume_node: slicer.vtkMRMLScalarVolumeNode,
    given: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    file_for_instance: Callable[[str], str] | None = None,
) -> str | os.PathLike | list[str]:
    """The DICOM files (or folder) the reference volume was loaded from.

    Parameters
    ----------
    volume_node
        The reference volume.
    given
        A folder or list of files chosen by the user; used as is when given.
    file_for_instance
        Looks a SOP Instance UID up in the DICOM database (``slicer.dicomDatabase.fileForInstance``).

    Raises
    ------
    oncoqi.errors.InputError
        When neither is available or the database misses files; the message says why and
        offers the fix (:data:`NO_DICOM_FIX`).
    """
    if given is not None:
        return given if isinstance(given, str | os.PathLike) else [str(f) for f in given]
    name = volume_node.GetName()
    uids = (volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if not uids:
        raise InputError(
            f"volume '{name}' was not loaded from DICOM (it has no {INSTANCE_UIDS_ATTRIBUTE} attribute), and a SEG "
            f"must reference the DICOM images it was drawn on: {NO_DICOM_FIX}"
        )
    if file_for_instance is None:
        raise InputError(f"volume '{name}' came from DICOM but no DICOM database is open: {NO_DICOM_FIX}")
    files = [file_for_instance(uid) for uid in uids]
    missing = [uid for uid, f in zip(uids, files, strict=True) if not f or not Path(f).is_file()]
    if missing:
        raise InputError(
            f"volume '{name}': {len(missing)} of its {len(uids)} DICOM instances are not in the DICOM database "
            f"(first: {missing[0]}): {NO_DICOM_FIX}"
        )
    return files


def export(
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    volume_node: slicer.vtkMRMLScalarVolumeNode,
    out_dir: str | os.PathLike,
    reader: str = "",
    series_description: str = "",
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    file_for_instance: Callable[[str], str] | None = None,
    force: bool = False,
) -> WrittenReport:
    """Write ``seg.dcm`` and ``sr.dcm`` for the segmentation on its reference volume's DICOM series.

    The SR's measurements are computed by the core from the DICOM series itself (HU for CT,
    SUVbw for PET), so they do not depend on how the volume was displayed or converted in Slicer.

    Parameters
    ----------
    segmentation_node, volume_node
        What to export and the volume it was drawn on (the segments are rasterised on its grid).
    out_dir
        Folder for the two files.
    reader, series_description
        Content creator and series description of the SEG; the SR is described as the
        measurements of the same series.
    source, file_for_instance
        See :func:`source_files`.
    force
        Replace files already in ``out_dir``.

    Raises
    ------
    oncoqi.errors.InputError, oncoqi.errors.GeometryError
        As :func:`source_files` and :func:`oncoqi.report.write_report` (e.g. the volume's grid
        is not the DICOM series' grid); nothing is written then.
    """
    files = source_files(volume_node, source, file_for_instance)
    metadata = segmentation_metadata(segmentation_node, reader, series_description)
    masks = [
        mask.with_array(mask.array.astype(np.uint8)) for _, _, mask in segment_masks(segmentation_node, volume_node)
    ]
    measurements = {"series_description": f"{metadata.series_description} measurements"}
    if reader.strip():
        measurements["observer"] = {"type": "PERSON", "name": reader.strip()}
    return write_report(files, masks, metadata, out_dir, measurements, force=force)
