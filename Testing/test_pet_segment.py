"""oncoqi.pet.segment thresholds and label transfer, and ``oncoqi pet segment|transfer|indices --report``.

Expected masks and thresholds are worked out by hand from the definitions in
:mod:`oncoqi.pet.segment` on small arrays; the coverage fractions on grids whose PET voxels are
exact unions of label voxels, where the fraction is a plain count.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.pet import bw_factor, run_cli, write_pet_series
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image
from oncoqi.pet import segment
from oncoqi.pet.segment import (
    ThresholdMethod,
    ThresholdOptions,
    coverage_fraction,
    threshold_segment,
    transfer_labels,
)


@pytest.fixture
def two_blobs() -> Image:
    """Background 1; blob A (3x3x3, SUV 10, one voxel 20) and blob B (2x2x2, SUV 6) far apart."""
    a = np.ones((16, 20, 24))
    a[4:7, 4:7, 4:7] = 10.0
    a[5, 5, 5] = 20.0
    a[10:12, 14:16, 18:20] = 6.0
    return Image(a, spacing=(2.0, 2.0, 3.0), origin=(-10.0, 5.0, 20.0))


def lps(img: Image, k: int, j: int, i: int) -> tuple[float, float, float]:
    return tuple(float(c) for c in img.index_to_lps(np.array([i, j, k])))  # type: ignore[return-value]


def test_fixed_threshold_in_a_region_keeps_every_voxel_above(two_blobs):
    region = two_blobs.with_array(np.ones(two_blobs.array.shape, np.uint8))
    r = threshold_segment(two_blobs, "fixed", 5.0, region=region)
    assert r.threshold == 5.0
    assert r.voxel_count == 27 + 8  # both blobs: a region keeps every component
    assert r.local_max == 20.0 and r.background is None and r.seed_ijk is None
    only_b = two_blobs.with_array(np.zeros(two_blobs.array.shape, np.uint8))
    only_b.array[8:14, 12:18, 16:22] = 3
    r = threshold_segment(two_blobs, ThresholdMethod.FIXED, 5.0, region=only_b, region_label=3)
    assert r.voxel_count == 8
    assert np.array_equal(np.argwhere(r.mask.array).min(axis=0), [10, 14, 18])


def test_percent_of_local_max_grows_the_seed_component_only(two_blobs):
    r = threshold_segment(two_blobs, "percent", 50, seed_lps=lps(two_blobs, 4, 4, 4))
    assert r.local_max == 20.0  # the hottest voxel lies within 15 mm of the seed
    assert r.threshold == pytest.approx(10.0)
    assert r.voxel_count == 27  # blob B (6 < 10) is not connected anyway; 10 >= 10 is kept
    assert r.seed_ijk == (4, 4, 4)
    r = threshold_segment(two_blobs, "percent", 41, seed_lps=lps(two_blobs, 11, 15, 19))
    assert r.local_max == 6.0 and r.threshold == pytest.approx(0.41 * 6.0)
    assert r.voxel_count == 8  # blob A is farther than 15 mm and not connected
    assert not r.mask.array[4:7, 4:7, 4:7].any()


def test_percent_in_a_region_uses_the_region_max(two_blobs):
    region = two_blobs.with_array(np.zeros(two_blobs.array.shape, np.uint8))
    region.array[4:7, 4:7, 4:7] = 1
    region.array[5, 5, 5] = 0  # leave the 20 out: the region max is 10
    r = threshold_segment(two_blobs, "percent", 100, region=region)
    assert r.local_max == 10.0 and r.voxel_count == 26


def test_background_adapted_threshold_with_given_and_shell_background(two_blobs):
    seed = lps(two_blobs, 5, 5, 5)
    r = threshold_segment(two_blobs, "background", 50, seed_lps=seed, options=ThresholdOptions(background=2.0))
    assert r.background == 2.0 and r.threshold == pytest.approx(2.0 + 0.5 * (20.0 - 2.0))
    assert r.voxel_count == 1
    region = two_blobs.with_array(np.zeros(two_blobs.array.shape, np.uint8))
    region.array[4:7, 4:7, 4:7] = 1
    # the 3 mm shell around blob A holds background voxels only (SUV 1)
    r = threshold_segment(two_blobs, "background", 50, region=region, options=ThresholdOptions(shell_mm=3.0))
    assert r.background == pytest.approx(1.0)
    assert r.threshold == pytest.approx(1.0 + 0.5 * 19.0)
    assert r.voxel_count == 1  # 10 < 10.5: only the 20


def test_seed_background_shell_surrounds_a_lesion_larger_than_the_search_ball():
    """A 25 mm-radius sphere (SUV 10, background 1): the 15 mm search ball lies inside it, so
    the shell must surround the lesion grown at bg = 0, not the ball, to find the background."""
    k, j, i = np.indices((40, 40, 40))
    sphere = ((k - 20) ** 2 + (j - 20) ** 2 + (i - 20) ** 2) * 4.0 <= 25.0**2
    img = Image(np.where(sphere, 10.0, 1.0), spacing=(2.0, 2.0, 2.0))
    r = threshold_segment(img, "background", 50, seed_lps=lps(img, 20, 20, 20))
    assert r.background == pytest.approx(1.0)
    assert r.threshold == pytest.approx(5.5)
    assert r.voxel_count == np.count_nonzero(sphere)


def test_background_shell_mean_is_the_shell_voxels_mean():
    a = np.zeros((9, 9, 9))
    a[4, 4, 4] = 10.0
    a[3, 4, 4] = 4.0  # in the 1-voxel shell (face neighbour)
    a[2, 4, 4] = 100.0  # two voxels away: outside a 1.5 mm shell
    img = Image(a)
    region = img.with_array(np.zeros(a.shape, np.uint8))
    region.array[4, 4, 4] = 1
    r = threshold_segment(img, "background", 50, region=region, options=ThresholdOptions(shell_mm=1.5))
    # shell: the 18 neighbours within sqrt(2) mm (6 faces + 12 edges), one of them 4
    assert r.background == pytest.approx(4.0 / 18.0)
    assert r.threshold == pytest.approx(4.0 / 18.0 + 0.5 * (10.0 - 4.0 / 18.0))


def test_seed_below_threshold_moves_to_the_hottest_voxel(two_blobs):
    r = threshold_segment(two_blobs, "percent", 60, seed_lps=lps(two_blobs, 4, 4, 2))  # background voxel
    assert r.seed_ijk == (5, 5, 5)
    assert r.voxel_count == 1  # 10 < 12
    assert "below the threshold" in r.warnings[0]


def test_bad_inputs_are_refused_with_reasons(two_blobs):
    with pytest.raises(InputError, match="region .* or a seed"):
        threshold_segment(two_blobs, "fixed", 2.5)
    with pytest.raises(InputError, match="outside the PET volume"):
        threshold_segment(two_blobs, "fixed", 2.5, seed_lps=(500.0, 0.0, 0.0))
    with pytest.raises(InputError, match="percentage"):
        threshold_segment(two_blobs, "percent", 141, seed_lps=lps(two_blobs, 5, 5, 5))
    with pytest.raises(ValueError):
        threshold_segment(two_blobs, "otsu", 1, seed_lps=lps(two_blobs, 5, 5, 5))
    empty = two_blobs.with_array(np.zeros(two_blobs.array.shape, np.uint8))
    with pytest.raises(InputError, match="region is empty"):
        threshold_segment(two_blobs, "fixed", 2.5, region=empty)
    shifted = Image(np.ones(two_blobs.array.shape, np.uint8), two_blobs.spacing, (0.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match="transfer it first"):
        threshold_segment(two_blobs, "fixed", 2.5, region=shifted)
    with pytest.raises(InputError, match="reaches the threshold"):
        threshold_segment(two_blobs, "fixed", 50.0, seed_lps=lps(two_blobs, 5, 5, 5))


# --------------------------------------------------------------------------- transfer


def ct_and_pet_grids() -> tuple[Image, Image]:
    """A label grid of 1 x 1 x 2 mm whose voxels tile the 4 x 4 x 4 mm PET voxels exactly."""
    pet = Image(np.zeros((10, 12, 14), np.float32), (4.0, 4.0, 4.0), (-20.0, -30.0, 40.0))
    # first CT voxel centre: PET voxel corner + half a CT voxel
    origin = tuple(np.array(pet.origin) - 2.0 + np.array([0.5, 0.5, 1.0]))
    ct = Image(np.zeros((20, 48, 56), np.int16), (1.0, 1.0, 2.0), origin)
    return ct, pet


def test_coverage_fraction_counts_the_covered_sub_voxels_exactly():
    ct, pet = ct_and_pet_grids()
    rng = np.random.default_rng(3)
    ct.array[4:15, 10:33, 9:40] = (rng.random((11, 23, 31)) < 0.6) * 2
    f = coverage_fraction(ct, pet, 2).array
    # expected: block sums of the CT mask over the 4 x 4 x 2 CT voxels of each PET voxel
    blocks = (ct.array == 2).reshape(10, 2, 12, 4, 14, 4).mean(axis=(1, 3, 5))
    assert np.allclose(f, blocks, atol=1e-7)
    assert f.sum() * 64 == pytest.approx(np.count_nonzero(ct.array == 2) * 2.0)  # the volume, exactly


def test_coverage_fraction_in_slabs_equals_one_pass(monkeypatch):
    """A large label is resampled in slabs of PET slices to bound the memory: same fractions."""
    ct, pet = ct_and_pet_grids()
    ct.array[2:18, 5:40, 3:50] = 1
    ct.array[7, 20:30, 10:20] = 0
    whole = coverage_fraction(ct, pet).array
    monkeypatch.setattr(segment, "SAMPLE_BUDGET", 1)  # one PET slice per resampling
    np.testing.assert_array_equal(coverage_fraction(ct, pet).array, whole)


def test_transfer_fraction_keeps_half_covered_voxels_and_each_label():
    ct, pet = ct_and_pet_grids()
    ct.array[0:2, 0:4, 0:4] = 1  # covers PET voxel [0,0,0] fully
    ct.array[2:4, 4:8, 4:6] = 1  # half of PET voxel [1,1,1]: kept (>= 0.5)
    ct.array[2:3, 8:12, 8:11] = 1  # 3/8 of PET voxel [1,2,2]: dropped
    ct.array[10:14, 20:28, 20:28] = 5  # 2x2x2 PET voxels fully
    out = transfer_labels(ct, pet, "fraction")
    assert out.same_grid(pet)
    assert out.array[0, 0, 0] == 1 and out.array[1, 1, 1] == 1 and out.array[1, 2, 2] == 0
    assert np.count_nonzero(out.array == 1) == 2
    assert np.count_nonzero(out.array == 5) == 8 and np.all(out.array[5:7, 5:7, 5:7] == 5)
    nearest = transfer_labels(ct, pet, "nearest")
    assert nearest.array[0, 0, 0] == 1
    with pytest.raises(InputError, match="unknown transfer method"):
        transfer_labels(ct, pet, "cubic")


def test_transfer_preserves_the_volume_of_a_sphere_better_than_nearest():
    """A 30 ml sphere on a 1 x 1 x 2 mm grid onto 4 mm PET voxels, off-centre (shift 1.3 mm)."""
    pet = Image(np.zeros((24, 24, 24), np.float32), (4.0, 4.0, 4.0), (-46.0, -46.0, -46.0))
    ct = Image(np.zeros((50, 100, 100), np.uint8), (1.0, 1.0, 2.0), (-49.5, -49.5, -49.0))
    k, j, i = np.indices(ct.array.shape)
    p = ct.index_to_lps(np.stack([i, j, k], axis=-1)) - 1.3
    radius = (3 * 30000 / (4 * np.pi)) ** (1 / 3)
    ct.array[(p**2).sum(axis=-1) <= radius**2] = 1
    true_ml = np.count_nonzero(ct.array) * ct.voxel_volume_ml
    frac_ml = np.count_nonzero(transfer_labels(ct, pet, "fraction").array) * pet.voxel_volume_ml
    # bound: surface area x half a PET voxel (see test_pet_synthetic for the derivation)
    bound = 4 * np.pi * radius**2 * 2.0 / 1000
    assert abs(frac_ml - true_ml) < bound
    assert abs(coverage_fraction(ct, pet).array.sum() * pet.voxel_volume_ml - true_ml) < 0.01 * true_ml


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def pet_study(tmp_path):
    spacing, origin = (3.0, 3.0, 3.0), (-30.0, -36.0, 90.0)
    bqml = np.full((16, 20, 24), 2000.0)
    bqml[5:11, 6:13, 8:15] = 30000.0  # a 6 x 7 x 7 hot box
    bqml[7, 9, 11] = 40000.0
    write_pet_series(tmp_path / "pet", bqml, spacing, origin)
    return tmp_path, bqml, spacing, origin


def test_cli_segment_seed_and_region(pet_study):
    tmp, bqml, spacing, origin = pet_study
    suv = bqml * bw_factor(80, 370e6, 3600.0)
    seed = [origin[0] + 11 * spacing[0], origin[1] + 9 * spacing[1], origin[2] + 7 * spacing[2]]
    out = tmp / "seg.nrrd"
    code, text = run_cli(
        "pet",
        "segment",
        "--pet",
        str(tmp / "pet"),
        "--seed",
        *map(str, seed),
        "--method",
        "percent",
        "--value",
        "50",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    info = json.loads(text)
    assert info["local_max"] == pytest.approx(suv.max(), rel=1e-6)
    assert info["threshold"] == pytest.approx(0.5 * suv.max(), rel=1e-6)
    assert info["voxel_count"] == 6 * 7 * 7
    assert info["volume_ml"] == pytest.approx(6 * 7 * 7 * 27 / 1000)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert np.array_equal(mask, (bqml >= 30000.0 * 0.99).astype(np.uint8))

    region = np.zeros(bqml.shape, np.uint8)
    region[0:16, 0:20, 0:12] = 4  # cuts the box at i = 12
    img = sitk.GetImageFromArray(region)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(tmp / "region.nrrd"))
    code, text = run_cli(
        "pet",
        "segment",
        "--pet",
        str(tmp / "pet"),
        "--region",
        str(tmp / "region.nrrd"),
        "--label",
        "4",
        "--method",
        "fixed",
        "--value",
        "2.5",
        "--out",
        str(out),
        "--json",
    )
    assert json.loads(text)["voxel_count"] == 6 * 7 * 4
    with pytest.raises(InputError, match="give --region"):
        run_cli(
            "pet",
            "segment",
            "--pet",
            str(tmp / "pet"),
            "--seed",
            *map(str, seed),
            "--label",
            "1",
            "--method",
            "fixed",
            "--value",
            "2.5",
            "--out",
            str(out),
        )


def test_cli_transfer_then_indices(pet_study):
    tmp, bqml, _, origin = pet_study
    # a CT-like label on a 1.5 mm grid covering the hot box exactly (PET voxel = 2 x 2 x 2 of it)
    ct = np.zeros((32, 40, 48), np.uint8)
    ct[10:22, 12:26, 16:30] = 1
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((1.5, 1.5, 1.5))
    img.SetOrigin(tuple(o - 0.75 for o in origin))
    sitk.WriteImage(img, str(tmp / "ct_label.nrrd"))
    code, text = run_cli(
        "pet",
        "transfer",
        "--labels",
        str(tmp / "ct_label.nrrd"),
        "--pet",
        str(tmp / "pet"),
        "--out",
        str(tmp / "pet_label.nrrd"),
    )
    assert code == 0 and "label 1:" in text
    on_pet = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp / "pet_label.nrrd")))
    assert np.count_nonzero(on_pet) == 6 * 7 * 7 and on_pet[5:11, 6:13, 8:15].all()

    code, text = run_cli("pet", "indices", "--pet", str(tmp / "pet"), "--labels", str(tmp / "pet_label.nrrd"), "--json")
    (row,) = json.loads(text)
    suv = bqml * bw_factor(80, 370e6, 3600.0)
    assert row["suv_max"] == pytest.approx(suv.max(), rel=1e-6)
    assert row["mtv_ml"] == pytest.approx(6 * 7 * 7 * 27 / 1000)
