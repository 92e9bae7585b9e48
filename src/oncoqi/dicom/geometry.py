"""Slice geometry of a DICOM image series: ordering, spacing and the problems that break a grid.

A series becomes a 3D image only when its slices share one orientation, one size and one pixel
spacing, and their positions lie on a line along the slice normal at a constant step. Slices are
ordered by their position projected on the normal (row x column cosines), never by
InstanceNumber or file name, because both are routinely wrong in exported data. Every way a
series can fail that test is reported with the positions involved, so a user can find the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Positions closer than this along the normal (mm) are the same position.
DUPLICATE_TOL_MM = 1e-3
#: Relative deviation of a step from the median step that counts as non-uniform spacing.
SPACING_REL_TOL = 0.01
#: Absolute floor for the spacing tolerance (mm): DICOM positions are often rounded to 0.01 mm.
SPACING_ABS_TOL_MM = 0.02
#: Orientation cosines that differ by more than this are different orientations.
ORIENTATION_TOL = 1e-4


@dataclass(frozen=True)
class SliceHeader:
    """The geometry attributes of one single-frame image instance."""

    path: Path
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    slice_thickness: float | None = None
    gantry_tilt: float | None = None


@dataclass
class SeriesGeometry:
    """The grid of a series, or the reasons it has none.

    Attributes
    ----------
    slices
        Headers sorted by position along the slice normal.
    spacing
        Voxel size along columns (i), rows (j) and the normal (k), in mm.
    origin
        LPS position of the first voxel of the first slice.
    direction
        3x3 matrix whose columns are the i, j, k directions.
    problems
        One message per defect; empty when the series is a regular grid.
    warnings
        Facts worth knowing that do not prevent loading (e.g. spacing taken from SliceThickness).
    """

    slices: list[SliceHeader]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the slices form one regular grid."""
        return not self.problems


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _mixed_attributes(headers: Sequence[SliceHeader], series_name: str) -> list[str]:
    """The problems of slices that differ in orientation, size or pixel spacing: one grid needs them equal."""
    problems: list[str] = []
    orientations = {tuple(round(c / ORIENTATION_TOL) for c in h.orientation) for h in headers}
    if len(orientations) > 1:
        examples = sorted({_fmt(h.orientation) for h in headers})[:3]
        problems.append(
            f"{series_name}: mixed orientations ({len(orientations)} different "
            f"ImageOrientationPatient values, e.g. {', '.join(examples)})"
        )
    sizes = {(h.rows, h.columns) for h in headers}
    if len(sizes) > 1:
        problems.append(
            f"{series_name}: mixed sizes (Rows x Columns: {', '.join(f'{r}x{c}' for r, c in sorted(sizes))})"
        )
    pixel_spacings = {tuple(round(s, 4) for s in h.pixel_spacing) for h in headers}
    if len(pixel_spacings) > 1:
        problems.append(f"{series_name}: mixed PixelSpacing values {sorted(pixel_spacings)}")
    return problems


