"""Recover a missed tumour from one click: the lesion around a point the reader places on it.

The automatic pass misses tumours whose CT number is that of the soft tissue they abut (the
mediastinum, the chest wall): the network sees them weakly or not at all. A reader who sees one
places a point inside it (``oncoqi lung segment --point X Y Z``, or a markup point in Slicer) and
this module outlines the lesion around it in a fraction of a second, from the CT in a box of
``max_radius_mm`` around the point:

1. **Tissue and air.** The lesion's tissue is the CT above the level half-way between the point's
   CT number (the median of its 3 x 3 x 3 neighbourhood) and the aerated lung's (the median of the
   box's voxels under :data:`AIR_LIMIT_HU`): a voxel half lesion and half lung is where the lesion's
   edge lies. Air is the rest, inside the body where the automatic pass found it (so that the
   chest wall is not taken as thin against the air outside the patient). Where the lesion outlined
   so (steps 2-4) has a ground-glass halo (the CT a few millimetres outside it well above the
   lung's), it is outlined again at the level half-way between the halo's and the lung's: a
   part-solid tumour is its solid core and its halo.
2. **Where and how large.** Rays from the point in :data:`RAY_COUNT` directions stop where they
   leave the tissue; a sphere fitted to those exits (least squares, far exits trimmed) gives the
   lesion's centre and radius. Rays that run into the tissue it abuts never leave it within the box
   and do not count, so a tumour against the mediastinum or chest wall is measured by its bulge
   into the lung, and a click anywhere in the tumour gives about the same sphere.
3. **Separated from the tissue it abuts.** A watershed of the distance to air (scikit-image),
   flooded from the point and the ball of ``marker_fraction`` times the radius around the centre on
   one side, and on the other from the tissue farther than ``far_factor`` radii from the centre or
   deeper than ``thick_factor`` radii from air: the tissue it abuts is thicker than the tumour, so
   the two floods meet where the tumour's bulge joins it. What the point's flood holds within
   ``ball_factor`` radii of the centre is the lesion.
4. **Vessels and slivers.** An opening of ``opening_fraction`` times the radius removes what is
   thinner (vessels running off the tumour, a sliver of the tissue it abuts) but keeps what lies
   within ``margin_mm`` of the opened lesion (its spicules' roots); holes are filled.

Only when the point is on aerated lung (under :data:`AIR_LIMIT_HU`) is the network's faint
probability used: where it saw something within ``seed_mm`` (a largest probability of at least
``min_probability``), the lesion is the connected region above ``relative_threshold`` times that
maximum, grown from its brightest voxel; otherwise the point is refused. On tissue the
CT outline is used even where the network saw a little: on the development phantoms the network's
faint outline of a missed tumour was a sliver of it or a blob of the mediastinum beside it
(``Testing/benchmarks/bench_lung_click.py``, which documents the data and the numbers).

Developed on development phantoms only (``oncoqi phantom ct`` seeds 100-109 and 120-129, and the
varied training geometry with set seeds 777, 778 with every tumour hard-placed and 779 part-solid),
never on the fresh test set of ``bench_lung_fresh.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.measure import measure_lesions
from oncoqi.lung.primary import order_by_evidence
from oncoqi.lung.segment import TumourSegmentation

#: CT number (HU) under which the point is aerated lung, not a lesion: below ground glass (about
#: -750 to -300 HU; the phantom's is -550 HU), above aerated lung (about -850 HU).
AIR_LIMIT_HU = -650.0
#: The aerated lung's CT number (HU) when the box holds too little of it to measure.
LUNG_HU = -850.0
#: Directions of the rays whose exits from the tissue give the lesion's sphere (step 2).
RAY_COUNT = 256
#: Fewer exits than this and the sphere is not fitted: the point is deep in tissue (step 2).
MIN_EXITS = 12
#: Exits farther from the fitted sphere than this multiple of their median distance (and 1 mm)
#: are dropped and the sphere fitted again, this many times at most.
EXIT_TRIM = 2.5
TRIM_ROUNDS = 4
#: A ground-glass halo is looked for this far outside a solid part (mm), and is one when its median CT
#: number is above the lung's by this fraction of the way to the solid part's.
HALO_MM = (1.5, 4.0)
HALO_FRACTION = 0.25
#: Watershed labels.
_LESION, _OTHER = 1, 2


@dataclass(frozen=True)
class ClickOptions:
    """How the lesion around a point is outlined (module documentation)."""

    max_radius_mm: float = 40.0
    seed_mm: float = 10.0
    min_probability: float = 0.2
    relative_threshold: float = 0.5
    marker_fraction: float = 0.5
    thick_factor: float = 1.5
    far_factor: float = 2.0
    ball_factor: float = 1.3
    opening_fraction: float = 0.3
    margin_mm: float = 2.0


@dataclass(frozen=True)
class ClickOutline:
    """The lesion around a point and how it was outlined.

    Attributes
    ----------
    mask
        bool, on the CT's grid.
    method
        ``"ct"`` (steps 1-4 of the module documentation) or ``"network"`` (the network's faint
        outline around a point on aerated lung): what the development benchmark reports per click.
    """

    mask: np.ndarray
    method: str


def point_index(image: Image, point_lps: Sequence[float], name: str = "the CT") -> tuple[int, int, int]:
    """The ``(k, j, i)`` voxel nearest an LPS point (mm).

    Raises
    ------
    InputError
        When the point lies outside the image, giving both.
    """
    ijk = np.rint(image.lps_to_index(np.asarray(point_lps, float))).astype(int)
    size = np.array(image.array.shape[::-1])
    if (ijk < 0).any() or (ijk >= size).any():
        low = image.index_to_lps(np.zeros(3))
        high = image.index_to_lps(size - 1.0)
        raise InputError(
            f"point {_mm(point_lps)} (LPS mm) is outside {name}, which spans {_mm(np.minimum(low, high))} to "
            f"{_mm(np.maximum(low, high))}"
        )
    return int(ijk[2]), int(ijk[1]), int(ijk[0])


def _mm(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.1f}" for v in values) + ")"


def segment_click(
    ct: Image,
    point_lps: Sequence[float],
    probability: Image | None = None,
    options: ClickOptions = ClickOptions(),
    body: Image | None = None,
) -> np.ndarray:
    """The lesion around ``point_lps`` (module documentation), as a bool mask on the CT's grid.

    Parameters
    ----------
    ct
        The CT (HU).
    point_lps
        A point inside the lesion, LPS mm.
    probability
        The network's tumour probability on the CT's grid (:attr:`TumourSegmentation.probability`),
        used only for a point on aerated lung; None: the CT alone.
    options
        Radii, thresholds and factors.
    body
        The patient's body on the CT's grid (:attr:`oncoqi.lung.isolation.LungMasks.body`), so that
        only air inside it counts as air; None: all air counts.

    Raises
    ------
    InputError
        When the point is outside the CT or on aerated lung with no network evidence around it.
    """
    return outline_click(ct, point_lps, probability, options, body).mask


def outline_click(
    ct: Image,
    point_lps: Sequence[float],
    probability: Image | None = None,
    options: ClickOptions = ClickOptions(),
    body: Image | None = None,
) -> ClickOutline:
    """:func:`segment_click` with the method that outlined the lesion (same parameters and errors)."""
    seed = point_index(ct, point_lps)
    box, ball, seed_in_box = _ball_box(ct, seed, options.max_radius_mm)
    hu = ct.array[box]
    around = tuple(slice(max(0, c - 1), c + 2) for c in seed_in_box)
    level = float(np.median(hu[around]))
    if level >= AIR_LIMIT_HU:
        inside = None if body is None else body.array[box] != 0
        mask, method = _from_ct(hu, level, inside, seed_in_box, ct.spacing[::-1], options), "ct"
    else:
        mask, method = None, "network"
        if probability is not None:
            mask = _from_probability(probability.array[box], ball, seed_in_box, ct.spacing, options)
        if mask is None:
            raise InputError(
                f"point {_mm(point_lps)} is in aerated lung ({level:.0f} HU) and the network saw nothing there: "
                "place it inside the lesion"
            )
    out = np.zeros(ct.array.shape, bool)
    if mask.any():
        window = _around(mask, 0.0, ct.spacing[::-1])
        out[box][window] = ndimage.binary_fill_holes(mask[window])
    return ClickOutline(out, method)


def _distance_mm(shape: tuple[int, ...], seed: Sequence[float], spacing: Sequence[float]) -> np.ndarray:
    """Distance (mm) of every voxel of a box from ``seed`` (all ``k, j, i``)."""
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    sk, sj, si = spacing[2], spacing[1], spacing[0]
    return np.sqrt(((k - seed[0]) * sk) ** 2 + ((j - seed[1]) * sj) ** 2 + ((i - seed[2]) * si) ** 2)


def _ball_box(
    ct: Image, seed: tuple[int, int, int], radius_mm: float
) -> tuple[tuple[slice, slice, slice], np.ndarray, tuple[int, int, int]]:
    """The box around ``seed`` holding the ball of ``radius_mm``, the ball in it, and the seed's index in it."""
    reach = [int(np.ceil(radius_mm / s)) for s in (ct.spacing[2], ct.spacing[1], ct.spacing[0])]
    box = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(seed, reach, ct.array.shape))
    local = tuple(c - b.start for c, b in zip(seed, box))
    shape = tuple(b.stop - b.start for b in box)
    return box, _distance_mm(shape, local, ct.spacing) <= radius_mm, local  # type: ignore[return-value]


