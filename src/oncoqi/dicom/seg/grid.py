"""Exact (resampling-free) placement of labels on the grid of a segmentation's source series.

A SEG is defined on the grid of its source series (:class:`oncoqi.dicom.source.SourceSeries`):
one frame per source slice, at the source slice's position. :func:`align_to_grid` puts a label image on that grid without resampling. A label image whose
voxel centres coincide with the source voxel centres, but whose axes are permuted or reversed
(a NIfTI written by another tool), or that covers only part of the grid (a crop), is
rearranged exactly; anything else (another spacing, a half-voxel shift, another orientation) is
refused with the two geometries in the message, because a segmentation on the wrong grid is
worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from oncoqi.errors import GeometryError
from oncoqi.image import Image, require_overlap

#: Two axes are the same direction when their unit vectors' dot product is within this of +-1.
DIRECTION_TOL = 1e-4
#: Relative tolerance on voxel spacing.
SPACING_RTOL = 1e-3
#: Largest distance (in voxels) of a label voxel centre from a source voxel centre. Headers round
#: positions: QIN-HEADNECK's published SEG lies 0.04 mm (0.02 slices) off its PET series on TCIA.
POSITION_TOL_VOXELS = 0.1


def describe_grid(image: Image) -> str:
    """One line with size, spacing, origin and axis directions, for error messages."""

    def fmt(values: Sequence[float]) -> str:
        return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"

    axes = " ".join(fmt(image.direction[:, n]) for n in range(3))
    return f"size {image.size}, spacing {fmt(image.spacing)} mm, origin {fmt(image.origin)} mm, axes {axes}"


def align_to_grid(label: Image, grid: Image, name: str) -> np.ndarray:
    """The voxels of ``label`` on ``grid``, without resampling.

    Parameters
    ----------
    label
        Label image whose voxel centres are a subset of the grid's (any axis order and sign).
    grid
        The target geometry (e.g. :attr:`SourceSeries.grid`).
    name
        What the label is (file name), for the messages.

    Returns
    -------
    numpy.ndarray
        Array of ``grid``'s shape ``[k, j, i]`` and ``label``'s dtype; ``label.array`` itself
        when the grids are the same.

    Raises
    ------
    GeometryError
        When the labelled voxels lie wholly outside the grid (the message gives both extents), an
        axis of the label has no parallel axis in the grid, the spacings differ, the voxel centres
        are off the grid's, or labelled voxels fall outside the grid. The message gives both
        geometries.
    """
    if label.same_grid(grid):
        return label.array
    require_overlap(label, grid, name, "source series")

    def refuse(why: str) -> GeometryError:
        return GeometryError(
            f"{name}: the label grid does not match the source series ({why}); label: "
            f"{describe_grid(label)}; source: {describe_grid(grid)}"
        )

    # label axis (0=i, 1=j, 2=k) parallel to each grid axis, and whether it runs backwards
    perm, flip = [], []
    for a in range(3):
        dots = grid.direction[:, a] @ label.direction
        b = int(np.argmax(np.abs(dots)))
        if abs(abs(dots[b]) - 1.0) > DIRECTION_TOL or b in perm:
            raise refuse(f"no label axis is parallel to source axis {'ijk'[a]}")
        if not np.isclose(label.spacing[b], grid.spacing[a], rtol=SPACING_RTOL):
            raise refuse(f"spacing {label.spacing[b]:.6g} mm against {grid.spacing[a]:.6g} mm along {'ijk'[a]}")
        perm.append(b)
        flip.append(bool(dots[b] < 0))
    # array axes are [k, j, i]: output array axis p is grid axis 2 - p, label array axis 2 - perm[2 - p]
    array = np.transpose(label.array, [2 - perm[2 - p] for p in range(3)])
    first = np.zeros(3)
    for a in range(3):
        if flip[a]:
            array = np.flip(array, axis=2 - a)
            first[perm[a]] = label.size[perm[a]] - 1
    start = grid.lps_to_index(label.index_to_lps(first))  # grid index (i, j, k) of the array's first voxel
    offset = np.round(start).astype(int)
    if np.max(np.abs(start - offset)) > POSITION_TOL_VOXELS:
        raise refuse(f"voxel centres are {np.max(np.abs(start - offset)):.3f} voxels off the source's")
    out = np.zeros(grid.array.shape, dtype=label.array.dtype)
    src, dst = [], []
    for p in range(3):
        a = 2 - p
        lo = max(0, -offset[a])
        hi = min(array.shape[p], grid.array.shape[p] - offset[a])
        if hi <= lo:  # no overlap along this axis
            src.append(slice(0, 0))
            dst.append(slice(0, 0))
        else:
            src.append(slice(lo, hi))
            dst.append(slice(lo + offset[a], hi + offset[a]))
    inside = array[tuple(src)]
    lost = int(np.count_nonzero(array)) - int(np.count_nonzero(inside))
    if lost:
        raise refuse(f"{lost} labelled voxels lie outside the source grid")
    out[tuple(dst)] = inside
    return out
