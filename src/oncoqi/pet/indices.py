"""PET-IndiC quantitative indices of one segment of an SUV volume.

Notation: ``S`` is the multiset of the ``N`` SUV values of the segment's voxels, ``s_(1) <= ... <=
s_(N)`` the same values sorted (1-based), ``v`` the voxel volume in ml (product of the spacings
/ 1000). The definitions follow QIICR PET-IndiC (``itkQuantitativeIndicesComputationFilter``) so
that results compare with its published values; where PET-IndiC has a defect, the fix is noted.

=====================  ==========================================================================
key                    definition
=====================  ==========================================================================
suv_mean               ``mean = sum(S) / N``
suv_std                population standard deviation ``sqrt(sum((s - mean)**2) / N)`` (divides by
                       N, not N - 1, as PET-IndiC)
suv_min, suv_max       ``min(S)``, ``max(S)`` (``suv_max`` is SUVmax)
rms                    ``sqrt(sum(s**2) / N)``
mtv_ml                 metabolic tumour volume of the segment, ``N * v``
q1                     if ``N % 4 == 0``: ``(s_(N/4) + s_(N/4+1)) / 2``, else ``s_(floor(N/4)+1)``
median                 if N even: ``(s_(N/2) + s_(N/2+1)) / 2``, else ``s_((N+1)/2)``
q3                     if ``N % 4 == 0``: ``(s_(3N/4) + s_(3N/4+1)) / 2``, else ``s_(floor(3N/4)+1)``
upper_adjacent         largest ``s`` with ``s < q3 + 1.5 * (q3 - q1)`` (strictly less, as PET-IndiC);
                       ``max(S)`` when ``q3 == q1``
tlg                    total lesion glycolysis ``sum(S) * v`` (= mean * mtv), SUV·ml
glycolysis_q1..q4      ``sum`` of the values in intensity bin 1..4, times ``v`` (SUV·ml)
distribution_q1..q4    ``100 * (count in bin 1..4) / N`` (percent)
sam_background         mean SUV of the shell: the segment dilated by a ball of radius 2 voxels in
                       index space (offsets with ``di**2 + dj**2 + dk**2 <= 6.25``, ITK's
                       ``BinaryBallStructuringElement`` of radius 2), minus the segment
sam                    standardised added metabolic activity ``(mean - sam_background) * N * v``
suv_peak               highest mean over a 1 ml sphere with exact partial-voxel weights, centred on
                       a segment voxel whose sphere lies inside the image (see
                       :mod:`oncoqi.pet.peak`); ``suv_peak_lps_mm`` is that centre in LPS mm
=====================  ==========================================================================

Intensity bins split ``[min, max]`` into four equal widths ``b = (max - min) / 4``: bin 1 is
``[min, min + b]``, bins 2 and 3 are ``(min + (n-1) b, min + n b]`` and bin 4 is
``(min + 3 b, max]`` (PET-IndiC's bin 4 ends at ``min + 4 b``, which rounding can leave below
``max``, dropping the maximum voxel from every bin). When ``max == min`` every voxel is in bin 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from scipy import ndimage

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet.peak import PEAK_RADIUS_MM, suv_peak

#: Radius, in voxels, of the ball that grows the segment into its SAM background shell.
SAM_SHELL_RADIUS_VOXELS = 2


@dataclass(frozen=True)
class PETIndices:
    """The PET-IndiC indices of one segment (definitions in the module documentation).

    Values that cannot be computed are None, with the reason in ``warnings``. ``to_dict`` gives
    the keys in the documented order, ready for JSON.
    """

    label: int
    suv_mean: float
    suv_std: float
    suv_min: float
    suv_max: float
    rms: float
    mtv_ml: float
    q1: float
    median: float
    q3: float
    upper_adjacent: float
    tlg: float
    glycolysis_q1: float
    glycolysis_q2: float
    glycolysis_q3: float
    glycolysis_q4: float
    distribution_q1: float
    distribution_q2: float
    distribution_q3: float
    distribution_q4: float
    sam: float | None
    sam_background: float | None
    suv_peak: float | None
    suv_peak_lps_mm: tuple[float, float, float] | None
    voxel_count: int
    units: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        out["suv_peak_lps_mm"] = list(self.suv_peak_lps_mm) if self.suv_peak_lps_mm is not None else None
        out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def keys(cls) -> list[str]:
        """The output keys, in order."""
        return [f.name for f in fields(cls)]


def pet_indic_quartiles(sorted_values: np.ndarray) -> tuple[float, float, float]:
    """Q1, median and Q3 of ascending ``sorted_values`` by PET-IndiC's rule (module docs)."""
    s = sorted_values
    n = s.size
    median = 0.5 * (s[n // 2 - 1] + s[n // 2]) if n % 2 == 0 else s[n // 2]
    if n % 4 == 0:
        q1 = 0.5 * (s[n // 4 - 1] + s[n // 4])
        q3 = 0.5 * (s[3 * n // 4 - 1] + s[3 * n // 4])
    else:
        q1 = s[n // 4]
        q3 = s[(3 * n) // 4]
    return float(q1), float(median), float(q3)


def upper_adjacent_value(sorted_values: np.ndarray, q1: float, q3: float) -> float:
    """Largest value strictly below ``q3 + 1.5 * (q3 - q1)``; the maximum when ``q3 == q1``."""
    iqr = q3 - q1
    if iqr == 0:
        return float(sorted_values[-1])
    below = sorted_values[sorted_values < q3 + 1.5 * iqr]
    return float(below[-1])


def intensity_bins(values: np.ndarray, vmin: float, vmax: float) -> list[np.ndarray]:
    """Boolean masks of the four equal-width intensity bins of ``[vmin, vmax]`` (module docs)."""
    b = (vmax - vmin) * 0.25
    e1, e2, e3 = vmin + b, vmin + 2 * b, vmin + 3 * b
    return [values <= e1, (values > e1) & (values <= e2), (values > e2) & (values <= e3), values > e3]


def sam_ball(radius: int = SAM_SHELL_RADIUS_VOXELS) -> np.ndarray:
    """ITK's binary ball of ``radius`` voxels: offsets with ``|d|**2 <= (radius + 0.5)**2``."""
    r = np.arange(-radius, radius + 1)
    k, j, i = np.meshgrid(r, r, r, indexing="ij")
    return (k * k + j * j + i * i) <= (radius + 0.5) ** 2


def _check_grid(suv: Image, labels: Image) -> None:
    if not suv.same_grid(labels):
        raise GeometryError(
            f"the label map (size {labels.size}, spacing {labels.spacing}, origin {labels.origin}) is not on the SUV "
            f"grid (size {suv.size}, spacing {suv.spacing}, origin {suv.origin}): resample it first"
        )
    d = suv.direction
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise GeometryError("the SUV grid axes are not orthogonal: the SUVpeak sphere cannot be placed on it")


def _intensity_indices(values: np.ndarray, v_ml: float) -> dict[str, float]:
    """The indices of the segment's values alone (mean to distribution, module docs), as
    :class:`PETIndices` fields."""
    n = values.size
    mean = float(values.mean())
    vmin, vmax = float(values.min()), float(values.max())
    s = np.sort(values)
    q1, median, q3 = pet_indic_quartiles(s)
    bins = intensity_bins(values, vmin, vmax)
    return {
        "suv_mean": mean,
        "suv_std": float(math.sqrt(np.mean((values - mean) ** 2))),
        "suv_min": vmin,
        "suv_max": vmax,
        "rms": float(math.sqrt(np.mean(values**2))),
        "mtv_ml": n * v_ml,
        "q1": q1,
        "median": median,
        "q3": q3,
        "upper_adjacent": upper_adjacent_value(s, q1, q3),
        "tlg": float(values.sum()) * v_ml,
        "glycolysis_q1": float(values[bins[0]].sum()) * v_ml,
        "glycolysis_q2": float(values[bins[1]].sum()) * v_ml,
        "glycolysis_q3": float(values[bins[2]].sum()) * v_ml,
        "glycolysis_q4": float(values[bins[3]].sum()) * v_ml,
        "distribution_q1": 100.0 * int(bins[0].sum()) / n,
        "distribution_q2": 100.0 * int(bins[1].sum()) / n,
        "distribution_q3": 100.0 * int(bins[2].sum()) / n,
        "distribution_q4": 100.0 * int(bins[3].sum()) / n,
    }


def _sam(suv: Image, mask: np.ndarray, mean: float, v_ml: float) -> tuple[float | None, float | None, list[str]]:
    """SAM and its background, which need the SUVs around the segment (its 2-voxel shell); None
    and a warning when the shell is empty."""
    n = int(mask.sum())
    idx = np.argwhere(mask)
    r = SAM_SHELL_RADIUS_VOXELS
    box = tuple(slice(max(int(a) - r, 0), int(b) + r + 1) for a, b in zip(idx.min(axis=0), idx.max(axis=0)))
    crop = mask[box]
    shell = ndimage.binary_dilation(crop, structure=sam_ball()) & ~crop
    if not shell.any():
        return None, None, ["SAM not computed: the segment's 2-voxel shell is empty (segment fills the image)"]
    background = float(suv.array[box][shell].astype(np.float64).mean())
    return (mean - background) * n * v_ml, background, []


def _peak(
    suv: Image, mask: np.ndarray, kernel_within_segment: bool
) -> tuple[float | None, tuple[float, float, float] | None, list[str]]:
    """SUVpeak and its centre in LPS mm, which need the SUVs around each segment voxel (a 1 ml
    sphere); None and a warning when no voxel can centre the sphere."""
    peak = suv_peak(suv.array, mask, suv.spacing, PEAK_RADIUS_MM, kernel_within_segment)
    if peak is None:
        where = "the whole sphere inside the segment" if kernel_within_segment else "the sphere inside the image"
        return None, None, [f"SUVpeak not computed: no voxel of the segment can centre a 1 ml sphere with {where}"]
    peak_value, (k, j, i) = peak
    x, y, z = (float(c) for c in suv.index_to_lps(np.array([i, j, k])))
    return peak_value, (x, y, z), []


def compute_indices(
    suv: Image,
    labels: Image,
    label: int,
    *,
    kernel_within_segment: bool = False,
) -> PETIndices:
    """Compute the PET-IndiC indices of segment ``label``.

    Parameters
    ----------
    suv
        SUV volume (e.g. :func:`oncoqi.pet.suv.apply_suv`); ``metadata["units"]`` is reported.
    labels
        Label map on the same grid (non-zero voxels equal to ``label`` form the segment).
    label
        The segment's value in ``labels``.
    kernel_within_segment
        SUVpeak only at centres whose whole sphere lies in the segment (PET-IndiC's rule); by
        default the sphere need only lie inside the image.

    Returns
    -------
    PETIndices
        Every index; ``sam``/``sam_background`` are None when the shell is empty, ``suv_peak`` and
        its location None when no admissible centre exists (reasons in ``warnings``).

    Raises
    ------
    InputError
        When no voxel has value ``label``.
    GeometryError
        When ``labels`` is not on the SUV grid, or the grid is not orthogonal.
    """
    _check_grid(suv, labels)
    mask = labels.array == label
    n = int(mask.sum())
    if n == 0:
        present = np.unique(labels.array)
        raise InputError(f"label {label} is empty: no voxel has that value (values present: {present[:20].tolist()})")
    values = suv.array[mask].astype(np.float64)
    v_ml = suv.voxel_volume_ml
    intensity = _intensity_indices(values, v_ml)
    sam, background, sam_warnings = _sam(suv, mask, intensity["suv_mean"], v_ml)
    peak_value, peak_lps, peak_warnings = _peak(suv, mask, kernel_within_segment)
    return PETIndices(
        label=int(label),
        **intensity,
        sam=sam,
        sam_background=background,
        suv_peak=peak_value,
        suv_peak_lps_mm=peak_lps,
        voxel_count=n,
        units=str(suv.metadata.get("units", "")),
        warnings=tuple(sam_warnings + peak_warnings),
    )