def _slice_axes(first: SliceHeader, series_name: str, problems: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row, column and normal directions of the first slice (a bad orientation is added to ``problems``)."""
    row = np.asarray(first.orientation[:3], dtype=float)
    col = np.asarray(first.orientation[3:], dtype=float)
    if not (math.isclose(np.linalg.norm(row), 1, abs_tol=1e-3) and math.isclose(np.linalg.norm(col), 1, abs_tol=1e-3)):
        problems.append(f"{series_name}: ImageOrientationPatient {_fmt(first.orientation)} is not made of unit vectors")
    row = row / (np.linalg.norm(row) or 1.0)
    col = col / (np.linalg.norm(col) or 1.0)
    normal = np.cross(row, col)
    if np.linalg.norm(normal) < 0.5:
        problems.append(f"{series_name}: ImageOrientationPatient row and column are not orthogonal")
        normal = np.array([0.0, 0.0, 1.0])
    normal /= np.linalg.norm(normal)
    return row, col, normal


def _duplicate_positions(
    slices: list[SliceHeader], positions: np.ndarray, steps: np.ndarray, series_name: str
) -> list[str]:
    """The problem of slices at one position along the normal, naming their files."""
    dup = np.nonzero(steps < DUPLICATE_TOL_MM)[0]
    if not dup.size:
        return []
    where = "; ".join(f"{slices[i].path.name} and {slices[i + 1].path.name} at {_fmt(positions[i])}" for i in dup[:5])
    return [f"{series_name}: {dup.size} duplicate slice position(s): {where}"]


def _spacing_problems(steps: np.ndarray, distance: np.ndarray, dz: float, series_name: str) -> list[str]:
    """Missing slices (gaps of whole steps) and other departures from the median step ``dz``."""
    problems: list[str] = []
    tol = max(SPACING_ABS_TOL_MM, SPACING_REL_TOL * dz)
    irregular = [i for i, s in enumerate(steps) if s >= DUPLICATE_TOL_MM and abs(s - dz) > tol]
    gaps = [i for i in irregular if steps[i] > dz and abs(steps[i] / dz - round(steps[i] / dz)) * dz <= tol]
    others = [i for i in irregular if i not in gaps]
    if gaps:
        missing = sum(int(round(steps[i] / dz)) - 1 for i in gaps)
        where = "; ".join(
            f"between {distance[i]:.3f} and {distance[i + 1]:.3f} mm (gap {steps[i]:.3f} mm)" for i in gaps[:5]
        )
        problems.append(f"{series_name}: {missing} missing slice(s), expected a step of {dz:.3f} mm: {where}")
    if others:
        where = "; ".join(
            f"{steps[i]:.3f} mm between {distance[i]:.3f} and {distance[i + 1]:.3f} mm" for i in others[:5]
        )
        problems.append(f"{series_name}: non-uniform slice spacing (median {dz:.3f} mm): {where}")
    return problems


def _gantry_tilt(positions: np.ndarray, distance: np.ndarray, normal: np.ndarray, series_name: str) -> list[str]:
    """The problem of positions that move sideways, not along the normal (a tilted gantry: no regular grid)."""
    offsets = positions - positions[0]
    lateral = offsets - np.outer(offsets @ normal, normal)
    if not np.max(np.linalg.norm(lateral, axis=1)) > max(0.01, 1e-3 * np.max(np.abs(offsets @ normal))):
        return []
    last = len(positions) - 1
    span = distance[last] - distance[0]
    tilt = math.degrees(math.atan2(float(np.linalg.norm(lateral[last])), span)) if span else 90.0
    return [
        f"{series_name}: gantry tilt of {tilt:.2f} degrees (slice positions are not along the slice "
        f"normal; positions {_fmt(positions[0])} to {_fmt(positions[last])})"
    ]


def analyse_slices(headers: Sequence[SliceHeader], series_name: str = "series") -> SeriesGeometry:
    """Sort slices along their normal and check that they form one regular grid.

    Parameters
    ----------
    headers
        One entry per single-frame instance of the series, in any order.
    series_name
        How messages refer to the series (description and UID).

    Returns
    -------
    SeriesGeometry
        The sorted slices and the grid; ``problems`` lists every defect found (mixed
        orientations or sizes, duplicate positions, gantry tilt, missing slices, non-uniform
        spacing), each naming the positions or files involved.
    """
    if not headers:
        raise ValueError("analyse_slices needs at least one slice")
    warnings: list[str] = []
    first = headers[0]
    problems = _mixed_attributes(headers, series_name)
    row, col, normal = _slice_axes(first, series_name, problems)

    positions = np.array([h.position for h in headers], dtype=float)
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    slices = [headers[i] for i in order]
    distance = distance[order]
    positions = positions[order]

    # spacing along columns (i) is PixelSpacing[1]; along rows (j) PixelSpacing[0]
    dx, dy = first.pixel_spacing[1], first.pixel_spacing[0]
    dz = first.slice_thickness or 1.0
    if len(slices) == 1:
        if first.slice_thickness:
            warnings.append(f"{series_name}: single slice; slice spacing taken from SliceThickness {dz:g} mm")
        else:
            warnings.append(f"{series_name}: single slice without SliceThickness; slice spacing set to 1 mm")
    else:
        steps = np.diff(distance)
        problems += _duplicate_positions(slices, positions, steps, series_name)
        distinct = steps[steps >= DUPLICATE_TOL_MM]
        if distinct.size:
            dz = float(np.median(distinct))
            problems += _spacing_problems(steps, distance, dz, series_name)
            # Gantry tilt: consecutive positions must move along the normal, not sideways.
            problems += _gantry_tilt(positions, distance, normal, series_name)
    tilts = {round(h.gantry_tilt, 3) for h in headers if h.gantry_tilt}
    if tilts and not any("gantry tilt" in p for p in problems):
        warnings.append(f"{series_name}: GantryDetectorTilt {sorted(tilts)} degrees but slice positions are consistent")

    direction = np.column_stack([row, col, normal])
    return SeriesGeometry(
        slices=slices,
        spacing=(float(dx), float(dy), float(dz)),
        origin=tuple(float(v) for v in positions[0]),  # type: ignore[arg-type]
        direction=direction,
        problems=problems,
        warnings=warnings,
    )
