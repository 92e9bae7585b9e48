"""Convert MRML volume and segmentation nodes to and from :class:`oncoqi.Image`.

Slicer places voxels in RAS (+x towards the patient's right, +y anterior, +z superior), DICOM and
the core in LPS (+x left, +y posterior, +z superior). The two differ by the sign of the first two
axes only, so every conversion here is a sign flip of the origin and of the first two rows of the
direction matrix: no arithmetic, hence exact (a round trip returns bit-identical geometry). Spacing, origin and axis directions are read from and written to
the node's own fields (``GetSpacing``/``GetOrigin``/``GetIJKToRASDirections``), not decomposed from
the 4x4 IJK-to-RAS matrix, for the same reason.

Nodes under a parent transform are refused with :class:`oncoqi.errors.GeometryError`: the core
works on the voxel grid as stored, and silently ignoring (or resampling through) a transform would
put results in the wrong place. The user hardens the transform first (Data module, right-click).

This module imports ``oncoqi``; import it only after
:func:`OncoQISlicer.dependencies.ensure_core`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import slicer
import vtk
from scipy import ndimage
from vtk.util import numpy_support

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image

#: Multiplying an LPS vector by this gives RAS (and back: the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: Segment tags that Slicer's DICOM SEG exporters read for Segment Algorithm Type, Name and Version.
ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME_TAG = "DICOM.SegmentAlgorithmName"
ALGORITHM_VERSION_TAG = "DICOM.SegmentAlgorithmVersion"

_INT32 = np.iinfo(np.int32)


def require_untransformed(node: slicer.vtkMRMLTransformableNode) -> None:
    """Raise :class:`GeometryError` if ``node`` sits under a transform (see the module docstring for why)."""
    transform = node.GetParentTransformNode()
    if transform is not None:
        raise GeometryError(
            f"'{node.GetName()}' is under the transform '{transform.GetName()}'; "
            "harden the transform (Data module: right-click the node, 'Harden transform') and try again"
        )


def _lps_geometry(
    spacing: Sequence[float], origin_ras: Sequence[float], directions_ras: np.ndarray
) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    """Spacing, LPS origin and LPS direction matrix from their RAS counterparts (sign flips only)."""
    origin_lps = LPS_TO_RAS @ np.asarray(origin_ras, dtype=float)
    return (
        tuple(float(s) for s in spacing),  # type: ignore[return-value]
        tuple(float(o) for o in origin_lps),  # type: ignore[return-value]
        LPS_TO_RAS @ np.asarray(directions_ras, dtype=float),
    )


def _mrml_array(array: np.ndarray, what: str) -> np.ndarray:
    """The voxel array in a type VTK volumes support.

    Slicer rejects 64-bit integers (they do not render) and has no boolean scalars, and the core
    produces both (numpy's default integer, masks). Values are checked, never wrapped.
    """
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype in (np.int64, np.uint64):
        if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
            raise InputError(
                f"{what}: 64-bit voxel values outside the 32-bit range cannot be stored in a Slicer volume"
            )
        return array.astype(np.int32)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def _set_volume_geometry(node: slicer.vtkMRMLVolumeNode, image: Image) -> None:
    """Write ``image``'s grid to the node's spacing, origin and axis directions (RAS)."""
    node.SetSpacing(*image.spacing)
    node.SetOrigin(*(LPS_TO_RAS @ np.asarray(image.origin)))
    node.SetIJKToRASDirections((LPS_TO_RAS @ image.direction).tolist())


def image_from_volume_node(node: slicer.vtkMRMLScalarVolumeNode) -> Image:
    """Copy a scalar (or label map) volume node into an :class:`oncoqi.Image`.

    Parameters
    ----------
    node
        A ``vtkMRMLScalarVolumeNode`` or ``vtkMRMLLabelMapVolumeNode`` with image data and no
        parent transform.

    Returns
    -------
    Image
        The voxels (a copy, so the node is safe from changes to the image) in ``[k, j, i]`` order,
        with the grid in LPS; ``metadata["name"]`` is the node name.

    Raises
    ------
    InputError
        The node has no voxels or more than one component per voxel.
    GeometryError
        The node is under a transform.
    """
    image_data = node.GetImageData()
    if image_data is None or image_data.GetNumberOfPoints() == 0:
        raise InputError(f"volume '{node.GetName()}' has no voxels")
    if image_data.GetNumberOfScalarComponents() != 1:
        raise InputError(
            f"volume '{node.GetName()}' has {image_data.GetNumberOfScalarComponents()} components per voxel; "
            "only scalar volumes are supported"
        )
    require_untransformed(node)
    directions_ras = np.zeros((3, 3))
    node.GetIJKToRASDirections(directions_ras)
    spacing, origin, direction = _lps_geometry(node.GetSpacing(), node.GetOrigin(), directions_ras)
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    return Image(array, spacing, origin, direction, {"name": node.GetName()})


def volume_node_from_image(
    scene: slicer.vtkMRMLScene, image: Image, name: str, labelmap: bool = False
) -> slicer.vtkMRMLScalarVolumeNode:
    """Add a new volume node holding a copy of ``image``, with display nodes, to ``scene``.

    Parameters
    ----------
    scene
        The scene to add to (``slicer.mrmlScene`` in the application).
    image
        Voxels and LPS grid; booleans become ``uint8`` and 64-bit integers ``int32`` (Slicer cannot
        display 64-bit scalars).
    name
        Node name shown in Slicer.
    labelmap
        Create a ``vtkMRMLLabelMapVolumeNode`` (integer labels, shown with a colour table) instead of
        a ``vtkMRMLScalarVolumeNode``.

    Returns
    -------
    vtkMRMLScalarVolumeNode
        The new node (a label map node is a subclass).
    """
    class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    array = _mrml_array(image.array, name)
    node = scene.AddNewNodeByClass(class_name, name)
    _set_volume_geometry(node, image)
    slicer.util.updateVolumeFromArray(node, array)
    node.CreateDefaultDisplayNodes()
    return node


def update_volume_node(node: slicer.vtkMRMLScalarVolumeNode, image: Image) -> None:
    """Replace the voxels and grid of an existing volume node with ``image``.

    Used to write a result back into a node the user chose (so views, display settings and node
    references stay in place) instead of adding a new one.

    Raises
    ------
    GeometryError
        The node is under a transform: its stored grid is not the grid the image is given in.
    """
    require_untransformed(node)
    array = _mrml_array(image.array, node.GetName())
    _set_volume_geometry(node, image)
    slicer.util.updateVolumeFromArray(node, array)


def _oriented_geometry(image: Image) -> slicer.vtkOrientedImageData:
    """An empty ``vtkOrientedImageData`` on ``image``'s grid, in RAS."""
    oriented = slicer.vtkOrientedImageData()
    oriented.SetSpacing(*image.spacing)
    oriented.SetOrigin(*(LPS_TO_RAS @ np.asarray(image.origin)))
    oriented.SetDirections((LPS_TO_RAS @ image.direction).tolist())
    oriented.SetDimensions(*image.size)
    return oriented


def _oriented_mask(image: Image, mask: np.ndarray) -> slicer.vtkOrientedImageData:
    """A ``vtkOrientedImageData`` on ``image``'s grid holding the 0/1 ``mask`` as uint8."""
    oriented = _oriented_geometry(image)
    oriented.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(oriented.GetPointData().GetScalars()).reshape(mask.shape)[:] = mask
    return oriented


def _geometry_of_volume(node: slicer.vtkMRMLScalarVolumeNode) -> slicer.vtkOrientedImageData:
    """An empty ``vtkOrientedImageData`` on exactly the voxel grid of a volume node."""
    require_untransformed(node)
    if node.GetImageData() is None:
        raise InputError(f"reference volume '{node.GetName()}' has no voxels")
    directions_ras = np.zeros((3, 3))
    node.GetIJKToRASDirections(directions_ras)
    geometry = slicer.vtkOrientedImageData()
    geometry.SetExtent(node.GetImageData().GetExtent())
    geometry.SetSpacing(node.GetSpacing())
    geometry.SetOrigin(node.GetOrigin())
    geometry.SetDirections(directions_ras.tolist())
    return geometry


def _oriented_box_mask(image: Image, mask: np.ndarray, box: tuple[slice, slice, slice]) -> slicer.vtkOrientedImageData:
    """A ``vtkOrientedImageData`` on ``image``'s grid covering only ``box`` (``[k, j, i]`` slices) with ``mask``."""
    oriented = _oriented_geometry(image)
    k, j, i = box
    oriented.SetExtent(i.start, i.stop - 1, j.start, j.stop - 1, k.start, k.stop - 1)
    oriented.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(oriented.GetPointData().GetScalars()).reshape(mask.shape)[:] = mask
    return oriented


def segmentation_node_from_labels(
    scene: slicer.vtkMRMLScene,
    label_image: Image,
    names: Mapping[int, str],
    colors: Mapping[int, Sequence[float]] | None = None,
    reference_volume_node: slicer.vtkMRMLScalarVolumeNode | None = None,
    name: str = "Segmentation",
) -> slicer.vtkMRMLSegmentationNode:
    """Add a segmentation node with one segment per label value of ``label_image``.

    Segments are created in increasing label order. A label listed in ``names`` but absent from the
    image gives an empty segment (the structure was looked for and not found, which a report must
    be able to say). Labels cannot overlap, so all segments end up sharing one labelmap layer, as the
    Segment Editor keeps them. Each label is handed to Slicer cropped to its bounding box: Slicer's
    cost of adding a segment grows with the size of the mask it is given (about 0.4 s per label on
    a 512 x 512 x 200 CT in full), so for a few small structures in a large volume (lesions found
    by an algorithm, added on the GUI thread) this is about ten times faster.

    Parameters
    ----------
    scene
        The scene to add to.
    label_image
        Non-negative integer labels on the grid the segments are stored on; 0 is background.
    names
        Segment name for every non-zero label value.
    colors
        Optional RGB (0-1) per label value; segments without one get Slicer's automatic colour.
    reference_volume_node
        The volume the segmentation is drawn on: it becomes the segmentation's reference geometry
        (the grid the Segment Editor edits on). Without it, the label image's own grid is used.
    name
        Node name.

    Returns
    -------
    vtkMRMLSegmentationNode
        The new node, with display nodes.

    Raises
    ------
    ValueError
        A non-zero label in the image has no name, a name is given for label 0, or the labels are
        not non-negative integers.
    """
    labels = label_image.array
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must be non-negative integers (dtype {labels.dtype})")
    if 0 in names:
        raise ValueError("label 0 is the background and cannot be named as a segment")
    boxes = {value: box for value, box in enumerate(ndimage.find_objects(labels), start=1) if box is not None}
    unnamed = sorted(set(boxes) - {int(v) for v in names})
    if unnamed:
        raise ValueError(f"label values {unnamed} in the image have no segment name")
    colors = colors or {}

    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    segmentation = node.GetSegmentation()
    if reference_volume_node is not None:
        require_untransformed(reference_volume_node)
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    else:
        segmentation.SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
            slicer.vtkSegmentationConverter.SerializeImageGeometry(_oriented_geometry(label_image)),
        )
    segmentation.SetSourceRepresentationName(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())

    for value in sorted(int(v) for v in names):
        if value in colors:
            segment_id = segmentation.AddEmptySegment("", names[value], list(colors[value]))
        else:
            segment_id = segmentation.AddEmptySegment("", names[value])
        if value in boxes:
            box = boxes[value]
            mask = _oriented_box_mask(label_image, (labels[box] == value).astype(np.uint8), box)
            slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                mask, node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE
            )
    segmentation.CollapseBinaryLabelmaps(False)
    return node


