"""The image object that travels between every stage of OncoQI.

An :class:`Image` is a voxel array together with the geometry that places it in patient space
(DICOM LPS, millimetres). The conventions are SimpleITK's, so that conversion is lossless:

* ``array`` is indexed ``[k, j, i]`` (slice, row, column), as ``sitk.GetArrayFromImage`` returns;
* ``spacing`` and ``origin`` are given in ``(i, j, k)`` order;
* ``direction`` is a 3x3 matrix whose *columns* are the unit vectors of the i, j and k axes in
  LPS; ``origin`` is the LPS position of the centre of voxel ``[0, 0, 0]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from oncoqi.errors import GeometryError, InputError


@dataclass
class Image:
    """A 3D voxel array with its patient-space geometry.

    Parameters
    ----------
    array
        Voxel values indexed ``[k, j, i]``.
    spacing
        Voxel size along i, j, k in mm.
    origin
        LPS position (mm) of the centre of the first voxel.
    direction
        3x3 matrix, columns are the i, j, k axis directions in LPS.
    metadata
        Free-form facts about the source (modality, UIDs, units, ...), carried along.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Image array must be 3D, got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"Image spacing must be positive, got {self.spacing}")

    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping ``(i, j, k, 1)`` voxel indices to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        m[:3, 3] = self.origin
        return m

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` in i, j, k order to LPS positions in mm."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """Map LPS positions ``(..., 3)`` to continuous voxel indices in i, j, k order."""
        lps = np.asarray(lps, dtype=float)
        inv = np.linalg.inv(self.affine[:3, :3])
        return (lps - self.affine[:3, 3]) @ inv.T

    def lps_extent(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """The LPS box (mm, lowest and highest corner) that holds the voxels, or only those where ``mask``
        is true, each voxel counted to its faces (half a voxel beyond its centre); None for an empty ``mask``.

        Messages give it, so that a user sees where a label lies against an image in the units of a viewer.
        """
        if mask is None:
            lo, hi = np.zeros(3), np.array(self.size, float) - 1
        else:
            kji = np.argwhere(mask)
            if kji.size == 0:
                return None
            lo, hi = kji.min(axis=0)[::-1].astype(float), kji.max(axis=0)[::-1].astype(float)
        lo, hi = lo - 0.5, hi + 0.5
        corners = np.array([[(hi if (n >> a) & 1 else lo)[a] for a in range(3)] for n in range(8)])
        lps = self.index_to_lps(corners)
        return lps.min(axis=0), lps.max(axis=0)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(np.prod(self.spacing)) / 1000.0

    def same_grid(self, other: Image, tol: float = 1e-3) -> bool:
        """True when ``other`` has the same size and geometry (within ``tol`` mm)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def with_array(self, array: np.ndarray, **metadata: Any) -> Image:
        """A new image on the same grid holding ``array`` (e.g. a label map)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return Image(array, self.spacing, self.origin, self.direction.copy(), {**metadata})

    def crop(self, box: tuple[slice, slice, slice]) -> Image:
        """The sub-image ``array[box]`` (``[k, j, i]`` slices with step 1) on its own grid.

        The origin moves to the first voxel kept, so every voxel keeps its LPS position.
        """
        if any(s.step not in (None, 1) for s in box):
            raise ValueError("crop boxes must have step 1")
        start = [s.indices(n)[0] for s, n in zip(box, self.array.shape)]
        origin = self.index_to_lps(np.array(start[::-1], float))
        return Image(
            self.array[box].copy(),
            self.spacing,
            tuple(float(v) for v in origin),
            self.direction.copy(),
            dict(self.metadata),
        )

    def to_sitk(self) -> sitk.Image:
        """Convert to a SimpleITK image (copying the voxels)."""
        img = sitk.GetImageFromArray(self.array)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.flatten()))
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, **metadata: Any) -> Image:
        """Build from a 3D SimpleITK image, keeping its geometry."""
        if img.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {img.GetDimension()}D")
        return cls(
            sitk.GetArrayFromImage(img),
            img.GetSpacing(),
            img.GetOrigin(),
            np.array(img.GetDirection()).reshape(3, 3),
            dict(metadata),
        )


def format_extent(extent: tuple[np.ndarray, np.ndarray]) -> str:
    """``x -190.0..190.0, y -30.0..10.0, z -84.0..-12.0 mm (LPS)`` for an :meth:`Image.lps_extent` box."""
    lo, hi = extent
    return ", ".join(f"{axis} {a:.1f}..{b:.1f}" for axis, a, b in zip("xyz", lo, hi)) + " mm (LPS)"


def require_labelled(label: Image, name: str, what: str = "label file") -> None:
    """Refuse a label image without a labelled voxel, saying so, rather than letting it surface later as an
    empty segment "on the PET grid" or as a measurement of nothing.

    Raises
    ------
    InputError
        When every voxel of ``label`` is 0; ``name`` (the file) and ``what`` it is open the message.
    """
    if not np.any(label.array):
        raise InputError(f"{name}: the {what} has no labelled voxel (every voxel is 0)")


def require_overlap(label: Image, image: Image, label_name: str, image_name: str) -> None:
    """Refuse a label whose labelled voxels lie wholly outside ``image``, giving both extents.

    Without this, a label in another place (another patient's frame, a wrong origin) ends in a
    message about its grid ("0.37 voxels off") or in an empty segment, which hides that the two never
    meet. The test is on the LPS boxes: boxes apart means no voxel in common. A label without a
    labelled voxel passes (:func:`require_labelled` is about that).

    Raises
    ------
    GeometryError
        When the box of the labelled voxels and the box of ``image`` do not meet; the message names
        ``label_name`` and ``image_name`` and gives both boxes.
    """
    labelled = label.lps_extent(label.array != 0)
    if labelled is None:
        return
    whole = image.lps_extent()
    assert whole is not None
    if np.all(labelled[0] <= whole[1]) and np.all(whole[0] <= labelled[1]):
        return
    raise GeometryError(
        f"{label_name}: the label does not overlap the {image_name}: its labelled voxels lie at "
        f"{format_extent(labelled)}, the {image_name} at {format_extent(whole)}"
    )
