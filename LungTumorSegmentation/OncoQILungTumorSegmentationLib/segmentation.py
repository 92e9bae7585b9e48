"""Lung tumour segmentation of a CT volume node, and its results as MRML nodes.

The work is split by thread, because MRML is not thread-safe and segmenting takes a while:

* :func:`ct_image_from_node` (main thread) copies the CT out of the scene and refuses, at once,
  a volume that cannot be a chest CT (empty, not in HU, not axial), before any waiting;
* :func:`segment_image` (any thread) runs :func:`oncoqi.lung.segment.segment_ct` on that copy and
  touches no MRML, so the Widget runs it in a :class:`~OncoQILungTumorSegmentationLib.job.BackgroundJob`;
* :func:`write_results` (main thread) turns the result into a segmentation node (one segment
  per lesion, coded for DICOM SEG export), a measurement table and optionally a lung
  segmentation. It builds everything before it changes a node the user chose, and removes what
  it added when it fails, so an error leaves the scene as it was. Segments are handed to Slicer
  cropped to each lesion's bounding box, because this step holds the GUI thread: ten times faster
  than full-size masks for lesions in a large CT.

Segments are named and coded as :mod:`oncoqi.report.lung` codes them in the SEG that
``oncoqi lung segment --report`` writes, so an export from Slicer describes the lesions the same
way: "GTV-1" (label 1) and "Lesion n", category 49755003 SCT, type 86049000 SCT "Neoplasm, Primary"
for GTV-1 and 108369006 SCT "Neoplasm" for the others (the network cannot tell a second primary
from a metastasis), anatomic region 39607008 SCT "Lung" with the lesion's side as modifier.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import slicer
import vtk
from OncoQISlicer.mrml import (  # the tags are re-exported: the module's Test reads them here
    ALGORITHM_NAME_TAG,
    ALGORITHM_TYPE_TAG,
    ALGORITHM_VERSION_TAG,
    LPS_TO_RAS,
    image_from_volume_node,
    require_untransformed,
    segmentation_node_from_labels,
)

from oncoqi import __version__
from oncoqi.dicom.seg.codes import DEFAULT_COLORS, NAMED_CODES
from oncoqi.errors import CancelToken, InputError, check_cancel
from oncoqi.image import Image
from oncoqi.lung.ct import check_axial, check_ct
from oncoqi.lung.isolation import LEFT_LUNG, RIGHT_LUNG
from oncoqi.lung.measure import LesionMeasurement
from oncoqi.lung.naming import ALGORITHM_NAME, lesion_name
from oncoqi.lung.onnx_model import Progress
from oncoqi.lung.segment import TumourSegmentation, resolve_model, segment_ct

#: Slicer's terminology contexts that the codes below come from (``vtkSegment::GetTerminology`` format).
CATEGORY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


def _slicer_code(name: str, meaning: str | None = None) -> str:
    """A code of :data:`~oncoqi.dicom.seg.codes.NAMED_CODES` (those the command line's SEG uses) as
    Slicer serialises it: ``scheme^value^meaning``, with Slicer's own meaning where it differs."""
    code = NAMED_CODES[name]
    return f"{code.scheme_designator}^{code.value}^{meaning or code.meaning}"


#: Codes as Slicer serialises them (meanings as in Slicer's lists).
MORPHOLOGICALLY_ALTERED_STRUCTURE = _slicer_code(
    "morphologically_abnormal_structure", "Morphologically Altered Structure"
)
PRIMARY_NEOPLASM = _slicer_code("primary_neoplasm")
NEOPLASM = _slicer_code("neoplasm")
ANATOMICAL_STRUCTURE = _slicer_code("anatomical_structure")
LUNG = _slicer_code("lung")
LATERALITY = {side: _slicer_code(side) for side in ("right", "left")}
_NO_CODE = "^^"

#: The lesion's label value in the core's label image (links a segment to its table row).
LESION_LABEL_TAG = "OncoQI.LesionLabel"

#: Lesions listed in the module panel's summary (the table lists all).
SUMMARY_LESIONS = 5
#: Lung segment names by the core's lung label value.
LUNG_NAMES = {RIGHT_LUNG: "Right lung", LEFT_LUNG: "Left lung"}
_LUNG_SIDES = {RIGHT_LUNG: "right", LEFT_LUNG: "left"}
#: Display colour of the lungs (Slicer's General Anatomy list gives both lungs this one).
LUNG_COLOR = (128 / 255.0, 174 / 255.0, 128 / 255.0)


@dataclass(frozen=True)
class TableColumn:
    """One column of the lesion table: header, ``LesionMeasurement.to_dict`` key, value type, unit."""

    name: str
    key: str
    kind: str  # "int", "float" or "str"
    unit: str
    description: str


#: Columns of the lesion table, one row per lesion in label order. The centroid is in RAS, the
#: frame Slicer shows coordinates in (``lesions.json`` of the command line has it in LPS).
TABLE_COLUMNS: tuple[TableColumn, ...] = (
    TableColumn(
        "Label",
        "label",
        "int",
        "",
        "Label value: 1 GTV-1 (the largest lesion with no doubt), 2..n the others, undoubted ones first",
    ),
    TableColumn("Segment", "name", "str", "", "Segment name"),
    TableColumn("Volume (ml)", "volume_ml", "float", "ml", "Lesion volume"),
    TableColumn("RECIST (mm)", "recist_mm", "float", "mm", "Longest axial diameter (RECIST 1.1 long axis)"),
    TableColumn("Perpendicular (mm)", "perpendicular_mm", "float", "mm", "Longest diameter perpendicular to it"),
    TableColumn("Centroid R (mm)", "centroid_r", "float", "mm", "Centroid, RAS x"),
    TableColumn("Centroid A (mm)", "centroid_a", "float", "mm", "Centroid, RAS y"),
    TableColumn("Centroid S (mm)", "centroid_s", "float", "mm", "Centroid, RAS z"),
    TableColumn("Side", "side", "str", "", "Lung the lesion lies in: right, left or both"),
    TableColumn("Slices", "n_slices", "int", "", "Axial slices the lesion spans"),
    TableColumn("Mean HU", "mean_hu", "float", "HU", "Mean CT number inside the lesion"),
    TableColumn("Confidence", "confidence", "float", "", "Mean network probability inside the lesion"),
    TableColumn(
        "Doubts",
        "doubts_text",
        "str",
        "",
        "Why the lesion may not be a tumour (a thin sheet, at the scan's edge, low confidence, not FDG-avid); "
        "empty when there is no doubt",
    ),
    TableColumn("Source", "source", "str", "", "network: found automatically; point: added at a placed point"),
)


@dataclass(frozen=True)
class LungTumorResult:
    """What :func:`segment_image` found, ready to be written to the scene.

    Attributes
    ----------
    ct_name
        The CT volume's node name.
    segmentation
        The core's result (labels, lungs, probability and lesion measurements on the CT grid).
    model_path
        The ONNX model that was used.
    algorithm_version
        oncoqi version and model identity (file name and the start of its SHA-256), recorded in
        the segments so a report says which model made them.
    ct
        The CT the core ran on (:func:`segment_image` keeps it): lesions added later at points
        (:mod:`~OncoQILungTumorSegmentationLib.points`) are outlined on exactly these voxels.
    """

    ct_name: str
    segmentation: TumourSegmentation
    model_path: Path
    algorithm_version: str
    ct: Image | None = None

    @property
    def lesions(self) -> list[LesionMeasurement]:
        """The lesion measurements, in label order (GTV-1 first)."""
        return self.segmentation.lesions


class WrittenNodes(NamedTuple):
    """The nodes :func:`write_results` filled: lesions, table and (when asked for) lungs."""

    segmentation: slicer.vtkMRMLSegmentationNode
    table: slicer.vtkMRMLTableNode
    lungs: slicer.vtkMRMLSegmentationNode | None


def default_threads() -> int:
    """onnxruntime threads for the GUI: all processors but one, which stays with Slicer's GUI."""
    return max(1, (os.cpu_count() or 2) - 1)


def model_identity(path: Path) -> str:
    """``"<oncoqi version> <model file> sha256:<12 hex>"``: which code and which weights made a result.

    The file name alone does not say which weights it held (the shipped model is replaced when it
    is retrained), so the start of the file's digest is part of the identity. At most 64
    characters, the length of DICOM's Software Versions / Algorithm Version (LO).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{__version__} {path.name} sha256:{digest.hexdigest()[:12]}"[:64]


def ct_image_from_node(node: slicer.vtkMRMLScalarVolumeNode) -> Image:
    """Copy the CT out of its node (main thread) and refuse what cannot be an axial chest CT.

    The core checks the same again, but only after loading the model; checking here reports an
    empty volume, a PET or a label map before the user waits for anything.

    Raises
    ------
    oncoqi.errors.InputError
        The node has no voxels, or holds no CT numbers (``NotCTError``, ``EmptyVolumeError``).
    oncoqi.errors.GeometryError
        The node is under a transform, or its slices are not axial.
    """
    if node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a label map, not a CT; choose the CT volume")
    image = image_from_volume_node(node)
    name = f"volume '{node.GetName()}'"
    check_ct(image, name)
    check_axial(image, name)
    return image


def segment_image(
    ct: Image,
    model_path: str | os.PathLike | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> LungTumorResult:
    """Run the core's lung tumour segmentation on a CT copied out of the scene (any thread).

    Parameters
    ----------
    ct
        From :func:`ct_image_from_node`; ``metadata["name"]`` names it in messages.
    model_path
        ONNX model; the shipped one when None.
    threads
        onnxruntime threads; :func:`default_threads` when None.
    progress
        ``progress(done, total)`` over the network's slices.
    cancel
        Cancelled from another thread to stop: checked before the model is loaded and between
        network batches (lung isolation itself, a few seconds, is not interruptible).

    Raises
    ------
    oncoqi.lung.segment.NoModelError
        No model given and none shipped.
    oncoqi.errors.Cancelled
        ``cancel`` was set.
    oncoqi.errors.OncoQIError
        Any other refusal of the core (no lungs found, model unusable, ...).
    """
    model = resolve_model(model_path)
    name = str(ct.metadata.get("name") or "CT")
    check_cancel(cancel, f"segmentation of '{name}' cancelled before it started")
    version = model_identity(model) if model.is_file() else f"{__version__} {model.name}"
    result = segment_ct(
        ct, model, threads=threads or default_threads(), progress=progress, cancel=cancel, name=f"volume '{name}'"
    )
    return LungTumorResult(ct_name=name, segmentation=result, model_path=model, algorithm_version=version, ct=ct)


def terminology_entry(
    category: str, type_: str, type_modifier: str = "", region: str = "", region_modifier: str = ""
) -> str:
    """A terminology entry in Slicer's serialisation (``vtkSegment::SetTerminology``).

    ``context~category~type~typeModifier~anatomicContext~region~regionModifier``, each code
    ``scheme^value^meaning`` and ``^^`` for none: the seven fields Slicer's Segment Editor shows
    and its DICOM SEG export (and OncoQIQuantitativeReporting's) reads.
    """
    return "~".join(
        [
            CATEGORY_CONTEXT,
            category,
            type_,
            type_modifier or _NO_CODE,
            ANATOMIC_CONTEXT,
            region or _NO_CODE,
            region_modifier or _NO_CODE,
        ]
    )


def lesion_terminology(lesion: LesionMeasurement) -> str:
    """The terminology entry of a lesion (module docstring): primary neoplasm for GTV-1, in its lung."""
    return terminology_entry(
        MORPHOLOGICALLY_ALTERED_STRUCTURE,
        PRIMARY_NEOPLASM if lesion.label == 1 else NEOPLASM,
        region=LUNG,
        region_modifier=LATERALITY.get(lesion.side, ""),
    )


def lung_terminology(value: int) -> str:
    """The terminology entry of a lung (anatomical structure "Lung", right or left)."""
    return terminology_entry(ANATOMICAL_STRUCTURE, LUNG, LATERALITY[_LUNG_SIDES[value]])


def lesion_color(label: int) -> tuple[float, float, float]:
    """Display colour (0-1) of a label: the DICOM SEG default palette, in order, so exports agree."""
    red, green, blue = DEFAULT_COLORS[(label - 1) % len(DEFAULT_COLORS)]
    return red / 255.0, green / 255.0, blue / 255.0


def table_values(lesion: LesionMeasurement) -> dict[str, Any]:
    """A lesion's cells by :data:`TABLE_COLUMNS` key (``to_dict`` plus its name and RAS centroid)."""
    values = lesion.to_dict()
    values["name"] = lesion_name(lesion.label)
    values["doubts_text"] = "; ".join(lesion.doubts)
    ras = LPS_TO_RAS @ np.asarray(lesion.centroid_lps_mm, dtype=float)
    values["centroid_r"], values["centroid_a"], values["centroid_s"] = (float(v) for v in ras)
    return values


def lesion_table(lesions: Sequence[LesionMeasurement]) -> vtk.vtkTable:
    """The lesion measurements as a ``vtkTable`` (:data:`TABLE_COLUMNS`); a missing value is NaN."""
    arrays = {"int": vtk.vtkIntArray, "float": vtk.vtkDoubleArray, "str": vtk.vtkStringArray}
    table = vtk.vtkTable()
    rows = [table_values(lesion) for lesion in lesions]
    for column in TABLE_COLUMNS:
        array = arrays[column.kind]()
        array.SetName(column.name)
        array.SetNumberOfValues(len(rows))
        for n, row in enumerate(rows):
            value = row[column.key]
            if column.kind == "float":
                value = np.nan if value is None else float(value)
            array.SetValue(n, value)
        table.AddColumn(array)
    return table


def _tag_segments(
    node: slicer.vtkMRMLSegmentationNode,
    terminologies: Sequence[str],
    tags: Sequence[dict[str, str]],
) -> None:
    """Set the terminology and tags of the node's segments, which are in label order."""
    segmentation = node.GetSegmentation()
    for n, (terminology, segment_tags) in enumerate(zip(terminologies, tags, strict=True)):
        segment = segmentation.GetNthSegment(n)
        segment.SetTerminology(terminology)
        for tag, value in segment_tags.items():
            segment.SetTag(tag, value)


def _algorithm_tags(result: LungTumorResult, source: str = "network") -> dict[str, str]:
    """The segment tags that credit the algorithm (type, name, version) in a DICOM SEG export.

    A lesion the network found is AUTOMATIC; one outlined around a point a reader placed
    (``source`` "point") is SEMIAUTOMATIC, DICOM's type for a segmentation made with user assistance.
    """
    return {
        ALGORITHM_TYPE_TAG: "SEMIAUTOMATIC" if source == "point" else "AUTOMATIC",
        ALGORITHM_NAME_TAG: ALGORITHM_NAME,
        ALGORITHM_VERSION_TAG: result.algorithm_version,
    }


def _lesion_segmentation(
    scene: slicer.vtkMRMLScene, result: LungTumorResult, reference: slicer.vtkMRMLScalarVolumeNode, name: str
) -> slicer.vtkMRMLSegmentationNode:
    """A new segmentation node with one coded segment per lesion, on the CT's grid."""
    lesions = result.lesions
    node = segmentation_node_from_labels(
        scene,
        result.segmentation.labels,
        {lesion.label: lesion_name(lesion.label) for lesion in lesions},
        {lesion.label: lesion_color(lesion.label) for lesion in lesions},
        reference_volume_node=reference,
        name=name,
    )
    _tag_segments(
        node,
        [lesion_terminology(lesion) for lesion in lesions],
        [{**_algorithm_tags(result, lesion.source), LESION_LABEL_TAG: str(lesion.label)} for lesion in lesions],
    )
    return node


def _lung_segmentation(
    scene: slicer.vtkMRMLScene, result: LungTumorResult, reference: slicer.vtkMRMLScalarVolumeNode, name: str
) -> slicer.vtkMRMLSegmentationNode:
    """A new segmentation node with the right and left lung found by lung isolation."""
    lungs = result.segmentation.lungs.array
    # one comparison per lung value, not np.unique (a sort of the whole volume, on the GUI thread)
    present = [value for value in sorted(LUNG_NAMES) if (lungs == value).any()]
    node = segmentation_node_from_labels(
        scene,
        result.segmentation.lungs,
        {value: LUNG_NAMES[value] for value in present},
        {value: LUNG_COLOR for value in present},
        reference_volume_node=reference,
        name=name,
    )
    _tag_segments(node, [lung_terminology(value) for value in present], [_algorithm_tags(result)] * len(present))
    return node


def _remove_node(scene: slicer.vtkMRMLScene, node: slicer.vtkMRMLNode) -> None:
    """Remove a node and its display nodes (MRML leaves a removed node's display nodes behind)."""
    if node.IsA("vtkMRMLDisplayableNode"):
        for display in [node.GetNthDisplayNode(n) for n in range(node.GetNumberOfDisplayNodes())]:
            if display is not None:
                scene.RemoveNode(display)
    scene.RemoveNode(node)


def _fill_segmentation(target: slicer.vtkMRMLSegmentationNode, source: slicer.vtkMRMLSegmentationNode) -> None:
    """Replace the segments and reference geometry of ``target`` by those of ``source``."""
    target.GetSegmentation().DeepCopy(source.GetSegmentation())
    if target.GetDisplayNode() is None:
        target.CreateDefaultDisplayNodes()


def write_results(
    scene: slicer.vtkMRMLScene,
    result: LungTumorResult,
    reference: slicer.vtkMRMLScalarVolumeNode,
    segmentation_node: slicer.vtkMRMLSegmentationNode | None = None,
    table_node: slicer.vtkMRMLTableNode | None = None,
    lung_node: slicer.vtkMRMLSegmentationNode | None = None,
    include_lungs: bool = False,
) -> WrittenNodes:
    """Write a result into the scene (main thread): lesion segmentation, table, optionally lungs.

    Parameters
    ----------
    scene
        The scene (``slicer.mrmlScene``).
    result
        From :func:`segment_image`.
    reference
        The CT the result was computed on: the segmentations' reference geometry (the grid the
        Segment Editor edits on, the same as the core's).
    segmentation_node, table_node, lung_node
        Nodes to fill (their previous content is replaced); new ones named after the CT are
        added when None.
    include_lungs
        Also write the lung mask as a segmentation (right and left lung).

    Returns
    -------
    WrittenNodes

    Raises
    ------
    oncoqi.errors.InputError
        The CT was removed from the scene while it was being segmented.
    oncoqi.errors.GeometryError
        A node is under a transform.

    Notes
    -----
    All new content is built in new nodes first; only then are chosen nodes overwritten (a copy
    that does not fail) and the temporary nodes removed. On an error every node this call
    added is removed again and chosen nodes are untouched.
    """
    if not scene.IsNodePresent(reference):
        raise InputError(f"the CT '{result.ct_name}' was removed from the scene while it was being segmented")
    require_untransformed(reference)
    for chosen in (segmentation_node, lung_node):
        if chosen is not None:
            require_untransformed(chosen)
    added: list[slicer.vtkMRMLNode] = []
    try:
        lesions = _lesion_segmentation(scene, result, reference, f"{result.ct_name} lung tumors")
        added.append(lesions)
        lungs = None
        if include_lungs:
            lungs = _lung_segmentation(scene, result, reference, f"{result.ct_name} lungs")
            added.append(lungs)
        table = lesion_table(result.lesions)
        if table_node is None:
            table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{result.ct_name} lung tumor measurements")
            added.append(table_node)
    except BaseException:
        for node in reversed(added):
            _remove_node(scene, node)
        raise

    table_node.SetAndObserveTable(table)
    for column in TABLE_COLUMNS:
        table_node.SetColumnUnitLabel(column.name, column.unit)
        table_node.SetColumnDescription(column.name, column.description)
    if segmentation_node is None:
        segmentation_node = lesions
    else:
        _fill_segmentation(segmentation_node, lesions)
        _remove_node(scene, lesions)
    if lungs is not None and lung_node is not None:
        _fill_segmentation(lung_node, lungs)
        _remove_node(scene, lungs)
        lungs = lung_node
    return WrittenNodes(segmentation=segmentation_node, table=table_node, lungs=lungs)


def summary_text(result: LungTumorResult, max_lesions: int = SUMMARY_LESIONS) -> str:
    """Lines for the module panel: the count, then the largest lesions (name, volume, RECIST, side).

    At most ``max_lesions`` are listed; the table has them all.
    """
    if not result.lesions:
        return f"{result.ct_name}: no lesion found."
    lines = [f"{result.ct_name}: {len(result.lesions)} lesion(s) ({result.algorithm_version})"]
    for lesion in result.lesions[:max_lesions]:
        lines.append(
            f"{lesion_name(lesion.label)}: {lesion.volume_ml:.1f} ml, RECIST {lesion.recist_mm:.1f} mm "
            f"x {lesion.perpendicular_mm:.1f} mm, {lesion.side}"
            + ("; added at a point" if lesion.source == "point" else "")
            + (f"; doubtful: {'; '.join(lesion.doubts)}" if lesion.doubts else "")
        )
    if len(result.lesions) > max_lesions:
        lines.append(f"... and {len(result.lesions) - max_lesions} smaller (see the table)")
    return "\n".join(lines)
