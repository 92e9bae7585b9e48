"""PET-IndiC indices of every segment of a segmentation (or label of a label map) over a PET node.

The definitions (mean, max, metabolic volume, SUVpeak, TLG, ...) live in :mod:`oncoqi.pet.indices`;
this module turns MRML nodes into :class:`oncoqi.Image` objects, brings each segment onto the PET
grid, runs the core once per segment and writes the results into a ``vtkMRMLTableNode``.

Each segment is rasterised on its own (overlapping segments stay whole). A segment whose
segmentation geometry is the PET grid is used voxel for voxel; one drawn on another grid (e.g. the
CT tumour from OncoQILungTumorSegmentation) is brought onto the PET grid by
:func:`oncoqi.pet.segment.transfer_labels` ``fraction``, which keeps the voxels it covers at least
half, so that its volume is preserved; a note in the row says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import slicer
import vtk
from OncoQISlicer.mrml import image_from_volume_node, labels_from_segmentation_node

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.indices import PETIndices, compute_indices
from oncoqi.pet.segment import transfer_labels
from OncoQIPETIndiCLib.suv import SUVImage, suv_image_from_node

if TYPE_CHECKING:  # the headers are pydicom datasets; this library imports only slicer, vtk, numpy, oncoqi
    from pydicom import Dataset

#: Table columns: the segment's name and ID, then the keys of ``oncoqi pet indices --json``.
TABLE_COLUMNS = ("segment", "segment_id", *PETIndices.keys())
#: Columns holding text; every other column holds numbers.
TEXT_COLUMNS = frozenset({"segment", "segment_id", "suv_peak_lps_mm", "units", "warnings"})


def label_indices(pet: Image, labels: Image) -> list[PETIndices]:
    """Indices of ``pet`` inside every non-zero label of ``labels``.

    Parameters
    ----------
    pet
        The PET (values in its units, e.g. SUVbw).
    labels
        Integer label map on the same grid.

    Returns
    -------
    list[oncoqi.pet.indices.PETIndices]
        One entry per label present, in increasing label order; empty when the map is all zero.

    Raises
    ------
    InputError
        The label map does not hold integers.
    oncoqi.errors.GeometryError
        The label map is not on the PET grid (resampling would change volumes, so the caller decides).
    """
    if not np.issubdtype(labels.array.dtype, np.integer):
        raise InputError(
            f"label map '{labels.metadata.get('name', '')}' must hold integer labels, not {labels.array.dtype}"
        )
    return [compute_indices(pet, labels, int(value)) for value in np.unique(labels.array) if value != 0]


@dataclass(frozen=True)
class SegmentIndices:
    """The indices of one segment.

    Attributes
    ----------
    segment_id, name
        The segment in the segmentation.
    mask
        The segment on the PET grid (1 inside), as the indices were computed on it.
    indices
        The indices; ``warnings`` include the SUV notes and any transfer onto the PET grid.
    """

    segment_id: str
    name: str
    mask: Image
    indices: PETIndices


def _stored_on_pet_grid(
    segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str, pet_node: slicer.vtkMRMLScalarVolumeNode
) -> bool:
    """True when the segment's stored labelmap voxels are PET voxels (same spacing and axes, origin
    shifted by whole voxels), e.g. a segment made by the threshold tool: it is then read exactly."""
    binary = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if not segmentation_node.GetSegmentation().ContainsRepresentation(binary):
        return False
    labelmap = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
    segment_axes, pet_axes = np.zeros((3, 3)), np.zeros((3, 3))
    labelmap.GetDirections(segment_axes)
    pet_node.GetIJKToRASDirections(pet_axes)
    spacing = np.asarray(pet_node.GetSpacing(), dtype=float)
    if not (np.allclose(labelmap.GetSpacing(), spacing, atol=1e-4) and np.allclose(segment_axes, pet_axes, atol=1e-6)):
        return False
    shift = np.linalg.solve(pet_axes * spacing, np.subtract(labelmap.GetOrigin(), pet_node.GetOrigin()))
    return bool(np.allclose(shift, np.round(shift), atol=1e-3))


def segment_masks_on_pet(
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    pet: Image,
    segment_ids: Sequence[str] | None = None,
) -> list[tuple[str, str, Image, tuple[str, ...]]]:
    """Segments as 0/1 masks on the PET grid: ``(segment_id, name, mask, notes)``.

    A segment stored on PET voxels is rasterised on the PET grid directly; any other is
    rasterised on the segmentation's own geometry (on the PET grid when it has none) and
    transferred onto the PET grid when that differs (module docs). Segments: all by default, in
    the segmentation's order.
    """
    segmentation = segmentation_node.GetSegmentation()
    has_geometry = bool(
        segmentation.GetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    )
    out = []
    for segment_id in segmentation.GetSegmentIDs() if segment_ids is None else segment_ids:
        direct = not has_geometry or _stored_on_pet_grid(segmentation_node, segment_id, pet_node)
        labels, names = labels_from_segmentation_node(
            segmentation_node, pet_node if direct else None, segment_ids=[segment_id]
        )
        notes: tuple[str, ...] = ()
        if pet.same_grid(labels):
            mask = pet.with_array((labels.array != 0).astype(np.uint8))
        else:
            mask = transfer_labels(labels, pet, "fraction")
            notes = ("segment transferred onto the PET grid (voxels covered at least half)",)
        out.append((segment_id, names[1], mask, notes))
    return out


def segment_indices(suv: SUVImage, masks: Sequence[tuple[str, str, Image, tuple[str, ...]]]) -> list[SegmentIndices]:
    """The indices of each mask of :func:`segment_masks_on_pet` on the SUV image.

    Empty segments (nothing on the PET grid) are skipped: they have no indices.
    """
    out = []
    for segment_id, name, mask, notes in masks:
        if not mask.array.any():
            continue
        r = compute_indices(suv.image, mask, 1)
        out.append(
            SegmentIndices(segment_id, name, mask, dataclasses.replace(r, warnings=suv.notes + notes + r.warnings))
        )
    return out


def label_map_indices_from_nodes(
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    label_node: slicer.vtkMRMLLabelMapVolumeNode,
    dicom_headers: Sequence[Dataset] | None = None,
) -> tuple[SUVImage, list[SegmentIndices]]:
    """Like :func:`segmentation_indices_from_nodes`, one row per label of a label map on the PET grid.

    Raises
    ------
    InputError
        The label map does not hold integers.
    oncoqi.errors.GeometryError
        The label map is not on the PET grid (a label map carries no partial-volume information
        to transfer it with; convert it to a segmentation first).
    """
    suv = suv_image_from_node(pet_node, dicom_headers)
    labels = image_from_volume_node(label_node)
    rows = []
    for r in label_indices(suv.image, labels):
        mask = labels.with_array((labels.array == r.label).astype(np.uint8))
        indices = dataclasses.replace(r, warnings=suv.notes + r.warnings)
        rows.append(SegmentIndices(str(r.label), f"{label_node.GetName()} {r.label}", mask, indices))
    return suv, rows


def segmentation_indices_from_nodes(
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    dicom_headers: Sequence[Dataset] | None = None,
) -> tuple[SUVImage, list[SegmentIndices]]:
    """The SUV image of the PET node (:func:`OncoQIPETIndiCLib.suv.suv_image_from_node`, which
    ``dicom_headers`` is passed to) and the indices of every non-empty segment, in the
    segmentation's order."""
    suv = suv_image_from_node(pet_node, dicom_headers)
    return suv, segment_indices(suv, segment_masks_on_pet(segmentation_node, pet_node, suv.image))


