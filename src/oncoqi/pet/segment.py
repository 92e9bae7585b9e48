"""PET lesion segmentation by thresholds, and transfer of CT tumour labels onto the PET grid.

Thresholds
----------
Every method turns one number into an SUV threshold ``T`` and keeps the voxels with
``SUV >= T``. The *local* quantities come from a local region ``L``: the user's region (a label
mask on the PET grid), or the ball of radius ``search_radius_mm`` around a seed point.

===========  ==============================================================================
method       threshold
===========  ==============================================================================
fixed        ``T = value`` (an SUV, e.g. 2.5)
percent      ``T = value / 100 * max_L`` (``max_L``: SUVmax in ``L``; e.g. 41 or 50 %)
background   ``T = bg + value / 100 * (max_L - bg)``: the background-adapted relative
             threshold (source-to-background method; e.g. van Dalen JA et al., Nucl Med
             Commun 2007;28:485-493; with ``value`` = 50 and SUVpeak in place of SUVmax it is
             the "A50%P" contour of the EANM guideline, Boellaard R et al., Eur J Nucl Med
             Mol Imaging 2015;42:328-354). ``bg`` is the user's value, else the mean SUV of
             a shell of voxels within ``shell_mm`` outside the region, or, with a seed only,
             outside the lesion grown from the seed at ``bg = 0`` (``T = value% x max_L``,
             a superset of the final lesion), so that a lesion larger than the search ball
             does not count as its own background.
===========  ==============================================================================

With a region the result is every voxel of the region at or above ``T``; with a seed it is the
connected component (26-neighbourhood) of ``{SUV >= T}`` containing the seed, restricted to the
region when one is given too. A seed below ``T`` (placed on the lesion's edge) is moved to the
hottest voxel of ``L``, with a warning.

Transfer of CT labels
---------------------
A tumour drawn on the CT (e.g. by LungTumorSegmentation) is brought onto the coarser PET grid by
:func:`transfer_labels`: ``nearest`` copies the label of the CT voxel nearest to each PET voxel
centre (fast; the volume can change by up to a voxel layer); ``fraction`` (partial-volume aware)
computes the fraction of every PET voxel covered by each label (:func:`coverage_fraction`) and
keeps a label where its fraction is at least 0.5, which preserves the volume up to the
staircase error of half a PET voxel across the surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet.labels import resample_to

#: Algorithm name of a segment made by an SUV threshold (:func:`threshold_segment`): AUTOMATIC in a
#: batch, SEMIAUTOMATIC when a user placed the seed.
THRESHOLD_ALGORITHM_NAME = "OncoQI PET threshold"

#: Default radius (mm) of the ball around a seed point in which the local SUVmax is sought.
SEARCH_RADIUS_MM = 15.0
#: Default thickness (mm) of the background shell around the local region.
SHELL_MM = 10.0
#: Largest number of sub-samples per PET voxel and axis used for the coverage fractions.
MAX_SUBSAMPLES = 12
#: Sub-samples per label voxel and axis aimed at by the coverage fractions.
SUBSAMPLE_REFINEMENT = 4
#: Most sub-samples resampled at once by :func:`coverage_fraction` (bytes of memory, uint8).
SAMPLE_BUDGET = 32_000_000


class ThresholdMethod(str, Enum):
    """How :func:`threshold_segment` turns its value into an SUV threshold (module docs)."""

    FIXED = "fixed"
    PERCENT = "percent"
    BACKGROUND = "background"


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold segmentation and the numbers that defined it.

    Attributes
    ----------
    mask
        uint8 image on the SUV grid, 1 inside the segment.
    method, value
        The method and its value as given.
    threshold
        The SUV threshold ``T`` used.
    local_max
        SUVmax of the local region ``L`` (computed for every method, for the record).
    background
        ``bg`` of the background method (None for the other methods).
    seed_ijk
        The voxel the component was grown from (None without a seed).
    warnings
        Assumptions made (seed moved, empty background shell).
    """

    mask: Image
    method: ThresholdMethod
    value: float
    threshold: float
    local_max: float
    background: float | None
    seed_ijk: tuple[int, int, int] | None
    warnings: tuple[str, ...] = ()

    @property
    def voxel_count(self) -> int:
        """Number of voxels in the segment."""
        return int(np.count_nonzero(self.mask.array))


