"""Per-lesion measurements of a lesion label map: volume, RECIST diameters, centroid, side, HU, confidence.

Definitions (``M`` the lesion's voxels, ``v`` the voxel volume in ml):

=========================  ==========================================================================
key                        definition
=========================  ==========================================================================
volume_ml                  ``|M| v``
recist_mm                  longest in-plane diameter: on each slice (array axis ``k``, axial for an
                           axial CT) the lesion outline is the marching-squares contour of the slice
                           mask at level 0.5 (half-way between inside and outside pixel centres,
                           8-connected foreground), in mm with the in-plane spacing and direction;
                           the diameter is the largest distance between two outline points (exact,
                           over the convex-hull vertices; not an enclosing circle); the largest over
                           slices is reported, on ``recist_slice``
perpendicular_mm           on that slice, the longest chord of the outline (a segment inside the
                           lesion, even-odd rule, so holes and concavities cut it) whose direction is
                           within ±5° of perpendicular to the longest diameter, as a reader lays the
                           short-axis calliper
centroid_lps_mm            LPS position of the mean voxel index of ``M``
side                       ``left``/``right`` from the centroid's x relative to the body midline
                           (LPS: patient left is +x); with lung masks, the lung holding most of the
                           lesion's in-lung voxels, or ``both`` when each lung holds at least 10 %
                           of them (:func:`oncoqi.metrics.lesions.lesion_side`)
n_slices                   number of slices holding lesion voxels
mean_hu                    mean CT number over ``M`` (needs the CT)
confidence                 mean network probability over ``M`` (needs the probability map): the
                           expected fraction of the lesion's voxels that the model believes to be
                           tumour, so 1 for a certain lesion and near the threshold for a doubtful
                           one; unlike the maximum it is not driven by one voxel
doubts                     why the lesion may not be a tumour, one reason each (empty: none);
                           :mod:`oncoqi.lung.primary` fills it and numbers the lesions by it;
                           ``doubtful`` in ``lesions.json`` is true when there is any
source                     ``network`` for a lesion the automatic pass found, ``point`` for one a
                           reader added by placing a point in it (:mod:`oncoqi.lung.click`)
=========================  ==========================================================================

Why the contour and not the pixel centres or the enclosing circle: the published calculator
took the minimum enclosing circle of the pixel centres, which overestimates the Feret diameter by
up to 15 % and underestimates the extent by a pixel; the marching-squares outline lies on the
object boundary (half a pixel outside the boundary pixel centres).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from skimage import measure

from oncoqi.errors import GeometryError
from oncoqi.image import Image
from oncoqi.metrics.lesions import centroid_lps, label_boxes, lesion_side

#: Half-width (degrees) of the cone of directions searched for the perpendicular diameter.
PERPENDICULAR_TOLERANCE_DEG = 5.0
#: Angular step (degrees) of that search.
PERPENDICULAR_STEP_DEG = 0.5

Point3 = tuple[float, float, float]


@dataclass(frozen=True)
class LesionMeasurement:
    """Measurements of one lesion (definitions in the module documentation).

    ``to_dict`` gives the keys of ``lesions.json``: ``label``, ``volume_ml``, ``recist_mm``,
    ``perpendicular_mm``, ``centroid_lps_mm``, ``side``, ``confidence``, ``doubtful``,
    ``doubts`` and ``source``, and the extras ``n_slices``, ``mean_hu``, ``recist_slice``,
    ``recist_endpoints_lps_mm`` and ``perpendicular_endpoints_lps_mm``.
    """

    label: int
    volume_ml: float
    recist_mm: float
    perpendicular_mm: float
    centroid_lps_mm: Point3
    side: str
    confidence: float | None
    n_slices: int
    mean_hu: float | None
    recist_slice: int
    recist_endpoints_lps_mm: tuple[Point3, Point3]
    perpendicular_endpoints_lps_mm: tuple[Point3, Point3]
    doubts: tuple[str, ...] = ()
    source: str = "network"

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> LesionMeasurement:
        """A measurement read back from its ``lesions.json`` record (:meth:`to_dict`): lists become tuples
        again, and keys that are not fields (``doubtful``, derived from ``doubts``) are left out."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: _tuples(value) for key, value in record.items() if key in names})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; tuples become lists."""
        out = asdict(self)
        out["centroid_lps_mm"] = list(self.centroid_lps_mm)
        out["doubtful"] = bool(self.doubts)
        out["doubts"] = list(self.doubts)
        for key in ("recist_endpoints_lps_mm", "perpendicular_endpoints_lps_mm"):
            out[key] = [list(p) for p in getattr(self, key)]
        return out