def _cell(key: str, value: object, text_columns: frozenset[str] = TEXT_COLUMNS) -> object:
    if key == "suv_peak_lps_mm":
        return "" if value is None else ", ".join(f"{x:.2f}" for x in value)  # type: ignore[attr-defined]
    if key == "warnings":
        return "; ".join(value)  # type: ignore[arg-type]
    if key in text_columns:
        return str(value)
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def write_table(
    table_node: slicer.vtkMRMLTableNode,
    columns: Sequence[str],
    records: Sequence[Mapping[str, object]],
    text_columns: frozenset[str] = TEXT_COLUMNS,
) -> None:
    """Replace the table's content with one row per record, ``columns`` in order.

    Numbers that could not be computed (None) are NaN; lists of warnings are joined by "; ".
    """
    table = vtk.vtkTable()
    for key in columns:
        array = vtk.vtkStringArray() if key in text_columns else vtk.vtkDoubleArray()
        array.SetName(key)
        for record in records:
            array.InsertNextValue(_cell(key, record[key], text_columns))
        table.AddColumn(array)
    table_node.SetAndObserveTable(table)


def write_indices_table(table_node: slicer.vtkMRMLTableNode, rows: Sequence[SegmentIndices]) -> None:
    """Replace the table's content with one row per segment and the columns :data:`TABLE_COLUMNS`.

    Indices that could not be computed (None) are NaN; the reason is in the ``warnings`` column.
    """
    records = [{"segment": row.name, "segment_id": row.segment_id, **row.indices.to_dict()} for row in rows]
    write_table(table_node, TABLE_COLUMNS, records)
