"""The small structures around the lungs that a tumour detector must learn to ignore.

Real chest CT is full of soft-tissue profiles outside the aerated lung that look, slice by
slice, much like a small tumour: mediastinal and hilar lymph nodes in the fat, the branches of
the aortic arch and the brachiocephalic veins, the azygos arch, axillary nodes and vessels,
breast tissue, the scapulae and the fat planes between the chest-wall muscles. A phantom whose
mediastinum is clean fat teaches a network that any soft tissue in fat is tumour, and it then
fires on all of them (the false lesions of the first lung models on real CT lay exactly
there). This module draws that clutter for :class:`~oncoqi.phantom.anatomy.Anatomy`; none of it
is tumour, so every piece is a hard negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oncoqi.phantom.grid import slice_window
from oncoqi.phantom.tissues import Tissue as T


@dataclass(frozen=True)
class Blob:
    """An axis-aligned ellipsoid of ``tissue``, painted only over voxels of class ``host``.

    Painting only over its host keeps a mediastinal node out of the lung (where it would be an
    unlabelled nodule, the opposite of what the network must learn) and a chest-wall node in the
    subcutaneous fat.
    """

    centre: tuple[float, float, float]
    axes: tuple[float, float, float]
    tissue: T
    host: T

    def paint(self, lab: np.ndarray, x: np.ndarray, y: np.ndarray, z: float) -> None:
        """Paint the blob's cross-section at height ``z`` into the slice ``lab`` (rows y, columns x)."""
        (xc, yc, zc), (a, b, c) = self.centre, self.axes
        t = 1.0 - ((z - zc) / c) ** 2
        if t <= 0.0:
            return
        ra, rb = a * np.sqrt(t), b * np.sqrt(t)
        window = slice_window(x, y, (xc - ra, yc - rb), (xc + ra, yc + rb))
        if window is None:
            return
        j, i = window
        inside = ((x[None, i] - xc) / ra) ** 2 + ((y[j, None] - yc) / rb) ** 2 <= 1.0
        view = lab[j, i]
        view[inside & (view == self.host)] = self.tissue


@dataclass(frozen=True)
class ChestWall:
    """Scapulae and an intermuscular fat plane, as depths (mm) below the subcutaneous fat.

    Parameters
    ----------
    scapula_depth, scapula_thickness
        Where the scapular blade starts below the fat, and how thick it is.
    scapula_top, scapula_length
        Height of the scapular spine and how far the blade reaches down.
    fat_plane_fraction, fat_plane_thickness
        The fat plane between the superficial and deep chest-wall muscles (pectoralis major and
        minor, latissimus and serratus): its position as a fraction of the muscle layer, and its
        thickness.
    """

    scapula_depth: float
    scapula_thickness: float
    scapula_top: float
    scapula_length: float
    fat_plane_fraction: float
    fat_plane_thickness: float

    @classmethod
    def draw(cls, rng: np.random.Generator, apex_z: float) -> "ChestWall":
        """Random but plausible chest-wall details for a thorax whose lung apex is at ``apex_z``."""
        u = rng.uniform
        return cls(
            scapula_depth=u(2.0, 8.0),
            scapula_thickness=u(3.0, 7.0),
            scapula_top=apex_z + u(-10.0, 15.0),
            scapula_length=u(130.0, 170.0),
            fat_plane_fraction=u(0.3, 0.7),
            fat_plane_thickness=u(1.5, 4.0),
        )

    def paint(self, lab: np.ndarray, body: np.ndarray, depth: np.ndarray, sin: np.ndarray, X: np.ndarray,
              z: float, d_fat: np.ndarray, d_mus: np.ndarray) -> None:
        """Paint the fat plane and, at the right heights, the scapulae into one axial slice.

        ``depth`` is the depth below the skin, ``sin`` +1 straight back and -1 straight front,
        ``d_fat`` and ``d_mus`` the depths where muscle and the rib layer start.
        """
        muscle = body & (depth >= d_fat) & (depth < d_mus)
        plane = d_fat + self.fat_plane_fraction * (d_mus - d_fat)
        lab[muscle & (sin < 0.3) & (np.abs(depth - plane) < self.fat_plane_thickness / 2.0)] = T.FAT
        if self.scapula_top - self.scapula_length <= z <= self.scapula_top:
            # the blade narrows towards its lower angle
            reach = 1.0 - (self.scapula_top - z) / self.scapula_length
            blade = (sin > 0.75 - 0.45 * reach) & (sin < 0.85) & (np.abs(X) > 40.0)
            top = d_fat + self.scapula_depth
            lab[muscle & blade & (depth >= top) & (depth < top + self.scapula_thickness)] = T.BONE


def mediastinal_nodes(rng: np.random.Generator, x_mid: float, band_half_width: float, front_y: float,
                      back_y: float, z_low: float, z_high: float) -> tuple[Blob, ...]:
    """Lymph nodes (5-14 mm short axis) scattered through the mediastinal fat.

    The nodes are drawn in the box the mediastinum occupies; those that fall outside its fat are
    not painted, and those that touch the lung border make the small bumps real mediastina have.
    """
    out = []
    for _ in range(int(rng.integers(4, 13))):
        short = rng.uniform(2.5, 7.0)
        centre = (x_mid + rng.uniform(-1.4, 1.4) * band_half_width, rng.uniform(front_y, back_y),
                  rng.uniform(z_low, z_high))
        axes = (short * rng.uniform(1.0, 1.6), short, short * rng.uniform(1.0, 2.0))
        out.append(Blob(centre, axes, T.MEDIASTINAL_SOFT, T.MEDIASTINAL_FAT))
    return tuple(out)


def chest_wall_nodes(rng: np.random.Generator, body_a: float, body_b: float, body_yc: float, z_low: float,
                     z_high: float) -> tuple[Blob, ...]:
    """Axillary nodes, vessels and breast tissue: soft-tissue ovals in the subcutaneous fat."""
    out = []
    for _ in range(int(rng.integers(4, 16))):
        angle = rng.uniform(-np.pi, 0.35 * np.pi)  # front and sides, rarely the back
        r = rng.uniform(0.8, 1.0)
        centre = (r * body_a * np.cos(angle), body_yc + r * body_b * np.sin(angle), rng.uniform(z_low, z_high))
        size = rng.uniform(2.0, 7.0)
        axes = (size * rng.uniform(0.8, 1.8), size * rng.uniform(0.8, 1.8), size * rng.uniform(1.0, 3.0))
        out.append(Blob(centre, axes, T.MUSCLE, T.FAT))
    return tuple(out)
