"""oncoqi.lung.preprocess: the network grid, the lung-window coding and the exact way back."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import SimpleITK as sitk

from oncoqi.errors import GeometryError
from oncoqi.image import Image
from oncoqi.lung import (
    EmptyVolumeError,
    NotCTError,
    PreprocessOptionError,
    PreprocessOptions,
    lung_window,
    preprocess,
)

SMALL = PreprocessOptions(columns=96, rows=80)
#: The module (``oncoqi.lung.preprocess`` is the function that oncoqi.lung exports).
preprocess_module = importlib.import_module("oncoqi.lung.preprocess")


def _rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


DIRECTIONS = {
    "identity": np.eye(3),
    "flipped_x_y": np.diag([-1.0, -1.0, 1.0]),  # as CTChest4.nrrd (RAS-style storage)
    "swapped_i_j": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),
    "feet_first": np.diag([1.0, 1.0, -1.0]),
    "oblique_20deg": _rotation_z(20.0),
}


def _ct(shape=(6, 24, 30), spacing=(3.0, 3.0, 2.5), direction=None, origin=(-40.0, -30.0, 100.0), seed=0):
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 400, size=shape).astype(np.int16)
    return Image(hu, spacing, origin, np.eye(3) if direction is None else direction, {"modality": "CT", "units": "HU"})


def test_network_grid_keeps_slices_and_centres_the_field_of_view():
    ct = _ct(shape=(5, 280, 300), spacing=(0.8, 0.8, 2.5))
    pre = preprocess(ct, SMALL)
    net = pre.image
    assert net.array.shape == (5, 80, 96) and net.array.dtype == np.uint8
    assert net.spacing == (1.0, 1.0, 2.5)
    np.testing.assert_allclose(net.direction, np.eye(3))
    centre_in = ct.index_to_lps((np.array(ct.size) - 1) / 2.0)
    centre_net = net.index_to_lps((np.array(net.size) - 1) / 2.0)
    np.testing.assert_allclose(centre_net, centre_in, atol=1e-9)
    # every slice plane is kept: same z for the same k
    for k in range(5):
        z_net, z_in = (image.index_to_lps(np.array([0.0, 0.0, k]))[2] for image in (net, ct))
        assert z_net == pytest.approx(z_in)
    assert pre.input_grid.size == ct.size


@pytest.mark.parametrize(
    ("slice_mm", "context_mm", "step"),
    [(2.5, 4.0, 2), (5.0, 4.0, 1), (1.0, 4.0, 4), (1.25, 4.0, 3), (3.0, 1.0, 1)],
)
def test_channel_indices_take_the_slices_nearest_the_context_distance(slice_mm, context_mm, step):
    ct = _ct(shape=(12, 24, 30), spacing=(3.0, 3.0, slice_mm))
    assert preprocess(ct, SMALL).channel_indices(np.array([0, 5])).tolist() == [[0], [5]]  # the slice alone
    pre = preprocess(ct, PreprocessOptions(columns=96, rows=80, context_mm=context_mm))
    assert pre.options.channels == 3
    got = pre.channel_indices(np.arange(12))
    assert got.shape == (12, 3)
    np.testing.assert_array_equal(got[:, 1], np.arange(12))
    # at least one slice away, the nearest to context_mm, clamped at the volume's ends
    np.testing.assert_array_equal(got[:, 0], np.maximum(np.arange(12) - step, 0))
    np.testing.assert_array_equal(got[:, 2], np.minimum(np.arange(12) + step, 11))


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_label_round_trip_is_exact_on_the_input_grid(name):
    """Input pixels coarser than 1 mm: network -> input with nearest neighbour gives back every voxel."""
    ct = _ct(direction=DIRECTIONS[name])
    rng = np.random.default_rng(1)
    label = ct.with_array(rng.integers(0, 4, size=ct.array.shape).astype(np.uint8))
    pre = preprocess(ct, PreprocessOptions(columns=128, rows=128))  # holds the rotated 90 x 72 mm input
    back = pre.to_input_grid(pre.to_network_grid(label))
    assert back.same_grid(ct, tol=1e-9)
    assert back.size == ct.size and back.spacing == ct.spacing and back.origin == ct.origin
    np.testing.assert_array_equal(back.direction, ct.direction)
    np.testing.assert_array_equal(back.array, label.array)
    assert back.array.dtype == np.uint8


def test_network_shows_the_patient_the_same_way_round_whatever_the_storage():
    """A voxel at the patient's left-back lands right-bottom in the network input, flipped storage or not."""
    codes = []
    for direction in (np.eye(3), np.diag([-1.0, -1.0, 1.0])):
        ct = _ct(shape=(2, 40, 40), spacing=(2.0, 2.0, 2.0), direction=direction, origin=(0.0, 0.0, 0.0))
        hu = np.full(ct.array.shape, -1000, dtype=np.int16)
        marker = ct.lps_to_index(ct.index_to_lps(np.array([19.5, 19.5, 0.0])) + np.array([21.0, 15.0, 0.0]))
        i, j = int(round(marker[0])), int(round(marker[1]))
        hu[:, j, i] = 100
        pre = preprocess(ct.with_array(hu, modality="CT", units="HU"), PreprocessOptions(columns=64, rows=64))
        rows, cols = np.nonzero(pre.array[0] > lung_window(np.array(-500.0)))
        codes.append((rows.mean(), cols.mean()))
        assert cols.mean() > 32 and rows.mean() > 32  # left of the patient = right of the picture, back = bottom
    np.testing.assert_allclose(codes[0], codes[1], atol=1e-9)


