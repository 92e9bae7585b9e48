"""oncoqi.lung.isolate_lungs on synthetic thoraxes with exact truth, on real CT, and on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from helpers.datasets import lung1_ct_and_rtstruct, lung1_label
from oncoqi.dicom import read_image
from oncoqi.errors import GeometryError
from oncoqi.image import Image
from oncoqi.lung import EmptyVolumeError, LungNotFoundError, NotCTError, isolate_lungs, write_lung_qc
from oncoqi.lung.qc import LUNG_COLOUR, REFERENCE_COLOUR, SEARCH_COLOUR
from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct
from oncoqi.phantom.tissues import Tissue

#: Small phantoms (160 x 160 pixels) of the situations the isolation must handle.
CASES = {
    "thorax": PhantomOptions(seed=101, size=160, slices=70, slice_thickness_mm=4.0),
    "whole_body_like": PhantomOptions(seed=102, size=160, fov_mm=480.0, slices=150, slice_thickness_mm=5.0),
    "narrow_fov": PhantomOptions(seed=103, size=160, fov_mm=290.0, slices=60, slice_thickness_mm=5.0),
    "cut_through_lungs": PhantomOptions(seed=104, size=160, slices=20, slice_thickness_mm=3.0),
}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def studies():
    return {name: make_ct(options) for name, options in CASES.items()}


@pytest.fixture(scope="module")
def isolated(studies):
    return {name: isolate_lungs(study.ct) for name, study in studies.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tight_lungs_match_the_phantom_truth(studies, isolated, name):
    truth = studies[name].lung_mask.array
    lungs = isolated[name].lungs.array
    assert dice(lungs, truth) >= 0.95
    assert dice(lungs == 1, truth == 1) >= 0.9  # 1 = right
    assert dice(lungs == 2, truth == 2) >= 0.9  # 2 = left
    search = isolated[name].search_region.array.astype(bool)
    assert (search & (truth > 0)).sum() >= 0.99 * (truth > 0).sum()
    assert not (lungs.astype(bool) & ~search).any()


def test_body_couch_and_spine_on_the_phantom(studies, isolated):
    study, masks = studies["thorax"], isolated["thorax"]
    tissue = study.tissue.array
    couch_shell = tissue == Tissue.COUCH_SHELL
    assert (masks.couch.array.astype(bool) & couch_shell).sum() >= 0.95 * couch_shell.sum()
    assert not (masks.body.array.astype(bool) & couch_shell).sum() > 0.05 * couch_shell.sum()
    assert masks.body.array[study.lung_mask.array > 0].all()
    # the phantom's spine stands at x = 0, straight up
    first, last = masks.lung_slices
    assert masks.spine_detected[first : last + 1].all()
    pixel = study.ct.spacing[0]
    np.testing.assert_allclose(masks.spine_lps[first : last + 1, 0], 0.0, atol=pixel)


def test_result_does_not_depend_on_how_the_ct_is_stored(studies, isolated):
    """The same CT stored with flipped i and j axes (as CTChest4.nrrd) gives the same masks."""
    ct = studies["thorax"].ct
    n = np.array(ct.size) - 1
    flipped = Image(
        ct.array[:, ::-1, ::-1].copy(),
        ct.spacing,
        tuple(ct.index_to_lps(np.array([n[0], n[1], 0]))),
        np.diag([-1.0, -1.0, 1.0]),
        dict(ct.metadata),
    )
    masks = isolate_lungs(flipped)
    np.testing.assert_array_equal(masks.lungs.array[:, ::-1, ::-1], isolated["thorax"].lungs.array)
    np.testing.assert_array_equal(masks.search_region.array[:, ::-1, ::-1], isolated["thorax"].search_region.array)
    np.testing.assert_allclose(masks.spine_lps, isolated["thorax"].spine_lps, atol=1e-6)


def test_large_tumours_are_in_the_search_region():
    """200 ml chest-wall and 120 ml mediastinal tumours lie mostly in the search region.

    The search region is the aerated lung and its mirror image, dilated by 5 mm: a large tumour
    is covered where the other lung's mirror image reaches it. Measured on seeds 105-109 (ten
    tumours): six 1.0, then 0.913 (mediastinal, in front of the hilum), 0.857 and 0.789 (chest
    wall) and 0.424: a 120 ml tumour against the right heart border, at the level where the
    heart pushes the left lung aside, so its mirror image does not reach the tumour's medial
    part. That is a limit of the mirror (the model card says so); this test keeps it from
    growing.
    """
    coverage = []
    for seed in range(105, 110):
        options = PhantomOptions(
            seed=seed,
            size=160,
            slices=70,
            slice_thickness_mm=4.0,
            tumours=(
                TumourSpec(volume_ml=200.0, location="chest_wall"),
                TumourSpec(volume_ml=120.0, location="mediastinum"),
            ),
        )
        study = make_ct(options)
        masks = isolate_lungs(study.ct)
        search = masks.search_region.array.astype(bool)
        for label in (1, 2):
            tumour = study.tumour_label.array == label
            coverage.append((search & tumour).sum() / tumour.sum())
        aerated = np.where(study.tumour_label.array > 0, 0, study.lung_mask.array)  # the tumours are not air
        assert dice(masks.lungs.array, aerated) >= 0.95
    assert np.median(coverage) >= 0.99
    assert sum(c >= 0.98 for c in coverage) >= 6 and sum(c >= 0.75 for c in coverage) >= 9


def test_collapsed_lung_is_mostly_in_the_search_region():
    """The lower 60 % of the right lung made airless (atelectasis at soft-tissue HU)."""
    study = make_ct(PhantomOptions(seed=21, size=160, slices=70, slice_thickness_mm=4.0, tumours=()))
    right = study.lung_mask.array == 1
    k = np.flatnonzero(right.any(axis=(1, 2)))
    collapsed = right & (np.arange(right.shape[0])[:, None, None] <= k[0] + int(0.6 * (k[-1] - k[0])))
    hu = study.ct.array.copy()
    hu[collapsed] = 40
    masks = isolate_lungs(study.ct.with_array(hu, modality="CT", units="HU"))
    assert not (masks.lungs.array.astype(bool) & collapsed).any()
    covered = (masks.search_region.array.astype(bool) & collapsed).sum() / collapsed.sum()
    assert covered >= 0.75  # measured 0.80: the heart makes the left lung's mirror image narrower


def _slab(ct: Image, first: int, stop: int) -> Image:
    origin = tuple(ct.index_to_lps(np.array([0.0, 0.0, first])))
    return Image(ct.array[first:stop].copy(), ct.spacing, origin, ct.direction, dict(ct.metadata))


def test_ct_without_lungs_is_reported(studies):
    study = studies["whole_body_like"]
    lung_slices = np.flatnonzero(study.lung_mask.array.any(axis=(1, 2)))
    abdomen = _slab(study.ct, 0, lung_slices[0])
    neck = _slab(study.ct, lung_slices[-1] + 1, study.ct.array.shape[0])
    assert abdomen.array.shape[0] >= 10 and neck.array.shape[0] >= 10
    for slab in (abdomen, neck):
        with pytest.raises(LungNotFoundError, match="no lungs found"):
            isolate_lungs(slab, name="slab")

    # a water cylinder holding a 180 ml gas bubble: air inside the body, but gas, not lung
    z, y, x = np.mgrid[-40:40:4.0, -150:150:2.0, -150:150:2.0]
    hu = np.where(x**2 + y**2 < 120.0**2, 0, -1000).astype(np.int16)
    hu[x**2 + y**2 + z**2 < 35.0**2] = -1000
    bottle = Image(hu, (2.0, 2.0, 4.0), (-150.0, -150.0, -40.0), np.eye(3), {"modality": "CT"})
    with pytest.raises(LungNotFoundError, match=r"gas, not lung"):
        isolate_lungs(bottle, name="bottle")


def test_bad_input_is_refused_with_a_message():
    hu = np.full((6, 32, 32), -1000, dtype=np.int16)
    hu[:, 8:24, 8:24] = 40
    with pytest.raises(NotCTError, match="modality is PT"):
        isolate_lungs(Image(hu, metadata={"modality": "PT", "units": "BQML"}))
    with pytest.raises(NotCTError, match="no voxel is below -500 HU"):
        isolate_lungs(Image((hu + 1000).astype(np.float32)))  # e.g. a PET in Bq/ml without metadata
    with pytest.raises(EmptyVolumeError, match="every voxel is -1000"):
        isolate_lungs(Image(np.full((6, 32, 32), -1000, dtype=np.int16)))
    with pytest.raises(GeometryError, match="not axial|tilted"):
        isolate_lungs(Image(hu, direction=np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])))
    with pytest.raises(LungNotFoundError, match="no lungs found"):
        isolate_lungs(Image(hu, metadata={"modality": "CT"}))


def _colour_pixels(png: PILImage.Image, colour: tuple[int, int, int]) -> int:
    return int(np.all(np.asarray(png.convert("RGB")) == colour, axis=-1).sum())


def test_lung1_lungs_match_the_expert_contours(tmp_path):
    """Validation bar: Dice >= 0.95 against LUNG1-001's Lung-Left + Lung-Right (RTSTRUCT).

    The CT and the contours' labels are read once per session (``test_dicom_rtstruct`` checks them)."""
    ct, _ = lung1_ct_and_rtstruct()
    masks = isolate_lungs(ct, name="LUNG1-001")
    reference = lung1_label("Lung-Right", "Lung-Left")
    assert dice(masks.lungs.array, reference.array) >= 0.95  # measured 0.968
    assert dice(masks.lungs.array == 1, reference.array == 1) >= 0.95
    assert dice(masks.lungs.array == 2, reference.array == 2) >= 0.95
    gtv = lung1_label("GTV-1").array.astype(bool)
    assert (masks.search_region.array.astype(bool) & gtv).sum() >= 0.95 * gtv.sum()  # measured 0.995
    png = PILImage.open(write_lung_qc(ct, masks, tmp_path / "lung1.png", reference=reference))
    assert _colour_pixels(png, REFERENCE_COLOUR) > 500


