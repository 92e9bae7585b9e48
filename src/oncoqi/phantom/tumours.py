"""Lung tumours of a requested volume, shape and location class.

A tumour is a star-shaped solid around its centre: the surface distance in direction ``u`` is
``R(u) = radius * core(u) + spikes(u)``, with

round
    a mildly elongated ellipsoid;
lobulated
    the ellipsoid with 4-7 smooth bumps (``exp(kappa (u.l - 1))`` lobes);
spiculated
    a slightly lobulated core with 8-20 thin tapering spikes (cones 1.5-2.5 mm wide at the base).

Placement chooses a centre from distance maps of the tissue classes so that the class holds:

parenchyma
    the tumour, grown by one voxel (26-neighbourhood), stays inside lung (touches no pleura);
chest_wall
    the tumour reaches past the inner chest wall and is clipped to the lung there, so it abuts
    chest-wall tissue (muscle, rib, fat, spine) and neither mediastinum nor diaphragm;
mediastinum
    likewise against the mediastinum (fat, vessels, heart, hila, airway) only.

Tumours too large to touch only their own compartment (say 300 ml against the chest wall) may
also touch another one; the compartments touched are reported.

The tumour is always clipped to the lung and kept apart from other tumours; its scale is then
adjusted until the voxel count on the CT grid matches the requested volume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from oncoqi.errors import OncoQIError
from oncoqi.phantom.grid import Grid
from oncoqi.phantom.tissues import ABDOMEN, CHEST_WALL, MEDIASTINUM, Tissue, members

SHAPES = ("round", "lobulated", "spiculated")
LOCATIONS = ("parenchyma", "chest_wall", "mediastinum")

_CUBE = ndimage.generate_binary_structure(3, 3)


class TumourPlacementError(OncoQIError):
    """No place in this phantom's lungs fits a requested tumour."""


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (n, 3)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


_DIRECTIONS = _fibonacci_sphere(20000)


