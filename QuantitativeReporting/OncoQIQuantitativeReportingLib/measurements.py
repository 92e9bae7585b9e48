"""Size of every segment of a segmentation: the first measurement a report carries.

Each segment is measured on its own binary labelmap, not on a merged label image, so that
overlapping segments (a tumour inside a lung) are both counted in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import slicer
from OncoQISlicer.mrml import require_untransformed
from vtk.util import numpy_support


@dataclass(frozen=True)
class SegmentMeasurement:
    """Voxel count and volume of one segment.

    Attributes
    ----------
    segment_id
        Segment ID in the segmentation (stable across renames).
    name
        Segment name shown to the user.
    voxel_count
        Voxels inside the segment in its binary labelmap.
    volume_ml
        ``voxel_count`` times the labelmap's voxel volume, in millilitres.
    """

    segment_id: str
    name: str
    voxel_count: int
    volume_ml: float


def segment_measurements(segmentation_node: slicer.vtkMRMLSegmentationNode) -> list[SegmentMeasurement]:
    """Measure every segment, in the segmentation's order.

    A segmentation that only has closed surfaces (e.g. imported models) first gets a binary
    labelmap representation, as Slicer's Segment Statistics does.

    Raises
    ------
    oncoqi.errors.GeometryError
        The segmentation is under a transform (which could scale volumes).
    """
    require_untransformed(segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    binary = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if segmentation.GetNumberOfSegments() and not segmentation.ContainsRepresentation(binary):
        segmentation_node.CreateBinaryLabelmapRepresentation()
    result = []
    for segment_id in segmentation.GetSegmentIDs():
        labelmap = slicer.vtkOrientedImageData()
        segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
        scalars = labelmap.GetPointData().GetScalars()
        count = int(np.count_nonzero(numpy_support.vtk_to_numpy(scalars))) if scalars is not None else 0
        result.append(
            SegmentMeasurement(
                segment_id=segment_id,
                name=segmentation.GetSegment(segment_id).GetName(),
                voxel_count=count,
                volume_ml=count * float(np.prod(labelmap.GetSpacing())) / 1000.0,
            )
        )
    return result