def _seed_index(suv: Image, seed_lps: tuple[float, float, float]) -> tuple[int, int, int]:
    """``[k, j, i]`` of the voxel containing the LPS point, or an InputError when outside."""
    ijk = np.rint(suv.lps_to_index(np.asarray(seed_lps, dtype=float))).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(suv.size)):
        raise InputError(
            f"seed point {tuple(round(float(c), 2) for c in seed_lps)} (LPS mm) lies outside the PET volume "
            f"(size {suv.size}, origin {suv.origin})"
        )
    return int(ijk[2]), int(ijk[1]), int(ijk[0])


def ball_around(suv: Image, centre_kji: tuple[int, int, int], radius_mm: float) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie within ``radius_mm`` of a voxel centre."""
    k, j, i = np.indices(suv.array.shape, sparse=True)
    offsets = [i - centre_kji[2], j - centre_kji[1], k - centre_kji[0]]
    m = suv.direction * np.asarray(suv.spacing)[None, :]  # index offsets -> LPS mm
    d2 = sum((m[r, 0] * offsets[0] + m[r, 1] * offsets[1] + m[r, 2] * offsets[2]) ** 2 for r in range(3))
    return d2 <= radius_mm * radius_mm


def grow_mm(image: Image, mask: np.ndarray, margin_mm: float) -> np.ndarray:
    """``mask`` (on ``image``'s grid) grown by ``margin_mm`` (Euclidean, in mm), computed in its bounding
    box plus the margin so that a small lesion in a whole-body PET costs little."""
    sampling = image.spacing[::-1]
    pad = [math.ceil(margin_mm / s) + 1 for s in sampling]
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + np.array(pad) + 1, mask.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    grown = np.zeros(mask.shape, dtype=bool)
    grown[box] = ndimage.distance_transform_edt(~mask[box], sampling=sampling) <= margin_mm
    return grown


def _shell(suv: Image, local: np.ndarray, shell_mm: float) -> np.ndarray:
    """Voxels outside ``local`` whose centres are within ``shell_mm`` of a voxel of it."""
    return grow_mm(suv, local, shell_mm) & ~local


def _grow(
    above: np.ndarray, seed: tuple[int, int, int], local: np.ndarray, local_max: float, values: np.ndarray
) -> tuple[np.ndarray, tuple[int, int, int], float | None]:
    """The 26-connected component of ``above`` holding ``seed``, moved to the hottest voxel of
    ``local`` when the seed is not in ``above``; returns it, the seed used, and the SUV of the
    original seed when it was moved (else None).

    Raises
    ------
    InputError
        When neither the seed nor the hottest voxel is in ``above``.
    """
    moved_from = None
    if not above[seed]:
        hottest = np.argwhere(local & (values == local_max))[0]
        moved_from, seed = float(values[seed]), (int(hottest[0]), int(hottest[1]), int(hottest[2]))
        if not above[seed]:
            raise InputError(f"no voxel near the seed reaches the threshold (local SUVmax {local_max:.4g})")
    components, _ = ndimage.label(above, structure=np.ones((3, 3, 3), bool))
    return components == components[seed], seed, moved_from


@dataclass(frozen=True)
class ThresholdOptions:
    """The settings of :func:`threshold_segment` besides its method, value and place: the
    background of the background method and the sizes of the search ball and background shell.

    Attributes
    ----------
    background
        ``bg`` of the background method; by default (None) the mean of the shell around the region
        (or around the lesion grown at ``bg = 0`` from a seed).
    search_radius_mm
        Radius of the ball around the seed that is the local region when no region is given.
    shell_mm
        Thickness of the background shell.
    """

    background: float | None = None
    search_radius_mm: float = SEARCH_RADIUS_MM
    shell_mm: float = SHELL_MM


@dataclass(frozen=True)
class _LocalRegion:
    """The local region ``L`` that the thresholds are taken from (module docs).

    Attributes
    ----------
    restrict
        The user's region (boolean, on the SUV grid), None without one.
    seed
        ``[k, j, i]`` of the seed voxel, None without a seed.
    mask
        ``L``: the user's region, else the ball around the seed.
    local_max
        SUVmax in ``L``.
    """

    restrict: np.ndarray | None
    seed: tuple[int, int, int] | None
    mask: np.ndarray
    local_max: float


def _check_value(method: ThresholdMethod, value: float) -> None:
    """Reject a value that the method cannot turn into a threshold (a non-positive SUV, a percentage
    outside (0, 100])."""
    if method is ThresholdMethod.FIXED:
        if not value > 0:
            raise InputError(f"fixed threshold must be a positive SUV, got {value}")
    elif not 0 < value <= 100:
        raise InputError(f"{method.value} threshold must be a percentage in (0, 100], got {value}")


def _region_mask(suv: Image, region: Image, region_label: int | None) -> np.ndarray:
    """The user's region as a boolean mask, checked to lie on the SUV grid and to be non-empty."""
    if not suv.same_grid(region):
        raise GeometryError(
            f"the region (size {region.size}, spacing {region.spacing}, origin {region.origin}) is not on the PET "
            f"grid (size {suv.size}, spacing {suv.spacing}, origin {suv.origin}): transfer it first"
        )
    restrict = region.array == region_label if region_label is not None else region.array != 0
    if not restrict.any():
        which = f"label {region_label}" if region_label is not None else "any non-zero label"
        raise InputError(f"the region is empty: no voxel has {which}")
    return restrict


def _local_region(
    suv: Image,
    region: Image | None,
    region_label: int | None,
    seed_lps: tuple[float, float, float] | None,
    search_radius_mm: float,
) -> _LocalRegion:
    """The local region ``L`` and its SUVmax, which the percentage thresholds are relative to."""
    restrict = _region_mask(suv, region, region_label) if region is not None else None
    seed = _seed_index(suv, seed_lps) if seed_lps is not None else None
    if restrict is not None:
        local = restrict
    else:
        assert seed is not None
        local = ball_around(suv, seed, search_radius_mm)
    return _LocalRegion(restrict, seed, local, float(suv.array[local].max()))


def _shell_background(suv: Image, value: float, where: _LocalRegion, shell_mm: float) -> float:
    """``bg`` of the background method when the user gave none: the mean SUV of the shell around
    the region, or around the lesion grown at ``bg = 0`` from a seed, so that a lesion larger than
    the search ball is not its own background."""
    values = suv.array
    around = where.mask
    if where.restrict is None:  # seed only: the shell surrounds the lesion grown at bg = 0, not the ball
        assert where.seed is not None
        around, _, _ = _grow(values >= value / 100.0 * where.local_max, where.seed, where.mask, where.local_max, values)
    shell = _shell(suv, around, shell_mm)
    if not shell.any():
        raise InputError(
            "the background shell around the region is empty (region fills the image): give a background SUV"
        )
    return float(values[shell].astype(np.float64).mean())


def _threshold(method: ThresholdMethod, value: float, local_max: float, bg: float | None) -> float:
    """The SUV threshold ``T`` of the method (module docs); ``bg`` is used by the background method."""
    if method is ThresholdMethod.FIXED:
        return float(value)
    if method is ThresholdMethod.PERCENT:
        return value / 100.0 * local_max
    assert bg is not None
    return bg + value / 100.0 * (local_max - bg)


def _segment_above(
    values: np.ndarray, threshold: float, where: _LocalRegion
) -> tuple[np.ndarray, tuple[int, int, int] | None, list[str]]:
    """The segment: the voxels at or above ``threshold`` in the region and/or connected to the seed,
    with the seed used and a warning when the seed had to be moved; an InputError when empty."""
    warnings: list[str] = []
    seed = where.seed
    above = values >= threshold
    if where.restrict is not None:
        above &= where.restrict
    if seed is not None:
        above, seed, moved = _grow(above, seed, where.mask, where.local_max, values)
        if moved:
            warnings.append(
                f"the seed voxel (SUV {moved:.4g}) is below the threshold {threshold:.4g}: "
                f"grown from the hottest voxel nearby (SUV {where.local_max:.4g})"
            )
    if not above.any():
        raise InputError(
            f"no voxel of the region reaches the threshold SUV {threshold:.4g} (local SUVmax {where.local_max:.4g})"
        )
    return above, seed, warnings


def threshold_segment(
    suv: Image,
    method: ThresholdMethod | str,
    value: float,
    *,
    region: Image | None = None,
    region_label: int | None = None,
    seed_lps: tuple[float, float, float] | None = None,
    options: ThresholdOptions = ThresholdOptions(),
) -> ThresholdResult:
    """Segment a lesion on an SUV volume by a threshold (definitions in the module docs).

    Parameters
    ----------
    suv
        SUV volume (e.g. :func:`oncoqi.pet.suv.apply_suv`).
    method, value
        ``fixed`` (an SUV), ``percent`` or ``background`` (a percentage in (0, 100]).
    region
        Label image on the SUV grid that restricts the segment; its voxels equal to
        ``region_label`` (any non-zero voxel when None) form the region.
    seed_lps
        Seed point (LPS mm): the segment is the connected component holding it.
    options
        The background SUV of the background method (by default the mean of the shell around the
        region, or around the lesion grown at ``bg = 0`` from a seed), the radius of the ball around
        the seed that is the local region when no region is given, and the thickness of the
        background shell (:class:`ThresholdOptions`).

    Returns
    -------
    ThresholdResult

    Raises
    ------
    InputError
        Neither region nor seed given, an empty region, a seed outside the image, a value out of
        range, or nothing at or above the threshold.
    GeometryError
        When ``region`` is not on the SUV grid.
    """
    method = ThresholdMethod(method)
    if region is None and seed_lps is None:
        raise InputError("a threshold segmentation needs a region (label mask) or a seed point")
    _check_value(method, value)
    where = _local_region(suv, region, region_label, seed_lps, options.search_radius_mm)
    bg: float | None = None
    if method is ThresholdMethod.BACKGROUND:
        if options.background is not None:
            bg = float(options.background)
        else:
            bg = _shell_background(suv, value, where, options.shell_mm)
    threshold = _threshold(method, value, where.local_max, bg)
    above, seed, warnings = _segment_above(suv.array, threshold, where)
    return ThresholdResult(
        suv.with_array(above.astype(np.uint8)),
        method,
        float(value),
        float(threshold),
        where.local_max,
        bg,
        None if seed is None else (seed[2], seed[1], seed[0]),
        tuple(warnings),
    )


def subsamples_per_axis(labels: Image, reference: Image) -> tuple[int, int, int]:
    """Sub-samples per reference voxel along i, j, k for :func:`coverage_fraction`.

    Along each axis ``r = ceil(s_ref / s_label)`` label voxels fit in a reference voxel (the label
    spacing along the same axis when the grids share directions, else the finest label spacing);
    ``n = r * m`` with ``m = min(SUBSAMPLE_REFINEMENT, MAX_SUBSAMPLES // r)`` sub-samples per axis.
    When the grids are commensurate and aligned every label voxel then receives exactly ``m`` per
    axis, so the fraction is an exact count; otherwise the sampling error of the fraction falls as
    ``1 / n`` (nearest-neighbour sampling of a grid at an incommensurate step aliases).
    """
    same_axes = np.allclose(labels.direction, reference.direction, atol=1e-6)
    label_steps = labels.spacing if same_axes else (min(labels.spacing),) * 3
    out = []
    for s_ref, s_lab in zip(reference.spacing, label_steps):
        r = max(1, math.ceil(s_ref / s_lab - 1e-6))
        out.append(
            r * max(1, min(SUBSAMPLE_REFINEMENT, MAX_SUBSAMPLES // r)) if r <= MAX_SUBSAMPLES else MAX_SUBSAMPLES
        )
    return out[0], out[1], out[2]


def _reachable_box(labels: Image, reference: Image) -> tuple[slice, slice, slice] | None:
    """The box ``[k, j, i]`` of reference voxels that non-zero labels can touch (None: none)."""
    nz = np.argwhere(labels.array != 0)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float)
    lo, hi = nz.min(axis=0)[::-1] - 0.5, nz.max(axis=0)[::-1] + 0.5  # i, j, k with voxel extent
    pet_ijk = reference.lps_to_index(labels.index_to_lps(lo + corners * (hi - lo)))
    start = np.maximum(np.floor(pet_ijk.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(pet_ijk.max(axis=0)).astype(int) + 2, np.array(reference.size))
    if np.any(stop <= start):
        return None
    return slice(int(start[2]), int(stop[2])), slice(int(start[1]), int(stop[1])), slice(int(start[0]), int(stop[0]))


def coverage_fraction(labels: Image, reference: Image, value: int | None = None) -> Image:
    """Fraction of every ``reference`` voxel covered by a label of ``labels`` (partial volume).

    Each reference voxel is split into ``n_i x n_j x n_k`` sub-voxels (:func:`subsamples_per_axis`:
    about four per label voxel and axis, at most :data:`MAX_SUBSAMPLES`); the label at each
    sub-voxel centre is read by nearest neighbour, and the fraction is the share of sub-voxels
    inside. Only the box of reference voxels that the labels can reach is sampled, so a small
    tumour costs little, in slabs of at most :data:`SAMPLE_BUDGET` sub-samples, so a large one
    (a lung) does not exhaust the memory.

    Parameters
    ----------
    labels
        Label image (e.g. on the CT grid).
    reference
        The target grid (the PET).
    value
        The label value to cover; any non-zero label when None.

    Returns
    -------
    Image
        float32 fractions in [0, 1] on the reference grid.
    """
    binary = labels.array == value if value is not None else labels.array != 0
    src = labels.with_array(binary.astype(np.uint8))
    out = np.zeros(reference.array.shape, np.float32)
    if not binary.any():
        return reference.with_array(out)
    box = _reachable_box(src, reference)
    if box is None:
        return reference.with_array(out)
    n = subsamples_per_axis(src, reference)
    source = src.to_sitk()
    rows, cols = box[1].stop - box[1].start, box[2].stop - box[2].start
    per_slice = rows * cols * int(np.prod(n))
    step = max(1, SAMPLE_BUDGET // per_slice)  # PET slices per resampling, to bound the memory
    sub_spacing = tuple(s / m for s, m in zip(reference.spacing, n))
    for k0 in range(box[0].start, box[0].stop, step):
        k1 = min(k0 + step, box[0].stop)
        first = np.array([box[2].start, box[1].start, k0], dtype=float) - 0.5 + 0.5 / np.array(n)  # i, j, k
        ref = sitk.Image([cols * n[0], rows * n[1], (k1 - k0) * n[2]], sitk.sitkUInt8)
        ref.SetSpacing(sub_spacing)
        ref.SetOrigin(tuple(float(x) for x in reference.index_to_lps(first)))
        ref.SetDirection(tuple(reference.direction.flatten()))
        fine = sitk.GetArrayFromImage(sitk.Resample(source, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
        blocks = fine.reshape(k1 - k0, n[2], rows, n[1], cols, n[0])
        out[k0:k1, box[1], box[2]] = blocks.mean(axis=(1, 3, 5), dtype=np.float64)
    return reference.with_array(out)


def transfer_labels(labels: Image, reference: Image, method: str = "fraction") -> Image:
    """Bring a label image (e.g. a CT tumour label) onto the grid of ``reference`` (the PET).

    Parameters
    ----------
    labels
        Integer label image, any grid in the same frame of reference.
    reference
        The PET (or SUV) image.
    method
        ``nearest``: label of the nearest source voxel; ``fraction``: each label where it covers
        at least half of the voxel (:func:`coverage_fraction`), the most-covering label when two
        tie at exactly 0.5.

    Returns
    -------
    Image
        int32 labels on the reference grid.

    Raises
    ------
    InputError
        When ``labels`` holds non-integer values or ``method`` is unknown.
    """
    if not np.all(np.mod(labels.array, 1) == 0):
        raise InputError("the label image holds non-integer values")
    if method == "nearest":
        return resample_to(labels, reference)
    if method != "fraction":
        raise InputError(f"unknown transfer method {method!r}: choose 'nearest' or 'fraction'")
    out = np.zeros(reference.array.shape, np.int32)
    best = np.zeros(reference.array.shape, np.float32)
    for v in (int(x) for x in np.unique(labels.array) if x != 0):
        f = coverage_fraction(labels, reference, v).array
        take = (f >= 0.5) & (f > best)
        out[take] = v
        best = np.maximum(best, f)
    return reference.with_array(out)
