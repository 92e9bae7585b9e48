"""oncoqi.lung.segment.network_pass: sparse first, dense around what the network saw, the same lesions."""

from __future__ import annotations

import numpy as np
import pytest

from oncoqi.image import Image
from oncoqi.lung.preprocess import PreprocessOptions, preprocess
from oncoqi.lung.segment import SEED_FRACTION, SPARSE_STEP_MM, first_pass_slices, network_pass, slice_step

SLICES, SIZE, THRESHOLD = 40, 32, 0.5


class KnownOutput:
    """A stand-in for :class:`~oncoqi.lung.onnx_model.OnnxSegmenter` whose output for slice k is ``truth[k]``.

    It records the slices it was asked for, so that a test sees which ran.
    """

    divisor, threshold = 16, THRESHOLD

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth
        self.asked: list[int] = []

    def predict(self, slices, batch_size=2, progress=None, cancel=None, *, indices):
        centre = indices[:, indices.shape[1] // 2]
        self.asked.extend(int(k) for k in centre)
        if progress is not None:
            progress(0, len(centre))
            progress(len(centre), len(centre))
        return self.truth[centre][:, : slices.shape[1], : slices.shape[2]]


@pytest.fixture
def scene():
    """A 1 mm CT of 40 slices; the search region on slices 2-37; a lesion on slices 20-24 with faint ends."""
    hu = np.random.default_rng(0).integers(-900, 100, size=(SLICES, SIZE, SIZE)).astype(np.int16)
    ct = Image(hu, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), {"modality": "CT", "units": "HU"})
    pre = preprocess(ct, PreprocessOptions(columns=SIZE, rows=SIZE))
    search = np.zeros(pre.array.shape, bool)
    search[2:38] = True
    truth = np.zeros(pre.array.shape, np.float32)
    truth[20:25, 10:20, 10:20] = 0.9
    truth[[19, 25], 12:18, 12:18] = 0.15  # below the threshold, above the seed
    truth[34, 0:2, 0:2] = 0.05  # below the seed, on a skipped slice: never seen
    return pre, search, truth


def test_the_first_pass_runs_every_step_and_the_last_slice():
    assert slice_step(1.0) == 6 and slice_step(2.0) == 3 and slice_step(5.0) == 1 and slice_step(1.0, 0.0) == 1
    np.testing.assert_array_equal(first_pass_slices(np.arange(2, 38), 6), [2, 8, 14, 20, 26, 32, 37])
    assert len(first_pass_slices(np.array([], int), 3)) == 0


def test_sparse_pass_skips_empty_slices_and_runs_around_what_it_saw(scene):
    pre, search, truth = scene
    model = KnownOutput(truth)
    reports = []
    probability, ran = network_pass(model, pre, search, lambda d, n: reports.append((d, n)))
    assert sorted(model.asked) == ran.tolist() and len(set(model.asked)) == len(model.asked)  # each slice once
    assert SPARSE_STEP_MM == 6.0 and SEED_FRACTION * THRESHOLD == pytest.approx(0.1)
    # first pass 2, 8, 14, 20, 26, 32, 37; slice 20 saw the lesion: 15-25; its faint ends 19 and 25: 14-30
    np.testing.assert_array_equal(ran, [2, 8, *range(14, 31), 32, 37])
    assert reports[0] == (0, 36) and reports[-1] == (36, 36)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    # every slice with a voxel at the threshold ran, so the lesions are the dense pass's
    dense_model = KnownOutput(truth)
    dense, dense_ran = network_pass(dense_model, pre, search, step_mm=0.0)
    np.testing.assert_array_equal(dense_ran, np.arange(2, 38))
    np.testing.assert_array_equal(probability.array >= THRESHOLD, dense.array >= THRESHOLD)
    assert probability.same_grid(dense)
    np.testing.assert_array_equal(probability.array[ran], dense.array[ran])
    assert not probability.array[34].any() and dense.array[34].any()  # slice 34 skipped


def test_a_lesion_between_first_pass_slices_is_found_from_its_faint_part(scene):
    """A lesion whose core lies only on skipped slices still runs, once a first-pass slice sees its edge."""
    pre, search, truth = scene
    truth[:] = 0
    truth[10:13, 5:9, 5:9] = 0.95  # slices 10-12, between first-pass slices 8 and 14
    truth[[8, 9, 13, 14], 6:8, 6:8] = 0.2
    probability, ran = network_pass(KnownOutput(truth), pre, search)
    assert {10, 11, 12} <= set(ran.tolist())
    np.testing.assert_array_equal(probability.array >= THRESHOLD, truth >= THRESHOLD)