def labels_from_segmentation_node(
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    reference_volume_node: slicer.vtkMRMLScalarVolumeNode | None = None,
    segment_ids: Sequence[str] | None = None,
) -> tuple[Image, dict[int, str]]:
    """Rasterise segments into one label image: segment ``n`` (1-based, in the given order) gets label ``n``.

    Where segments overlap, the later one wins; compute per-segment quantities from the
    segmentation itself, not from this image, when overlaps matter.

    Parameters
    ----------
    segmentation_node
        The segmentation; a binary labelmap representation is created if it only has surfaces.
    reference_volume_node
        The grid to rasterise on (e.g. the CT or PET the numbers are computed on). Without it, the
        segmentation's own reference geometry is used.
    segment_ids
        Segments to include, in label order; default all, in the segmentation's order.

    Returns
    -------
    tuple[Image, dict[int, str]]
        A ``uint16`` label image in LPS and the segment name for each label value.

    Raises
    ------
    InputError
        No reference volume is given and the segmentation has no reference geometry.
    GeometryError
        The segmentation or the reference volume is under a transform.
    ValueError
        A requested segment ID is not in the segmentation.
    """
    require_untransformed(segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    ids = list(segmentation.GetSegmentIDs()) if segment_ids is None else list(segment_ids)
    missing = [segment_id for segment_id in ids if segmentation.GetSegment(segment_id) is None]
    if missing:
        raise ValueError(f"segmentation '{segmentation_node.GetName()}' has no segments with IDs {missing}")

    if reference_volume_node is not None:
        geometry = _geometry_of_volume(reference_volume_node)
    else:
        serialized = segmentation.GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
        )
        if not serialized:
            raise InputError(
                f"segmentation '{segmentation_node.GetName()}' has no reference geometry; choose a reference volume"
            )
        geometry = slicer.vtkOrientedImageData()
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(serialized, geometry, False)

    shape = tuple(reversed(geometry.GetDimensions()))
    if not ids:
        labels = np.zeros(shape, np.uint16)
    else:
        binary = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
        if not segmentation.ContainsRepresentation(binary):
            segmentation_node.CreateBinaryLabelmapRepresentation()
        id_array = vtk.vtkStringArray()
        values = vtk.vtkIntArray()
        for value, segment_id in enumerate(ids, start=1):
            id_array.InsertNextValue(segment_id)
            values.InsertNextValue(value)
        merged = slicer.vtkOrientedImageData()
        if (
            not segmentation_node.GenerateMergedLabelmapForAllSegments(
                merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, geometry, id_array, values
            )
            or merged.GetExtent() != geometry.GetExtent()
        ):
            raise RuntimeError(f"Slicer could not rasterise the segments of '{segmentation_node.GetName()}'")
        labels = numpy_support.vtk_to_numpy(merged.GetPointData().GetScalars()).reshape(shape).astype(np.uint16)

    # The grid is taken from ``geometry`` (the reference node's own fields), not from the merged
    # image, whose geometry went through a 4x4 matrix and is no longer bit-identical.
    directions_ras = np.zeros((3, 3))
    geometry.GetDirections(directions_ras)
    origin_ras = np.asarray(geometry.GetOrigin(), dtype=float)
    first_index = np.array(geometry.GetExtent()[::2], dtype=float)
    if first_index.any():
        origin_ras = origin_ras + directions_ras @ (np.asarray(geometry.GetSpacing()) * first_index)
    spacing, origin, direction = _lps_geometry(geometry.GetSpacing(), origin_ras, directions_ras)
    names = {value: segmentation.GetSegment(segment_id).GetName() for value, segment_id in enumerate(ids, start=1)}
    return Image(labels, spacing, origin, direction, {"name": segmentation_node.GetName()}), names


