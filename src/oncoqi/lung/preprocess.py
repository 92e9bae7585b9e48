"""Turn a chest CT into the fixed-size 8-bit lung-window input of a slice-wise network, invertibly.

The forward transform (:func:`preprocess`) does, in one resampling step:

1. keep the CT numbers (HU) of the loaded series and every slice (the slice planes are not moved);
2. resample each slice to ``pixel_mm`` x ``pixel_mm`` (1 x 1 mm by default) with linear
   interpolation, on axes along the patient's left (x) and posterior (y) directions, so that the
   network always sees the patient the same way round whatever the input's direction matrix
   (a flipped or rotated acquisition is not mirrored, and non-square pixels are handled);
3. centre a fixed ``columns`` x ``rows`` field of view (512 x 512 mm by default) on the input's
   in-plane centre (or a given point): larger inputs are cropped, smaller ones padded with air
   (-1000 HU);
4. clip to the lung window (width 1500, level -600 HU, i.e. -1350 to 150 HU) and bin linearly
   into ``levels`` 8-bit values (0 = -1350 HU, 255 = 150 HU with the defaults).

The network grid is therefore a plain geometric grid in patient space, and
:meth:`Preprocessed.to_input_grid` maps anything computed on it (a label: nearest neighbour; a
probability: linear) back onto the input's exact grid (size, origin, spacing, direction), with
the parts of the input outside the network's field of view set to 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.ct import check_axial, check_ct

#: CT number of air, used to pad the field of view.
AIR_HU = -1000.0

Kind = Literal["label", "probability"]
#: Slices of the target grid resampled at a time (:meth:`GridGeometry.resample`).
RESAMPLE_SLAB = 16


class PreprocessOptionError(InputError):
    """An option of the preprocessing is out of its range."""


@dataclass(frozen=True)
class PreprocessOptions:
    """The network input's grid and intensity coding.

    Parameters
    ----------
    pixel_mm
        In-plane pixel size of the network grid (mm); slices keep the input's spacing.
    columns, rows
        Network field of view in pixels (patient left-right by anterior-posterior).
    window_width, window_level
        Lung window (HU); values outside it are clipped.
    levels
        Number of 8-bit codes the window is binned into (2-256).
    context_mm
        Distance (mm) to the neighbouring slices that the network sees beside each slice, as
        extra input channels (below, the slice, above; :meth:`Preprocessed.channel_indices`).
        0 gives the single-slice network. Why: on one slice a vessel crossing the slice plane is
        a dense disc just like a nodule; a few millimetres away the vessel is still there and a
        small nodule is not.
    """

    pixel_mm: float = 1.0
    columns: int = 512
    rows: int = 512
    window_width: float = 1500.0
    window_level: float = -600.0
    levels: int = 256
    context_mm: float = 0.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.pixel_mm <= 10.0:
            raise PreprocessOptionError(f"pixel_mm={self.pixel_mm:g} is out of range [0.1, 10]")
        for name, value in (("columns", self.columns), ("rows", self.rows)):
            if not 8 <= value <= 4096:
                raise PreprocessOptionError(f"{name}={value} is out of range [8, 4096]")
        if not 1.0 <= self.window_width <= 4000.0:
            raise PreprocessOptionError(f"window_width={self.window_width:g} is out of range [1, 4000] HU")
        if not 2 <= self.levels <= 256:
            raise PreprocessOptionError(f"levels={self.levels} is out of range [2, 256] (8-bit codes)")
        if not 0.0 <= self.context_mm <= 50.0:
            raise PreprocessOptionError(f"context_mm={self.context_mm:g} is out of range [0, 50]")

    @property
    def channels(self) -> int:
        """Input channels of the network: the slice alone, or with its two neighbours."""
        return 3 if self.context_mm > 0 else 1

    @property
    def window(self) -> tuple[float, float]:
        """Lowest and highest HU of the window."""
        low = self.window_level - self.window_width / 2.0
        return low, low + self.window_width


@dataclass(frozen=True)
class GridGeometry:
    """Size, spacing, origin and direction of a voxel grid, without voxels (see :class:`Image`)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: Image) -> GridGeometry:
        """The grid of ``image``."""
        return cls(image.size, image.spacing, image.origin, tuple(float(v) for v in image.direction.ravel()))

    def image(self, array: np.ndarray, **metadata: object) -> Image:
        """An :class:`Image` of ``array`` (shape ``(k, j, i)`` of this grid) on this grid."""
        return Image(array, self.spacing, self.origin, np.reshape(self.direction, (3, 3)), dict(metadata))

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping ``(i, j, k, 1)`` voxel indices to LPS millimetres (as :attr:`Image.affine`)."""
        m = np.eye(4)
        m[:3, :3] = np.reshape(self.direction, (3, 3)) * np.asarray(self.spacing)[None, :]
        m[:3, 3] = self.origin
        return m

    def sub(self, box: tuple[slice, slice, slice]) -> GridGeometry:
        """The grid of the voxels ``[box]`` (``[k, j, i]`` slices, step 1, within the grid), at the same positions."""
        start = np.array([b.start for b in box[::-1]], float)
        origin = self.affine[:3, :3] @ start + self.affine[:3, 3]
        size = tuple(b.stop - b.start for b in box[::-1])
        return GridGeometry(size, self.spacing, tuple(float(v) for v in origin), self.direction)

    def reach(self, other: GridGeometry) -> tuple[slice, slice, slice] | None:
        """The ``[k, j, i]`` box of this grid's voxels within one voxel of ``other``'s voxels' box; None if none.

        Why: resampling onto ``other`` (linear or nearest) reads only these voxels.
        """
        last = np.array(other.size, float) - 1.0
        corners = np.array([[i, j, k, 1.0] for i in (0, last[0]) for j in (0, last[1]) for k in (0, last[2])])
        ijk = (np.linalg.inv(self.affine) @ (other.affine @ corners.T))[:3].T
        low, high = np.floor(ijk.min(axis=0)) - 1, np.ceil(ijk.max(axis=0)) + 2
        box = [slice(int(max(0, lo)), int(min(n, hi))) for lo, hi, n in zip(low, high, self.size)]
        return None if any(b.start >= b.stop for b in box) else (box[2], box[1], box[0])

    def resample(self, image: Image, kind: Kind) -> np.ndarray:
        """Values of ``image`` (any grid in the same frame) at this grid's voxel centres.

        Labels keep their dtype (nearest neighbour); probabilities become float32 (linear).
        Points outside ``image`` get 0. The grid is filled :data:`RESAMPLE_SLAB` slices at a time,
        each from the part of ``image`` it reaches (:meth:`reach`), which gives the values of one
        whole-volume resampling without its whole-volume copies: on a 512 x 512 x 150 CT they were
        0.5 GB at the pipeline's peak.
        """
        if kind not in ("label", "probability"):
            raise ValueError(f"kind must be 'label' or 'probability', not {kind!r}")
        out = np.zeros(self.size[::-1], image.array.dtype if kind == "label" else np.float32)
        for slab, target, part in self.slabs(image):
            if part is not None:
                out[slab] = target.resample_whole(part, kind)
        return out

    def slabs(self, image: Image) -> Iterator[tuple[tuple[slice, slice, slice], GridGeometry, Image | None]]:
        """This grid :data:`RESAMPLE_SLAB` slices at a time: each slab's box, its grid, and the part of ``image``
        it reaches (:meth:`reach`; None when the slab lies outside ``image``)."""
        source = GridGeometry.of(image)
        for k in range(0, self.size[2], RESAMPLE_SLAB):
            slab = (slice(k, min(k + RESAMPLE_SLAB, self.size[2])), slice(0, self.size[1]), slice(0, self.size[0]))
            target = self.sub(slab)
            reach = source.reach(target)
            yield slab, target, None if reach is None else image.crop(reach)

    def resample_whole(self, image: Image, kind: Kind, outside: float = 0.0) -> np.ndarray:
        """:meth:`resample` in one SimpleITK call (``outside``: the value of points outside ``image``)."""
        source = image.to_sitk()
        interpolator = sitk.sitkNearestNeighbor if kind == "label" else sitk.sitkLinear
        pixel = source.GetPixelID() if kind == "label" else sitk.sitkFloat32
        out = sitk.Resample(
            source, self.size, sitk.Transform(), interpolator, self.origin, self.spacing, self.direction, outside, pixel
        )
        return sitk.GetArrayFromImage(out)


@dataclass
class Preprocessed:
    """A CT as the network sees it, and the way back to the CT's own grid.

    Attributes
    ----------
    image
        The network input: uint8 lung-window codes, shape ``(slices, rows, columns)``, on the
        network grid (its geometry is that of the image).
    input_grid
        The grid of the CT that was preprocessed; results come back onto exactly this grid.
    options
        The options used.
    """

    image: Image
    input_grid: GridGeometry
    options: PreprocessOptions

    @property
    def array(self) -> np.ndarray:
        """The uint8 network input, shape ``(slices, rows, columns)``."""
        return self.image.array

    def channel_indices(self, slices: np.ndarray) -> np.ndarray:
        """Which slices of :attr:`array` make the network input of each of ``slices``.

        Returns
        -------
        numpy.ndarray
            int ``(len(slices), channels)``: the slice itself, or (with ``context_mm``) the slice
            nearest ``context_mm`` below it, itself, and the one nearest ``context_mm`` above it
            (at least one slice away, clamped at the volume's ends, where the slice repeats).
        """
        slices = np.asarray(slices, dtype=int).reshape(-1)
        if self.options.channels == 1:
            return slices[:, None]
        step = max(1, round(self.options.context_mm / abs(self.image.spacing[2])))
        last = self.array.shape[0] - 1
        return np.column_stack([np.clip(slices - step, 0, last), slices, np.clip(slices + step, 0, last)])

    @property
    def network_grid(self) -> GridGeometry:
        """The grid of :attr:`image`."""
        return GridGeometry.of(self.image)

    def to_input_grid(self, values: np.ndarray, kind: Kind = "label") -> Image:
        """Map a result computed on the network grid back onto the input CT's grid.

        Parameters
        ----------
        values
            Array of the network input's shape: a label map (any integer dtype) or a probability
            map (float).
        kind
            ``"label"`` samples the nearest network pixel and keeps the dtype; ``"probability"``
            interpolates linearly and returns float32.

        Returns
        -------
        Image
            On the input's exact grid; voxels outside the network's field of view are 0.

        Raises
        ------
        ValueError
            When ``values`` does not have the network input's shape or ``kind`` is unknown.
        """
        values = np.asarray(values)
        if values.shape != self.array.shape:
            raise ValueError(f"values of shape {values.shape} are not on the network grid {self.array.shape}")
        if values.dtype == bool:
            values = values.astype(np.uint8)
        source = self.network_grid.image(values)
        return self.input_grid.image(self.input_grid.resample(source, kind))

    def to_network_grid(self, image: Image, kind: Kind = "label") -> np.ndarray:
        """Sample ``image`` (e.g. a lung search region on the CT's grid) on the network grid.

        Returns
        -------
        numpy.ndarray
            Of the network input's shape; labels keep their dtype (nearest), probabilities are
            float32 (linear); 0 outside ``image``.
        """
        if image.array.dtype == bool:
            image = image.with_array(image.array.astype(np.uint8))
        return self.network_grid.resample(image, kind)


def lung_window(hu: np.ndarray, options: PreprocessOptions = PreprocessOptions()) -> np.ndarray:
    """Clip CT numbers to the lung window and bin them linearly into uint8 codes.

    Parameters
    ----------
    hu
        CT numbers (HU).
    options
        Window and number of levels.

    Returns
    -------
    numpy.ndarray
        uint8 codes ``0 .. levels - 1``: 0 at the window's low end, ``levels - 1`` at its top.
    """
    low, high = options.window
    scaled = (np.clip(np.asarray(hu, dtype=np.float32), low, high) - low) * ((options.levels - 1) / (high - low))
    return np.rint(scaled).astype(np.uint8)


def preprocess(
    ct: Image, options: PreprocessOptions = PreprocessOptions(), centre_lps: np.ndarray | None = None
) -> Preprocessed:
    """Resample a CT to the network grid and code it in the lung window (see the module doc).

    Parameters
    ----------
    ct
        CT in Hounsfield units, axial (slice normal within 30 degrees of the patient's z axis).
    options
        Network grid and intensity coding.
    centre_lps
        LPS point (mm) the field of view is centred on in-plane (default: the centre of the
        input's slices); useful when the patient lies off-centre in a wide field of view.

    Returns
    -------
    Preprocessed
        The network input and the inverse mapping.

    Raises
    ------
    oncoqi.lung.ct.NotCTError, oncoqi.lung.ct.EmptyVolumeError
        When ``ct`` is not a CT in HU, or is empty.
    oncoqi.errors.GeometryError
        When the series is not axial.
    """
    check_ct(ct)
    grid = network_geometry(ct, options, centre_lps)
    # A slab at a time (GridGeometry.slabs): the float32 CT on the network grid and the coding's
    # temporaries of the whole volume would be 0.6 GB on a 512 x 512 x 150 CT, the pipeline's peak.
    codes = np.full(grid.size[::-1], lung_window(np.array([AIR_HU]), options)[0], np.uint8)
    for slab, target, part in grid.slabs(ct):
        if part is not None:
            codes[slab] = lung_window(target.resample_whole(part, "probability", outside=AIR_HU), options)
    image = grid.image(codes, modality="CT", units="lung window code", window=options.window, levels=options.levels)
    return Preprocessed(image=image, input_grid=GridGeometry.of(ct), options=options)


def network_geometry(
    ct: Image, options: PreprocessOptions = PreprocessOptions(), centre_lps: np.ndarray | None = None
) -> GridGeometry:
    """The network grid for ``ct``: the same slice planes, square pixels on patient-aligned axes.

    The columns run towards the patient's left and the rows towards the back, within the slice
    planes of ``ct``; the field of view is centred on ``centre_lps`` (default: the centre of the
    input's slices).

    Raises
    ------
    oncoqi.errors.GeometryError
        When the slice normal is more than 30 degrees from the patient's z axis (not axial).
    """
    check_axial(ct)
    direction = ct.direction
    normal = direction[:, 2] / np.linalg.norm(direction[:, 2])
    columns = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
    columns /= np.linalg.norm(columns)
    rows = np.cross(normal, columns)
    if rows[1] < 0:
        rows = -rows
    size = np.asarray(ct.size, dtype=float)
    spacing = np.asarray(ct.spacing)
    origin = np.asarray(ct.origin)
    if centre_lps is None:
        centre = origin + direction @ ((size - 1.0) / 2.0 * spacing)
    else:
        centre = np.asarray(centre_lps, dtype=float)
    in_first_slice = centre - float(np.dot(centre - origin, normal)) * normal
    p = options.pixel_mm
    net_origin = in_first_slice - (options.columns - 1) / 2.0 * p * columns - (options.rows - 1) / 2.0 * p * rows
    net_direction = np.column_stack([columns, rows, direction[:, 2]])
    return GridGeometry(
        size=(options.columns, options.rows, int(ct.size[2])),
        spacing=(p, p, float(ct.spacing[2])),
        origin=tuple(float(v) for v in net_origin),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in net_direction.ravel()),
    )
