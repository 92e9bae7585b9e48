"""Slice ordering and grid defects found by oncoqi.dicom.geometry.analyse_slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oncoqi.dicom.geometry import SliceHeader, analyse_slices

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _headers(zs, orientation=AXIAL, lateral=None, sizes=None) -> list[SliceHeader]:
    row = np.array(orientation[:3])
    col = np.array(orientation[3:])
    normal = np.cross(row, col)
    out = []
    for n, z in enumerate(zs):
        pos = np.array([-100.0, -120.0, 0.0]) + z * normal
        if lateral is not None:
            pos = pos + lateral * n * row
        rows, cols = sizes[n] if sizes else (64, 48)
        out.append(
            SliceHeader(
                path=Path(f"slice{n:03d}.dcm"),
                position=tuple(pos),
                orientation=orientation,
                rows=rows,
                columns=cols,
                pixel_spacing=(0.7, 0.8),
                slice_thickness=5.0,
            )
        )
    return out


def test_sorted_by_position_not_input_order():
    zs = [10.0, 0.0, 7.5, 2.5, 5.0]
    g = analyse_slices(_headers(zs))
    assert g.ok, g.problems
    assert [h.position[2] for h in g.slices] == [0.0, 2.5, 5.0, 7.5, 10.0]
    # spacing from positions (2.5 mm), not from SliceThickness (5 mm); PixelSpacing is row\column
    assert g.spacing == pytest.approx((0.8, 0.7, 2.5))
    assert g.origin == pytest.approx((-100.0, -120.0, 0.0))
    np.testing.assert_allclose(g.direction, np.eye(3))


def test_oblique_orientation_direction_and_sorting():
    c, s = np.cos(0.3), np.sin(0.3)
    orient = (c, s, 0.0, 0.0, 0.0, -1.0)  # rotated coronal-ish
    g = analyse_slices(_headers([3.0, 0.0, 1.5], orientation=orient))
    assert g.ok, g.problems
    normal = np.cross(orient[:3], orient[3:])
    np.testing.assert_allclose(g.direction[:, 2], normal)
    np.testing.assert_allclose(g.direction[:, 0], orient[:3])
    d = [np.dot(h.position, normal) for h in g.slices]
    assert d == sorted(d)
    assert g.spacing[2] == pytest.approx(1.5)


def test_missing_middle_slice_is_reported_with_positions():
    zs = [0.0, 2.5, 5.0, 10.0, 12.5, 15.0]
    g = analyse_slices(_headers(zs), "CT series 'x'")
    assert not g.ok
    (msg,) = g.problems
    assert "1 missing slice" in msg and "5.000 and 10.000" in msg and "CT series 'x'" in msg


def test_non_uniform_spacing_is_reported():
    g = analyse_slices(_headers([0.0, 2.5, 5.0, 6.3, 8.8, 11.3]))
    assert len(g.problems) == 1 and "non-uniform slice spacing" in g.problems[0]
    assert "1.300 mm" in g.problems[0]


def test_duplicate_positions_name_the_files():
    g = analyse_slices(_headers([0.0, 2.5, 2.5, 5.0]))
    assert any("duplicate slice position" in p and "slice001.dcm" in p for p in g.problems)


def test_gantry_tilt_detected_from_positions():
    g = analyse_slices(_headers([0.0, 2.5, 5.0, 7.5], lateral=0.5))
    (msg,) = g.problems
    assert "gantry tilt" in msg
    assert float(msg.split("gantry tilt of ")[1].split(" ")[0]) == pytest.approx(np.degrees(np.arctan(0.2)), abs=0.01)


def test_mixed_orientations_and_sizes():
    hs = _headers([0.0, 2.5, 5.0])
    hs[1] = SliceHeader(**{**hs[1].__dict__, "orientation": (0.0, 1.0, 0.0, 1.0, 0.0, 0.0)})
    g = analyse_slices(hs)
    assert any("mixed orientations" in p for p in g.problems)
    g2 = analyse_slices(_headers([0.0, 2.5, 5.0], sizes=[(64, 48), (64, 48), (32, 48)]))
    assert any("mixed sizes" in p and "32x48" in p for p in g2.problems)


def test_single_slice_uses_slice_thickness_with_warning():
    g = analyse_slices(_headers([0.0]))
    assert g.ok and g.spacing[2] == 5.0 and "SliceThickness" in g.warnings[0]


def test_crop_keeps_every_voxel_at_its_lps_position():
    from oncoqi.image import Image

    angle = np.deg2rad(20.0)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    image = Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), (0.5, 0.7, 2.0), (10.0, -3.0, 7.0), direction)
    box = (slice(1, 3), slice(2, None), slice(0, 4))
    part = image.crop(box)
    np.testing.assert_array_equal(part.array, image.array[box])
    for k, j, i in [(0, 0, 0), (1, 2, 3)]:
        np.testing.assert_allclose(
            part.index_to_lps(np.array([i, j, k])), image.index_to_lps(np.array([i, j + 2, k + 1]))
        )
    with pytest.raises(ValueError, match="step 1"):
        image.crop((slice(None, None, 2), slice(None), slice(None)))
