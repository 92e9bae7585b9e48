"""SUVpeak: the highest mean SUV over a 1 cm3 sphere, with exact partial-voxel weights.

The sphere has volume 1 ml, so radius ``r = (3 * 1000 / (4 * pi)) ** (1/3) = 6.2035 mm``. Placed
at the centre of voxel ``c``, it gives voxel ``v`` the weight ``w_v = |sphere ∩ voxel_v| / V_voxel``
(the fraction of the voxel inside the sphere, in [0, 1]); the sphere mean is
``peak(c) = sum_v w_v * SUV_v / sum_v w_v``. SUVpeak is the maximum of ``peak(c)`` over the
admissible centres: voxels of the segment whose sphere's non-zero weights all lie inside the
image. (PET-IndiC additionally requires every such voxel to be in the segment; that variant is
``kernel_within_segment=True``.)

The weights are exact, not supersampled: the area of a rectangle cut by a disc has a closed
form (:func:`disc_rectangle_area`), and the voxel volume inside the sphere is its integral over
the third axis, taken by adaptive quadrature split at every point where the integrand has a
kink (:func:`sphere_box_volume`), i.e. to about 1e-10 mm3. Ties between equal sphere means go to
the centre with the higher voxel value (as in PET-IndiC), then to the first in ``[k, j, i]`` order.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, ndimage

#: Volume of the SUVpeak sphere, ml.
PEAK_SPHERE_VOLUME_ML = 1.0
#: Radius of a 1 ml sphere, mm (6.2035...).
PEAK_RADIUS_MM = (3.0 * 1000.0 * PEAK_SPHERE_VOLUME_ML / (4.0 * math.pi)) ** (1.0 / 3.0)


def _h(y: float, rho: float) -> float:
    """Antiderivative of ``sqrt(rho**2 - y**2)`` (``y`` in [-rho, rho])."""
    y = min(max(y, -rho), rho)
    return 0.5 * (y * math.sqrt(max(rho * rho - y * y, 0.0)) + rho * rho * math.asin(y / rho))


def _disc_below(u: float, v: float, rho: float) -> float:
    """Area of the disc ``y**2 + z**2 <= rho**2`` with ``y <= u`` and ``z <= v``."""
    if rho <= 0.0:
        return 0.0
    u = min(max(u, -rho), rho)
    w = math.sqrt(max(rho * rho - v * v, 0.0))
    a, b = -w, min(max(u, -w), w)
    chord = (_h(b, rho) - _h(a, rho)) if b > a else 0.0
    if v >= 0.0:
        # full chords 2*s(y) for y <= u, minus the part of each chord above z = v where |y| < w
        return 2.0 * (_h(u, rho) - _h(-rho, rho)) - (chord - v * max(b - a, 0.0))
    # only the part of each chord below z = v < 0 remains, where |y| < w
    return chord + v * max(b - a, 0.0)


def disc_rectangle_area(y0: float, y1: float, z0: float, z1: float, rho: float) -> float:
    """Exact area of the rectangle ``[y0, y1] x [z0, z1]`` inside the disc of radius ``rho`` at 0.

    By inclusion-exclusion over the closed-form quarter-plane areas ``A(u, v)`` of the disc
    with ``y <= u, z <= v``: ``A(y1,z1) - A(y0,z1) - A(y1,z0) + A(y0,z0)``.
    """
    return max(
        _disc_below(y1, z1, rho) - _disc_below(y0, z1, rho) - _disc_below(y1, z0, rho) + _disc_below(y0, z0, rho),
        0.0,
    )


def sphere_box_volume(lo: tuple[float, float, float], hi: tuple[float, float, float], radius: float) -> float:
    """Exact volume (mm3) of the box ``[lo, hi]`` inside the sphere of ``radius`` centred at 0.

    ``V = integral over x of disc_rectangle_area(y0, y1, z0, z1, sqrt(r**2 - x**2)) dx``; the
    integrand is smooth between the ``x`` where ``sqrt(r**2 - x**2)`` meets a corner or edge
    distance of the rectangle, so the quadrature is split there.
    """
    x0, x1 = max(lo[0], -radius), min(hi[0], radius)
    if x1 <= x0:
        return 0.0
    y0, y1, z0, z1 = lo[1], hi[1], lo[2], hi[2]
    r2 = radius * radius
    knots = set()
    for d2 in (
        [y * y for y in (y0, y1)] + [z * z for z in (z0, z1)] + [y * y + z * z for y in (y0, y1) for z in (z0, z1)]
    ):
        if d2 < r2:
            x = math.sqrt(r2 - d2)
            knots.update((x, -x))
    knots.add(0.0)
    points = sorted(p for p in knots if x0 < p < x1)

    def area(x: float) -> float:
        return disc_rectangle_area(y0, y1, z0, z1, math.sqrt(max(r2 - x * x, 0.0)))

    edges = [x0, *points, x1]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        val, _ = integrate.quad(area, a, b, epsabs=1e-11, epsrel=1e-11, limit=200)
        total += val
    return total


@lru_cache(maxsize=32)
def _kernel_cached(spacing: tuple[float, float, float], radius: float) -> np.ndarray:
    sx, sy, sz = spacing
    n = [math.ceil(radius / s - 0.5) for s in spacing]
    octant = np.zeros((n[2] + 1, n[1] + 1, n[0] + 1))  # [k, j, i], offsets >= 0
    vol = sx * sy * sz
    for k in range(n[2] + 1):
        for j in range(n[1] + 1):
            for i in range(n[0] + 1):
                lo = ((i - 0.5) * sx, (j - 0.5) * sy, (k - 0.5) * sz)
                hi = ((i + 0.5) * sx, (j + 0.5) * sy, (k + 0.5) * sz)
                octant[k, j, i] = min(sphere_box_volume(lo, hi, radius) / vol, 1.0)
    full = np.concatenate([octant[::-1], octant[1:]], axis=0)
    full = np.concatenate([full[:, ::-1], full[:, 1:]], axis=1)
    full = np.concatenate([full[:, :, ::-1], full[:, :, 1:]], axis=2)
    # drop outer planes that the sphere only touches (weight 0), keeping the kernel centred
    while full.shape[0] > 1 and not full[0].any():
        full = full[1:-1]
    while full.shape[1] > 1 and not full[:, 0].any():
        full = full[:, 1:-1]
    while full.shape[2] > 1 and not full[:, :, 0].any():
        full = full[:, :, 1:-1]
    full.setflags(write=False)
    return full


def sphere_kernel(spacing: tuple[float, float, float], radius: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Fraction of each voxel inside a sphere centred on the central voxel.

    Parameters
    ----------
    spacing
        Voxel size along i, j, k (mm).
    radius
        Sphere radius (mm); default that of a 1 ml sphere.

    Returns
    -------
    numpy.ndarray
        Weights indexed ``[k, j, i]`` (odd sizes, centre at the middle), each in [0, 1];
        ``weights.sum() * prod(spacing)`` is the sphere volume. Read-only (cached).
    """
    key = tuple(round(float(s), 9) for s in spacing)
    return _kernel_cached(key, round(float(radius), 9))  # type: ignore[arg-type]