def _random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass(frozen=True)
class TumourShape:
    """A star-shaped solid; ``radius`` scales everything but the spike base width."""

    kind: str
    centre: tuple[float, float, float]
    radius: float
    rotation: np.ndarray
    axes: np.ndarray
    lobe_dirs: np.ndarray
    lobe_amps: np.ndarray
    lobe_kappa: float
    spike_dirs: np.ndarray
    spike_lengths: np.ndarray
    spike_base_mm: np.ndarray

    @classmethod
    def draw(cls, kind: str, rng: np.random.Generator) -> TumourShape:
        """Random shape parameters of ``kind`` with unit radius; every number is always drawn."""
        if kind not in SHAPES:
            raise OncoQIError(f"unknown tumour shape {kind!r}; choose one of {', '.join(SHAPES)}")
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        axes = rng.uniform(0.85, 1.15, size=3)
        axes /= np.prod(axes) ** (1 / 3)
        n_lobes = int(rng.integers(4, 8))
        lobe_dirs = _random_unit(rng, n_lobes)
        lobe_amps = rng.uniform(0.25, 0.5, size=n_lobes)
        n_spikes = int(rng.integers(8, 21))
        spike_dirs = _random_unit(rng, n_spikes)
        spike_lengths = rng.uniform(0.5, 1.3, size=n_spikes)
        spike_base = rng.uniform(1.5, 2.5, size=n_spikes)
        if kind == "round":
            lobe_amps, spike_lengths = lobe_amps * 0, spike_lengths * 0
        elif kind == "lobulated":
            spike_lengths = spike_lengths * 0
        else:
            lobe_amps = lobe_amps * 0.3
        return cls(
            kind, (0.0, 0.0, 0.0), 1.0, q, axes, lobe_dirs, lobe_amps, 6.0, spike_dirs, spike_lengths, spike_base
        )

    def surface(self, u: np.ndarray) -> np.ndarray:
        """Distance (mm) from the centre to the surface along unit vectors ``u`` (..., 3)."""
        local = u @ self.rotation
        core = 1.0 / np.sqrt(np.sum((local / self.axes) ** 2, axis=-1))
        if self.lobe_amps.any():
            core = core * (1.0 + np.exp(self.lobe_kappa * (u @ self.lobe_dirs.T - 1.0)) @ self.lobe_amps)
        r = self.radius * core
        if self.spike_lengths.any():
            angle = np.arccos(np.clip(u @ self.spike_dirs.T, -1.0, 1.0))
            taper = np.clip(1.0 - angle * self.radius / self.spike_base_mm, 0.0, None)
            r = r + self.radius * (taper @ self.spike_lengths)
        return r

    @property
    def extent(self) -> float:
        """Largest centre-to-surface distance (mm)."""
        return float(self.surface(_DIRECTIONS).max()) * 1.02

    @property
    def inner_radius(self) -> float:
        """Smallest centre-to-surface distance (mm)."""
        return float(self.surface(_DIRECTIONS).min())

    @property
    def volume_ml(self) -> float:
        """Analytic volume of the unclipped solid, ``(4 pi / 3) mean(R(u)^3)``, in ml."""
        return float(4.0 / 3.0 * np.pi * np.mean(self.surface(_DIRECTIONS) ** 3)) / 1000.0

    def with_volume(self, volume_ml: float) -> TumourShape:
        """The same shape scaled so that its unclipped volume is ``volume_ml``."""
        shape = self
        for _ in range(6):  # spikes do not scale with the radius: iterate
            shape = replace(shape, radius=shape.radius * (volume_ml / shape.volume_ml) ** (1 / 3))
        return shape

    def inside(self, grid: Grid, window: tuple[slice, slice, slice]) -> np.ndarray:
        """Boolean mask of the window's voxel centres inside the solid."""
        dist, surface = self._polar(grid, window)
        return dist <= surface

    def relative_radius(self, grid: Grid, window: tuple[slice, slice, slice]) -> np.ndarray:
        """Distance of each voxel centre of the window from the centre, as a fraction of the
        surface distance in its direction (<= 1 inside): a part-solid tumour's solid core is
        where it is below the solid fraction."""
        dist, surface = self._polar(grid, window)
        return dist / surface

    def _polar(self, grid: Grid, window: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        z, y, x = grid.points(window)
        p = np.stack(np.broadcast_arrays(x - self.centre[0], y - self.centre[1], z - self.centre[2]), axis=-1)
        dist = np.linalg.norm(p, axis=-1)
        u = np.where(dist[..., None] > 0, p / np.maximum(dist, 1e-9)[..., None], np.array([1.0, 0.0, 0.0]))
        return dist, self.surface(u)

    def window(self, grid: Grid, pad: float = 0.0) -> tuple[slice, slice, slice] | None:
        """Grid window of the solid's bounding box grown by ``pad`` mm."""
        reach = self.extent + pad
        c = np.asarray(self.centre)
        return grid.window(c - reach, c + reach)


@dataclass(frozen=True)
class PlacedTumour:
    """A tumour as placed on the CT grid."""

    label: int
    shape: TumourShape
    location: str
    side: str
    touches: tuple[str, ...]
    requested_volume_ml: float
    volume_ml: float


class TumourPlacer:
    """Places tumours one after another in the lungs of a tissue map on the CT grid.

    Parameters
    ----------
    tissue
        Tissue classes (k, j, i) without tumours and trees.
    grid
        The CT grid of ``tissue``.
    x_mid
        x (mm) of the mediastinal midline: tumours with a larger centre x are in the left lung.
    """

    def __init__(self, tissue: np.ndarray, grid: Grid, x_mid: float) -> None:
        self.tissue = tissue
        self.grid = grid
        self.x_mid = x_mid
        self.label = np.zeros(tissue.shape, dtype=np.uint8)
        self.placed: list[PlacedTumour] = []
        stride = tuple(max(1, int(round(2.5 / s))) for s in grid.spacing)  # i, j, k
        coarse = tissue[:: stride[2], :: stride[1], :: stride[0]]
        sampling = tuple(grid.spacing[a] * stride[a] for a in (2, 1, 0))
        self._stride = stride
        self._lung = coarse == Tissue.LUNG
        self._d_lung = ndimage.distance_transform_edt(self._lung, sampling=sampling)
        self._d_wall = ndimage.distance_transform_edt(~np.isin(coarse, members(CHEST_WALL)), sampling=sampling)
        self._d_med = ndimage.distance_transform_edt(~np.isin(coarse, members(MEDIASTINUM)), sampling=sampling)
        self._d_abd = ndimage.distance_transform_edt(~np.isin(coarse, members(ABDOMEN)), sampling=sampling)
        self._margin = 2.0 * max(grid.spacing) + 1.0

    def place(self, shape: TumourShape, volume_ml: float, location: str, rng: np.random.Generator) -> PlacedTumour:
        """Place one tumour of ``volume_ml`` (on the CT grid) of the given location class.

        Raises
        ------
        TumourPlacementError
            When no position in these lungs satisfies the class (tumour too large, volume too
            short in z, or the lungs already crowded).
        """
        if location not in LOCATIONS:
            raise OncoQIError(f"unknown tumour location {location!r}; choose one of {', '.join(LOCATIONS)}")
        shape = shape.with_volume(volume_ml)
        candidates = self._candidates(shape, location, rng)
        fallback = None
        for tries, centre in enumerate(candidates[:30]):
            if fallback is not None and tries >= 12:
                break
            fitted = self._fit(replace(shape, centre=tuple(float(c) for c in centre)), volume_ml)
            if fitted is None:
                continue
            grade, touches = self._judge(location, fitted[2], fitted[1])
            if grade == 2:
                return self._accept(*fitted, location, touches, volume_ml)
            if grade == 1 and fallback is None:
                fallback = (*fitted, touches)
        if fallback is not None:
            trial, window, mask, touches = fallback
            return self._accept(trial, window, mask, location, touches, volume_ml)
        raise TumourPlacementError(
            f"cannot place a {volume_ml:g} ml {shape.kind} tumour of class {location} in this phantom "
            f"({len(candidates)} candidate positions, none fits): use a smaller volume, another location, "
            "fewer tumours or a longer z extent"
        )

    def _accept(
        self,
        shape: TumourShape,
        window: tuple[slice, slice, slice],
        mask: np.ndarray,
        location: str,
        touches: tuple[str, ...],
        volume_ml: float,
    ) -> PlacedTumour:
        label = len(self.placed) + 1
        self.label[window][mask] = label
        side = "left" if shape.centre[0] > self.x_mid else "right"
        placed = PlacedTumour(label, shape, location, side, touches, volume_ml, float(mask.sum()) * self.grid.voxel_ml)
        self.placed.append(placed)
        return placed

    def _candidates(self, shape: TumourShape, location: str, rng: np.random.Generator) -> np.ndarray:
        """LPS centres (n, 3) that suit the class, best first.

        Centres that keep the whole solid (up to its farthest lobe or spike) clear of the other
        compartments come first, in random order; then, for large or spiculated tumours, centres
        that only keep the solid's inner radius clear. :meth:`_holds` decides in the end.
        """
        ext, inner, margin = shape.extent, shape.inner_radius, self._margin
        step = max(self.grid.spacing[a] * self._stride[a] for a in range(3))
        k, j, i = np.nonzero(self._lung)
        d_lung, d_wall, d_med, d_abd = (d[k, j, i] for d in (self._d_lung, self._d_wall, self._d_med, self._d_abd))
        ijk = np.stack([i * self._stride[0], j * self._stride[1], k * self._stride[2]], axis=1)
        points = np.asarray(self.grid.origin) + ijk * np.asarray(self.grid.spacing)
        z0 = self.grid.origin[2]
        z1 = z0 + (self.grid.size[2] - 1) * self.grid.spacing[2]
        z_room = np.minimum(points[:, 2] - z0, z1 - points[:, 2])
        apart = np.ones(len(points), dtype=bool)
        for other in self.placed:
            gap = np.linalg.norm(points - np.asarray(other.shape.centre), axis=1)
            apart &= gap >= other.shape.extent + inner + margin
        tiers = []
        for reach in (ext, inner):
            ok = apart & (z_room >= reach + margin)
            if location == "parenchyma":
                ok &= d_lung >= reach + margin
            else:
                near, far = (d_wall, d_med) if location == "chest_wall" else (d_med, d_wall)
                ok &= (near >= 0.3 * inner) & (near <= max(0.85 * inner, 0.3 * inner + 1.5 * step))
                ok &= (far >= reach + margin) & (d_abd >= reach + margin)
            tiers.append(ok)
        first = np.flatnonzero(tiers[0])
        second = np.flatnonzero(tiers[1] & ~tiers[0])
        return points[np.concatenate([rng.permutation(first), rng.permutation(second)]).astype(int)]

    def _fit(self, shape: TumourShape, volume_ml: float) -> tuple[TumourShape, tuple, np.ndarray] | None:
        """Scale the clipped tumour until its voxel volume matches; None if it vanishes.

        Voxel counts jump as the surface crosses voxel centres, so the radius is bracketed and
        bisected, and the closest match is kept.
        """
        best: tuple[float, TumourShape, tuple, np.ndarray] | None = None
        low = high = None
        radius = shape.radius
        for _ in range(16):
            shape = replace(shape, radius=radius)
            window = shape.window(self.grid, pad=2 * max(self.grid.spacing))
            if window is None:
                return None
            mask = shape.inside(self.grid, window) & (self.tissue[window] == Tissue.LUNG) & (self.label[window] == 0)
            volume = float(mask.sum()) * self.grid.voxel_ml
            if volume == 0:
                return None
            error = abs(volume / volume_ml - 1.0)
            if best is None or error < best[0]:
                best = (error, shape, window, mask)
            if error < 0.002:
                break
            if volume < volume_ml:
                low = radius
            else:
                high = radius
            if low is not None and high is not None:
                radius = 0.5 * (low + high)
            else:
                radius *= (volume_ml / volume) ** (1 / 3)
        assert best is not None
        return best[1], best[2], best[3]

    def _judge(
        self, location: str, mask: np.ndarray, window: tuple[slice, slice, slice]
    ) -> tuple[int, tuple[str, ...]]:
        """How well the tumour in ``window`` fits its class, and the compartments it touches.

        Returns 2 when the class holds strictly (parenchyma: a one-voxel rim of lung all round;
        chest wall / mediastinum: touches that compartment and no other one), 1 when it touches
        its compartment and others too (acceptable for large tumours), 0 when it does not fit
        (cut by the volume border, touching another tumour, or missing its compartment).
        """
        for axis, (w, n) in enumerate(zip(window, self.tissue.shape)):
            if (w.start == 0 and np.take(mask, 0, axis=axis).any()) or (
                w.stop == n and np.take(mask, -1, axis=axis).any()
            ):
                return 0, ()
        tissue = self.tissue[window]
        grown = ndimage.binary_dilation(mask, _CUBE)
        if (grown & (self.label[window] > 0)).any():
            return 0, ()
        touches = tuple(
            name
            for name, group in (("chest_wall", CHEST_WALL), ("mediastinum", MEDIASTINUM), ("abdomen", ABDOMEN))
            if (grown & np.isin(tissue, members(group))).any()
        )
        if location == "parenchyma":
            return (2 if np.all(tissue[grown] == Tissue.LUNG) else 0), touches
        if location not in touches:
            return 0, touches
        return (2 if touches == (location,) else 1), touches
