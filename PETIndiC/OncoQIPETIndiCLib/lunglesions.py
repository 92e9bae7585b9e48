"""Lung tumour segments measured on the PET, with the PET's evidence choosing GTV-1.

OncoQILungTumorSegmentation names its segments "GTV-1", "Lesion 2", ... by the CT alone; with a
PET of the same study, FDG avidity is evidence that a lesion is a tumour (issue 25). This module
does in Slicer what ``oncoqi batch`` does for a cohort, with the same core:

1. the lesion segments (those the lung module tagged with :data:`LESION_LABEL_TAG`, else every
   segment) are rasterised on the CT they were made on, segment ``n`` of the node as label ``n``,
   and measured (:func:`oncoqi.lung.measure.measure_lesions`);
2. :func:`oncoqi.report.evidence.order_lesions_on_pet` carries each lesion to the PET grid
   (nearest neighbour, as the cohort runner), takes its SUVmax as evidence
   (:func:`oncoqi.lung.primary.order_by_evidence`: undoubted lesions first, by volume), and gives
   the PET-IndiC indices by new label and the PET-thresholded lesion around the new GTV-1;
3. only then is the scene changed: the segments are renamed and reordered by their new label
   (each keeps its voxels; name, colour, tag and primary/other neoplasm type follow the label as
   the lung module sets them), the table gets one row per lesion with its indices and doubts and
   a row for the PET-thresholded GTV-1, which also becomes a segment of a PET segmentation.

:func:`measure_lung_lesions_on_pet` computes and changes nothing; :func:`write_lung_lesions_on_pet`
writes its result into the scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import slicer
import vtk
from OncoQISlicer.mrml import (
    ALGORITHM_NAME_TAG,
    ALGORITHM_TYPE_TAG,
    add_segment_from_mask,
    image_from_volume_node,
    labels_from_segmentation_node,
)

from oncoqi.dicom.seg.codes import DEFAULT_COLORS, NAMED_CODES
from oncoqi.errors import InputError
from oncoqi.lung.ct import check_ct
from oncoqi.lung.measure import measure_lesions
from oncoqi.lung.naming import lesion_name
from oncoqi.pet.indices import PETIndices
from oncoqi.pet.segment import THRESHOLD_ALGORITHM_NAME
from oncoqi.report.evidence import LesionsOnPET, describe_renumbering, order_lesions_on_pet
from OncoQIPETIndiCLib.indices import TEXT_COLUMNS, write_table
from OncoQIPETIndiCLib.suv import SUVImage, suv_image_from_node

if TYPE_CHECKING:  # the headers are pydicom datasets; this library imports only slicer, vtk, numpy, oncoqi
    from pydicom import Dataset

#: The tag OncoQILungTumorSegmentation puts on each lesion segment: its label value (1 is GTV-1).
LESION_LABEL_TAG = "OncoQI.LesionLabel"
#: Tag of the PET-thresholded segment: the ID of the CT lesion segmentation it was made from, so
#: that a new run replaces it and nothing else of the PET segmentation.
PET_LESION_OF_TAG = "OncoQI.PETLesionOf"
#: Columns of the lesion table: the segment, its doubts and CT volume, then the PET-IndiC indices.
LESION_TABLE_COLUMNS = ("segment", "segment_id", "doubts", "ct_volume_ml", *PETIndices.keys())
#: Column units shown by the table view.
COLUMN_UNITS = {
    "ct_volume_ml": "ml",
    "suv_mean": "SUVbw",
    "suv_max": "SUVbw",
    "suv_peak": "SUVbw",
    "mtv_ml": "ml",
    "tlg": "SUVbw ml",
}
#: Columns holding text; every other column holds numbers.
LESION_TEXT_COLUMNS = TEXT_COLUMNS | {"doubts"}
#: The lesion types the lung module gives GTV-1 and the other lesions (:data:`NAMED_CODES` names).
PRIMARY_TYPE, OTHER_TYPE = "primary_neoplasm", "neoplasm"


def _code(name: str) -> str:
    """A named code in Slicer's terminology serialisation, ``scheme^value^meaning``."""
    code = NAMED_CODES[name]
    return f"{code.scheme_designator}^{code.value}^{code.meaning}"


def _tag(segment: slicer.vtkSegment, name: str) -> str:
    """A segment's tag value ("" when it has none)."""
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


