"""Recover a missed tumour from one click: the lesion around a point the reader places on it.

The automatic pass misses tumours whose CT number is that of the soft tissue they abut (the
mediastinum, the chest wall): the network sees them weakly or not at all. A reader who sees one
places a point inside it (``oncoqi lung segment --point X Y Z``, or a markup point in Slicer) and
this module outlines the lesion around it in a fraction of a second, from what the automatic pass
already computed:

1. **The network's probability, thresholded locally.** Where the network saw the tumour faintly
   (a largest probability of at least ``min_probability`` within ``seed_mm`` of the point; the
   missed tumours of the synthetic test set reached 0.2-0.5 there), the lesion is the connected
   region above ``relative_threshold`` times that local maximum, grown from its brightest voxel:
   the network's own outline, at a threshold this tumour reaches.
2. **Otherwise the CT, grown from the point.** The voxels connected to the point whose CT number is
   within ``hu_window`` of the point's (the median of its 3 x 3 x 3 neighbourhood), so aerated lung
   and fat stop the growth. Where the tumour touches tissue of the same density (heart, vessels,
   chest-wall muscle) the growth would run on; so the region is cut to the largest ball that it
   fills to ``min_fill`` (a tumour fills a ball up to its own radius; beyond that the lung around
   it empties the ball even where the mediastinum goes on), moved from the point to the centre of
   what it holds until it settles, enlarged by :data:`FILLED_RADIUS_FACTOR` and ``margin_mm``.

Both stay inside ``max_radius_mm`` of the point (a tumour a reader segments with one click is
smaller than 8 cm across), and holes are filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.measure import measure_lesions
from oncoqi.lung.primary import order_by_evidence
from oncoqi.lung.segment import TumourSegmentation

#: CT number (HU) under which the point is aerated lung, not a lesion.
AIR_LIMIT_HU = -500.0
#: The CT outline's ball is moved towards the lesion's centre this many times at most.
MAX_CENTRING_STEPS = 6
#: The lesion is cut at this multiple of the radius it fills, plus the margin: lobulated tumours
#: reach a little beyond the ball they fill.
FILLED_RADIUS_FACTOR = 1.15


@dataclass(frozen=True)
class ClickOptions:
    """How the lesion around a point is outlined (module documentation)."""

    max_radius_mm: float = 40.0
    seed_mm: float = 10.0
    min_probability: float = 0.2
    relative_threshold: float = 0.5
    hu_window: float = 100.0
    min_fill: float = 0.85
    margin_mm: float = 2.0


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
    ct: Image, point_lps: Sequence[float], probability: Image | None = None, options: ClickOptions = ClickOptions()
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
        or None to grow on the CT alone.
    options
        Radii, thresholds and the density window.

    Raises
    ------
    InputError
        When the point is outside the CT or on aerated lung with no network evidence around it.
    """
    seed = point_index(ct, point_lps)
    box, ball, seed_in_box = _ball_box(ct, seed, options.max_radius_mm)
    mask = None
    if probability is not None:
        mask = _from_probability(probability.array[box], ball, seed_in_box, ct.spacing, options)
    if mask is None:
        mask = _from_ct(ct.array[box], ball, seed_in_box, ct.spacing, options, point_lps)
    out = np.zeros(ct.array.shape, bool)
    out[box] = ndimage.binary_fill_holes(mask)
    return out


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


def _component_at(mask: np.ndarray, seed: tuple[int, int, int]) -> np.ndarray:
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
    ball: np.ndarray,
    seed: tuple[int, int, int],
    spacing: Sequence[float],
    options: ClickOptions,
    point_lps: Sequence[float],
) -> np.ndarray:
    """The tissue of the point's density connected to it, cut to the ball it fills (module documentation)."""
    around = tuple(slice(max(0, c - 1), c + 2) for c in seed)
    level = float(np.median(hu[around]))
    if level < AIR_LIMIT_HU:
        raise InputError(
            f"point {_mm(point_lps)} is in aerated lung ({level:.0f} HU) and the network saw nothing there: "
            "place it inside the lesion"
        )
    grown = _component_at((np.abs(hu - level) <= options.hu_window) & ball, seed)
    centre = np.array(seed, float)
    for _ in range(MAX_CENTRING_STEPS):
        distance = _distance_mm(hu.shape, centre, spacing)
        radius = _filled_radius(grown, distance, min(spacing), options)
        inner = grown & (distance <= radius + min(spacing))
        moved = np.argwhere(inner).mean(axis=0) if inner.any() else centre
        if np.abs(moved - centre).max() < 0.5:
            break
        centre = moved
    return grown & (distance <= FILLED_RADIUS_FACTOR * radius + options.margin_mm)


def _filled_radius(grown: np.ndarray, distance: np.ndarray, step: float, options: ClickOptions) -> float:
    """The largest radius (mm, a multiple of ``step``) whose ball ``grown`` fills to ``options.min_fill``."""
    bins = np.minimum((distance / step).astype(int), int(options.max_radius_mm / step) + 1)
    inside = np.cumsum(np.bincount(bins.ravel(), weights=grown.ravel(), minlength=bins.max() + 1))
    total = np.cumsum(np.bincount(bins.ravel(), minlength=bins.max() + 1))
    fill = inside / np.maximum(total, 1)
    below = np.flatnonzero(fill < options.min_fill)
    first = int(below[0]) if below.size else len(fill)
    return max(first, 1) * step


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
        mask = segment_click(ct, point, found.probability, options) & (labels == 0)
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