def _tuples(value: Any) -> Any:
    """JSON lists back as tuples (points, point pairs, doubts)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class SliceGeometry:
    """Maps in-plane indices ``(row j, column i)`` of slice ``k`` to orthonormal mm coordinates and back.

    The plane spanned by the i and j axes gets an orthonormal basis ``Q`` (QR decomposition of
    the spacing-scaled axis vectors ``A = [d_i s_i, d_j s_j] = Q R``); ``R (i, j)`` are then
    coordinates in mm in which Euclidean distances are true distances, even on sheared grids.

    Parameters
    ----------
    image
        Any image on the grid.
    """

    def __init__(self, image: Image) -> None:
        self.image = image
        self._r = np.linalg.qr(image.affine[:3, :2])[1]

    def to_plane(self, rows_cols: np.ndarray) -> np.ndarray:
        """``(n, 2)`` (row, column) indices -> ``(n, 2)`` in-plane mm coordinates."""
        return rows_cols[:, ::-1] @ self._r.T

    def to_lps(self, plane_mm: np.ndarray, k: int) -> np.ndarray:
        """``(n, 2)`` in-plane mm coordinates on slice ``k`` -> ``(n, 3)`` LPS positions."""
        ij = np.linalg.solve(self._r, np.asarray(plane_mm, float).T).T
        return self.image.index_to_lps(np.column_stack([ij, np.full(len(ij), float(k))]))


def slice_outline(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed marching-squares contours (row, column) of a 2D mask at level 0.5, 8-connected foreground."""
    padded = np.pad(mask2d.astype(np.float64), 1)
    return [c - 1.0 for c in measure.find_contours(padded, 0.5, fully_connected="high")]


def longest_diameter(points_mm: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest distance between two of ``points_mm`` (n, 2), via their convex hull.

    Returns
    -------
    length, p, q
        The diameter (mm) and its two end points.
    """
    try:
        candidates = points_mm[ConvexHull(points_mm).vertices]
    except (QhullError, ValueError):  # collinear or too few points: every point is a candidate
        candidates = points_mm
    d = np.linalg.norm(candidates[:, None, :] - candidates[None, :, :], axis=-1)
    a, b = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(d[a, b]), candidates[a], candidates[b]


def longest_chord(contours_mm: list[np.ndarray], direction: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Longest segment along ``direction`` lying inside the polygons ``contours_mm`` (even-odd rule).

    The chord length on a line of offset ``s`` (along the normal) is piecewise linear in ``s``
    between the offsets of the polygon vertices, so its maximum is reached next to a vertex
    offset: the lines just inside each gap between consecutive vertex offsets are evaluated.

    Returns
    -------
    length, p, q
        The chord length (mm) and its end points; 0 and the first vertex twice if no chord.
    """
    u = direction / np.linalg.norm(direction)
    n = np.array([-u[1], u[0]])
    a = np.concatenate([c[:-1] for c in contours_mm])
    b = np.concatenate([c[1:] for c in contours_mm])
    sa, sb, ta, tb = a @ n, b @ n, a @ u, b @ u
    levels = np.unique(np.concatenate([sa, sb]))
    if levels.size < 2:
        return 0.0, a[0], a[0]
    gap = np.diff(levels)
    nudge = 1e-6 * gap
    offsets = np.concatenate([levels[:-1] + nudge, levels[1:] - nudge])
    s = offsets[:, None]
    crossing = (sa - s) * (sb - s) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crossing, ta + (s - sa) / (sb - sa) * (tb - ta), np.inf)
    t.sort(axis=1)
    count = crossing.sum(axis=1)
    width = t.shape[1] - t.shape[1] % 2
    starts, ends = t[:, 0:width:2], t[:, 1:width:2]
    pair_index = np.arange(starts.shape[1])[None, :]
    with np.errstate(invalid="ignore"):  # inf - inf where a line has fewer crossings
        lengths = np.where(2 * pair_index + 1 < count[:, None], ends - starts, -np.inf)
    row, col = np.unravel_index(int(np.argmax(lengths)), lengths.shape)
    length = float(lengths[row, col])
    if not math.isfinite(length):
        return 0.0, a[0], a[0]
    base = offsets[row] * n
    return length, base + starts[row, col] * u, base + ends[row, col] * u


def _check_grid(labels: Image, other: Image | None, what: str) -> None:
    if other is not None and not labels.same_grid(other):
        raise GeometryError(
            f"the {what} (size {other.size}, spacing {other.spacing}, origin {other.origin}) is not on the label "
            f"grid (size {labels.size}, spacing {labels.spacing}, origin {labels.origin}): resample it first"
        )


