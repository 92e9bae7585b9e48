"""oncoqi.metrics: overlap, DeepMind-style surface distances, APL, detection, and ``oncoqi lung evaluate``.

Expected values come from hand geometry (boxes and balls on known grids, closed-form surfel
areas) and from the two reference implementations of the surface metrics, DeepMind's
``surface-distance`` (PyPI ``surface-distance`` 0.1) and ``pymia`` (0.3.4), which must agree with
ours to 1e-9 on random blobs and anisotropic grids.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage, stats

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.lung.cli import add_evaluate_parser
from oncoqi.metrics import (
    EvaluationCase,
    LungFinding,
    OverlapCounts,
    added_path_length,
    crop_to_union,
    detection_summary,
    evaluate_case,
    evaluate_masks,
    evaluate_set,
    lung_findings,
    roc_auc,
    roc_curve,
    summarise,
    surface_distances,
)
from oncoqi.metrics.case import quantile
from oncoqi.metrics.matching import match_cases
from oncoqi.metrics.surface import _padded_surface_distances, contour_length_table, surfel_area_table

SPACINGS = [(1.0, 1.0, 1.0), (3.0, 0.8, 0.7), (0.5, 2.5, 1.3)]
#: The reference libraries still call scipy.ndimage.filters/morphology, which warn on SciPy >= 1.8.
reference_library_warnings = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")


def box(shape: tuple[int, int, int], lo: tuple[int, int, int], size: tuple[int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, a + n) for a, n in zip(lo, size))] = True
    return mask


def ball(shape: tuple[int, ...], centre: tuple[float, ...], radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    return sum(((grid[a] - centre[a]) * spacing[a]) ** 2 for a in range(len(shape))) <= radius_mm**2


def blob(rng: np.random.Generator, shape: tuple[int, int, int], fraction: float) -> np.ndarray:
    """A random smooth blob filling about ``fraction`` of the array."""
    field = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return field > np.quantile(field, 1.0 - fraction)


# --------------------------------------------------------------------------- hand-made cases


@pytest.mark.parametrize("spacing", SPACINGS)
def test_identical_masks_are_perfect(spacing):
    mask = ball((20, 30, 30), (10, 15, 15), 6.0, spacing)
    m = evaluate_masks(mask, mask, spacing)
    assert (m.dice, m.jaccard, m.hd95_mm, m.surface_dice, m.apl_mm) == (1.0, 1.0, 0.0, 1.0, 0.0)
    assert m.volume_difference_ml == 0.0 and m.relative_volume_difference == 0.0
    assert m.reference_ml == pytest.approx(mask.sum() * math.prod(spacing) / 1000)


def test_overlap_of_two_boxes_by_hand():
    ref = box((10, 10, 10), (0, 0, 0), (4, 4, 4))  # 64 voxels
    pred = box((10, 10, 10), (2, 0, 0), (4, 4, 4))  # 64 voxels, 32 shared
    c = OverlapCounts.of(ref, pred, 0.002)
    assert (c.reference, c.prediction, c.intersection, c.union) == (64, 64, 32, 96)
    assert c.dice() == 0.5 and c.jaccard() == pytest.approx(1 / 3)
    bigger = OverlapCounts.of(ref, box((10, 10, 10), (0, 0, 0), (6, 4, 4)), 0.002)
    assert bigger.volume_difference_ml() == pytest.approx(32 * 0.002)
    assert bigger.relative_volume_difference() == pytest.approx(0.5)


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("axis,shift", [(0, 2), (1, 3), (2, 1)])
def test_shifted_box_hd95_equals_the_shift(spacing, axis, shift):
    # A third of a box's surface (the two faces across the shift) is exactly `shift` away and none is farther.
    ref = box((20, 24, 24), (5, 6, 6), (6, 8, 7))
    pred = np.roll(ref, shift, axis=axis)
    d = surface_distances(ref, pred, spacing)
    assert d.robust_hausdorff(95) == pytest.approx(shift * spacing[axis])
    assert d.robust_hausdorff(100) == pytest.approx(shift * spacing[axis])


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.7, 0.7)])
@pytest.mark.parametrize("shift", [(0, 0, 3), (2, 0, 0)])
def test_shifted_sphere_hausdorff_is_the_shift(spacing, shift):
    shape, centre = (40, 70, 70), (20, 35, 35)
    ref = ball(shape, centre, 12.0, spacing)
    pred = ball(shape, tuple(c + s for c, s in zip(centre, shift)), 12.0, spacing)
    d = surface_distances(ref, pred, spacing)
    length = float(np.linalg.norm(np.multiply(shift, spacing)))
    assert d.robust_hausdorff(100) == pytest.approx(length)
    # For a translated sphere the surface distance is about length * |cos(theta)|, so the area-weighted
    # 95th percentile is about 0.95 * length; the grid moves it by less than a voxel step.
    assert 0.9 * length <= d.robust_hausdorff(95) <= length


def test_empty_prediction_is_a_failure_never_a_perfect_score():
    spacing = (2.0, 0.8, 0.6)
    ref = box((12, 20, 20), (3, 5, 5), (4, 6, 7))
    m = evaluate_masks(ref, np.zeros_like(ref), spacing)
    assert m.dice == 0.0 and m.jaccard == 0.0 and m.surface_dice == 0.0
    assert m.hd95_mm == math.inf and m.empty_prediction and not m.empty_reference
    assert m.relative_volume_difference == -1.0
    # APL = the whole reference contour: per slice, 6x7 pixels cut at the 4 corners (marching squares).
    per_slice = 2 * (7 - 1) * 0.6 + 2 * (6 - 1) * 0.8 + 4 * 0.5 * math.hypot(0.8, 0.6)
    assert m.apl_mm == pytest.approx(4 * per_slice)


def test_empty_reference_and_both_empty():
    ref = np.zeros((8, 8, 8), bool)
    pred = box((8, 8, 8), (2, 2, 2), (3, 3, 3))
    m = evaluate_masks(ref, pred, (1, 1, 1))
    assert (m.dice, m.hd95_mm, m.surface_dice, m.apl_mm) == (0.0, math.inf, 0.0, 0.0)
    assert m.empty_reference and math.isnan(m.relative_volume_difference)
    both = evaluate_masks(ref, ref, (1, 1, 1))
    assert all(math.isnan(v) for v in (both.dice, both.jaccard, both.hd95_mm, both.surface_dice))


@pytest.mark.parametrize("spacing", SPACINGS)
def test_single_voxel_surface_area_in_closed_form(spacing):
    # Marching cubes cuts each of the 8 corners with a triangle through the half-edges:
    # total area = sqrt((b c)^2 + (a c)^2 + (a b)^2) for spacing (a, b, c).
    a, b, c = spacing
    d = surface_distances(box((3, 3, 3), (1, 1, 1), (1, 1, 1)), box((3, 3, 3), (1, 1, 1), (1, 1, 1)), spacing)
    assert d.reference_areas.size == 8
    assert d.reference_areas.sum() == pytest.approx(math.sqrt((b * c) ** 2 + (a * c) ** 2 + (a * b) ** 2))


def test_anisotropic_spacing_scales_each_axis():
    # The same voxel shift costs 3 mm along a 3 mm axis and 0.7 mm along a 0.7 mm axis.
    spacing = (3.0, 0.8, 0.7)
    ref = box((16, 16, 16), (4, 4, 4), (6, 6, 6))
    assert surface_distances(ref, np.roll(ref, 1, axis=0), spacing).robust_hausdorff(95) == pytest.approx(3.0)
    assert surface_distances(ref, np.roll(ref, 1, axis=2), spacing).robust_hausdorff(95) == pytest.approx(0.7)
    # After a 1-voxel shift along k every surfel is within 3 mm of the other surface, the faces across
    # the shift exactly 3 mm away: they count at a 3 mm tolerance and not below.
    assert surface_distances(ref, np.roll(ref, 1, axis=0), spacing).surface_dice(3.0) == 1.0
    assert surface_distances(ref, np.roll(ref, 1, axis=0), spacing).surface_dice(2.9) < 1.0


def test_contour_length_table_by_hand():
    t = contour_length_table((2.0, 1.0))
    half_diagonal = 0.5 * math.hypot(2.0, 1.0)
    assert t[0] == t[15] == 0.0
    assert t[0b0001] == t[0b0111] == half_diagonal  # one corner in, three corners in
    assert t[0b0011] == 1.0  # corners (1,0),(1,1): one row inside, the contour runs along axis 1
    assert t[0b0101] == 2.0  # corners (0,1),(1,1): one column inside, the contour runs along axis 0
    assert t[0b0110] == t[0b1001] == 2 * half_diagonal  # saddles: two separate corner cuts


def test_crop_equals_uncropped():
    rng = np.random.default_rng(3)
    spacing = (2.0, 0.9, 0.7)
    ref = np.zeros((30, 40, 40), bool)
    pred = np.zeros_like(ref)
    ref[5:20, 8:30, 10:28] = blob(rng, (15, 22, 18), 0.4)
    pred[7:22, 6:28, 12:30] = blob(rng, (15, 22, 18), 0.4)
    cropped = surface_distances(ref, pred, spacing)
    whole = _padded_surface_distances(np.pad(ref, 1), np.pad(pred, 1), spacing)
    for field in ("reference_to_prediction", "prediction_to_reference", "reference_areas", "prediction_areas"):
        np.testing.assert_array_equal(getattr(cropped, field), getattr(whole, field))
    wide_ref, wide_pred = crop_to_union(ref, pred, margin=4)
    assert wide_ref.shape == tuple(np.add(crop_to_union(ref, pred)[0].shape, 6))
    assert _padded_surface_distances(wide_ref, wide_pred, spacing).robust_hausdorff(95) == cropped.robust_hausdorff(95)


def test_crop_rejects_a_margin_below_one_voxel():
    with pytest.raises(ValueError, match="margin"):
        crop_to_union(np.ones((2, 2, 2), bool), np.ones((2, 2, 2), bool), margin=0)


def test_added_path_length_counts_only_far_reference_contour():
    spacing = (2.0, 1.0, 1.0)
    ref = box((6, 20, 20), (1, 4, 4), (3, 10, 10))
    # Shift the prediction by 2 pixels along i on every slice: the two reference sides along j
    # (rows) are 2 mm from the predicted sides; the other two sides partly overlap.
    pred = np.roll(ref, 2, axis=2)
    assert added_path_length(ref, pred, spacing, tolerance_mm=2.0) == 0.0
    apl = added_path_length(ref, pred, spacing, tolerance_mm=1.0)
    assert 0 < apl < 3 * (4 * 9 + 4 * 0.5 * math.sqrt(2))
    # A slice the prediction misses adds its whole contour.
    missing = pred.copy()
    missing[2] = False
    per_slice = 4 * 9 * 1.0 + 4 * 0.5 * math.sqrt(2)
    assert added_path_length(ref, missing, spacing, tolerance_mm=2.0) == pytest.approx(per_slice)


# --------------------------------------------------------------------------- reference implementations


@pytest.fixture(scope="module")
def deepmind():
    sd = pytest.importorskip("surface_distance", reason="PyPI surface-distance (DeepMind's metrics) is not installed")
    if not hasattr(sd, "compute_surface_distances"):
        pytest.skip("the installed 'surface_distance' module is not DeepMind's surface-distance")
    # surface-distance 0.1 still spells np.Inf/np.NaN, which NumPy 2 removed; give it the aliases.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "Inf", np.inf, raising=False)
        patch.setattr(np, "NaN", np.nan, raising=False)
        yield sd


def random_pairs(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = tuple(int(n) for n in rng.integers(10, 32, 3))
        spacing = tuple(float(s) for s in rng.uniform(0.4, 3.0, 3))
        ref = blob(rng, shape, 0.2)
        pred = blob(rng, shape, 0.2) | (ref & (rng.random(shape) > 0.3))
        yield ref, pred, spacing


@reference_library_warnings
@pytest.mark.parametrize("spacing", SPACINGS)
def test_surfel_area_table_matches_deepmind(deepmind, spacing):
    from surface_distance import lookup_tables

    theirs = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    # DeepMind's code weights corners [[[128, 64], [32, 16]], [[8, 4], [2, 1]]]; ours sets bit 4a+2b+c.
    to_ours = [
        sum(
            1 << (4 * a + 2 * b + c)
            for a in range(2)
            for b in range(2)
            for c in range(2)
            if code & (1 << (7 - (4 * a + 2 * b + c)))
        )
        for code in range(256)
    ]
    np.testing.assert_allclose(surfel_area_table(spacing)[to_ours], theirs, rtol=0, atol=1e-12)


@reference_library_warnings
def test_agrees_with_deepmind_surface_distance_on_random_blobs(deepmind):
    for ref, pred, spacing in random_pairs(12, seed=0):
        ours = surface_distances(ref, pred, spacing)
        theirs = deepmind.compute_surface_distances(ref, pred, spacing)
        np.testing.assert_allclose(ours.reference_to_prediction, theirs["distances_gt_to_pred"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.prediction_to_reference, theirs["distances_pred_to_gt"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.reference_areas, theirs["surfel_areas_gt"], rtol=0, atol=1e-9)
        for percent in (50, 95, 100):
            expected = deepmind.compute_robust_hausdorff(theirs, percent)
            assert ours.robust_hausdorff(percent) == pytest.approx(expected, abs=1e-9)
        for tolerance in (0.5, 1.18, 2.0):
            expected = deepmind.compute_surface_dice_at_tolerance(theirs, tolerance)
            assert ours.surface_dice(tolerance) == pytest.approx(expected, abs=1e-9)
        assert evaluate_masks(ref, pred, spacing).dice == pytest.approx(deepmind.compute_dice_coefficient(ref, pred))


@reference_library_warnings
def test_empty_prediction_agrees_with_deepmind(deepmind):
    ref = box((10, 10, 10), (2, 2, 2), (4, 5, 3))
    theirs = deepmind.compute_surface_distances(ref, np.zeros_like(ref), (1.0, 2.0, 3.0))
    ours = surface_distances(ref, np.zeros_like(ref), (1.0, 2.0, 3.0))
    assert ours.robust_hausdorff(95) == deepmind.compute_robust_hausdorff(theirs, 95) == math.inf
    assert ours.surface_dice(1.0) == deepmind.compute_surface_dice_at_tolerance(theirs, 1.0) == 0.0


@reference_library_warnings
def test_added_path_length_agrees_with_deepmind_2d_contours(deepmind):
    for ref, pred, spacing in random_pairs(4, seed=5):
        pred[ref.shape[0] // 2] = False  # one slice without prediction
        expected = 0.0
        for k in range(ref.shape[0]):
            if ref[k].any():
                d = deepmind.compute_surface_distances(ref[k], pred[k], spacing[1:])
                expected += float(np.sum(d["surfel_areas_gt"][d["distances_gt_to_pred"] > 1.18]))
        assert added_path_length(ref, pred, spacing, 1.18) == pytest.approx(expected, abs=1e-9)


@reference_library_warnings
def test_agrees_with_pymia_on_random_blobs():
    base = pytest.importorskip("pymia.evaluation.metric.base", reason="pymia is not installed")
    categorical = pytest.importorskip("pymia.evaluation.metric.categorical")
    for ref, pred, spacing in random_pairs(6, seed=1):
        distances = base.Distances(pred.astype(np.uint8), ref.astype(np.uint8), spacing)
        hd = categorical.HausdorffDistance(percentile=95)
        sdice = categorical.SurfaceDiceOverlap(tolerance=1.18)
        hd.distances = sdice.distances = distances
        ours = surface_distances(ref, pred, spacing)
        assert ours.robust_hausdorff(95) == pytest.approx(hd.calculate(), abs=1e-9)
        assert ours.surface_dice(1.18) == pytest.approx(sdice.calculate(), abs=1e-9)


# --------------------------------------------------------------------------- speed


def test_a_512x512x150_case_with_a_50ml_lesion_takes_under_a_second():
    spacing = (2.5, 0.7, 0.7)
    shape = (150, 512, 512)
    radius = (3 * 50_000 / (4 * math.pi)) ** (1 / 3)  # mm, 50 ml

    def sphere(centre_mm: tuple[float, float, float], r: float) -> np.ndarray:
        mask = np.zeros(shape, bool)
        lo = [int((c - r) / s) - 1 for c, s in zip(centre_mm, spacing)]
        hi = [int((c + r) / s) + 2 for c, s in zip(centre_mm, spacing)]
        k, j, i = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        dist2 = (
            (k * spacing[0] - centre_mm[0]) ** 2
            + (j * spacing[1] - centre_mm[1]) ** 2
            + (i * spacing[2] - centre_mm[2]) ** 2
        )
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = dist2 <= r * r
        return mask

    ref = sphere((180.0, 150.0, 200.0), radius)
    pred = sphere((183.0, 152.0, 199.0), radius * 1.05)
    assert ref.sum() * math.prod(spacing) / 1000 == pytest.approx(50, rel=0.01)
    elapsed = []
    for _ in range(2):  # best of two: the machine is shared
        start = time.perf_counter()
        m = evaluate_masks(ref, pred, spacing)
        elapsed.append(time.perf_counter() - start)
    assert 0.8 < m.dice < 0.95 and 2.5 < m.hd95_mm < 6
    assert min(elapsed) < 1.0


# --------------------------------------------------------------------------- images, summary, detection


def label_image(array: np.ndarray, spacing=(0.8, 0.8, 2.5), origin=(-100.0, -100.0, 0.0)) -> Image:
    return Image(array.astype(np.uint8), spacing=spacing, origin=origin)


def test_evaluate_case_uses_the_image_spacing_in_i_j_k_order():
    ref = box((10, 20, 30), (3, 5, 5), (4, 6, 8))
    img = label_image(ref, spacing=(0.5, 1.0, 3.0))
    m = evaluate_case(img.with_array(np.roll(ref, 1, axis=0).astype(np.uint8)), img)
    assert m.hd95_mm == pytest.approx(3.0)  # k spacing
    m = evaluate_case(img.with_array(np.roll(ref, 1, axis=2).astype(np.uint8)), img)
    assert m.hd95_mm == pytest.approx(0.5)  # i spacing


def test_evaluate_case_rejects_other_grids():
    img = label_image(box((10, 10, 10), (2, 2, 2), (3, 3, 3)))
    moved = Image(img.array, img.spacing, (0.0, 0.0, 5.0))
    with pytest.raises(GeometryError, match="not on the reference grid"):
        evaluate_case(moved, img)
    sheared = Image(img.array, img.spacing, img.origin, np.array([[1, 0.3, 0], [0, 1, 0], [0, 0, 1.0]]))
    with pytest.raises(GeometryError, match="orthogonal"):
        evaluate_case(sheared, sheared)


def test_quantile_and_summary_keep_failures():
    assert quantile(np.array([1.0, 2.0, 3.0, 4.0]), 0.25) == pytest.approx(np.quantile([1, 2, 3, 4], 0.25))
    assert quantile(np.array([1.0, math.inf, math.inf]), 0.75) == math.inf  # numpy gives NaN here
    assert quantile(np.array([1.0, 2.0, math.inf]), 0.5) == 2.0
    spacing = (1.0, 1.0, 1.0)
    ref = box((10, 10, 10), (2, 2, 2), (4, 4, 4))
    cases = [
        evaluate_masks(ref, ref, spacing, case="perfect"),
        evaluate_masks(ref, np.roll(ref, 1, axis=0), spacing, case="shifted"),
        evaluate_masks(ref, np.zeros_like(ref), spacing, case="missed"),
        evaluate_masks(np.zeros_like(ref), np.zeros_like(ref), spacing, case="nothing"),
    ]
    s = summarise(cases)
    assert s["dice"].n == 3 and s["dice"].median == pytest.approx(0.75)  # 1, 0.75, 0; the empty pair is undefined
    assert s["hd95_mm"].median == 1.0 and s["hd95_mm"].q3 == math.inf and s["hd95_mm"].mean == math.inf


def test_roc_auc_equals_the_mann_whitney_statistic():
    rng = np.random.default_rng(4)
    positive = rng.random(60) < 0.4
    score = np.round(rng.random(60) + 0.4 * positive, 1)  # rounded: many ties
    u = stats.mannwhitneyu(score[positive], score[~positive]).statistic
    assert roc_auc(positive, score) == pytest.approx(u / (positive.sum() * (~positive).sum()))
    fpr, tpr, thresholds = roc_curve(positive, score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1) and thresholds[0] == math.inf
    assert roc_auc([True, True, False, False], [0.9, 0.8, 0.3, 0.1]) == 1.0
    assert roc_auc([True, False], [0.5, 0.5]) == 0.5
    assert math.isnan(roc_auc([True, True], [0.1, 0.2]))


def test_detection_summary_counts_lungs():
    findings = [
        LungFinding("a", "right", True, True, 30.0),
        LungFinding("a", "left", False, False, 0.0),
        LungFinding("b", "right", True, False, 0.0),
        LungFinding("b", "left", False, True, 2.0),
        LungFinding("c", "right", False, False, 0.0),
        LungFinding("c", "left", False, False, 0.0),
    ]
    d = detection_summary(findings)
    assert (d.lungs, d.positives, d.negatives) == (6, 2, 4)
    assert (d.true_positives, d.false_negatives, d.false_positives, d.true_negatives) == (1, 1, 1, 3)
    assert d.sensitivity == 0.5 and d.specificity == 0.75 and d.score == "predicted_volume_ml"
    # volumes: positives 30 and 0; negatives 0, 2, 0, 0 -> P(pos > neg) + ties/2 = (4 + 0 + 0.5 * 3 + 0) / 8
    assert d.auc == pytest.approx((4 + 1.5) / 8)


def two_lesion_case() -> tuple[Image, Image]:
    """A 64x64x8 grid centred on x = 0: reference lesions in the right (-x) and left (+x) half."""
    shape = (8, 64, 64)
    ref = np.zeros(shape, np.uint8)
    ref[2:5, 20:28, 8:16] = 1  # i 8..15 -> x < 0: right lung
    ref[2:5, 20:28, 44:52] = 1  # x > 0: left lung
    pred = np.zeros(shape, np.uint8)
    pred[2:5, 21:28, 8:15] = 1  # finds the right one only
    img = Image(ref, spacing=(1.0, 1.0, 2.0), origin=(-31.5, -31.5, 0.0))
    return img, img.with_array(pred)


def test_lung_findings_by_midline_and_by_lung_masks():
    ref, pred = two_lesion_case()
    right, left = lung_findings("x", pred, ref)
    assert (right.side, right.positive, right.predicted) == ("right", True, True)
    assert (left.side, left.positive, left.predicted, left.predicted_ml) == ("left", True, False, 0.0)
    assert right.predicted_ml == pytest.approx(3 * 7 * 7 * 2.0 / 1000)
    # Lung masks override the midline: call the whole grid the right lung.
    lungs = ref.with_array(np.ones(ref.array.shape, np.uint8))
    right, left = lung_findings("x", pred, ref, lungs=lungs)
    assert right.positive and not left.positive


def test_lung_findings_score_is_the_max_probability_per_side():
    ref, pred = two_lesion_case()
    prob = np.zeros(ref.array.shape, np.float32)
    prob[3, 10, 5] = 0.7  # x < 0
    prob[3, 10, 60] = 0.4  # x > 0
    right, left = lung_findings("x", pred, ref, probability=ref.with_array(prob))
    assert right.max_probability == pytest.approx(0.7) and left.max_probability == pytest.approx(0.4)
    assert detection_summary([right, left]).score == "max_probability"


def test_evaluate_set_reports_cases_summary_and_detection():
    ref, pred = two_lesion_case()
    report = evaluate_set([EvaluationCase("one", pred, ref), EvaluationCase("two", ref, ref)])
    assert [c.case for c in report.cases] == ["one", "two"]
    assert report.cases[1].dice == 1.0 and report.summary["dice"].n == 2
    assert report.detection.positives == 4 and report.detection.sensitivity == 0.75


# --------------------------------------------------------------------------- CLI


def run_evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="oncoqi lung")
    add_evaluate_parser(parser.add_subparsers(dest="lung_command"))
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


def write(image: Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image.to_sitk(), str(path))
    return path


def test_cli_evaluates_folders_as_table_and_json(tmp_path, capsys):
    ref, pred = two_lesion_case()
    write(ref, tmp_path / "gt" / "case1.nrrd")
    write(pred, tmp_path / "pred" / "case1.nii.gz")
    write(ref, tmp_path / "gt" / "case2.nrrd")
    write(ref.with_array(np.zeros(ref.array.shape, np.uint8)), tmp_path / "pred" / "case2.nrrd")
    assert run_evaluate([str(tmp_path / "pred"), str(tmp_path / "gt"), "--json", "--tolerance-mm", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tolerance_mm"] == 2.0 and [c["case"] for c in doc["cases"]] == ["case1", "case2"]
    failed = doc["cases"][1]
    assert failed["dice"] == 0.0 and failed["hd95_mm"] is None and failed["empty_prediction"] is True
    assert doc["summary"]["dice"]["n"] == 2 and doc["detection"]["lungs"] == 4
    assert doc["detection"]["sensitivity"] == 0.25 and len(doc["lungs"]) == 4
    assert run_evaluate([str(tmp_path / "pred"), str(tmp_path / "gt")]) == 0
    text = capsys.readouterr().out
    assert "case2" in text and "(empty prediction)" in text and "sensitivity 0.250" in text


def test_cli_single_files_with_probabilities_and_lungs(tmp_path, capsys):
    ref, pred = two_lesion_case()
    files = [str(write(pred, tmp_path / "p.nrrd")), str(write(ref, tmp_path / "g.nrrd"))]
    assert run_evaluate([*files, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cases"][0]["case"] == "g" and 0 < doc["cases"][0]["dice"] < 1
    assert doc["detection"]["score"] == "predicted_volume_ml" and doc["detection"]["positives"] == 2
    prob = np.zeros(ref.array.shape, np.float32)
    prob[3, 10, 5], prob[3, 10, 60] = 0.7, 0.4
    lungs = np.full(ref.array.shape, 2, np.uint8)  # everything "left lung"
    extra = [
        "--probabilities",
        str(write(ref.with_array(prob), tmp_path / "prob.nrrd")),
        "--lungs",
        str(write(ref.with_array(lungs), tmp_path / "lungs.nrrd")),
    ]
    assert run_evaluate([*files, *extra, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    right, left = doc["lungs"]
    assert doc["detection"]["score"] == "max_probability" and doc["detection"]["positives"] == 1
    assert (right["positive"], right["max_probability"]) == (False, 0.0)
    assert (left["positive"], left["max_probability"]) == (True, pytest.approx(0.7))


def test_cli_inputs_must_match(tmp_path):
    ref, _ = two_lesion_case()
    write(ref, tmp_path / "gt" / "a.nrrd")
    write(ref, tmp_path / "gt" / "b.nrrd")
    write(ref, tmp_path / "pred" / "a.nrrd")
    with pytest.raises(InputError, match="no pred for case.*b"):
        match_cases(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(InputError, match="folder"):
        match_cases(tmp_path / "pred" / "a.nrrd", tmp_path / "gt")
    with pytest.raises(InputError, match="no such file"):
        match_cases(tmp_path / "nothing", tmp_path / "gt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no label file"):
        match_cases(tmp_path / "pred", tmp_path / "empty")