def suv_peak(
    suv: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    radius: float = PEAK_RADIUS_MM,
    kernel_within_segment: bool = False,
) -> tuple[float, tuple[int, int, int]] | None:
    """The SUVpeak of a segment and its centre voxel.

    Parameters
    ----------
    suv
        SUV volume ``[k, j, i]``.
    mask
        Boolean segment, same shape.
    spacing
        Voxel size along i, j, k (mm); the grid axes must be orthogonal.
    radius
        Sphere radius, mm (default 1 ml).
    kernel_within_segment
        Also require every voxel of non-zero weight to be in the segment (PET-IndiC's rule).

    Returns
    -------
    tuple or None
        ``(peak, (k, j, i))``, or None when no voxel of the segment is an admissible centre
        (segment too close to the image border, or too small with ``kernel_within_segment``).
    """
    weights = sphere_kernel(spacing, radius)
    half = np.array(weights.shape) // 2
    shape = np.array(suv.shape)
    valid = mask.astype(bool).copy()
    for axis in range(3):  # the kernel's non-zero extent must stay inside the image
        sl = [slice(None)] * 3
        sl[axis] = slice(0, half[axis])
        valid[tuple(sl)] = False
        sl[axis] = slice(shape[axis] - half[axis], None)
        valid[tuple(sl)] = False
    if not valid.any():
        return None
    idx = np.argwhere(valid)
    lo = idx.min(axis=0) - half
    hi = idx.max(axis=0) + half + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sub = suv[box].astype(np.float64)
    means = ndimage.correlate(sub, weights / weights.sum(), mode="constant", cval=0.0)
    centres = valid[box]
    if kernel_within_segment:
        footprint = (weights > 0).astype(np.float64)
        inside = ndimage.correlate(mask[box].astype(np.float64), footprint, mode="constant", cval=0.0)
        centres &= inside >= footprint.sum() - 0.5
        if not centres.any():
            return None
    cand = np.argwhere(centres)
    vals = means[centres]
    best = vals.max()
    ties = np.flatnonzero(vals >= best - 1e-12 * max(abs(best), 1.0))
    centre_vals = sub[tuple(cand[ties].T)]
    pick = cand[ties[int(np.argmax(centre_vals))]]
    kji = tuple(int(p + o) for p, o in zip(pick, lo))
    return float(vals[ties[int(np.argmax(centre_vals))]]), kji  # type: ignore[return-value]
