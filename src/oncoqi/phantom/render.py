"""Turn tissue maps into CT numbers and PET activity.

CT
    class mean HU (raised where the study has intravenous contrast) plus a smooth texture
    (strongest in lung, with a gravity-dependent density gradient and the anatomy's patchy
    dependent density along the posterior pleura), pulmonary vessels and bronchi blended in by
    their partial-volume coverage, tumours; then scanner blur with voxel averaging (partial volume
    at every boundary) and correlated noise; stored as integer HU.
PET
    class activity evaluated on a grid ``PET_SUPERSAMPLING`` times finer and averaged into the
    PET voxels (exact partial volume), then optional resolution blur and count-dependent noise.
    For every region the voxel deepest inside it (all sub-samples of one class) is reported, so
    that the true value can be read back from the images, and the share of each PET voxel's
    sub-samples that lie in a tumour, so that what a PET segmentation should find is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from oncoqi.phantom.anatomy import Anatomy
from oncoqi.phantom.grid import Grid, smooth_noise
from oncoqi.phantom.tissues import GROUND_GLASS_HU, GROUND_GLASS_TEXTURE_HU, TEXTURE_HU, Tissue, enhanced_hu, lookup
from oncoqi.phantom.tumours import PlacedTumour
from oncoqi.phantom.vessels import TubeTree, rasterise

PET_SUPERSAMPLING = 2
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: Region ids of tumours in the PET sampling map are ``TUMOUR_REGION + label``.
TUMOUR_REGION = 100


@dataclass(frozen=True)
class PetRendering:
    """What :func:`render_pet` makes.

    Attributes
    ----------
    activity
        Activity concentration (float32, Bq/ml) after resolution blur and noise.
    regions
        The regions of known uniform activity.
    tumour_fraction
        Share (float32, 0-1) of each PET voxel's sub-samples inside a tumour (any label), before
        blur: the exact partial volume of the tumours in the PET voxels.
    """

    activity: np.ndarray
    regions: list[PetRegion]
    tumour_fraction: np.ndarray


@dataclass(frozen=True)
class LungTrees:
    """The pulmonary trees that :func:`render_ct` blends into the lungs.

    Attributes
    ----------
    vessels
        Arterial and venous trees (pulmonary vessel density).
    airways
        Bronchial trees (air lumen inside a soft-tissue wall).
    """

    vessels: list[TubeTree]
    airways: list[TubeTree]


@dataclass(frozen=True)
class CtScanOptions:
    """How the CT was acquired and how the scanner degrades the image (:func:`render_ct`).

    Attributes
    ----------
    noise_hu
        Standard deviation of the correlated noise (HU); 0 for none.
    blur_mm
        Scanner blur FWHM (mm), with voxel averaging (partial volume); 0 for neither.
    contrast_hu
        Intravenous contrast: how far blood rises above its unenhanced CT number (HU), the other
        classes by :data:`oncoqi.phantom.tissues.ENHANCEMENT`; 0 for a study without contrast.
    """

    noise_hu: float
    blur_mm: float
    contrast_hu: float = 0.0


def render_ct(
    tissue: np.ndarray,
    grid: Grid,
    anatomy: Anatomy,
    tumour_label: np.ndarray,
    trees: LungTrees,
    scan: CtScanOptions,
    rng: np.random.Generator,
    ground_glass: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CT numbers (int16) and the final tissue map (with trees and tumours) on the CT grid.

    ``ground_glass`` (optional, boolean) marks the tumour voxels of ground-glass density (the
    hazy rim of a part-solid tumour); the other tumour voxels are solid.
    """
    noise_hu, blur_mm = scan.noise_hu, scan.blur_mm
    class_hu = enhanced_hu(scan.contrast_hu)
    lung = tissue == Tissue.LUNG
    vessel = _union(trees.vessels, grid)
    wall = _union(trees.airways, grid, scale=1.25, grow=0.4)
    lumen = _union(trees.airways, grid)
    final = tissue.copy()
    final[lung & (vessel >= 0.5)] = Tissue.PULMONARY_VESSEL
    final[lung & (wall >= 0.5)] = Tissue.BRONCHUS_WALL
    final[lung & (lumen >= 0.5)] = Tissue.BRONCHUS
    final[tumour_label > 0] = Tissue.TUMOUR

    texture = smooth_noise(grid.shape, tuple(2.0 / s for s in grid.spacing[::-1]), rng)
    hu = lookup(class_hu)[tissue] + lookup(TEXTURE_HU)[tissue] * texture
    _, y, z = grid.axes()
    front, back = anatomy.body_yc - 0.6 * anatomy.body_b, anatomy.vertebra_y
    gradient = (60.0 * np.clip((y - front) / (back - front), 0.0, 1.0) ** 1.5).astype(np.float32)
    hu += np.where(lung, gradient[None, :, None], np.float32(0.0))
    dependent = anatomy.dependent.hu(lung, grid.spacing[::-1], y, z, anatomy.vertebra_y, anatomy.lung_z_range, rng)
    if dependent is not None:
        hu += dependent
    hu = np.where(lung, hu * (1 - vessel) + class_hu[Tissue.PULMONARY_VESSEL] * vessel, hu)
    hu = np.where(
        lung, hu * (1 - wall) + class_hu[Tissue.BRONCHUS_WALL] * (wall - lumen) + class_hu[Tissue.BRONCHUS] * lumen, hu
    )
    tumour = tumour_label > 0
    hu[tumour] = class_hu[Tissue.TUMOUR] + TEXTURE_HU[Tissue.TUMOUR] * texture[tumour]
    if ground_glass is not None:
        hu[ground_glass] = GROUND_GLASS_HU + GROUND_GLASS_TEXTURE_HU * texture[ground_glass]
    if blur_mm > 0:
        sigma = [np.sqrt((blur_mm * FWHM_TO_SIGMA) ** 2 + s**2 / 12.0) / s for s in grid.spacing[::-1]]
        hu = ndimage.gaussian_filter(hu, sigma)
    if noise_hu > 0:
        hu += noise_hu * smooth_noise(grid.shape, (0.0, 0.7, 0.7), rng)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), final