def add_segment_from_mask(
    segmentation_node: slicer.vtkMRMLSegmentationNode,
    image: Image,
    mask: np.ndarray,
    name: str,
    color: Sequence[float] | None = None,
) -> str:
    """Add one segment holding the non-zero voxels of ``mask`` (on ``image``'s grid) to a segmentation.

    Used for results computed by the core on a volume's grid (e.g. a PET threshold segmentation):
    the mask goes in as a binary labelmap on exactly that grid, in a labelmap layer of its own, so
    that it may overlap the existing segments (a PET lesion inside a CT tumour) without erasing
    them, as writing into a shared layer would.

    Returns
    -------
    str
        The new segment's ID.

    Raises
    ------
    GeometryError
        The segmentation is under a transform.
    ValueError
        ``mask`` does not have the image's shape.
    """
    require_untransformed(segmentation_node)
    if mask.shape != image.array.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the image grid {image.array.shape}")
    segment = slicer.vtkSegment()
    segment.SetName(name)
    if color is not None:
        segment.SetColor(*color)
    segment.AddRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(),
        _oriented_mask(image, (mask != 0).astype(np.uint8)),
    )
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GenerateUniqueSegmentID(name)
    if not segmentation.AddSegment(segment, segment_id):
        raise RuntimeError(f"Slicer could not add the segment '{name}' to '{segmentation_node.GetName()}'")
    return segment_id


def segment_algorithm(segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str) -> dict[str, str] | None:
    """What made a segment, from its DICOM tags, in the SEG metadata's JSON spelling; None when untagged."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    values = {}
    for key, tag in (("type", ALGORITHM_TYPE_TAG), ("name", ALGORITHM_NAME_TAG), ("version", ALGORITHM_VERSION_TAG)):
        value = vtk.reference("")
        if segment.GetTag(tag, value) and str(value):
            values[key] = str(value)
    return values if "type" in values else None