def test_ctchest4_lungs_are_isolated(tmp_path):
    """slicerio's real chest CT (128 x 128 x 34, 3 x 3 x 10 mm, stored with flipped axes)."""
    slicerio = pytest.importorskip("slicerio", reason="slicerio (PyPI) ships CTChest4.nrrd; pip install slicerio")
    ct = read_image(slicerio.get_testdata_file("CTChest4.nrrd"))
    masks = isolate_lungs(ct, name="CTChest4")
    # slicerio's sample segmentation of the same CT: segments 'right lung' (5) and 'left lung' (6)
    segmentation = slicerio.read_segmentation(slicerio.get_testdata_file("Segmentation.seg.nrrd"))
    names = {s["name"]: s["labelValue"] for s in segmentation["segments"]}
    reference = np.transpose(segmentation["voxels"], (2, 1, 0))  # [i, j, k] -> [k, j, i]
    assert dice(masks.lungs.array == 1, reference == names["right lung"]) >= 0.95  # measured 0.986
    assert dice(masks.lungs.array == 2, reference == names["left lung"]) >= 0.9  # measured 0.962
    assert (masks.couch.array > 0).sum() > 1000  # the couch is seen, and kept out of the body
    png = PILImage.open(write_lung_qc(ct, masks, tmp_path / "ctchest4.png", title="CTChest4"))
    assert png.size[1] > 300
    assert _colour_pixels(png, LUNG_COLOUR) > 500 and _colour_pixels(png, SEARCH_COLOUR) > 500
