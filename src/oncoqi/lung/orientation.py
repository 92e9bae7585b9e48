"""View a CT array with columns towards the patient's left and rows towards the back.

The lung steps reason in patient terms (posterior half, left and right of the spine, mirror about
the sagittal plane), and the QC pictures are drawn in the radiological convention. Both need
the array seen the same way whatever the direction matrix: :class:`CanonicalView` transposes and
flips (never resamples) ``[k, j, i]`` into ``[k, y, x]`` and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CanonicalView:
    """How to view a ``[k, j, i]`` array as ``[k, y, x]``: x to the patient's left, y to the back.

    The in-plane axis closer to the patient's x axis becomes the columns. Oblique grids are
    viewed along their nearest patient axes.
    """

    swap: bool
    flip_x: bool
    flip_y: bool

    @classmethod
    def of(cls, direction: np.ndarray) -> CanonicalView:
        """The view for a grid with this direction matrix (columns: i, j, k axes in LPS)."""
        swap = abs(direction[0, 1]) > abs(direction[0, 0])
        x_axis, y_axis = (direction[:, 1], direction[:, 0]) if swap else (direction[:, 0], direction[:, 1])
        return cls(swap, bool(x_axis[0] < 0), bool(y_axis[1] < 0))

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """``[k, j, i]`` to ``[k, y, x]`` (a view, no copy)."""
        if self.swap:
            array = array.transpose(0, 2, 1)
        if self.flip_x:
            array = array[:, :, ::-1]
        if self.flip_y:
            array = array[:, ::-1, :]
        return array

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """``[k, y, x]`` back to ``[k, j, i]`` (a contiguous copy)."""
        if self.flip_y:
            array = array[:, ::-1, :]
        if self.flip_x:
            array = array[:, :, ::-1]
        if self.swap:
            array = array.transpose(0, 2, 1)
        return np.ascontiguousarray(array)

    def spacing(self, spacing_ijk: tuple[float, float, float]) -> tuple[float, float, float]:
        """Spacing in canonical array order ``(k, y, x)``."""
        si, sj, sk = spacing_ijk
        return (sk, si, sj) if self.swap else (sk, sj, si)

    def to_index(self, k: np.ndarray, row: np.ndarray, col: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """Continuous canonical ``(k, y, x)`` positions to the original ``(i, j, k)`` indices, ``(n, 3)``.

        ``shape`` is the canonical array's shape.
        """
        _, ny, nx = shape
        x = nx - 1 - col if self.flip_x else col
        y = ny - 1 - row if self.flip_y else row
        i, j = (y, x) if self.swap else (x, y)
        return np.stack([i, j, k], axis=1).astype(float)