@dataclass(frozen=True)
class LungLesionsOnPET:
    """What :func:`measure_lung_lesions_on_pet` found, before anything is written.

    Attributes
    ----------
    segment_ids
        The lesion segment of each former label (label ``n`` is ``segment_ids[n - 1]``).
    former_names
        Their names before, by former label.
    empty
        Lesion segments with no voxel on the CT grid (not measured, left as they are).
    suv
        The PET in SUVbw and where its scale came from.
    found
        The core's result (renumbered lesions, doubts, indices, PET-thresholded GTV-1).
    threshold
        The PET threshold (method, value) of the PET-thresholded GTV-1.
    """

    segment_ids: list[str]
    former_names: dict[int, str]
    empty: list[str]
    suv: SUVImage
    found: LesionsOnPET
    threshold: tuple[str, float]

    def new_order(self) -> list[str]:
        """The measured lesion segments by new label (GTV-1 first)."""
        return [self.segment_ids[old - 1] for old, _ in sorted(self.found.renumbered.items(), key=lambda p: p[1])]

    def status(self, pet_name: str) -> str:
        """Lines for the module panel: what was measured, what the evidence changed, the doubts."""
        lesions = self.found.lesions
        on_pet = {lesion.label: lesion for lesion in self.found.on_pet.lesions}
        gtv1 = on_pet[1].indices
        suvmax = f"SUVmax {gtv1.suv_max:.1f}" if gtv1 is not None else "no PET voxel"
        lines = [f"{len(lesions)} lesion(s) measured on '{pet_name}': GTV-1 {lesions[0].volume_ml:.1f} ml, {suvmax}."]
        lines += describe_renumbering(self.found, self.former_names) or ["GTV-1 and the numbering are unchanged."]
        lines += [f"{lesion_name(m.label)} is doubted: {'; '.join(m.doubts)}." for m in lesions[1:] if m.doubts]
        primary = self.found.on_pet.primary
        if primary is not None and primary.indices is not None:
            method, value = self.threshold
            lines.append(f"PET-thresholded GTV-1 ({method} {value:g}): MTV {primary.indices.mtv_ml:.1f} ml.")
        elif primary is not None:
            lines.append(f"GTV-1: {'; '.join(primary.notes)}.")
        lines += [f"'{name}' is empty: not measured." for name in self.empty]
        return "\n".join(lines + list(self.suv.notes))


class WrittenLungLesions(NamedTuple):
    """What the Logic's ``measureLungLesionsOnPET`` filled, and the panel's status text."""

    table: slicer.vtkMRMLTableNode
    petSegmentation: slicer.vtkMRMLSegmentationNode | None
    status: str


def lesion_segment_ids(segmentation_node: slicer.vtkMRMLSegmentationNode) -> list[str]:
    """The lesion segments in the node's order: those tagged by the lung module, else all of them."""
    segmentation = segmentation_node.GetSegmentation()
    ids = list(segmentation.GetSegmentIDs())
    tagged = [i for i in ids if segmentation.GetSegment(i).HasTag(LESION_LABEL_TAG)]
    return tagged or ids


def lesion_color(label: int) -> tuple[float, float, float]:
    """Display colour (0-1) of a lesion label: the DICOM SEG default palette in order, as the lung module."""
    red, green, blue = DEFAULT_COLORS[(label - 1) % len(DEFAULT_COLORS)]
    return red / 255.0, green / 255.0, blue / 255.0


def measure_lung_lesions_on_pet(
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    ct_node: slicer.vtkMRMLScalarVolumeNode,
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    threshold: tuple[str, float] = ("background", 50.0),
    dicom_headers: Sequence[Dataset] | None = None,
) -> LungLesionsOnPET:
    """Measure the lesion segments on the CT and the PET and number them by evidence; writes nothing.

    Parameters
    ----------
    segmentation_node
        The lung tumour segmentation (module documentation).
    ct_node
        The CT it was made on (mean HU, the grid the lesions are measured on).
    pet_node
        The PET of the same study; SUV as :func:`OncoQIPETIndiCLib.suv.suv_image_from_node`.
    threshold
        Method and value of the PET-thresholded GTV-1 (:func:`oncoqi.pet.segment.threshold_segment`).
    dicom_headers
        The PET's DICOM headers, when Slicer's DICOM database does not know the volume.

    Raises
    ------
    oncoqi.errors.InputError
        The CT holds no CT numbers, or no lesion segment has voxels.
    oncoqi.errors.GeometryError
        A node is under a transform.
    """
    ct = image_from_volume_node(ct_node)
    check_ct(ct, f"volume '{ct_node.GetName()}'")
    segment_ids = lesion_segment_ids(segmentation_node)
    labels, names = labels_from_segmentation_node(segmentation_node, ct_node, segment_ids)
    lesions = measure_lesions(labels, ct)
    if not lesions:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no lesion voxels on '{ct_node.GetName()}'")
    measured = {lesion.label for lesion in lesions}
    suv = suv_image_from_node(pet_node, dicom_headers)
    method, value = threshold
    found = order_lesions_on_pet(suv.image, labels, lesions, method=method, value=value)
    empty = [names[n] for n in names if n not in measured]
    former_names = {n: names[n] for n in measured}
    return LungLesionsOnPET(segment_ids, former_names, empty, suv, found, (method, float(value)))


def _retype(terminology: str, primary: bool) -> str:
    """The terminology (Slicer's ``context~category~type~...``) with the lung module's type for GTV-1
    or another lesion when it has one of those two types; any other terminology is left alone."""
    fields = terminology.split("~")
    values = {NAMED_CODES[name].value for name in (PRIMARY_TYPE, OTHER_TYPE)}
    type_code = fields[2].split("^") if len(fields) == 7 else []
    if len(type_code) == 3 and type_code[1] in values:
        fields[2] = _code(PRIMARY_TYPE if primary else OTHER_TYPE)
    return "~".join(fields)