def _component_at(mask: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    return labels == labels[seed] if labels[seed] else np.zeros_like(mask)


def _from_probability(
    prob: np.ndarray,
    ball: np.ndarray,
    seed: tuple[int, int, int],
    spacing: Sequence[float],
    options: ClickOptions,
) -> np.ndarray | None:
    """The network's outline at a local threshold, or None where it saw nothing near the point."""
    near = _distance_mm(prob.shape, seed, spacing) <= options.seed_mm
    local_max = float(prob[near].max(initial=0.0))
    if local_max < options.min_probability:
        return None
    brightest = np.unravel_index(np.argmax(np.where(near, prob, -1.0)), prob.shape)
    return _component_at((prob >= options.relative_threshold * local_max) & ball, brightest)  # type: ignore[arg-type]


def _from_ct(
    hu: np.ndarray,
    level: float,
    body: np.ndarray | None,
    seed: tuple[int, int, int],
    spacing: tuple[float, float, float],
    options: ClickOptions,
) -> np.ndarray:
    """The lesion around ``seed`` in a box of the CT (steps 1-4 of the module documentation).

    ``level`` is the point's CT number, ``body`` the body in the box (None: everywhere) and
    ``spacing`` the box's voxel size in ``k, j, i`` order (mm). A solid part outlined first is
    outlined again with its ground-glass halo where it has one (:func:`_halo_level`).
    """
    aerated = hu < AIR_LIMIT_HU if body is None else (hu < AIR_LIMIT_HU) & body
    lung = float(np.median(hu[aerated])) if aerated.sum() >= 27 else LUNG_HU
    lesion = _outline(hu, 0.5 * (level + lung), body, seed, spacing, options)
    halo = _halo_level(hu, lesion, level, lung, spacing)
    if halo is not None:
        lesion = _outline(hu, 0.5 * (halo + lung), body, seed, spacing, options)
    return lesion


def _halo_level(
    hu: np.ndarray, lesion: np.ndarray, level: float, lung: float, spacing: tuple[float, float, float]
) -> float | None:
    """The CT number of a ground-glass halo around ``lesion``, or None where aerated lung surrounds it.

    The halo is what lies :data:`HALO_MM` outside the lesion and is not tissue at the lesion's level;
    its median CT number must be above the lung's by :data:`HALO_FRACTION` of the way to the
    lesion's (a solid tumour's blurred edge has faded to the lung's within that distance).
    """
    window = _around(lesion, HALO_MM[1], spacing)
    outside = ndimage.distance_transform_edt(~lesion[window], sampling=spacing)
    shell = (outside > HALO_MM[0]) & (outside <= HALO_MM[1]) & (hu[window] < 0.5 * (level + lung))
    if shell.sum() < 27:
        return None
    median = float(np.median(hu[window][shell]))
    return median if median > lung + HALO_FRACTION * (level - lung) else None


def _outline(
    hu: np.ndarray,
    threshold: float,
    body: np.ndarray | None,
    seed: tuple[int, int, int],
    spacing: tuple[float, float, float],
    options: ClickOptions,
) -> np.ndarray:
    """The lesion around ``seed`` whose tissue is the CT at or above ``threshold`` (steps 1-4).

    Steps 3-4 run in the part of the box within ``far_factor`` radii of the centre (and the seed):
    what lies beyond is the other side's anyway, and a small tumour then costs a small box.
    """
    tissue = hu >= threshold
    air = ~tissue if body is None else ~tissue & body
    centre, radius = _sphere(~air, seed, spacing, options.max_radius_mm)
    reach = options.far_factor * radius + 2.0 * max(spacing)
    corners = np.array([seed, centre])
    low = np.maximum(corners.min(axis=0) - np.ceil(reach / np.asarray(spacing)).astype(int), 0)
    high = np.minimum(corners.max(axis=0) + np.ceil(reach / np.asarray(spacing)).astype(int) + 1, hu.shape)
    window = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    local = [tuple(int(v) for v in point - low) for point in corners]
    out = np.zeros(hu.shape, bool)
    out[window] = _separate(tissue[window], air[window], local[0], local[1], spacing, radius, options)
    return out


def _separate(
    tissue: np.ndarray,
    air: np.ndarray,
    seed: tuple[int, ...],
    centre: tuple[int, ...],
    spacing: tuple[float, float, float],
    radius: float,
    options: ClickOptions,
) -> np.ndarray:
    """The lesion's tissue apart from the tissue it abuts (steps 3-4), ``radius`` (mm) around ``centre``."""
    from_centre = _distance_mm(tissue.shape, centre, spacing[::-1])
    depth = ndimage.distance_transform_edt(~air, sampling=spacing).astype(np.float32)
    other = (depth >= options.thick_factor * radius) | (from_centre > options.far_factor * radius)
    markers = np.where(tissue & other, _OTHER, 0).astype(np.int32)
    if tissue[centre]:
        markers[_component_at(tissue & (from_centre <= options.marker_fraction * radius), centre)] = _LESION
    markers[seed] = _LESION
    lesion = (watershed(-depth, markers, mask=tissue) == _LESION) & (from_centre <= options.ball_factor * radius)
    lesion[seed] = True
    return _without_thin(_component_at(lesion, seed), seed, spacing, options.opening_fraction * radius, options)


def _sphere(
    tissue: np.ndarray, seed: tuple[int, int, int], spacing: tuple[float, float, float], reach_mm: float
) -> tuple[tuple[int, int, int], float]:
    """The centre (voxel) and radius (mm) of the sphere fitted to where rays from ``seed`` leave ``tissue``.

    ``tissue`` is everything but the air inside the body: a ray through the chest wall into the air
    outside the patient has not left the lesion's surroundings. With fewer than :data:`MIN_EXITS`
    exits (the point deep in a large mass) the sphere is the largest ball around ``seed`` inside the
    tissue, at least one voxel.
    """
    exits = _ray_exits(tissue, seed, spacing, reach_mm)
    if len(exits) < MIN_EXITS:
        depth = ndimage.distance_transform_edt(tissue, sampling=spacing)
        return seed, max(float(depth[seed]), max(spacing))
    keep = np.ones(len(exits), bool)
    for _ in range(TRIM_ROUNDS):
        # |p - c|^2 = r^2 is linear in c and r^2 - |c|^2: 2 p.c + (r^2 - |c|^2) = |p|^2
        system = np.column_stack([2.0 * exits[keep], np.ones(int(keep.sum()))])
        solution = np.linalg.lstsq(system, (exits[keep] ** 2).sum(axis=1), rcond=None)[0]
        centre_mm, radius = solution[:3], float(np.sqrt(max(solution[3] + solution[:3] @ solution[:3], 1e-6)))
        residual = np.abs(np.linalg.norm(exits - centre_mm, axis=1) - radius)
        trimmed = residual <= max(EXIT_TRIM * float(np.median(residual[keep])), 1.0)
        if trimmed.sum() < MIN_EXITS or (trimmed == keep).all():
            break
        keep = trimmed
    index = np.clip(np.rint(np.asarray(seed) + centre_mm / np.asarray(spacing)), 0, np.asarray(tissue.shape) - 1)
    return tuple(int(v) for v in index), min(radius, reach_mm)  # type: ignore[return-value]


def _ray_exits(
    tissue: np.ndarray, seed: tuple[int, int, int], spacing: tuple[float, float, float], reach_mm: float
) -> np.ndarray:
    """Where rays from ``seed`` first leave ``tissue`` (mm from the seed, ``k, j, i``); rays that reach the
    box's edge first are left out."""
    step = 0.5 * min(spacing)
    lengths = np.arange(step, reach_mm, step)
    offsets_mm = _DIRECTIONS[:, None, :] * lengths[None, :, None]
    index = np.rint(np.asarray(seed) + offsets_mm / np.asarray(spacing)).astype(int)
    in_box = np.all((index >= 0) & (index < np.asarray(tissue.shape)), axis=-1)
    index = np.minimum(np.maximum(index, 0), np.asarray(tissue.shape) - 1)
    out = ~tissue[index[..., 0], index[..., 1], index[..., 2]]
    first_out = np.argmax(out | ~in_box, axis=1)
    left = out[np.arange(len(out)), first_out] & in_box[np.arange(len(out)), first_out]
    return offsets_mm[np.flatnonzero(left), first_out[left]]


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (n, 3)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    turn = np.pi * (1.0 + 5.0**0.5) * i
    return np.column_stack([np.cos(polar), np.sin(turn) * np.sin(polar), np.cos(turn) * np.sin(polar)])


_DIRECTIONS = _fibonacci_sphere(RAY_COUNT)


def _around(mask: np.ndarray, pad_mm: float, spacing: tuple[float, float, float]) -> tuple[slice, ...]:
    """The bounding box of ``mask`` (not empty) grown by ``pad_mm`` and a voxel, within the array."""
    pad = np.ceil(pad_mm / np.asarray(spacing)).astype(int) + 1
    where = np.argwhere(mask)
    low = np.maximum(where.min(axis=0) - pad, 0)
    high = np.minimum(where.max(axis=0) + pad + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _without_thin(
    lesion: np.ndarray,
    seed: tuple[int, ...],
    spacing: tuple[float, float, float],
    radius: float,
    options: ClickOptions,
) -> np.ndarray:
    """``lesion`` without what is thinner than ``radius`` (mm) farther than ``options.margin_mm`` from the rest (step 4)."""
    if radius <= 0 or not lesion.any():
        return lesion
    window = _around(lesion, radius + options.margin_mm, spacing)
    part = lesion[window]
    inner = ndimage.distance_transform_edt(part, sampling=spacing) >= radius
    opened = ndimage.distance_transform_edt(~inner, sampling=spacing) <= radius
    local_seed = tuple(int(c - w.start) for c, w in zip(seed, window))
    core = _component_at(opened, local_seed) if opened[local_seed] else opened
    if not core.any():
        return lesion
    near = ndimage.distance_transform_edt(~core, sampling=spacing) <= options.margin_mm
    kept = np.zeros_like(lesion)
    kept[window] = part & near
    kept[seed] = True
    return _component_at(kept, seed)


def add_lesions_at_points(
    ct: Image, found: TumourSegmentation, points: Sequence[Sequence[float]], options: ClickOptions = ClickOptions()
) -> tuple[TumourSegmentation, list[str]]:
    """Add the lesion around each point that no lesion holds yet; measure and number them all again.

    Parameters
    ----------
    ct
        The CT :func:`~oncoqi.lung.segment.segment_ct` ran on.
    found
        Its result (the probability map is reused, so a click costs no network pass).
    points
        LPS points (mm), one inside each missed lesion.
    options
        How each lesion is outlined.

    Returns
    -------
    tuple
        The segmentation with the added lesions (numbered by :func:`~oncoqi.lung.primary.order_by_evidence`),
        and one line per point saying what it gave.

    Raises
    ------
    InputError
        When a point is outside the CT, or on aerated lung where the network saw nothing.
    """
    labels = found.labels.array.copy()
    notes = []
    from_points = {m.label for m in found.lesions if m.source == "point"}  # earlier calls: still the reader's
    for point in points:
        seed = point_index(ct, point)
        if labels[seed]:
            notes.append(f"point {_mm(point)}: already inside lesion {int(labels[seed])}, nothing added")
            continue
        body = None if found.masks is None else found.masks.body
        mask = segment_click(ct, point, found.probability, options, body) & (labels == 0)
        if not mask.any():
            notes.append(f"point {_mm(point)}: no lesion around it, nothing added")
            continue
        label = int(labels.max(initial=0)) + 1
        labels = labels.astype(np.promote_types(labels.dtype, np.min_scalar_type(label)))
        labels[mask] = label
        from_points.add(label)
        notes.append(f"point {_mm(point)}: lesion of {mask.sum() * ct.voxel_volume_ml:.1f} ml added")
    relabelled = found.labels.with_array(labels, **{**found.labels.metadata, "lesions": int(labels.max(initial=0))})
    lesions = [
        replace(m, source="point") if m.label in from_points else m
        for m in measure_lesions(relabelled, ct, found.probability, found.lungs)
    ]
    relabelled, lesions = order_by_evidence(relabelled, lesions)
    return replace(found, labels=relabelled, lesions=lesions), notes
