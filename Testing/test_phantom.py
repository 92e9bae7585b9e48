"""Tests of the synthetic PET/CT phantom (oncoqi.phantom) and the DICOM series writer."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from oncoqi.cli import main as cli_main
from oncoqi.dicom.write import (
    CT_IMAGE_STORAGE,
    PET_IMAGE_STORAGE,
    DatasetEdits,
    PetInfo,
    SeriesInfo,
    StudyInfo,
    uid_from,
    write_series,
)
from oncoqi.errors import GeometryError, InputError, OncoQIError
from oncoqi.image import Image
from oncoqi.phantom import (
    OutputExistsError,
    PhantomOptionError,
    PhantomOptions,
    Tissue,
    TumourPlacementError,
    TumourSpec,
    extract_sample,
    make_ct,
    make_petct,
    sample_path,
    write_study,
)
from oncoqi.phantom.anatomy import HILA_SEMI_AXES, Anatomy
from oncoqi.phantom.clutter import AnteriorMediastinum, Blob, ChestWall, DependentDensity
from oncoqi.phantom.grid import Grid
from oncoqi.phantom.study import _grow_trees
from oncoqi.phantom.tissues import ABDOMEN, CHEST_WALL, LUNG, MEDIASTINUM, members

#: dciodvfy warnings still accepted, as (substring, reason). None remain for our objects.
ACCEPTED_DCIODVFY_WARNINGS: list[tuple[str, str]] = []

SMALL = PhantomOptions(
    seed=7,
    tumours=(
        TumourSpec(volume_ml=15.0, shape="lobulated", location="chest_wall", suv=8.0),
        TumourSpec(volume_ml=10.0, shape="round", location="mediastinum", suv=5.0),
        TumourSpec(volume_ml=4.0, shape="spiculated", location="parenchyma", suv=10.0),
    ),
    size=128,
    fov_mm=380.0,
    slice_thickness_mm=4.0,
    slices=36,
    pet_size=64,
    pet_slice_thickness_mm=6.0,
    pet_blur_mm=0.0,
    pet_noise=0.0,
)


@pytest.fixture(scope="module")
def study() -> object:
    return make_petct(SMALL)


@pytest.fixture(scope="module")
def written(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "study"
    write_study(study, out)
    return out


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _sorted_datasets(folder: Path) -> list[pydicom.Dataset]:
    return sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber))


# -- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_study_and_uids(study, tmp_path):
    again = make_petct(SMALL)
    assert np.array_equal(again.ct.array, study.ct.array)
    assert np.array_equal(again.pet.array, study.pet.array)
    assert np.array_equal(again.tumour_label.array, study.tumour_label.array)
    assert again.study.study_instance_uid == study.study.study_instance_uid
    assert again.ct_series_uid == study.ct_series_uid
    a, b = tmp_path / "a", tmp_path / "b"
    write_study(study, a)
    write_study(again, b)
    for series in ("CT", "PET"):
        names_a = sorted(p.name for p in (a / series).glob("*.dcm"))
        assert names_a == sorted(p.name for p in (b / series).glob("*.dcm"))
        for name in names_a[:: max(1, len(names_a) // 4)]:
            assert (a / series / name).read_bytes() == (b / series / name).read_bytes()


def test_different_seed_gives_different_study(study):
    other = make_petct(replace(SMALL, seed=8))
    assert not np.array_equal(other.ct.array, study.ct.array)
    assert other.study.study_instance_uid != study.study.study_instance_uid
    assert other.ct_series_uid != study.ct_series_uid


def test_other_options_keep_anatomy_but_change_uids(study):
    no_tumour = make_petct(replace(SMALL, tumours=()))
    body = study.tissue.array != Tissue.AIR
    assert np.array_equal(no_tumour.tissue.array != Tissue.AIR, body)
    assert no_tumour.study.study_instance_uid != study.study.study_instance_uid
    assert no_tumour.tumour_label.array.max() == 0


# -- tumours -------------------------------------------------------------------------------


def test_tumour_volumes_match_the_request(study):
    label = study.tumour_label.array
    voxel_ml = study.ct.voxel_volume_ml
    assert label.max() == len(SMALL.tumours)
    for spec, t in zip(SMALL.tumours, study.truth["tumours"]):
        measured = float((label == t["label"]).sum()) * voxel_ml
        assert measured == pytest.approx(t["volume_ml"])
        assert measured == pytest.approx(spec.volume_ml, rel=0.03)
        assert t["requested_volume_ml"] == spec.volume_ml
        assert (t["shape"], t["location"]) == (spec.shape, spec.location)


def _touched(study, label: int) -> set[int]:
    mask = study.tumour_label.array == label
    ring = ndimage.binary_dilation(mask, ndimage.generate_binary_structure(3, 1)) & ~mask
    return set(np.unique(study.tissue.array[ring]).tolist())


def test_location_classes_hold_geometrically(study):
    wall, med, abd, lung = (set(members(g).tolist()) for g in (CHEST_WALL, MEDIASTINUM, ABDOMEN, LUNG))
    hu = study.ct.array
    lung_mask = study.lung_mask.array
    for t in study.truth["tumours"]:
        touched = _touched(study, t["label"])
        mask = study.tumour_label.array == t["label"]
        ring = ndimage.binary_dilation(mask, ndimage.generate_binary_structure(3, 1)) & ~mask
        if t["location"] == "parenchyma":
            assert touched <= lung, touched
            assert lung_mask[ring].all()
        elif t["location"] == "chest_wall":
            assert touched & wall and not touched & med and not touched & abd, touched
            # independent of the classes: part of the rim is dense tissue outside the lung
            assert (hu[ring & (lung_mask == 0)] > -300).sum() > 0
        else:
            assert touched & med and not touched & wall and not touched & abd, touched
            assert (ring & (lung_mask == 0)).sum() > 0
        assert t["touches"] == ([] if t["location"] == "parenchyma" else [t["location"]])
        side = 1 if t["side"] == "right" else 2
        assert np.all(lung_mask[mask] == side)


@pytest.mark.parametrize("location", ["chest_wall", "mediastinum"])
def test_extreme_volumes_are_placed(location):
    specs = (TumourSpec(300.0, "round", location), TumourSpec(1.0, "spiculated", "parenchyma"))
    result = make_ct(replace(SMALL, seed=5, tumours=specs, size=96, slices=60, slice_thickness_mm=5.0))
    for spec, t in zip(specs, result.truth["tumours"]):
        assert t["volume_ml"] == pytest.approx(spec.volume_ml, rel=0.03)
        assert location in t["touches"] or spec.location == "parenchyma"


def test_part_solid_and_ground_glass_tumours_keep_their_outline_and_lose_density():
    from oncoqi.phantom.tissues import GROUND_GLASS_HU

    made = {}
    for fraction in (1.0, 0.5, 0.0):
        spec = TumourSpec(10.0, "round", "parenchyma", solid_fraction=fraction)
        made[fraction] = make_ct(replace(SMALL, seed=8, tumours=(spec,), size=96, slices=40, noise_hu=0.0, blur_mm=0.0))
    solid = made[1.0].tumour_label.array > 0
    for fraction in (0.5, 0.0):  # the label (what a reader outlines) is the whole nodule, ground glass included
        assert np.array_equal(made[fraction].tumour_label.array > 0, solid)
    hu = {f: np.median(made[f].ct.array[solid]) for f in made}
    assert hu[1.0] > 0 and abs(hu[0.0] - GROUND_GLASS_HU) < 30 and hu[0.0] < hu[0.5] < hu[1.0], hu
    centre = tuple(np.round(np.argwhere(solid).mean(axis=0)).astype(int))
    assert made[0.5].ct.array[centre] > -100  # the solid core
    with pytest.raises(PhantomOptionError, match="solid_fraction"):
        TumourSpec(solid_fraction=1.5)


def test_tumour_centre_is_in_patient_coordinates(study):
    for t in study.truth["tumours"]:
        k, j, i = np.nonzero(study.tumour_label.array == t["label"])
        centroid = study.ct.index_to_lps(np.array([i.mean(), j.mean(), k.mean()]))
        assert np.allclose(centroid, t["centroid_lps_mm"], atol=1e-3)
        assert np.linalg.norm(centroid - np.array(t["centre_lps_mm"])) < t["max_radius_mm"]


def test_too_large_tumour_is_a_user_error():
    options = replace(SMALL, tumours=(TumourSpec(volume_ml=300.0, location="parenchyma"),), slices=10)
    with pytest.raises(TumourPlacementError, match="300 ml"):
        make_ct(options)


def test_option_ranges_are_checked():
    with pytest.raises(PhantomOptionError, match="volume"):
        TumourSpec(volume_ml=0.5)
    with pytest.raises(PhantomOptionError, match="slice_thickness_mm"):
        PhantomOptions(slice_thickness_mm=12.0)
    with pytest.raises(PhantomOptionError, match="location"):
        TumourSpec(location="liver")
    with pytest.raises(PhantomOptionError, match="contrast_hu"):
        PhantomOptions(contrast_hu=-10.0)


# -- CT content ----------------------------------------------------------------------------


def test_ct_numbers_of_regions(study):
    hu, tissue = study.ct.array.astype(float), study.tissue.array
    ball = ndimage.generate_binary_structure(3, 1)

    def core(t: Tissue, erosion: int = 1) -> np.ndarray:
        return ndimage.binary_erosion(tissue == t, ball, iterations=erosion)

    assert -900 < np.median(hu[core(Tissue.LUNG, 2)]) < -780
    assert -130 < np.median(hu[core(Tissue.FAT)]) < -70
    assert 20 < np.median(hu[core(Tissue.MUSCLE)]) < 70
    assert np.median(hu[core(Tissue.AIR, 3)]) < -980
    assert 10 < np.median(hu[core(Tissue.BLOOD, 2)]) < 70
    spine = (tissue == Tissue.BONE) | (tissue == Tissue.MARROW)
    assert np.percentile(hu[spine], 75) > 300
    # the couch lies below (posterior to, larger j than) the body in every column, denser than air
    rows = np.arange(tissue.shape[1])[None, :, None]
    body = ~np.isin(tissue, [Tissue.AIR, Tissue.COUCH_SHELL, Tissue.COUCH_CORE])
    couch = tissue == Tissue.COUCH_SHELL
    body_bottom = np.where(body, rows, -1).max(axis=1)
    couch_top = np.where(couch, rows, tissue.shape[1]).min(axis=1)
    both = body.any(axis=1) & couch.any(axis=1)
    assert both.sum() > 100
    assert np.all(couch_top[both] > body_bottom[both])
    assert np.median(hu[couch]) > -500


def test_contrast_raises_blood_and_each_tissue_by_its_share():
    """An enhanced study is the same anatomy with blood raised by ``contrast_hu`` and the other
    classes by their share of it (ENHANCEMENT): tumours a fifth, aerated lung not at all."""
    plain = make_ct(replace(SMALL, noise_hu=0.0))
    enhanced = make_ct(replace(SMALL, noise_hu=0.0, contrast_hu=200.0))
    tissue = plain.tissue.array
    assert np.array_equal(tissue, enhanced.tissue.array)
    ball = ndimage.generate_binary_structure(3, 1)
    rise = enhanced.ct.array.astype(float) - plain.ct.array
    for t, expected in ((Tissue.BLOOD, 200.0), (Tissue.TUMOUR, 40.0), (Tissue.MUSCLE, 20.0), (Tissue.LUNG, 0.0)):
        core = ndimage.binary_erosion(tissue == t, ball, iterations=2)
        assert core.sum() > 20, t
        assert abs(np.median(rise[core]) - expected) <= 8.0, (t, np.median(rise[core]))


def test_blob_paints_only_over_its_host():
    axis = np.arange(-20.0, 21.0)
    lab = np.full((axis.size, axis.size), Tissue.MEDIASTINAL_FAT, dtype=np.uint8)
    lab[:, axis > 0] = Tissue.LUNG
    node = Blob((0.0, 0.0, 0.0), (8.0, 6.0, 10.0), Tissue.MEDIASTINAL_SOFT, Tissue.MEDIASTINAL_FAT)
    node.paint(lab, axis, axis, 0.0)
    painted = lab == Tissue.MEDIASTINAL_SOFT
    # the half in fat is painted as the ellipse's cross-section; the half in lung is left alone
    assert painted[20, 12] and painted[20, 20] and painted[14, 20] and not painted[13, 20]
    assert not painted[:, axis > 0].any()
    assert (lab[:, axis > 0] == Tissue.LUNG).all()
    # above the blob (|z| > c) nothing changes; near its pole the section shrinks
    before = lab.copy()
    node.paint(lab, axis, axis, 10.5)
    assert np.array_equal(lab, before)


def test_chest_wall_has_scapulae_and_a_fat_plane_only_where_drawn():
    wall = ChestWall(
        scapula_depth=4.0,
        scapula_thickness=5.0,
        scapula_top=80.0,
        scapula_length=150.0,
        fat_plane_fraction=0.5,
        fat_plane_thickness=3.0,
    )
    xs = np.linspace(-150.0, 150.0, 301)
    X, Y = np.meshgrid(xs, xs)
    r = np.hypot(X, Y)
    sin = Y / np.maximum(r, 1e-6)
    depth = 150.0 - r  # a round body of radius 150 mm
    body = depth >= 0
    d_fat, d_mus = np.full_like(X, 10.0), np.full_like(X, 40.0)

    def paint(z: float) -> np.ndarray:
        lab = np.where(depth >= 10.0, Tissue.MUSCLE, Tissue.FAT).astype(np.uint8)
        wall.paint(lab, body, depth, sin, X, z, d_fat, d_mus)
        return lab

    upper, lower = paint(0.0), paint(-100.0)
    scapula = upper == Tissue.BONE
    assert scapula.any() and not (lower == Tissue.BONE).any()
    # the blade lies in the back (posterolateral, both sides), 4-9 mm below the fat
    assert (sin[scapula] > 0.3).all() and (np.abs(X[scapula]) > 40).all()
    assert (X[scapula] < 0).any() and (X[scapula] > 0).any()
    assert (depth[scapula] >= 14.0).all() and (depth[scapula] < 19.0).all()
    # the fat plane runs mid-muscle (25 mm deep) in front and at the sides, not at the back
    plane = (upper == Tissue.FAT) & (depth >= 10.0)
    assert plane.any() and (np.abs(depth[plane] - 25.0) < 1.5).all() and (sin[plane] < 0.3).all()


def test_mediastinum_holds_lymph_nodes_and_the_arch_branches():
    anatomy = Anatomy.draw(np.random.default_rng(5), 1.0)
    nodes = [b for b in anatomy.blobs if b.host == Tissue.MEDIASTINAL_FAT]
    assert 4 <= len(nodes) <= 12
    assert all(5.0 <= 2 * b.axes[1] <= 14.0 for b in nodes)
    assert any(b.host == Tissue.FAT for b in anatomy.blobs)  # axillary nodes, breast tissue
    # above the aortic arch the mediastinum shows the round profiles of its branches in fat
    arch_z = anatomy.tubes[0].points[3][2]
    # (superior vena cava, brachiocephalic trunk, left carotid and subclavian arteries)
    grid = Grid.centred((160, 160, 1), (1.5, 1.5, 2.0), (0.0, 0.0, arch_z + 50.0))
    blood, count = ndimage.label(anatomy.labels(grid)[0] == Tissue.BLOOD)
    assert count == 4


def test_prevascular_space_is_a_thymic_triangle_or_a_junction_line():
    xs = np.arange(-100.0, 100.5, 0.5)
    X, Y = np.meshgrid(xs, xs)
    cavity = np.ones(X.shape, dtype=bool)
    waves = ((0.4, 0.1, 0.2, 0.0), (-0.1, 0.35, 0.1, 1.0), (0.2, -0.2, 0.3, 2.0))
    space = AnteriorMediastinum(
        z_low=0.0,
        z_high=50.0,
        apex_y=-20.0,
        apex_half_width=20.0,
        front_y=-80.0,
        front_half_width=50.0,
        soft=False,
        waves=waves,
        strand_level=0.25,
    )
    band = np.abs(X) < 20.0

    def paint(region: AnteriorMediastinum, z: float) -> np.ndarray:
        lab = np.full(X.shape, Tissue.LUNG, dtype=np.uint8)
        lung = lab == Tissue.LUNG
        lab[band] = Tissue.MEDIASTINAL_FAT  # the mediastinal band, 20 mm each side
        region.paint(lab, cavity, lung, X, Y, z, np.abs(X))
        return lab

    lab = paint(space, 25.0)
    drawn = (lab != Tissue.LUNG) & (Y < -20.0)
    assert np.array_equal(lab[Y >= -20.0] == Tissue.MEDIASTINAL_FAT, band[Y >= -20.0])  # behind it, the band
    # the half-width grows from the band's 20 mm at the apex to 20 + 30 mm at the sternum
    width = [np.ptp(X[(np.abs(Y - y) < 0.1) & drawn]) / 2.0 for y in (-25.0, -50.0, -80.0)]
    assert width[0] == pytest.approx(20.0 + 30.0 * 5 / 60, abs=0.6)
    assert width[1] == pytest.approx(20.0 + 30.0 * 30 / 60, abs=0.6)
    assert width[2] == pytest.approx(50.0, abs=0.6)
    # fat crossed by thin strands of soft tissue
    strands = np.mean(lab[drawn] == Tissue.MEDIASTINAL_SOFT)
    assert 0.02 < strands < 0.3
    assert set(np.unique(lab[drawn])) == {Tissue.MEDIASTINAL_FAT, Tissue.MEDIASTINAL_SOFT}
    assert np.array_equal(paint(space, 55.0) != Tissue.LUNG, band)
    # or the lungs meet behind the sternum at a junction line, a film of fat 3 mm wide
    junction = paint(replace(space, front_half_width=1.5), 25.0)
    front_row = junction[np.abs(Y + 80.0) < 0.1]
    assert np.sum(front_row != Tissue.LUNG) == 5  # |x| < 1.5 mm on a 0.5 mm grid
    assert (junction[(Y < -20.0) & band & (np.abs(X) > 20.0 - 0.5)] == Tissue.LUNG).all()
    # a residual thymus is a soft-tissue triangle
    thymus = paint(replace(space, soft=True), 25.0)
    assert (
        np.array_equal((thymus != Tissue.LUNG) & (Y < -20.0), drawn)
        and (thymus[drawn] == Tissue.MEDIASTINAL_SOFT).all()
    )
    # the drawn anatomy puts it in front of the ascending aorta, and fat pads in the cardiophrenic angles
    anatomy = Anatomy.draw(np.random.default_rng(5), 1.0)
    assert anatomy.anterior.apex_y == anatomy.tubes[0].points[0][1]
    pads = [b for b in anatomy.blobs if b.host == Tissue.LUNG]
    assert all(b.tissue == Tissue.MEDIASTINAL_FAT and b.centre[2] < anatomy.heart_centre[2] for b in pads)


def test_dependent_density_lies_along_the_posterior_pleura_strongest_at_the_base():
    # a box of lung, 2 mm voxels: x, y -100..100 mm, z 0..100 mm; the vertebral body at y = 60
    spacing = (2.0, 2.0, 2.0)
    y = np.arange(-100.0, 101.0, 2.0)
    z = np.arange(0.0, 101.0, 2.0)
    lung = np.zeros((z.size, y.size, y.size), dtype=bool)
    lung[1:-1, 1:-1, 1:-1] = True
    density = DependentDensity(amplitude_hu=500.0, depth_mm=5.0, reach_mm=60.0, patch_mm=6.0)
    hu = density.hu(lung, spacing, y, z, 60.0, (0.0, 100.0), np.random.default_rng(0))
    assert hu is not None and hu.dtype == np.float32
    assert not hu[~lung].any() and not hu[:, y <= 0.0, :].any()  # nothing in front of y = 60 - 60
    assert hu.max() <= 500.0 and hu.max() > 250.0
    # along the back wall (2 mm in) it is strong; 20 mm deep it has faded
    core = slice(12, -12)
    pleura, deep = hu[core, -2, core], hu[core, -11, core]
    assert pleura.mean() > 5 * deep.mean() and pleura.mean() > 100.0
    # and stronger at the base than at the apex
    assert hu[2, -2, core].mean() > 1.5 * hu[-3, -2, core].mean()
    assert (
        replace(density, amplitude_hu=0.0).hu(lung, spacing, y, z, 60.0, (0.0, 100.0), np.random.default_rng(0)) is None
    )


def test_pulmonary_veins_drain_into_the_left_atrium_and_the_hila_are_small():
    anatomy = Anatomy.draw(np.random.default_rng(11), 1.0)
    grid = Grid.centred((96, 96, 60), (4.0, 4.0, 5.0), (0.0, 0.0, anatomy.carina_z - 40.0))
    tissue = anatomy.labels(grid)
    # the atrium is blood between its two ends (where the veins enter), behind the heart
    right, left = (np.asarray(p) for p in anatomy.atrium)
    i, j, k = np.round((((right + left) / 2.0) - grid.origin) / grid.spacing).astype(int)
    assert tissue[k, j, i] == Tissue.BLOOD
    assert right[1] > anatomy.heart_centre[1] and right[2] > anatomy.carina_z - 60.0
    vessels, _ = _grow_trees(tissue, grid, anatomy, np.random.default_rng(0))
    arteries, veins = vessels[0::2], vessels[1::2]
    assert [tuple(v.starts[0]) for v in veins] == [tuple(right), tuple(left)]
    assert [tuple(a.starts[0]) for a in arteries] == [anatomy.hilum_right, anatomy.hilum_left]
    # the hila are mostly vessels and airways: soft tissue fills under a third of the 40 x 44 x 60
    # mm ellipsoid around each that once was a solid ball, and the bronchus runs through it
    x, y, z = grid.axes()
    for hilum in (anatomy.hilum_right, anatomy.hilum_left):
        old_ball = (
            sum(
                ((c - h) / r) ** 2
                for c, h, r in zip(np.meshgrid(z, y, x, indexing="ij")[::-1], hilum, (20.0, 22.0, 30.0))
            )
            <= 1.0
        )
        ball = tissue[old_ball]
        assert np.mean(ball == Tissue.MEDIASTINAL_SOFT) < 1 / 3
        assert (ball == Tissue.TRACHEA).any() and (ball == Tissue.BLOOD).any()
    assert max(HILA_SEMI_AXES) < 20.0


def test_lung_mask_and_sides(study):
    lung = study.lung_mask.array
    columns = np.arange(lung.shape[2], dtype=float)
    x = study.ct.index_to_lps(np.stack([columns, 0 * columns, 0 * columns], axis=1))[:, 0]
    _, _, i_right = np.nonzero(lung == 1)
    _, _, i_left = np.nonzero(lung == 2)
    # LPS: patient's left is +x
    assert x[i_right].mean() < 0 < x[i_left].mean()
    right_ml, left_ml = (float((lung == v).sum()) * study.ct.voxel_volume_ml for v in (1, 2))
    assert study.truth["lung_volume_ml"]["right"] == pytest.approx(right_ml)
    assert 300 < right_ml < 4000 and 300 < left_ml < 4000
    assert np.isin(study.tissue.array[lung > 0], members(LUNG)).all()


# -- DICOM ---------------------------------------------------------------------------------


def test_ct_and_pet_share_patient_study_and_frame_of_reference(written):
    ct = pydicom.dcmread(next((written / "CT").glob("*.dcm")))
    pet = pydicom.dcmread(next((written / "PET").glob("*.dcm")))
    assert ct.SOPClassUID == CT_IMAGE_STORAGE and pet.SOPClassUID == PET_IMAGE_STORAGE
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "PatientName", "StudyDate"):
        assert getattr(ct, keyword) == getattr(pet, keyword)
    assert ct.SeriesInstanceUID != pet.SeriesInstanceUID
    assert ct.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_instance_numbers_follow_slice_order(written):
    for series in ("CT", "PET"):
        datasets = _sorted_datasets(written / series)
        z = [float(ds.ImagePositionPatient[2]) for ds in datasets]
        assert np.all(np.diff(z) > 0)
        assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_reports_no_errors(written):
    for series in ("CT", "PET"):
        files = sorted(
            (written / series).glob("*.dcm"),
            key=lambda p: int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber),
        )
        for path in (files[0], files[len(files) // 2], files[-1]):
            run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
            lines = (run.stdout + run.stderr).splitlines()
            errors = [line for line in lines if line.startswith("Error")]
            warnings = [
                line
                for line in lines
                if line.startswith("Warning") and not any(w in line for w, _ in ACCEPTED_DCIODVFY_WARNINGS)
            ]
            assert not errors, f"{series} {path.name}: {errors}"
            assert not warnings, f"{series} {path.name}: {warnings}"


def test_geometry_reads_back_through_simpleitk(study, written):
    for series, image in (("CT", study.ct), ("PET", study.pet)):
        loaded = _read_series(written / series)
        assert loaded.GetSize() == image.size
        assert np.allclose(loaded.GetOrigin(), image.origin, atol=1e-3)
        assert np.allclose(loaded.GetSpacing(), image.spacing, atol=1e-3)
        assert np.allclose(np.reshape(loaded.GetDirection(), (3, 3)), image.direction, atol=1e-6)
    ct = sitk.GetArrayFromImage(_read_series(written / "CT"))
    assert np.array_equal(ct, study.ct.array)


def test_truth_files_are_on_the_ct_grid(study, written):
    for name, image in (("tumor_label.nrrd", study.tumour_label), ("lung_mask.nrrd", study.lung_mask)):
        read = Image.from_sitk(sitk.ReadImage(str(written / "truth" / name)))
        assert read.same_grid(study.ct)
        assert np.array_equal(read.array, image.array)
    truth = json.loads((written / "truth" / "truth.json").read_text())
    assert truth["seed"] == SMALL.seed
    assert len(truth["tumours"]) == len(SMALL.tumours)


def _suv_factor_from_headers(ds: pydicom.Dataset) -> float:
    radio = ds.RadiopharmaceuticalInformationSequence[0]
    injected = datetime.strptime(str(radio.RadiopharmaceuticalStartDateTime)[:14], "%Y%m%d%H%M%S")
    series = datetime.strptime(ds.SeriesDate + str(ds.SeriesTime)[:6], "%Y%m%d%H%M%S")
    decay = 2.0 ** (-(series - injected).total_seconds() / float(radio.RadionuclideHalfLife))
    return float(ds.PatientWeight) * 1000.0 / (float(radio.RadionuclideTotalDose) * decay)


def test_true_suv_equals_value_from_dicom_headers_and_pixels(study, written):
    datasets = _sorted_datasets(written / "PET")
    first = datasets[0]
    assert (first.Units, first.DecayCorrection, first.CorrectedImage) == ("BQML", "START", ["DECY", "ATTN"])
    radio = first.RadiopharmaceuticalInformationSequence[0]
    assert radio.RadionuclideCodeSequence[0].CodeValue == "77004003"
    assert float(radio.RadionuclideHalfLife) == pytest.approx(6586.2)
    assert str(radio.RadiopharmaceuticalStartTime) == str(radio.RadiopharmaceuticalStartDateTime)[8:]
    factor = _suv_factor_from_headers(first)
    assert factor == pytest.approx(study.truth["pet"]["suvbw_factor"], rel=1e-12)
    checked = 0
    for region in study.truth["pet_regions"]:
        if region["suvbw"] <= 0 or region["interior_index_ijk"] is None:
            continue
        i, j, k = region["interior_index_ijk"]
        ds = datasets[k]
        value = float(ds.pixel_array[j, i]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert value * factor == pytest.approx(region["suvbw"], rel=1e-3), region["name"]
        assert region["activity_bq_per_ml"] * factor == pytest.approx(region["suvbw"], rel=1e-12)
        checked += 1
    names = {r["name"] for r in study.truth["pet_regions"]}
    assert {"lung", "muscle", "tumour_1", "tumour_2", "tumour_3"} <= names
    assert checked >= 8


def test_pet_blur_and_noise_keep_the_truth(study):
    blurred = make_petct(replace(SMALL, pet_blur_mm=6.0, pet_noise=0.1))
    assert blurred.truth["pet_regions"] == study.truth["pet_regions"]
    assert not np.array_equal(blurred.pet.array, study.pet.array)
    assert np.array_equal(blurred.ct.array, study.ct.array)


def test_ct_only_study_has_no_pet(tmp_path):
    result = make_ct(replace(SMALL, tumours=(), slices=8))
    files = write_study(result, tmp_path / "ct")
    assert result.pet is None and "pet_regions" not in result.truth
    assert files["PET"] == [] and not (tmp_path / "ct" / "PET").exists()
    with pytest.raises(OutputExistsError):
        write_study(result, tmp_path / "ct")
    assert len(write_study(result, tmp_path / "ct", overwrite=True)["CT"]) == 8


# -- command line and sample ---------------------------------------------------------------


def test_cli_writes_a_petct_study(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = [
        "phantom",
        "petct",
        "--out",
        str(out),
        "--seed",
        "7",
        "--size",
        "96",
        "--slices",
        "24",
        "--slice-thickness",
        "5",
        "--pet-size",
        "48",
        "--volumes",
        "12",
        "--locations",
        "chest-wall",
        "--solid-fractions",
        "0.3",
    ]
    assert cli_main(argv) == 0
    assert len(list((out / "CT").glob("*.dcm"))) == 24
    assert len(list((out / "PET").glob("*.dcm"))) == 24 * 5 // 4  # the PET covers the CT z range
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert [t["location"] for t in truth["tumours"]] == ["chest_wall"]
    assert truth["options"]["tumours"][0]["solid_fraction"] == 0.3
    assert "chest_wall" in capsys.readouterr().out
    assert cli_main(argv) == 2  # the study exists: a user error, not a traceback
    err = capsys.readouterr().err
    assert "already holds CT, PET, truth" in err and err.rstrip().endswith("on the command line: --force")


def test_cli_rejects_mismatched_lists(tmp_path, capsys):
    argv = ["phantom", "ct", "--out", str(tmp_path / "x"), "--tumours", "3", "--volumes", "5", "10"]
    assert cli_main(argv) == 2
    assert "--volumes" in capsys.readouterr().err


def test_cli_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        cli_main(["phantom", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--out",
        "--seed",
        "--tumours",
        "--volumes",
        "--shapes",
        "--locations",
        "--tumour-suv",
        "--solid-fractions",
        "--size",
        "--fov",
        "--slice-thickness",
        "--slices",
        "--z-extent",
        "--noise",
        "--blur",
        "--contrast",
        "--pet-size",
        "--pet-fov",
        "--pet-slice-thickness",
        "--pet-blur",
        "--pet-noise",
        "--weight",
        "--height",
        "--sex",
        "--dose",
        "--uptake",
        "--overwrite",
        "truth.json",
    ):
        assert option in text


def test_sample_zip_is_small_and_complete(tmp_path):
    path = sample_path()
    assert path.stat().st_size < 5 * 1024 * 1024
    out = extract_sample(tmp_path / "sample")
    assert list((out / "CT").glob("*.dcm")) and list((out / "PET").glob("*.dcm"))
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert 1 <= len(truth["tumours"]) <= 2
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "tumor_label.nrrd")))
    assert label.max() == len(truth["tumours"])


# -- the generic writer --------------------------------------------------------------------


def _study_info() -> StudyInfo:
    return StudyInfo(uid_from("test", "study"), uid_from("test", "for"), patient_weight_kg=70.0)


def test_writer_keeps_an_oblique_geometry(tmp_path):
    angle = np.deg2rad(20.0)
    direction = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    array = np.random.default_rng(0).integers(-1000, 1000, size=(5, 16, 20)).astype(np.int16)
    image = Image(array, (0.7, 0.9, 2.5), (-12.3, 45.6, -78.9), direction)
    write_series(image, tmp_path, modality="CT", study=_study_info())
    loaded = _read_series(tmp_path)
    assert np.allclose(loaded.GetOrigin(), image.origin, atol=1e-3)
    assert np.allclose(loaded.GetSpacing(), image.spacing, atol=1e-3)
    assert np.allclose(np.reshape(loaded.GetDirection(), (3, 3)), direction, atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(loaded), array)


def test_writer_pet_values_are_exact_to_the_quantisation(tmp_path):
    values = np.random.default_rng(1).uniform(0, 30000, size=(3, 8, 8))
    image = Image(values, (2.0, 2.0, 3.0))
    pet = PetInfo(injected_dose_bq=3.5e8, injection_datetime=datetime(2020, 1, 1, 8, 0, 0))
    when = datetime(2020, 1, 1, 9, 0)
    write_series(image, tmp_path, modality="PT", study=_study_info(), pet=pet, series=SeriesInfo(series_datetime=when))
    for k, ds in enumerate(_sorted_datasets(tmp_path)):
        restored = ds.pixel_array * float(ds.RescaleSlope)
        assert np.all(np.abs(restored - values[k]) <= 0.5 * float(ds.RescaleSlope) * (1 + 1e-9))


def test_writer_overrides_and_edit_callback(tmp_path):
    image = Image(np.zeros((3, 4, 4)), (1.0, 1.0, 2.0))
    seen = []
    paths = write_series(
        image,
        tmp_path,
        modality="CT",
        study={"study_instance_uid": uid_from("x"), "frame_of_reference_uid": uid_from("y")},
        edits=DatasetEdits(
            extra_tags={"SeriesDescription": "broken on purpose"},
            slice_overrides={1: {"ImagePositionPatient": None}, 2: {"SliceThickness": "7"}},
            edit=lambda ds, k: seen.append(k),
        ),
    )
    assert seen == [0, 1, 2]
    datasets = [pydicom.dcmread(p) for p in paths]
    assert all(ds.SeriesDescription == "broken on purpose" for ds in datasets)
    assert "ImagePositionPatient" not in datasets[1] and "ImagePositionPatient" in datasets[0]
    assert float(datasets[2].SliceThickness) == 7.0


def test_writer_user_errors(tmp_path):
    image = Image(np.zeros((2, 4, 4)))
    with pytest.raises(InputError, match="NotAKeyword"):
        write_series(
            image, tmp_path, modality="CT", study=_study_info(), edits=DatasetEdits(extra_tags={"NotAKeyword": 1})
        )
    with pytest.raises(InputError, match="PET"):
        write_series(image, tmp_path, modality="PT", study=_study_info())
    with pytest.raises(InputError, match="unknown field"):
        write_series(image, tmp_path, modality="CT", study={"study_uid": "1.2"})
    skewed = Image(np.zeros((2, 4, 4)), direction=np.array([[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(GeometryError):
        write_series(skewed, tmp_path, modality="CT", study=_study_info())
    assert issubclass(InputError, OncoQIError)
