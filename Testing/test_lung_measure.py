"""oncoqi.lung.postprocess (components -> ordered lesion labels) and oncoqi.lung.measure (RECIST etc.).

Shapes are digitised on anisotropic grids with known geometry: an ellipse's longest diameter is its
major axis and the perpendicular its minor axis (within one pixel diagonal, the digitisation
error); a rectangle's marching-squares outline has an exact diagonal; a sphere's voxel volume
approaches 4/3 pi r^3.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.lung.measure import (
    LesionMeasurement,
    longest_chord,
    longest_diameter,
    measure_lesions,
)
from oncoqi.lung.postprocess import MIN_COMPACTNESS, LesionRules, compactness, find_components, label_lesions
from oncoqi.metrics.lesions import LEFT_LUNG, RIGHT_LUNG, lesion_side

SPACING = (0.7, 0.9, 2.0)  # i, j, k
PIXEL_DIAGONAL = math.hypot(SPACING[0], SPACING[1])
IDENTITY = np.eye(3)
FLIPPED = np.diag([-1.0, -1.0, 1.0])  # i towards patient right, j towards anterior


def in_plane_mm(shape: tuple[int, int, int], centre_ij: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """x (along i) and y (along j) in mm from a centre, broadcastable over ``shape``."""
    _, rows, cols = shape
    x = (np.arange(cols)[None, None, :] - centre_ij[0]) * SPACING[0]
    y = (np.arange(rows)[None, :, None] - centre_ij[1]) * SPACING[1]
    return x, y


def ellipse_image(a_mm: float, b_mm: float, angle_deg: float, direction: np.ndarray = IDENTITY) -> Image:
    shape = (8, 160, 190)
    x, y = in_plane_mm(shape, (95.3, 80.6))
    t = math.radians(angle_deg)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    k = np.arange(shape[0])[:, None, None]
    mask = ((u / a_mm) ** 2 + (v / b_mm) ** 2 <= 1.0) & (k >= 2) & (k <= 5)
    return Image(mask.astype(np.uint8), spacing=SPACING, origin=(-60.0, 30.0, -100.0), direction=direction)


def distance(p, q) -> float:
    return float(np.linalg.norm(np.subtract(p, q)))


# --------------------------------------------------------------------------- RECIST


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 137.0])
@pytest.mark.parametrize("direction", [IDENTITY, FLIPPED], ids=["identity", "flipped"])
def test_ellipse_recist_is_the_major_axis_and_perpendicular_the_minor_axis(angle, direction):
    image = ellipse_image(40.0, 15.0, angle, direction)
    (m,) = measure_lesions(image)
    assert m.recist_mm == pytest.approx(80.0, abs=PIXEL_DIAGONAL)
    assert m.perpendicular_mm == pytest.approx(30.0, abs=PIXEL_DIAGONAL)
    # The end points are in LPS on the reported slice and as far apart as reported.
    assert distance(*m.recist_endpoints_lps_mm) == pytest.approx(m.recist_mm)
    assert distance(*m.perpendicular_endpoints_lps_mm) == pytest.approx(m.perpendicular_mm)
    z = -100.0 + 2.0 * m.recist_slice
    assert all(p[2] == pytest.approx(z) for p in (*m.recist_endpoints_lps_mm, *m.perpendicular_endpoints_lps_mm))
    major = np.subtract(*m.recist_endpoints_lps_mm)
    minor = np.subtract(*m.perpendicular_endpoints_lps_mm)
    cosine = abs(major @ minor) / (np.linalg.norm(major) * np.linalg.norm(minor))
    assert cosine <= math.sin(math.radians(5.0)) + 1e-9  # within the 5 degree RECIST tolerance
    assert m.n_slices == 4
    assert m.volume_ml == pytest.approx(np.count_nonzero(image.array) * 0.7 * 0.9 * 2.0 / 1000)


def test_rectangle_diameter_is_its_outline_diagonal():
    w, h = 20, 12  # pixels along i (0.7 mm) and j (0.9 mm)
    array = np.zeros((3, 30, 40), np.uint8)
    array[1, 5 : 5 + h, 7 : 7 + w] = 1
    (m,) = measure_lesions(Image(array, spacing=SPACING))
    # The marching-squares outline cuts each corner pixel through its two half-edges.
    sx, sy = SPACING[0], SPACING[1]
    outline = max(math.hypot(w * sx, (h - 1) * sy), math.hypot((w - 1) * sx, h * sy))
    assert m.recist_mm == pytest.approx(outline, abs=1e-9)
    assert m.recist_mm == pytest.approx(math.hypot(w * sx, h * sy), abs=PIXEL_DIAGONAL)
    assert (m.recist_slice, m.n_slices) == (1, 1)


def test_diameter_is_the_feret_diameter_not_an_enclosing_circle():
    # Equilateral triangle of side 40 mm: Feret diameter 40 mm, smallest enclosing circle 46.2 mm.
    side = 40.0
    shape = (1, 120, 120)
    x, y = in_plane_mm(shape, (10.0, 10.0))
    height = side * math.sqrt(3) / 2
    inside = (y >= 0) & (y <= height) & (y <= math.sqrt(3) * x) & (y <= math.sqrt(3) * (side - x))
    (m,) = measure_lesions(Image(inside.astype(np.uint8), spacing=SPACING))
    assert m.recist_mm == pytest.approx(side, abs=PIXEL_DIAGONAL)
    assert m.recist_mm < 2 * side / math.sqrt(3) - 5


def test_recist_slice_is_the_slice_of_the_longest_diameter():
    array = np.zeros((6, 40, 40), np.uint8)
    array[1, 10:20, 10:20] = 1
    array[2, 5:35, 18:22] = 1  # long and thin: the longest diameter
    array[3, 10:20, 10:20] = 1
    (m,) = measure_lesions(Image(array, spacing=SPACING))
    assert (m.recist_slice, m.n_slices) == (2, 3)
    assert m.recist_mm == pytest.approx(math.hypot(29 * 0.9, 4 * 0.7), abs=PIXEL_DIAGONAL)
    assert m.perpendicular_mm == pytest.approx(4 * 0.7, abs=PIXEL_DIAGONAL)


def test_sphere_volume_and_diameters():
    spacing = (0.7, 0.7, 1.25)
    r = 15.0
    shape = (40, 60, 60)
    k, j, i = np.indices(shape, dtype=float)
    mask = ((i - 30.2) * 0.7) ** 2 + ((j - 29.6) * 0.7) ** 2 + ((k - 20) * 1.25) ** 2 <= r * r
    (m,) = measure_lesions(Image(mask.astype(np.uint8), spacing=spacing))
    assert m.volume_ml == pytest.approx(4 / 3 * math.pi * r**3 / 1000, rel=0.01)
    assert m.recist_mm == pytest.approx(2 * r, abs=math.hypot(0.7, 0.7))
    assert m.perpendicular_mm == pytest.approx(2 * r, abs=math.hypot(0.7, 0.7))
    assert m.centroid_lps_mm == pytest.approx((30.2 * 0.7, 29.6 * 0.7, 20 * 1.25), abs=0.05)


def test_longest_diameter_and_chord_by_hand():
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    length, p, q = longest_diameter(square)
    assert length == pytest.approx(math.hypot(10, 10))
    assert {tuple(p), tuple(q)} in ({(0.0, 0.0), (10.0, 10.0)}, {(10.0, 0.0), (0.0, 10.0)})
    closed = [np.vstack([square, square[:1]])]
    assert longest_chord(closed, np.array([0.0, 1.0]))[0] == pytest.approx(10.0)
    assert longest_chord(closed, np.array([1.0, 1.0]))[0] == pytest.approx(math.hypot(10, 10), rel=1e-5)
    # Two separate bars: a horizontal line crosses both, but the longest chord inside is one bar's width.
    bars = [
        np.array([[0, 0], [3, 0], [3, 10], [0, 10], [0, 0]], float),
        np.array([[7, 0], [10, 0], [10, 10], [7, 10], [7, 0]], float),
    ]
    length, p, q = longest_chord(bars, np.array([1.0, 0.0]))
    assert length == pytest.approx(3.0)
    assert abs(p[0] - q[0]) == pytest.approx(3.0)
    # A square ring: vertical chords through the hole are cut; the longest run the full side.
    ring = [closed[0], np.array([[3, 3], [7, 3], [7, 7], [3, 7], [3, 3]], float)]
    length, p, q = longest_chord(ring, np.array([0.0, 1.0]))
    assert length == pytest.approx(10.0) and not 3 < p[0] < 7


# --------------------------------------------------------------------------- side, confidence, HU


def two_lesions(direction: np.ndarray = IDENTITY) -> Image:
    """Lesion 1 at negative i, lesion 2 at positive i, on a grid whose centre column is x = 0."""
    array = np.zeros((4, 30, 41), np.uint8)
    array[1:3, 10:16, 4:10] = 1
    array[1:3, 10:16, 30:36] = 2
    origin = (-20.0, -15.0, 0.0) if direction[0, 0] > 0 else (20.0, 15.0, 0.0)
    return Image(array, spacing=(1.0, 1.0, 2.0), origin=origin, direction=direction)


def test_side_from_the_centroid_and_the_midline():
    first, second = measure_lesions(two_lesions())
    assert (first.side, second.side) == ("right", "left")  # LPS: patient left is +x
    assert first.centroid_lps_mm[0] < 0 < second.centroid_lps_mm[0]
    # The same voxels with the i axis pointing to patient right: sides follow LPS x, not the index.
    first, second = measure_lesions(two_lesions(FLIPPED))
    assert (first.side, second.side) == ("left", "right")
    assert [m.side for m in measure_lesions(two_lesions(), midline_x_mm=-30.0)] == ["left", "left"]


def test_side_from_lung_masks():
    labels = two_lesions()
    lungs = np.zeros(labels.array.shape, np.uint8)
    lungs[:, :, :7] = RIGHT_LUNG  # lesion 1 spans i 4..9: half in the right lung, half in the left
    lungs[:, :, 7:] = LEFT_LUNG
    first, second = measure_lesions(labels, lungs=labels.with_array(lungs))
    assert (first.side, second.side) == ("both", "left")
    values = np.array([RIGHT_LUNG] * 5 + [LEFT_LUNG] * 95)
    assert lesion_side(values, centroid_x_mm=-50.0) == "left"  # 5 % in the right lung is not "both"
    assert lesion_side(np.zeros(10), centroid_x_mm=-50.0) == "right"  # outside both lungs: the midline decides
    assert lesion_side(None, centroid_x_mm=3.0, midline_x_mm=5.0) == "right"


def test_confidence_is_the_mean_probability_and_mean_hu_the_mean_ct():
    labels = two_lesions()
    rng = np.random.default_rng(2)
    prob = rng.random(labels.array.shape).astype(np.float32)
    ct = rng.integers(-1000, 200, labels.array.shape).astype(np.int16)
    first, second = measure_lesions(labels, ct=labels.with_array(ct), probability=labels.with_array(prob))
    for m in (first, second):
        mask = labels.array == m.label
        assert m.confidence == pytest.approx(float(prob[mask].mean()))
        assert m.mean_hu == pytest.approx(float(ct[mask].mean()))
    bare = measure_lesions(labels)[0]
    assert bare.confidence is None and bare.mean_hu is None


def test_measurement_serialises_to_the_lesions_json_keys():
    (m, _) = measure_lesions(two_lesions())
    d = json.loads(json.dumps(m.to_dict()))
    required = {
        "label",
        "volume_ml",
        "recist_mm",
        "perpendicular_mm",
        "centroid_lps_mm",
        "side",
        "confidence",
        "doubtful",
        "doubts",
        "source",
    }
    extras = {"n_slices", "mean_hu", "recist_slice", "recist_endpoints_lps_mm", "perpendicular_endpoints_lps_mm"}
    assert set(d) == required | extras
    assert d["label"] == 1 and d["volume_ml"] == pytest.approx(2 * 6 * 6 * 2 / 1000) and len(d["centroid_lps_mm"]) == 3
    assert isinstance(m, LesionMeasurement) and len(d["recist_endpoints_lps_mm"]) == 2
    # and back, as a rerun reads lesions.json (doubts included)
    doubted = replace(m, doubts=("low confidence (0.55)",), source="point")
    assert LesionMeasurement.from_dict(json.loads(json.dumps(doubted.to_dict()))) == doubted


def test_images_on_another_grid_are_rejected():
    labels = two_lesions()
    other = Image(np.zeros((4, 30, 41), np.float32), spacing=(1.0, 1.0, 3.0))
    with pytest.raises(GeometryError, match="probability map"):
        measure_lesions(labels, probability=other)


# --------------------------------------------------------------------------- post-processing


def probability_with_blobs() -> Image:
    """Three tumour blobs (1000, 300 and 48 voxels) in noise below 0.5, on 1x1x2 mm voxels."""
    rng = np.random.default_rng(0)
    prob = rng.random((20, 40, 40)).astype(np.float32) * 0.45
    prob[12:14, 5:9, 5:11] = 0.8  # 48 voxels, met first in [k, j, i] order only after the others
    prob[2:12, 20:30, 20:30] = 0.95  # 1000
    prob[3:6, 2:12, 25:35] = 0.7  # 300
    return Image(prob, spacing=(1.0, 1.0, 2.0))


def test_components_are_labelled_by_decreasing_volume():
    labels = label_lesions(probability_with_blobs())
    assert labels.metadata["lesions"] == 3 and labels.same_grid(probability_with_blobs())
    counts = [int(np.count_nonzero(labels.array == n)) for n in (1, 2, 3)]
    assert counts == [1000, 300, 48]
    assert labels.array[5, 25, 25] == 1 and labels.array[4, 5, 30] == 2 and labels.array[12, 6, 6] == 3
    volumes = [m.volume_ml for m in measure_lesions(labels)]
    assert volumes == sorted(volumes, reverse=True) == pytest.approx([2.0, 0.6, 0.096])


def test_component_filters_and_search_mask():
    prob = probability_with_blobs()
    assert label_lesions(prob, rules=LesionRules(min_volume_ml=0.1)).metadata["lesions"] == 2  # drops the 0.096 ml blob
    assert label_lesions(prob, threshold=0.9).metadata["lesions"] == 1
    single = prob.array.copy()
    single[17, 35, 35] = 0.99  # a one-voxel, one-slice detection
    assert label_lesions(prob.with_array(single)).metadata["lesions"] == 4
    assert label_lesions(prob.with_array(single), rules=LesionRules(min_slices=2)).metadata["lesions"] == 3
    search = np.ones(prob.array.shape, np.uint8)
    search[:, :15, :] = 0  # excludes the 300 and 48 voxel blobs
    only = label_lesions(prob, search_mask=prob.with_array(search))
    assert only.metadata["lesions"] == 1 and np.count_nonzero(only.array) == 1000
    with pytest.raises(GeometryError):
        label_lesions(prob, search_mask=Image(search, spacing=(1.0, 1.0, 3.0)))
    with pytest.raises(InputError):
        label_lesions(prob, rules=LesionRules(min_slices=0))


def test_compactness_of_a_ball_a_cube_and_a_sheet():
    z, y, x = np.mgrid[-20:21, -20:21, -20:21]
    # anisotropic voxels: measured in mm, so a ball of 2 mm slices is still a ball
    assert compactness(x**2 + y**2 + (2 * z) ** 2 <= 15**2, (1.0, 1.0, 2.0)) == pytest.approx(1.29, abs=0.05)
    assert compactness((abs(x) <= 10) & (abs(y) <= 10) & (abs(z) <= 10), (1.0, 1.0, 1.0)) == pytest.approx(
        1.05, abs=0.03
    )
    plate = (abs(x) <= 20) & (abs(y) <= 20) & (abs(z) <= 1)
    assert compactness(plate, (1.0, 1.0, 1.0)) == pytest.approx(4.0 / 41.0, abs=0.02)
    assert compactness(np.array([[[True, True]]]), (1.0, 1.0, 1.0)) == 1.0


def test_thin_sheets_are_dropped_as_not_compact():
    prob = np.zeros((12, 60, 60), np.float32)
    prob[2:10, 5:15, 5:15] = 0.9  # a 10 x 10 x 16 mm block: a nodule
    prob[2:10, 40:42, 5:55] = 0.9  # a band 2 mm thick, 50 mm long, along a "pleura"
    image = Image(prob, spacing=(1.0, 1.0, 2.0))
    found = find_components(image)
    assert found.compactness[0] > 0.6 and found.compactness[1] < 0.1
    assert (
        label_lesions(image, rules=LesionRules(min_compactness=MIN_COMPACTNESS)).metadata["lesions"] == 1
    )  # drops the band
    assert label_lesions(image).metadata["lesions"] == 2  # off by default
    with pytest.raises(InputError):
        label_lesions(image, rules=LesionRules(min_compactness=1.0))


def test_corner_touching_voxels_form_one_lesion_and_nothing_gives_an_empty_map():
    prob = np.zeros((5, 5, 5), np.float32)
    prob[1, 1, 1] = prob[2, 2, 2] = 1.0  # touch at a corner only: 26-connected
    labels = label_lesions(Image(prob))
    assert labels.metadata["lesions"] == 1 and labels.array.max() == 1
    empty = label_lesions(Image(np.zeros((5, 5, 5), np.float32)))
    assert empty.metadata["lesions"] == 0 and not empty.array.any()
    assert measure_lesions(empty) == []


def test_phantom_tumours_are_measured_as_the_truth_says():
    from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct

    tumours = (TumourSpec(volume_ml=5, location="parenchyma"), TumourSpec(volume_ml=30, shape="lobulated"))
    study = make_ct(PhantomOptions(seed=3, size=128, slices=60, tumours=tumours))
    probability = study.tumour_label.with_array((study.tumour_label.array > 0) * np.float32(0.9))
    labels = label_lesions(probability)
    measured = measure_lesions(labels, ct=study.ct, probability=probability, lungs=study.lung_mask)
    truth = sorted(study.truth["tumours"], key=lambda t: -t["volume_ml"])  # label 1 is the largest
    assert len(measured) == len(truth) == 2
    for m, t in zip(measured, truth):
        assert m.volume_ml == pytest.approx(t["volume_ml"], rel=1e-6)
        assert m.centroid_lps_mm == pytest.approx(t["centroid_lps_mm"], abs=0.01)
        assert m.side == t["side"] and m.confidence == pytest.approx(0.9)
        assert -200 < m.mean_hu < 200  # soft tissue, not lung
        assert m.recist_mm <= 2 * t["max_radius_mm"] + math.hypot(*study.ct.spacing[:2])
