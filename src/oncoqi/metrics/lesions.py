"""Where the lesions of a label map lie: their boxes, centroids and sides (which lung).

Shared by the lesion measurements (:mod:`oncoqi.lung.measure`) and the lung-wise detection
(:mod:`oncoqi.metrics.detection`), so that both put a lesion in the same lung.

Lung label maps (``LungMasks.lungs`` of :func:`oncoqi.lung.isolate_lungs`, ``lung_mask.nrrd`` of
``oncoqi lung isolate``, ``--lungs`` of ``oncoqi lung evaluate``) hold :data:`RIGHT_LUNG` 1 in the
right lung and :data:`LEFT_LUNG` 2 in the left; any other value is outside the lungs.

The side of a lesion (:func:`lesion_side`) is ``left`` or ``right`` from its centroid's x
relative to the body midline (LPS: patient left is +x); with lung masks it is the lung holding
most of the lesion's in-lung voxels, or ``both`` when each lung holds at least
:data:`BOTH_MIN_FRACTION` of them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from oncoqi.image import Image

#: Values of a lung label map.
RIGHT_LUNG = 1
LEFT_LUNG = 2
#: A lesion is on ``both`` sides when each lung holds at least this fraction of its in-lung voxels.
BOTH_MIN_FRACTION = 0.1


def lesion_side(lung_values: np.ndarray | None, centroid_x_mm: float, midline_x_mm: float = 0.0) -> str:
    """``left``, ``right`` or ``both`` for one lesion (module documentation).

    Parameters
    ----------
    lung_values
        The lung label map's values at the lesion's voxels (:data:`RIGHT_LUNG` 1, :data:`LEFT_LUNG`
        2; anything else is outside the lungs), or None without lung masks.
    centroid_x_mm
        LPS x (mm) of the lesion centroid.
    midline_x_mm
        LPS x (mm) of the body midline, used without lung masks or when the lesion touches neither
        lung.
    """
    if lung_values is not None:
        right = int(np.count_nonzero(lung_values == RIGHT_LUNG))
        left = int(np.count_nonzero(lung_values == LEFT_LUNG))
        if right + left:
            if min(right, left) >= BOTH_MIN_FRACTION * (right + left):
                return "both"
            return "left" if left > right else "right"
    return "left" if centroid_x_mm > midline_x_mm else "right"


def label_boxes(values: np.ndarray) -> list[tuple[int, tuple[slice, ...]]]:
    """``(label, bounding box)`` of every positive label of a label array, in label order.

    Float arrays (label maps stored as float) are truncated to integers; 0 and negative values
    are background.
    """
    if not np.issubdtype(values.dtype, np.integer):
        values = values.astype(np.int32)
    return [(index, box) for index, box in enumerate(ndimage.find_objects(values), start=1) if box is not None]


def centroid_lps(image: Image, mask: np.ndarray, offset: tuple[int, ...]) -> np.ndarray:
    """LPS position (mm) of the mean voxel index of ``mask``, a crop of ``image``'s grid at ``offset`` (k, j, i)."""
    return image.index_to_lps(np.argwhere(mask).mean(axis=0)[::-1] + np.asarray(offset[::-1], float))