def rename_lesion_segments(segmentation_node: slicer.vtkMRMLSegmentationNode, result: LungLesionsOnPET) -> None:
    """Name, colour, tag, type and order each lesion segment by its new label; its voxels stay."""
    segmentation = segmentation_node.GetSegmentation()
    for label, segment_id in enumerate(result.new_order(), start=1):
        segment = segmentation.GetSegment(segment_id)
        segment.SetName(lesion_name(label))
        segment.SetColor(*lesion_color(label))
        segment.SetTag(LESION_LABEL_TAG, str(label))
        if segment.GetTerminology():
            segment.SetTerminology(_retype(segment.GetTerminology(), label == 1))
        segmentation.SetSegmentIndex(segment_id, label - 1)


def _table_records(result: LungLesionsOnPET, segment_ids: dict[int, str], pet_segment_id: str) -> list[dict[str, Any]]:
    """One record per lesion (new label order), then the PET-thresholded GTV-1's, by table column."""
    on_pet = {lesion.label: lesion for lesion in result.found.on_pet.lesions}
    units = str(result.suv.image.metadata.get("units", ""))
    records = []
    for lesion in result.found.lesions:
        entry = on_pet[lesion.label]
        indices = entry.indices.to_dict() if entry.indices is not None else dict.fromkeys(PETIndices.keys())
        indices.update(label=lesion.label, units=units, warnings=[*result.suv.notes, *entry.notes])
        segment = {"segment": lesion_name(lesion.label), "segment_id": segment_ids[lesion.label]}
        records.append({**segment, "doubts": "; ".join(lesion.doubts), "ct_volume_ml": lesion.volume_ml, **indices})
    primary = result.found.on_pet.primary
    if primary is not None and primary.indices is not None:
        method, value = result.threshold
        indices = primary.indices.to_dict()
        indices["warnings"] = [*result.suv.notes, *primary.notes]
        name = f"GTV-1 PET {method} {value:g}"
        records.append({"segment": name, "segment_id": pet_segment_id, "doubts": "", "ct_volume_ml": None, **indices})
    return records


def _pet_segment(
    scene: slicer.vtkMRMLScene,
    node: slicer.vtkMRMLSegmentationNode | None,
    result: LungLesionsOnPET,
    source: slicer.vtkMRMLSegmentationNode,
    pet_node: slicer.vtkMRMLScalarVolumeNode,
) -> tuple[slicer.vtkMRMLSegmentationNode | None, str]:
    """The PET-thresholded GTV-1 as a segment of ``node`` (a new node when None), replacing the one an
    earlier run made from ``source``; ``(node, segment ID)``, ``(node, "")`` without a thresholded lesion."""
    primary = result.found.on_pet.primary
    if primary is None or primary.threshold is None:
        return node, ""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{source.GetName()} PET lesions")
        node.CreateDefaultDisplayNodes()
        node.SetReferenceImageGeometryParameterFromVolumeNode(pet_node)
    segmentation = node.GetSegmentation()
    for segment_id in list(segmentation.GetSegmentIDs()):
        if _tag(segmentation.GetSegment(segment_id), PET_LESION_OF_TAG) == source.GetID():
            segmentation.RemoveSegment(segment_id)
    method, value = result.threshold
    mask = np.asarray(primary.threshold.mask.array)
    segment_id = add_segment_from_mask(node, result.suv.image, mask, f"GTV-1 PET {method} {value:g}", lesion_color(1))
    segment = segmentation.GetSegment(segment_id)
    segment.SetTag(PET_LESION_OF_TAG, source.GetID())
    segment.SetTag(ALGORITHM_TYPE_TAG, "AUTOMATIC")  # the threshold around GTV-1, as the cohort runner
    segment.SetTag(ALGORITHM_NAME_TAG, THRESHOLD_ALGORITHM_NAME)
    return node, segment_id


def write_lung_lesions_on_pet(
    result: LungLesionsOnPET,
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    pet_node: slicer.vtkMRMLScalarVolumeNode,
    table_node: slicer.vtkMRMLTableNode,
    pet_segmentation_node: slicer.vtkMRMLSegmentationNode | None = None,
) -> slicer.vtkMRMLSegmentationNode | None:
    """Rename the segments, fill the table and add the PET-thresholded GTV-1 (module documentation).

    Returns the PET segmentation holding the PET-thresholded GTV-1 (``pet_segmentation_node``, or a
    new node when it was None and there is a thresholded lesion).
    """
    scene = segmentation_node.GetScene()
    rename_lesion_segments(segmentation_node, result)
    pet_segmentation_node, pet_segment_id = _pet_segment(
        scene, pet_segmentation_node, result, segmentation_node, pet_node
    )
    segment_ids = dict(enumerate(result.new_order(), start=1))
    records = _table_records(result, segment_ids, pet_segment_id)
    write_table(table_node, LESION_TABLE_COLUMNS, records, LESION_TEXT_COLUMNS)
    for column, unit in COLUMN_UNITS.items():
        table_node.SetColumnUnitLabel(column, unit)
    return pet_segmentation_node