@dataclass(frozen=True)
class _Diameters:
    """RECIST diameters of one lesion: lengths (mm), slice and end points (LPS mm)."""

    recist_mm: float
    recist_slice: int
    recist_ends: tuple[Point3, Point3]
    perpendicular_mm: float
    perpendicular_ends: tuple[Point3, Point3]


def _points3(points: np.ndarray) -> tuple[Point3, Point3]:
    (a, b) = [(float(p[0]), float(p[1]), float(p[2])) for p in points]
    return a, b


def _perpendicular(contours: list[np.ndarray], axis: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Longest chord within ±:data:`PERPENDICULAR_TOLERANCE_DEG` of perpendicular to ``axis``."""
    angle0 = math.atan2(axis[1], axis[0]) + math.pi / 2
    half = math.radians(PERPENDICULAR_TOLERANCE_DEG)
    steps = int(round(2 * PERPENDICULAR_TOLERANCE_DEG / PERPENDICULAR_STEP_DEG)) + 1
    angles = angle0 + np.linspace(-half, half, steps)
    chords = [longest_chord(contours, np.array([math.cos(t), math.sin(t)])) for t in angles]
    return max(chords, key=lambda chord: chord[0])


def _diameters(mask: np.ndarray, offset: tuple[int, int, int], plane: SliceGeometry) -> _Diameters:
    """Longest in-plane diameter over the slices of a (non-empty) cropped lesion mask, and its perpendicular."""
    k0, j0, i0 = offset
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    outlines = [[plane.to_plane(c + np.array([j0, i0])) for c in slice_outline(mask[dk])] for dk in slices]
    diameters = [longest_diameter(np.concatenate(contours)) for contours in outlines]
    best = max(range(len(slices)), key=lambda n: diameters[n][0])
    length, p, q = diameters[best]
    k = k0 + int(slices[best])
    perp, a, b = _perpendicular(outlines[best], q - p) if length > 0 else (0.0, p, p)
    ends = _points3(plane.to_lps(np.array([p, q]), k))
    return _Diameters(length, k, ends, perp, _points3(plane.to_lps(np.array([a, b]), k)))


def measure_lesions(
    labels: Image,
    ct: Image | None = None,
    probability: Image | None = None,
    lungs: Image | None = None,
    *,
    midline_x_mm: float = 0.0,
) -> list[LesionMeasurement]:
    """Measure every lesion of a label map.

    Parameters
    ----------
    labels
        Lesion label map (0 background, each positive value one lesion, e.g. from
        :func:`oncoqi.lung.postprocess.label_lesions`).
    ct
        CT on the same grid, for ``mean_hu``.
    probability
        Network probability on the same grid, for ``confidence``.
    lungs
        Lung label map on the same grid (1 right, 2 left: ``LungMasks.lungs`` of
        :func:`oncoqi.lung.isolate_lungs`), so that ``side`` follows the lungs and can be ``both``.
    midline_x_mm
        LPS x of the body midline (mm), for the side without lung masks.

    Returns
    -------
    list of LesionMeasurement
        One per label value present, in increasing label order.

    Raises
    ------
    GeometryError
        When ``ct``, ``probability`` or ``lungs`` is not on the label grid.
    """
    for other, what in ((ct, "CT"), (probability, "probability map"), (lungs, "lung label map")):
        _check_grid(labels, other, what)
    plane = SliceGeometry(labels)
    out: list[LesionMeasurement] = []
    for label, box in label_boxes(labels.array):
        mask = labels.array[box] == label
        offset = (box[0].start, box[1].start, box[2].start)
        centroid = centroid_lps(labels, mask, offset)
        d = _diameters(mask, offset, plane)
        lung_values = lungs.array[box][mask] if lungs is not None else None
        out.append(
            LesionMeasurement(
                label=label,
                volume_ml=int(np.count_nonzero(mask)) * labels.voxel_volume_ml,
                recist_mm=d.recist_mm,
                perpendicular_mm=d.perpendicular_mm,
                centroid_lps_mm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
                side=lesion_side(lung_values, float(centroid[0]), midline_x_mm),
                confidence=float(probability.array[box][mask].mean()) if probability is not None else None,
                n_slices=int(np.count_nonzero(mask.any(axis=(1, 2)))),
                mean_hu=float(ct.array[box][mask].mean()) if ct is not None else None,
                recist_slice=d.recist_slice,
                recist_endpoints_lps_mm=d.recist_ends,
                perpendicular_endpoints_lps_mm=d.perpendicular_ends,
            )
        )
    return out