def _union(trees: list[TubeTree], grid: Grid, scale: float = 1.0, grow: float = 0.0) -> np.ndarray:
    out = np.zeros(grid.shape, dtype=np.float32)
    for tree in trees:
        np.maximum(out, rasterise(tree, grid, grow=grow, scale=scale), out=out)
    return out


@dataclass(frozen=True)
class PetRegion:
    """A region of uniform true activity in the PET."""

    name: str
    region_id: int
    activity_bq_per_ml: float
    interior_index: tuple[int, int, int] | None
    interior_depth_mm: float
    pet_volume_ml: float


def render_pet(
    anatomy: Anatomy,
    grid: Grid,
    tumours: list[PlacedTumour],
    class_activity: dict[Tissue, float],
    tumour_activity: dict[int, float],
    blur_mm: float,
    noise: float,
    rng: np.random.Generator,
) -> PetRendering:
    """PET activity (float32, Bq/ml) on ``grid``, the regions of known uniform activity and the
    tumour coverage of each voxel.

    Parameters
    ----------
    class_activity
        Activity (Bq/ml) of every tissue class.
    tumour_activity
        Activity of each tumour, by label.
    """
    fine = grid.refined(PET_SUPERSAMPLING)
    region = anatomy.labels(fine).astype(np.uint16)
    for t in tumours:
        window = t.shape.window(fine)
        if window is None:
            continue
        inside = t.shape.inside(fine, window) & (region[window] == Tissue.LUNG)
        region[window][inside] = TUMOUR_REGION + t.label
    lut = np.zeros(TUMOUR_REGION + 256, dtype=np.float64)
    for tissue, value in class_activity.items():
        lut[int(tissue)] = value
    for label, value in tumour_activity.items():
        lut[TUMOUR_REGION + label] = value
    f = PET_SUPERSAMPLING
    k, j, i = grid.shape
    blocks = region.reshape(k, f, j, f, i, f)
    activity = lut[blocks].mean(axis=(1, 3, 5))
    low, high = blocks.min(axis=(1, 3, 5)), blocks.max(axis=(1, 3, 5))
    pure = np.where(low == high, low, np.iinfo(np.uint16).max)
    tumour_fraction = (blocks >= TUMOUR_REGION).mean(axis=(1, 3, 5)).astype(np.float32)
    names = {int(t): t.name.lower() for t in Tissue}
    sampling = grid.spacing[::-1]
    regions = []
    for rid in np.unique(region):
        rid = int(rid)
        inside = pure == rid
        depth = ndimage.distance_transform_edt(inside, sampling=sampling) if inside.any() else None
        index = None if depth is None else tuple(int(v) for v in np.unravel_index(np.argmax(depth), depth.shape))
        name = f"tumour_{rid - TUMOUR_REGION}" if rid >= TUMOUR_REGION else names[rid]
        regions.append(
            PetRegion(
                name,
                rid,
                float(lut[rid]),
                None if index is None else (index[2], index[1], index[0]),
                0.0 if depth is None else float(depth.max()),
                float((region == rid).sum()) * fine.voxel_ml,
            )
        )
    if blur_mm > 0:
        activity = ndimage.gaussian_filter(activity, [blur_mm * FWHM_TO_SIGMA / s for s in sampling])
    if noise > 0:
        reference = float(activity[activity > 0].mean()) if (activity > 0).any() else 0.0
        sigma = noise * np.sqrt(np.clip(activity, 0, None) * reference)
        activity = np.clip(activity + sigma * smooth_noise(grid.shape, (0.7, 0.7, 0.7), rng), 0.0, None)
    return PetRendering(activity.astype(np.float32), regions, tumour_fraction)
