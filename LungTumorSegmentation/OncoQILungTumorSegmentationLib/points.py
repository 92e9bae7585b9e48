"""Recover a tumour the automatic pass missed: the lesion around each markup point, added to Apply's result.

A reader who sees a tumour the network missed places a markup point inside it. The lesion around
it is outlined by the core (:func:`oncoqi.lung.click.add_lesions_at_points`: the network's faint
probability at a local threshold, or the CT grown from the point), reusing what Apply computed, so
it costs no network pass and runs on the main thread in a fraction of a second. For that the
Logic keeps Apply's result as a :class:`KeptResult`: the CT it ran on, the network's probability
on the CT grid, the nodes it was written to, and the points added so far.

Every click starts again from Apply's own result with all the points added so far plus the new
ones, in one call of the core: the lesions shown are always what ``oncoqi lung segment --point``
gives with the same points, whatever the order of the clicks. The lesion segmentation
and the table are rewritten by :func:`~OncoQILungTumorSegmentationLib.segmentation.write_results`,
so names, colours, terminology, Doubts and Source are those of Apply; the lung segmentation is
left as it is. A segmentation the user has edited since it was written is not rewritten (that
would undo the edits): the user is told to add the lesion in the Segment Editor or to Apply again.

Points come from Slicer in RAS and go to the core in LPS (x and y negated). Messages name the
markup point by its label and give RAS, as Slicer shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import slicer
from OncoQISlicer.mrml import labels_from_segmentation_node

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.click import add_lesions_at_points, segment_click
from oncoqi.lung.naming import lesion_name
from OncoQILungTumorSegmentationLib.segmentation import (
    LungTumorResult,
    WrittenNodes,
    ct_image_from_node,
    write_results,
)

#: How the core's notes and messages start: the point in LPS mm, which Slicer users do not see.
_CORE_POINT = re.compile(r"^point \([^)]*\)(?: \(LPS mm\))?:? ")

Point = tuple[float, float, float]


@dataclass(frozen=True)
class MarkupPoint:
    """One control point of a point list: its label and world position (RAS mm)."""

    label: str
    ras: Point

    @property
    def lps(self) -> Point:
        """The position as the core takes it (LPS mm: RAS with x and y negated)."""
        return (-self.ras[0], -self.ras[1], self.ras[2])

    def where(self) -> str:
        """``point 'F-1' at RAS (r, a, s) mm``: how messages name it."""
        return f"point '{self.label}' at RAS ({', '.join(f'{v:.1f}' for v in self.ras)}) mm"


class PointsAdded(NamedTuple):
    """What adding lesions at points gave: the nodes written, a note per point, the result they hold."""

    nodes: WrittenNodes
    notes: list[str]
    result: LungTumorResult


@dataclass(frozen=True)
class KeptResult:
    """Apply's result as the Logic keeps it, and what points added to it (main thread).

    Attributes
    ----------
    ct_node
        The CT volume node it was computed on.
    automatic
        Apply's result: the network's lesions, its probability and the CT it ran on.
    nodes
        The nodes it was written to (the lung segmentation, if any, is never rewritten here).
    points_lps
        The points added so far (LPS mm), in the order they were added.
    shown
        What the nodes hold: ``automatic`` with the lesions at ``points_lps`` (``automatic`` itself
        before any point).
    """

    ct_node: Any
    automatic: LungTumorResult
    nodes: WrittenNodes
    points_lps: tuple[Point, ...] = ()
    shown: LungTumorResult | None = None

    @property
    def current(self) -> LungTumorResult:
        """The result the nodes hold."""
        return self.shown if self.shown is not None else self.automatic


def markup_points(markups: slicer.vtkMRMLMarkupsFiducialNode) -> list[MarkupPoint]:
    """The control points of a point list, in world RAS (a parent transform applied).

    Raises
    ------
    InputError
        No point list, or it has no control point.
    """
    if markups is None:
        raise InputError("choose a point list and place a point on each missed tumor")
    points = []
    for n in range(markups.GetNumberOfControlPoints()):
        position = [0.0, 0.0, 0.0]
        markups.GetNthControlPointPositionWorld(n, position)
        points.append(MarkupPoint(markups.GetNthControlPointLabel(n) or f"#{n + 1}", tuple(position)))
    if not points:
        raise InputError(f"point list '{markups.GetName()}' has no point: place one on each missed tumor")
    return points


def require_result(
    scene: slicer.vtkMRMLScene, kept: KeptResult | None, ct_node: slicer.vtkMRMLScalarVolumeNode
) -> KeptResult:
    """The kept result of ``ct_node``, or one message saying to click Apply first.

    Only the last Apply's result is kept, and only in memory: not after another CT was segmented,
    the scene was closed or Slicer restarted.
    """
    if ct_node is None:
        raise InputError("choose the CT the lesions were segmented on")
    if kept is None or kept.ct_node.GetID() != ct_node.GetID() or not scene.IsNodePresent(kept.ct_node):
        raise InputError(
            f"no lesion segmentation of '{ct_node.GetName()}' to add to: click Apply first "
            "(only the last Apply's result is kept, until the scene is closed)"
        )
    return kept


def _in_scene(scene: slicer.vtkMRMLScene, node: Any) -> Any:
    """The node if it is still in the scene, else None (a new one is then written)."""
    return node if node is not None and scene.IsNodePresent(node) else None


def require_unedited(scene: slicer.vtkMRMLScene, kept: KeptResult) -> None:
    """Refuse to rewrite a lesion segmentation whose segments changed since it was written.

    Rewriting starts from the kept result, so an edit (a segment erased, painted, renamed,
    removed or added) would be undone: the user is told where to add the lesion instead.
    """
    node = _in_scene(scene, kept.nodes.segmentation)
    if node is None:
        return
    shown = kept.current
    labels, names = labels_from_segmentation_node(node, kept.ct_node)
    written = {lesion.label: lesion_name(lesion.label) for lesion in shown.lesions}
    if names != written or not np.array_equal(labels.array, shown.segmentation.labels.array):
        raise InputError(
            f"'{node.GetName()}' was edited after it was written, and adding a lesion rewrites it from the "
            "segmentation result, which would undo the edits: add the lesion in the Segment Editor, "
            "or click Apply again and then add it"
        )


def _new_points(ct: Image, kept: KeptResult, points: list[MarkupPoint]) -> tuple[list[MarkupPoint], dict[int, str]]:
    """Split the points into those to add and notes on the others (by index); refuse a bad one.

    A point inside a lesion already shown adds nothing, nor does one in the voxel of a point added
    before. Each new point is outlined once here so that a point on aerated lung is refused with
    its label (the core's message gives LPS).
    """
    labels = kept.current.segmentation.labels.array
    shape = np.array(labels.shape[::-1])
    used = {tuple(np.rint(ct.lps_to_index(np.asarray(p))).astype(int)) for p in kept.points_lps}
    new, notes = [], {}
    for n, point in enumerate(points):
        ijk = np.rint(ct.lps_to_index(np.asarray(point.lps))).astype(int)
        if (ijk < 0).any() or (ijk >= shape).any():
            raise InputError(f"{point.where()} is outside the CT '{kept.automatic.ct_name}': move it onto the tumor")
        inside = int(labels[ijk[2], ijk[1], ijk[0]])
        if inside:
            notes[n] = f"{point.label}: inside {lesion_name(inside)} already, nothing added"
        elif tuple(ijk) in used:
            notes[n] = f"{point.label}: used before, nothing added"
        else:
            try:
                segment_click(ct, point.lps, kept.automatic.segmentation.probability)
            except InputError as error:
                reason = _CORE_POINT.sub("", str(error))  # "is in aerated lung ..." after the LPS point
                raise InputError(f"{point.where()}{' ' if reason != str(error) else ': '}{reason}") from error
            used.add(tuple(ijk))
            new.append(point)
    return new, notes


def _core_note(ct: Image, labels: np.ndarray, point: MarkupPoint, note: str) -> str:
    """The core's note on a point without its LPS position, naming a lesion as the segments do.

    The core numbers "already inside lesion n" before it renumbers the lesions (a second point in a
    tumour that a first point of the same click added): the name is taken from the final labels.
    """
    note = _CORE_POINT.sub("", note)
    if note.startswith("already inside"):
        i, j, k = np.rint(ct.lps_to_index(np.asarray(point.lps))).astype(int)
        note = f"inside {lesion_name(int(labels[k, j, i]))} already, nothing added"
    return note


def add_lesions_at_markups(
    scene: slicer.vtkMRMLScene,
    kept: KeptResult | None,
    ct_node: slicer.vtkMRMLScalarVolumeNode,
    markups: slicer.vtkMRMLMarkupsFiducialNode,
) -> tuple[KeptResult, list[str]]:
    """Add the lesion around each new control point and rewrite the lesion segmentation and table.

    Parameters
    ----------
    scene
        The scene (``slicer.mrmlScene``).
    kept
        What the Logic kept of the last Apply (None when there was none).
    ct_node
        The CT the lesions were segmented on.
    markups
        The point list; its points already used or inside a lesion add nothing.

    Returns
    -------
    tuple
        The kept result with the new points (``kept`` itself when nothing was added), and one
        note per control point, in their order, saying what it gave.

    Raises
    ------
    oncoqi.errors.InputError
        No result for this CT (Apply first), no point, a point outside the CT or on aerated lung
        where the network saw nothing, or a segmentation edited since it was written. Nothing is
        changed then.
    """
    kept = require_result(scene, kept, ct_node)
    points = markup_points(markups)
    require_unedited(scene, kept)
    ct = kept.automatic.ct if kept.automatic.ct is not None else ct_image_from_node(ct_node)
    new, notes = _new_points(ct, kept, points)
    if not new:
        return kept, [notes[n] for n in sorted(notes)]
    all_points = kept.points_lps + tuple(point.lps for point in new)
    segmentation, core_notes = add_lesions_at_points(ct, kept.automatic.segmentation, all_points)
    shown = replace(kept.automatic, segmentation=segmentation)
    segmentation_node, table_node = (_in_scene(scene, node) for node in kept.nodes[:2])
    nodes = write_results(scene, shown, ct_node, segmentation_node, table_node)
    core = dict(zip((id(point) for point in new), core_notes[len(kept.points_lps) :], strict=True))
    for n, point in enumerate(points):
        if n not in notes:
            notes[n] = f"{point.label}: {_core_note(ct, segmentation.labels.array, point, core[id(point)])}"
    written = WrittenNodes(nodes.segmentation, nodes.table, kept.nodes.lungs)
    return replace(kept, nodes=written, points_lps=all_points, shown=shown), [notes[n] for n in sorted(notes)]