def test_lung_window_codes():
    hu = np.array([-3000.0, -1350.0, -600.0, 150.0, 2000.0])
    np.testing.assert_array_equal(lung_window(hu), [0, 0, 128, 255, 255])
    coarse = PreprocessOptions(levels=46)
    assert lung_window(np.array([-1350.0, 150.0]), coarse).tolist() == [0, 45]
    assert lung_window(hu).dtype == np.uint8


def test_small_field_of_view_is_padded_with_air_and_large_one_cropped():
    small = _ct(shape=(3, 50, 50), spacing=(1.0, 1.0, 2.0))
    tissue = np.full((3, 50, 50), 40, dtype=np.int16)
    tissue[:, 0, 0] = -1000
    pre = preprocess(small.with_array(tissue, modality="CT"), SMALL)
    air = lung_window(np.array(-1000.0))
    assert pre.array[0, 0, 0] == air and pre.array[0, -1, -1] == air
    assert pre.array[0, 40, 48] == lung_window(np.array(40.0))

    wide = _ct(shape=(2, 60, 60), spacing=(3.0, 3.0, 2.0))  # 180 mm > 96 x 80 mm
    label = wide.with_array(np.ones(wide.array.shape, dtype=np.uint8))
    pre = preprocess(wide, SMALL)
    back = pre.to_input_grid(pre.to_network_grid(label)).array
    assert back[0, 30, 30] == 1 and back[0, 0, 0] == 0  # outside the network's field of view
    covered_mm2 = back[0].sum() * 9.0
    assert covered_mm2 == pytest.approx(96 * 80, rel=0.1)


def test_probability_maps_back_linearly():
    ct = _ct(shape=(2, 30, 40), spacing=(0.7, 0.7, 2.0), origin=(-12.0, -9.0, 0.0))
    pre = preprocess(ct, SMALL)
    net_x = pre.image.index_to_lps(np.stack([np.arange(96.0), np.zeros(96), np.zeros(96)], axis=1))[:, 0]
    ramp = np.broadcast_to((0.01 * net_x).astype(np.float32), pre.array.shape)
    back = pre.to_input_grid(ramp, kind="probability")
    assert back.array.dtype == np.float32
    x_in = ct.index_to_lps(np.stack([np.arange(40.0), np.zeros(40), np.zeros(40)], axis=1))[:, 0]
    np.testing.assert_allclose(back.array[1, 7, :], 0.01 * x_in, atol=1e-5)


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
@pytest.mark.parametrize("kind", ["label", "probability"])
def test_resampling_slab_by_slab_gives_the_whole_volume_resampling(name, kind, monkeypatch):
    """The grids are resampled a slab at a time, each from the part of the source it reaches: the same values."""
    ct = _ct(shape=(6, 40, 50), spacing=(0.7, 0.8, 2.5), direction=DIRECTIONS[name])
    pre = preprocess(ct, PreprocessOptions(columns=96, rows=96))
    rng = np.random.default_rng(2)
    values = np.zeros(pre.array.shape, np.float32 if kind == "probability" else np.uint8)
    values[1:4, 30:45, 20:41] = rng.integers(1, 9, size=(3, 15, 21))  # inside the field of view
    values[5, 0:3, 90:96] = 7  # at the grid's corner
    grid = pre.input_grid
    whole = sitk.GetArrayFromImage(
        sitk.Resample(
            pre.network_grid.image(values).to_sitk(),
            grid.size,
            sitk.Transform(),
            sitk.sitkNearestNeighbor if kind == "label" else sitk.sitkLinear,
            grid.origin,
            grid.spacing,
            grid.direction,
            0.0,
            sitk.sitkUInt8 if kind == "label" else sitk.sitkFloat32,
        )
    )
    monkeypatch.setattr(preprocess_module, "RESAMPLE_SLAB", 2)  # 3 slabs on these 6 slices
    back = pre.to_input_grid(values, kind)
    assert back.array.dtype == whole.dtype and back.array.any()
    np.testing.assert_array_equal(back.array, whole)


def test_bad_input_is_refused_with_a_message():
    ct = _ct()
    with pytest.raises(NotCTError, match="modality is PT"):
        preprocess(ct.with_array(ct.array, modality="PT", units="BQML"))
    with pytest.raises(NotCTError, match="no voxel is below -500 HU"):
        preprocess(Image(np.abs(ct.array).astype(np.float32)))
    with pytest.raises(EmptyVolumeError, match="every voxel is 0"):
        preprocess(Image(np.zeros((4, 8, 8), dtype=np.int16)))
    sagittal = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(GeometryError, match="tilted 90 degrees"):
        preprocess(_ct(direction=sagittal))
    with pytest.raises(PreprocessOptionError, match="levels=300"):
        PreprocessOptions(levels=300)
    with pytest.raises(PreprocessOptionError, match="context_mm=-1"):
        PreprocessOptions(context_mm=-1.0)
    pre = preprocess(ct, SMALL)
    with pytest.raises(ValueError, match="not on the network grid"):
        pre.to_input_grid(np.zeros((1, 2, 3)))
