"""The small structures around the lungs that a tumour detector must learn to ignore.

Real chest CT is full of soft-tissue profiles outside the aerated lung that look, slice by
slice, much like a small tumour: mediastinal and hilar lymph nodes in the fat, the branches of
the aortic arch and the brachiocephalic veins, the azygos arch, axillary nodes and vessels,
breast tissue, the scapulae and the fat planes between the chest-wall muscles, the thymic
strands of the prevascular space, pericardial fat pads; and inside the lung, the patchy density
along the posterior pleura of supine patients. A phantom whose
mediastinum is clean fat teaches a network that any soft tissue in fat is tumour, and it then
fires on all of them (the false lesions of the first lung models on real CT lay exactly
there). This module draws that clutter for :class:`~oncoqi.phantom.anatomy.Anatomy`; none of it
is tumour, so every piece is a hard negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from oncoqi.phantom.grid import slice_window, smooth_noise
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
    def draw(cls, rng: np.random.Generator, apex_z: float) -> ChestWall:
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

    def paint(
        self,
        lab: np.ndarray,
        body: np.ndarray,
        depth: np.ndarray,
        sin: np.ndarray,
        X: np.ndarray,
        z: float,
        d_fat: np.ndarray,
        d_mus: np.ndarray,
    ) -> None:
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


def mediastinal_nodes(
    rng: np.random.Generator,
    x_mid: float,
    band_half_width: float,
    front_y: float,
    back_y: float,
    z_low: float,
    z_high: float,
) -> tuple[Blob, ...]:
    """Lymph nodes (5-14 mm short axis) scattered through the mediastinal fat.

    The nodes are drawn in the box the mediastinum occupies; those that fall outside its fat are
    not painted, and those that touch the lung border make the small bumps real mediastina have.
    """
    out = []
    for _ in range(int(rng.integers(4, 13))):
        short = rng.uniform(2.5, 7.0)
        centre = (
            x_mid + rng.uniform(-1.4, 1.4) * band_half_width,
            rng.uniform(front_y, back_y),
            rng.uniform(z_low, z_high),
        )
        axes = (short * rng.uniform(1.0, 1.6), short, short * rng.uniform(1.0, 2.0))
        out.append(Blob(centre, axes, T.MEDIASTINAL_SOFT, T.MEDIASTINAL_FAT))
    return tuple(out)


def chest_wall_nodes(
    rng: np.random.Generator, body_a: float, body_b: float, body_yc: float, z_low: float, z_high: float
) -> tuple[Blob, ...]:
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


@dataclass(frozen=True)
class AnteriorMediastinum:
    """The prevascular (thymic) space in front of the great vessels, above the heart.

    On real CT it takes one of two forms. Either the two lungs' anterior borders meet behind the
    sternum (the anterior junction line: two pleurae and a film of fat, a few millimetres wide),
    or the space widens towards the sternum into a triangle holding the involuted thymus: fat
    crossed by thin soft-tissue strands, or in younger patients soft tissue. A phantom whose
    mediastinum is a band of clean fat of one width leaves a network that has seen neither, and
    it marks the space (the largest false lesion of the first anatomy-aware models on a real
    chest CT, at the anterior junction).

    Parameters
    ----------
    z_low, z_high
        Heights between which the triangle is drawn (mm).
    apex_y, apex_half_width
        Where its apex lies, in front of the great vessels (LPS y, mm), and its half-width there:
        the mediastinal band's.
    front_y, front_half_width
        Where the front of the body lies (LPS y, mm), and the space's half-width there: 0.5-3 mm
        for a junction line, wider than the band for a triangle. In between it narrows or
        widens linearly.
    soft
        Whether it is a residual thymus (soft tissue) rather than fat with strands.
    waves
        Wave vectors (rad/mm, one per row) and phases (last column) of the sum of plane waves
        whose near-zero level set draws the strands: an analytic field, so the CT and the finer
        PET grid see the same strands.
    strand_level
        Half-width of that level set; with the wave numbers it sets the strands' thickness.
    """

    z_low: float
    z_high: float
    apex_y: float
    apex_half_width: float
    front_y: float
    front_half_width: float
    soft: bool
    waves: tuple[tuple[float, float, float, float], ...]
    strand_level: float

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        z_low: float,
        z_high: float,
        apex_y: float,
        apex_half_width: float,
        front_y: float,
    ) -> AnteriorMediastinum:
        """A junction line or a thymic triangle (even odds) between ``z_low`` and ``z_high``."""
        junction = bool(rng.random() < 0.5)
        front = rng.uniform(0.5, 3.0) if junction else apex_half_width + rng.uniform(5.0, 35.0)
        waves = []
        for _ in range(3):
            k = 2.0 * np.pi / rng.uniform(10.0, 25.0)
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            waves.append((*(k * direction), rng.uniform(0.0, 2.0 * np.pi)))
        return cls(
            z_low=z_low,
            z_high=z_high,
            apex_y=apex_y,
            apex_half_width=apex_half_width,
            front_y=front_y,
            front_half_width=front,
            soft=bool(rng.random() < 0.3) and not junction,
            waves=tuple(waves),  # type: ignore[arg-type]
            strand_level=rng.uniform(0.15, 0.35),
        )

    def paint(
        self,
        lab: np.ndarray,
        cavity: np.ndarray,
        lung: np.ndarray,
        X: np.ndarray,
        Y: np.ndarray,
        z: float,
        lateral: np.ndarray,
    ) -> None:
        """Paint the space (and its strands) over the mediastinal band in one axial slice.

        ``lung`` marks the voxels that were lung before the band was painted: where the space
        is narrower than the band, they become lung again. ``lateral`` is the distance (mm) from
        the mediastinal midline.
        """
        if not self.z_low <= z <= self.z_high:
            return
        towards_front = np.clip((self.apex_y - Y) / max(self.apex_y - self.front_y, 1.0), 0.0, 1.0)
        half_width = self.apex_half_width + (self.front_half_width - self.apex_half_width) * towards_front
        front = cavity & (Y < self.apex_y)
        inside = front & (lateral < half_width)
        lab[front & lung & ~inside] = T.LUNG
        space = inside & (lung | (lab == T.MEDIASTINAL_FAT))
        if self.soft:
            lab[space] = T.MEDIASTINAL_SOFT
            return
        lab[space] = T.MEDIASTINAL_FAT
        field = sum(np.cos(kx * X + ky * Y + kz * z + phase) for kx, ky, kz, phase in self.waves)
        lab[space & (np.abs(field) < self.strand_level)] = T.MEDIASTINAL_SOFT


def pericardial_fat_pads(
    rng: np.random.Generator, heart_centre: tuple[float, float, float], heart_axes: tuple[float, float, float]
) -> tuple[Blob, ...]:
    """Fat pads in the cardiophrenic angles, painted over lung.

    They are common, reach several centimetres, and in a lung window look like a mass beside
    the heart; none is a tumour.
    """
    (xc, yc, zc), (a, b, c) = heart_centre, heart_axes
    out = []
    for side in (-1.0, 1.0):
        if rng.random() < 0.6:
            size = rng.uniform(8.0, 22.0)
            centre = (xc + side * 0.75 * a, yc - 0.55 * b, zc - 0.55 * c)
            axes = (size * rng.uniform(1.0, 1.6), size, size * rng.uniform(0.8, 1.5))
            out.append(Blob(centre, axes, T.MEDIASTINAL_FAT, T.LUNG))
    return tuple(out)


@dataclass(frozen=True)
class DependentDensity:
    """Gravity-dependent subpleural density in the posterior lung, never labelled.

    Supine patients show hazy, patchy density along the posterior pleura (dependent
    atelectasis), most at the bases: -600 to -250 HU over a few millimetres to a centimetre, which a
    network trained on clean lungs marks as a lesion.

    Parameters
    ----------
    amplitude_hu
        Added CT number at the pleura where the density is full (0: none in this study).
    depth_mm
        Its e-folding depth into the lung from the pleura.
    reach_mm
        How far in front of the vertebral body it fades out.
    patch_mm
        Size of its patches (the correlation length of the mask that makes it patchy).
    """

    amplitude_hu: float
    depth_mm: float
    reach_mm: float
    patch_mm: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> DependentDensity:
        """Present in about two studies out of three, of random strength, depth and patchiness."""
        amplitude = rng.uniform(300.0, 900.0) if rng.random() < 0.65 else 0.0
        return cls(amplitude, rng.uniform(3.0, 12.0), rng.uniform(40.0, 90.0), rng.uniform(4.0, 12.0))

    def hu(
        self,
        lung: np.ndarray,
        spacing_kji: tuple[float, float, float],
        y: np.ndarray,
        z: np.ndarray,
        vertebra_y: float,
        z_range: tuple[float, float],
        rng: np.random.Generator,
    ) -> np.ndarray | None:
        """The CT numbers to add inside ``lung`` (float32, array order k, j, i), or None when absent.

        ``y`` and ``z`` are the (increasing) voxel-centre coordinates of the rows and slices; only
        the rows behind ``vertebra_y - reach_mm`` are computed, since the density is zero in front.
        """
        first = int(np.searchsorted(y, vertebra_y - self.reach_mm, side="right"))
        if self.amplitude_hu <= 0.0 or first == y.size:
            return None
        part = lung[:, first:, :]
        depth = ndimage.distance_transform_edt(part, sampling=spacing_kji)
        weight_y = np.clip((y[first:] - vertebra_y + self.reach_mm) / self.reach_mm, 0.0, 1.0)
        lo, hi = z_range
        weight_z = 1.0 - 0.6 * np.clip((z - lo) / max(hi - lo, 1.0), 0.0, 1.0)
        sigma = tuple(self.patch_mm / s for s in spacing_kji)
        patches = np.clip(0.5 + 0.7 * smooth_noise(part.shape, sigma, rng), 0.0, 1.0)
        out = np.zeros(lung.shape, dtype=np.float32)
        out[:, first:, :] = (
            self.amplitude_hu
            * np.exp(-depth / self.depth_mm)
            * patches
            * weight_y[None, :, None]
            * weight_z[:, None, None]
            * part
        )
        return out
