"""Axis-aligned voxel grids (identity direction) on which the phantom is evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from oncoqi.image import Image


@dataclass(frozen=True)
class Grid:
    """A regular grid with axes along LPS x, y, z.

    Parameters
    ----------
    size
        Number of voxels along i (x), j (y), k (z).
    spacing
        Voxel size in mm along i, j, k.
    origin
        LPS position (mm) of the centre of voxel ``[0, 0, 0]``.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @classmethod
    def centred(
        cls, size: tuple[int, int, int], spacing: tuple[float, float, float], centre: tuple[float, float, float]
    ) -> Grid:
        """The grid of ``size`` voxels whose centre lies at ``centre``."""
        origin = tuple(c - (n - 1) * s / 2.0 for n, s, c in zip(size, spacing, centre))
        return cls(tuple(int(n) for n in size), tuple(float(s) for s in spacing), origin)  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(k, j, i)``."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in ml."""
        return float(np.prod(self.spacing)) / 1000.0

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along x, y and z (mm)."""
        return tuple(  # type: ignore[return-value]
            o + s * np.arange(n, dtype=np.float64) for n, s, o in zip(self.size, self.spacing, self.origin)
        )

    def refined(self, factor: int) -> Grid:
        """The grid with every voxel split into ``factor**3`` sub-voxels covering the same space."""
        spacing = tuple(s / factor for s in self.spacing)
        origin = tuple(o - s / 2.0 + f / 2.0 for o, s, f in zip(self.origin, self.spacing, spacing))
        return Grid(tuple(n * factor for n in self.size), spacing, origin)  # type: ignore[arg-type]

    def window(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Array slices ``(k, j, i)`` of the voxels whose centres lie in the box [lo, hi] (mm).

        Returns ``None`` when the box misses the grid.
        """
        out = []
        for axis in (2, 1, 0):
            first = int(np.ceil((lo[axis] - self.origin[axis]) / self.spacing[axis]))
            last = int(np.floor((hi[axis] - self.origin[axis]) / self.spacing[axis]))
            first, last = max(first, 0), min(last, self.size[axis] - 1)
            if last < first:
                return None
            out.append(slice(first, last + 1))
        return tuple(out)  # type: ignore[return-value]

    def points(self, window: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinate arrays ``(z[:,None,None], y[None,:,None], x[None,None,:])`` of a window."""
        x, y, z = self.axes()
        return z[window[0]][:, None, None], y[window[1]][None, :, None], x[window[2]][None, None, :]

    def image(self, array: np.ndarray, **metadata: Any) -> Image:
        """An :class:`Image` of ``array`` on this grid."""
        return Image(array, self.spacing, self.origin, np.eye(3), dict(metadata))


def slice_window(x: np.ndarray, y: np.ndarray, lo: Sequence[float], hi: Sequence[float]) -> tuple[slice, slice] | None:
    """Slices ``(j, i)`` of one axial slice whose sorted pixel-centre axes ``x``, ``y`` lie in [lo, hi] (mm).

    The per-slice counterpart of :meth:`Grid.window`, for painting a shape's cross-section
    without touching the rest of the slice. Returns ``None`` when the box misses the slice.
    """
    i = slice(int(np.searchsorted(x, lo[0])), int(np.searchsorted(x, hi[0], side="right")))
    j = slice(int(np.searchsorted(y, lo[1])), int(np.searchsorted(y, hi[1], side="right")))
    if i.start >= i.stop or j.start >= j.stop:
        return None
    return j, i


def smooth_noise(shape: tuple[int, ...], sigma_vox: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_vox)
    return field / max(float(field.std()), 1e-12)
