"""oncoqi.pet PET-IndiC indices, the exact SUVpeak kernel, label reading and ``oncoqi pet indices``.

Expected values are worked out by hand from the definitions in :mod:`oncoqi.pet.indices`, from
closed-form sphere geometry, or taken from the QIICR PET-IndiC self-test on QIN-HEADNECK-01-0139
(``../shared/data/README.md`` and the PET-IndiC test: threshold [30, 89.85] gives mean 57.1303,
volume 51.6897 ml, TLG 2953.05, 2216 voxels; SAM 2275.96, Q1 distribution 29.3321 %, peak 84.8634).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from helpers.datasets import dataset
from helpers.pet import bw_factor, load_qin, run_cli, write_pet_series
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet import PEAK_RADIUS_MM, PETIndices, apply_suv, compute_indices, compute_suv_factors, read_segments
from oncoqi.pet.indices import intensity_bins, pet_indic_quartiles, sam_ball, upper_adjacent_value
from oncoqi.pet.peak import disc_rectangle_area, sphere_box_volume, sphere_kernel, suv_peak

SPHERE_ML = 4.0 / 3.0 * math.pi * PEAK_RADIUS_MM**3 / 1000.0

# --------------------------------------------------------------------------- hand-computed indices


@pytest.fixture
def cube_case() -> tuple[Image, Image]:
    """Values 1..27 in a 3x3x3 block inside a 9x9x9 image of background 2, spacing 2x3x4 mm."""
    suv = np.full((9, 9, 9), 2.0)
    block = np.arange(1, 28, dtype=float).reshape(3, 3, 3)
    suv[3:6, 3:6, 3:6] = block
    labels = np.zeros((9, 9, 9), np.uint8)
    labels[3:6, 3:6, 3:6] = 5
    img = Image(suv, spacing=(2.0, 3.0, 4.0), metadata={"units": "{SUVbw}g/ml"})
    return img, img.with_array(labels)


def test_every_index_of_a_3x3x3_segment(cube_case):
    suv, labels = cube_case
    r = compute_indices(suv, labels, 5)
    v = 2 * 3 * 4 / 1000.0  # ml
    assert r.label == 5 and r.voxel_count == 27 and r.units == "{SUVbw}g/ml"
    assert r.suv_mean == pytest.approx(14.0)
    assert r.suv_std == pytest.approx(math.sqrt((27**2 - 1) / 12.0))  # population SD of 1..27
    assert (r.suv_min, r.suv_max) == (1.0, 27.0)
    assert r.rms == pytest.approx(math.sqrt(sum(k * k for k in range(1, 28)) / 27.0))
    assert r.mtv_ml == pytest.approx(27 * v)
    # N = 27 is not a multiple of 4: q1 = s_(7), q3 = s_(21) (1-based); median s_(14)
    assert (r.q1, r.median, r.q3) == (7.0, 14.0, 21.0)
    assert r.upper_adjacent == 27.0  # every value is below 21 + 1.5 * 14
    assert r.tlg == pytest.approx(378 * v)
    # bins of [1, 27], width 6.5: [1, 7.5], (7.5, 14], (14, 20.5], (20.5, 27]
    assert [r.glycolysis_q1, r.glycolysis_q2, r.glycolysis_q3, r.glycolysis_q4] == pytest.approx(
        [28 * v, 77 * v, 105 * v, 168 * v]
    )
    assert [r.distribution_q1, r.distribution_q2, r.distribution_q3, r.distribution_q4] == pytest.approx(
        [700 / 27, 700 / 27, 600 / 27, 700 / 27]
    )
    # the 2-voxel shell is all background 2
    assert r.sam_background == pytest.approx(2.0)
    assert r.sam == pytest.approx((14.0 - 2.0) * 27 * v)
    assert r.warnings == ()
    d = r.to_dict()
    assert list(d) == PETIndices.keys()
    json.dumps(d)


def test_sam_shell_is_itk_ball_of_radius_two():
    ball = sam_ball()
    assert ball.shape == (5, 5, 5)
    offsets = np.argwhere(ball) - 2
    norms = (offsets**2).sum(axis=1)
    assert norms.max() == 6  # (2, 1, 1) is in, (2, 2, 0) is not
    assert ball.sum() == 1 + 6 + 12 + 8 + 6 + 24 + 24  # shells |d|^2 = 0, 1, 2, 3, 4, 5, 6


def test_sam_background_is_the_mean_of_the_shell_only():
    suv = np.zeros((11, 11, 11))
    labels = np.zeros_like(suv, dtype=np.uint8)
    labels[5, 5, 5] = 1
    suv[5, 5, 5] = 10.0
    shell = sam_ball() & ~np.pad(np.ones((1, 1, 1), bool), 2)
    suv[3:8, 3:8, 3:8][shell] = np.arange(1, shell.sum() + 1)
    r = compute_indices(Image(suv), Image(labels), 1)
    assert r.sam_background == pytest.approx(np.arange(1, shell.sum() + 1).mean())


def test_quartiles_follow_pet_indic_when_n_is_a_multiple_of_four():
    s = np.arange(1.0, 9.0)  # N = 8
    assert pet_indic_quartiles(s) == (2.5, 4.5, 6.5)
    assert pet_indic_quartiles(np.arange(1.0, 6.0)) == (2.0, 3.0, 4.0)  # N = 5: s[1], s[2], s[3]


def test_upper_adjacent_value_excludes_outliers():
    s = np.array([1, 2, 3, 4, 5, 6, 7, 100.0])
    q1, _, q3 = pet_indic_quartiles(s)
    assert upper_adjacent_value(s, q1, q3) == 7.0  # limit 6.5 + 1.5 * 4 = 12.5
    flat = np.array([3.0, 3.0, 3.0, 3.0, 9.0])
    assert upper_adjacent_value(flat, 3.0, 3.0) == 9.0  # IQR 0: the maximum


def test_intensity_bins_keep_the_maximum_despite_rounding():
    # 0.2 + 4 * ((0.9 - 0.2) * 0.25) < 0.9 in floating point: PET-IndiC's last bin would miss 0.9
    assert 0.2 + 4 * ((0.9 - 0.2) * 0.25) < 0.9
    values = np.array([0.2, 0.5, 0.9])
    bins = intensity_bins(values, 0.2, 0.9)
    assert [np.flatnonzero(b).tolist() for b in bins] == [[0], [1], [], [2]]


def test_constant_segment_is_all_in_the_first_bin():
    suv = Image(np.full((5, 5, 5), 4.0))
    labels = suv.with_array(np.ones((5, 5, 5), np.uint8))
    r = compute_indices(suv, labels, 1)
    assert r.distribution_q1 == 100.0 and r.glycolysis_q1 == pytest.approx(r.tlg)
    assert r.sam is None and any("shell is empty" in w for w in r.warnings)


def test_empty_label_and_grid_mismatch_are_refused(cube_case):
    suv, labels = cube_case
    with pytest.raises(InputError, match="label 3 is empty"):
        compute_indices(suv, labels, 3)
    shifted = Image(labels.array, labels.spacing, (1.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match="not on the SUV grid"):
        compute_indices(suv, shifted, 5)


# --------------------------------------------------------------------------- exact sphere kernel


def test_sphere_box_volume_against_closed_forms():
    r = PEAK_RADIUS_MM
    sphere = 4.0 / 3.0 * math.pi * r**3
    assert sphere == pytest.approx(1000.0, rel=1e-12)
    assert sphere_box_volume((-9, -9, -9), (9, 9, 9), r) == pytest.approx(sphere, rel=1e-10)
    assert sphere_box_volume((0, 0, 0), (9, 9, 9), r) == pytest.approx(sphere / 8, rel=1e-10)
    assert sphere_box_volume((-9, 0, -9), (9, 9, 9), r) == pytest.approx(sphere / 2, rel=1e-10)
    for a in (0.5, 2.0, 5.9):  # spherical cap of height h = r - a, cut along each axis
        h = r - a
        cap = math.pi * h * h * (3 * r - h) / 3
        for axis in range(3):
            lo = [-9.0, -9.0, -9.0]
            lo[axis] = a
            assert sphere_box_volume(tuple(lo), (9, 9, 9), r) == pytest.approx(cap, rel=1e-10)
    assert sphere_box_volume((6.3, -1, -1), (9, 1, 1), r) == 0.0
    # disc segment: radius 2, y <= -1 -> r^2 acos(d/r) - d sqrt(r^2 - d^2)
    assert disc_rectangle_area(-5, -1, -5, 5, 2.0) == pytest.approx(4 * math.acos(0.5) - math.sqrt(3), rel=1e-12)


@pytest.mark.parametrize(
    "spacing", [(3.3940266832237, 3.3940266832237, 2.02490234375), (1.0, 1.0, 1.0), (4.0, 2.5, 3.27)]
)
def test_kernel_weights_are_exact_voxel_fractions(spacing):
    w = sphere_kernel(spacing)
    assert w.sum() * np.prod(spacing) == pytest.approx(1000.0, rel=1e-9)  # the whole 1 ml sphere
    assert w.max() <= 1.0 and w.min() >= 0.0
    np.testing.assert_allclose(w, w[::-1, ::-1, ::-1])  # symmetric about the centre
    # agrees with a 20x20x20 supersampling of every voxel to its sampling error
    half = np.array(w.shape) // 2
    g = (np.arange(20) + 0.5) / 20 - 0.5
    est = np.empty_like(w)
    for k, j, i in np.ndindex(w.shape):
        x = ((i - half[2]) + g) * spacing[0]
        y = ((j - half[1]) + g) * spacing[1]
        z = ((k - half[0]) + g) * spacing[2]
        X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
        est[k, j, i] = np.mean(X**2 + Y**2 + Z**2 <= PEAK_RADIUS_MM**2)
    assert np.abs(est - w).max() < 0.012


# --------------------------------------------------------------------------- SUVpeak


def test_suv_peak_of_a_uniform_image_is_the_uniform_value():
    suv = Image(np.full((12, 13, 14), 3.7), spacing=(2.0, 2.5, 3.0))
    labels = suv.with_array(np.ones(suv.array.shape, np.uint8))
    r = compute_indices(suv, labels, 1)
    assert r.suv_peak == pytest.approx(3.7, rel=1e-12)


def test_suv_peak_of_a_linear_ramp_is_its_value_at_the_outermost_admissible_centre():
    # the sphere mean of a linear function is its value at the centre; centres need the whole
    # sphere inside the image, i.e. i <= n_i - 1 - ceil(r / s_i - 0.5)
    spacing = (2.0, 2.5, 3.0)
    k, j, i = np.meshgrid(np.arange(10), np.arange(11), np.arange(12), indexing="ij")
    suv = Image(1.0 + 0.1 * i * spacing[0], spacing=spacing)
    labels = suv.with_array(np.ones(suv.array.shape, np.uint8))
    r = compute_indices(suv, labels, 1)
    i_max = 12 - 1 - math.ceil(PEAK_RADIUS_MM / spacing[0] - 0.5)
    assert r.suv_peak == pytest.approx(1.0 + 0.1 * i_max * spacing[0], rel=1e-12)
    assert r.suv_peak_lps_mm[0] == pytest.approx(i_max * spacing[0])


def test_suv_peak_finds_a_hot_sphere_in_patient_coordinates():
    spacing = (2.0, 2.5, 3.0)
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # i along +y, j along -x
    origin = (10.0, -20.0, 30.0)
    centre = (7, 8, 6)  # (i, j, k)
    k, j, i = np.meshgrid(np.arange(14), np.arange(16), np.arange(17), indexing="ij")
    d2 = ((i - centre[0]) * spacing[0]) ** 2 + ((j - centre[1]) * spacing[1]) ** 2 + ((k - centre[2]) * spacing[2]) ** 2
    arr = 1.0 + 9.0 * np.exp(-d2 / (2 * 5.0**2))
    suv = Image(arr, spacing, origin, rot)
    labels = suv.with_array((d2 <= 12.0**2).astype(np.uint8))
    r = compute_indices(suv, labels, 1)
    expected_lps = np.array(origin) + rot @ (np.array(centre) * np.array(spacing))
    np.testing.assert_allclose(r.suv_peak_lps_mm, expected_lps, atol=1e-9)
    assert 1.0 < r.suv_peak < r.suv_max == 10.0
    # the peak is the kernel-weighted mean around the centre voxel
    w = sphere_kernel(spacing)
    h = np.array(w.shape) // 2
    around = arr[tuple(slice(c - n, c + n + 1) for c, n in zip(centre[::-1], h))]
    assert r.suv_peak == pytest.approx(float((w * around).sum() / w.sum()), rel=1e-12)


def test_suv_peak_needs_the_sphere_inside_the_image():
    suv = Image(np.ones((9, 9, 9)), spacing=(2.0, 2.0, 2.0))
    mask = np.zeros((9, 9, 9), np.uint8)
    mask[0, 4, 4] = 1  # on the first slice: the sphere would leave the image
    r = compute_indices(suv, suv.with_array(mask), 1)
    assert r.suv_peak is None and r.suv_peak_lps_mm is None
    assert any("SUVpeak not computed" in w for w in r.warnings)


def test_suv_peak_within_segment_mode_needs_room_for_the_whole_sphere(cube_case):
    suv, labels = cube_case  # a 6 x 9 x 12 mm block cannot hold a 12.4 mm sphere
    assert compute_indices(suv, labels, 5).suv_peak is not None
    assert suv_peak(suv.array, labels.array == 5, suv.spacing, kernel_within_segment=True) is None


# --------------------------------------------------------------------------- real data


def test_qin_threshold_reference_values():
    series = load_qin()
    suv = apply_suv(series.image, compute_suv_factors(series.datasets))
    # the reference ran on Slicer 4.10's grid, whose slice spacing was stored as 2.02490234375 mm
    ref_grid = Image(
        suv.array, (3.3940266832237, 3.3940266832237, 2.02490234375), suv.origin, suv.direction, suv.metadata
    )
    labels = ref_grid.with_array(((suv.array >= 30) & (suv.array <= 89.85)).astype(np.uint8))
    r = compute_indices(ref_grid, labels, 1)
    assert r.voxel_count == 2216
    assert r.suv_mean == pytest.approx(57.1303, abs=5e-5)
    assert r.mtv_ml == pytest.approx(51.6897, abs=5e-5)
    assert r.tlg == pytest.approx(2953.05, abs=5e-3)
    assert r.sam == pytest.approx(2275.96, abs=5e-3)
    assert r.distribution_q1 == pytest.approx(29.3321, abs=5e-5)
    # PET-IndiC's SUVpeak requires the whole sphere inside the segment
    pet_indic = compute_indices(ref_grid, labels, 1, kernel_within_segment=True)
    assert pet_indic.suv_peak == pytest.approx(84.8634, abs=5e-5)
    assert r.suv_peak >= pet_indic.suv_peak  # more admissible centres, never a lower maximum
    # on the true grid (2.025 mm slices) only the volume-based indices change
    true = compute_indices(suv, suv.with_array(labels.array), 1)
    assert true.voxel_count == 2216 and true.suv_mean == pytest.approx(r.suv_mean)
    assert true.mtv_ml == pytest.approx(2216 * np.prod(suv.spacing) / 1000)


def test_qin_seg_segment_lands_on_the_pet_voxels():
    series = load_qin()
    seg_path = next(Path(dataset("qin-headneck-01-0139-pet")).rglob("mask.dcm"))
    (segment,) = read_segments(seg_path, series.image, label=1)
    assert segment.label == 1 and segment.warnings == ()
    seg = pydicom.dcmread(seg_path)
    frames = [
        n
        for n, f in enumerate(seg.PerFrameFunctionalGroupsSequence)
        if f.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 1
    ]
    assert int((segment.mask.array == segment.value).sum()) == int(seg.pixel_array[frames].astype(bool).sum())


# --------------------------------------------------------------------------- command line


def test_cli_indices_json_end_to_end(tmp_path):
    spacing, origin = (2.0, 2.0, 3.0), (-20.0, -30.0, 100.0)
    rng = np.random.default_rng(7)
    bqml = rng.uniform(1000.0, 5000.0, size=(12, 16, 18))
    bqml[4:9, 5:11, 6:12] += 20000.0
    write_pet_series(tmp_path / "pet", bqml, spacing, origin)
    labels = np.zeros(bqml.shape, np.uint8)
    labels[4:9, 5:11, 6:12] = 1
    labels[0:2, 0:2, 0:2] = 2  # in the corner: no room for the 1 ml sphere
    img = sitk.GetImageFromArray(labels)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(tmp_path / "labels.nrrd"))

    pet, labels_file = str(tmp_path / "pet"), str(tmp_path / "labels.nrrd")
    code, out = run_cli("pet", "indices", "--pet", pet, "--labels", labels_file, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["label"] for r in rows] == [1, 2]
    required = (
        ["label", "suv_mean", "suv_std", "suv_min", "suv_max", "rms", "mtv_ml", "q1", "median", "q3", "upper_adjacent"]
        + ["tlg", *(f"glycolysis_q{n}" for n in range(1, 5)), *(f"distribution_q{n}" for n in range(1, 5))]
        + ["sam", "sam_background", "suv_peak", "suv_peak_lps_mm"]
    )
    for r in rows:
        assert set(required) <= set(r)
    # SUVbw by definition: 80 kg, 370 MBq, one hour of F-18 decay
    suv = bqml * bw_factor(80, 370e6, 3600.0)
    tumour = suv[labels == 1]
    assert rows[0]["suv_max"] == pytest.approx(tumour.max(), rel=1e-6)
    assert rows[0]["suv_mean"] == pytest.approx(tumour.mean(), rel=1e-6)
    assert rows[0]["mtv_ml"] == pytest.approx(tumour.size * 12 / 1000)
    assert rows[0]["units"] == "{SUVbw}g/ml"
    assert rows[1]["suv_peak"] is None
    assert any("SUVpeak not computed" in w for w in rows[1]["warnings"])

    code, out = run_cli(
        "pet", "indices", "--pet", pet, "--labels", labels_file, "--label", "1", "--suv", "sul", "--json"
    )
    (sul,) = json.loads(out)
    lbm = 9270 * 80 / (6680 + 216 * 80 / 1.8**2)
    assert sul["suv_mean"] == pytest.approx(rows[0]["suv_mean"] * lbm / 80, rel=1e-6)
    assert sul["units"] == "{SUVlbm(Janma)}g/ml"

    with pytest.raises(InputError, match="label 7 is absent"):
        run_cli("pet", "indices", "--pet", pet, "--labels", labels_file, "--label", "7")
