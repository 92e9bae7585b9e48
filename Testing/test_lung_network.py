"""The tumour network: Keras U-Net, ONNX export and inference, the segment pipeline and training.

Tests that need TensorFlow (training, Keras and its export) skip when it is absent (the ``train``
extra); the inference tests need only onnxruntime and use a hand-built ONNX graph whose output
is known exactly (``codes / 255``), so that they check the pipeline's plumbing and geometry, not
a model's accuracy.
"""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
import threading
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from helpers.lung import IDENTITY_THRESHOLD, SMALL_GRID, small_identity_model
from helpers.sr_validator import pixelmed_findings
from oncoqi.cli import main
from oncoqi.lung.preprocess import PreprocessOptions, preprocess
from oncoqi.lung.training.data import AugmentOptions, TrainingError, augment_slice, load_cases
from oncoqi.lung.training.train import cosine_learning_rate, dice_weight
from oncoqi.phantom import PhantomOptions, make_ct, write_study

ort = pytest.importorskip("onnxruntime", reason="onnxruntime (a core dependency) is not installed")

LESION_KEYS = {"label", "volume_ml", "recist_mm", "perpendicular_mm", "centroid_lps_mm", "side", "confidence"}


@pytest.fixture(scope="module")
def phantom():
    # 350 mm of thorax at 5 mm: slices above and below the lungs, which the network must skip
    return make_ct(PhantomOptions(seed=11, size=128, slices=70, slice_thickness_mm=5.0))


# --- no TensorFlow needed -------------------------------------------------------------------


def test_core_imports_without_tensorflow():
    code = (
        "import sys, oncoqi.lung, oncoqi.lung.segment, oncoqi.lung.training.train, oncoqi.cli; "
        "oncoqi.cli.build_parser(); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_dice_weight_schedule_and_cosine_learning_rate():
    assert dice_weight(0, 1.0, 0.5, 10) == 1.0
    assert dice_weight(5, 1.0, 0.5, 10) == pytest.approx(0.75)
    assert dice_weight(10, 1.0, 0.5, 10) == 0.5 and dice_weight(30, 1.0, 0.5, 10) == 0.5
    assert dice_weight(0, 1.0, 0.2, 0) == 0.2
    assert cosine_learning_rate(0, 100, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert cosine_learning_rate(50, 100, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_learning_rate(100, 100, 1e-3, 1e-5) == pytest.approx(1e-5)


def test_augmentation_moves_image_and_mask_together():
    yy, xx = np.mgrid[:64, :64]
    mask = ((yy - 20) ** 2 + (xx - 40) ** 2 <= 64).astype(np.uint8)
    image = (10 + 200 * mask).astype(np.uint8)
    rng = np.random.default_rng(1)
    assert augment_slice(image, mask, rng, AugmentOptions(p_rotation=0, p_shift=0, p_zoom=0), 0)[0] is image
    forced = AugmentOptions(rotation_deg=25, p_rotation=1.0, shift_fraction=0.12, p_shift=1.0, p_zoom=1.0)
    moved = 0
    for _ in range(10):
        img, msk = augment_slice(image, mask, rng, forced, fill=59)
        assert set(np.unique(msk)) <= {0, 1}
        assert abs(int(msk.sum()) - int(mask.sum())) <= 0.2 * mask.sum()  # zoom <= 3 %, edge effects
        assert img[msk == 1].mean() > 150  # the lesion's pixels moved with its mask
        moved += int(not np.array_equal(msk, mask))
    assert moved >= 9
    # Neighbouring-slice channels move exactly as the slice alone would, with the same draws.
    stack = np.stack([image, 255 - image, image // 2], axis=-1)
    img3, msk3 = augment_slice(stack, mask, np.random.default_rng(7), forced, fill=59)
    for c in range(3):
        img1, msk1 = augment_slice(stack[..., c], mask, np.random.default_rng(7), forced, fill=59)
        np.testing.assert_array_equal(img3[..., c], img1)
        np.testing.assert_array_equal(msk3, msk1)


def test_left_right_flip_mirrors_crop_and_mask_and_is_off_by_default():
    from oncoqi.lung.training.data import SliceSet, sample_crop

    yy, xx = np.mgrid[:96, :96]
    mask = ((yy - 40) ** 2 + (xx - 30) ** 2 <= 100).astype(np.uint8)[None]  # a lesion left of centre
    images = np.stack([10 + 200 * mask, 5 + 100 * mask, 20 + 30 * mask], axis=-1).astype(np.uint8)
    slices = SliceSet(images, mask, np.ones_like(mask))
    still = AugmentOptions(p_rotation=0, p_shift=0, p_zoom=0, p_reverse_channels=0)
    assert AugmentOptions().p_flip == 0.0  # the published recipe has no flip
    plain = sample_crop(slices, 0, np.random.default_rng(3), still, 0, 64, 1.0)
    flipped = sample_crop(slices, 0, np.random.default_rng(3), replace(still, p_flip=1.0), 0, 64, 1.0)
    assert plain[1].any()
    for a, b in zip(plain, flipped):  # same crop, mirrored: image channels and mask alike
        np.testing.assert_array_equal(b, a[:, ::-1])
    half = replace(still, p_flip=0.5)
    rng = np.random.default_rng(4)
    mirrored = sum(not np.array_equal(sample_crop(slices, 0, rng, half, 0, 96, 1.0)[1], mask[0]) for _ in range(200))
    assert 70 <= mirrored <= 130


def test_load_cases_reads_phantom_study_folders_and_volume_pairs(tmp_path, phantom):
    write_study(phantom, tmp_path / "cases" / "a")  # CT/ DICOM + truth/tumor_label.nrrd
    pair = tmp_path / "cases" / "b"
    pair.mkdir()
    sitk.WriteImage(phantom.ct.to_sitk(), str(pair / "image.nii.gz"))
    # a label on a coarser grid than the CT is resampled onto the CT's grid
    coarse = sitk.Resample(
        phantom.tumour_label.to_sitk(),
        [64, 64, 70],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        phantom.ct.origin,
        (phantom.ct.spacing[0] * 2, phantom.ct.spacing[1] * 2, 5.0),
        phantom.ct.direction.ravel().tolist(),
    )
    sitk.WriteImage(coarse, str(pair / "label.nrrd"))
    cases = load_cases(tmp_path / "cases")
    assert [c.name for c in cases] == ["a", "b"]
    np.testing.assert_array_equal(cases[0].ct.array, phantom.ct.array)
    np.testing.assert_array_equal(cases[0].label.array, phantom.tumour_label.array)
    np.testing.assert_array_equal(cases[1].ct.array, phantom.ct.array)
    assert cases[1].label.same_grid(phantom.ct)
    a, b = cases[1].label.array > 0, phantom.tumour_label.array > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.7  # the coarse label, back on the fine grid
    (tmp_path / "cases" / "c").mkdir()
    with pytest.raises(TrainingError, match="found 0"):
        load_cases(tmp_path / "cases")


def test_case_slices_draw_the_asked_number_of_tumour_free_slices(phantom):
    from oncoqi.lung.training.data import Case, SliceOptions, case_slices

    case = Case("p", phantom.ct, phantom.tumour_label)
    grid = PreprocessOptions(pixel_mm=6.0, columns=64, rows=64)
    counts = {}
    for ratio, minimum in ((0.5, 2), (1.0, 2), (0.0, 5)):
        slices = case_slices(case, SliceOptions(grid, ratio, minimum, randomise=False), np.random.default_rng(0))
        tumour = int(slices.positives.size)
        counts[ratio, minimum] = (tumour, len(slices) - tumour)
    tumour = counts[0.5, 2][0]
    assert tumour > 4 and {k: v[0] for k, v in counts.items()} == dict.fromkeys(counts, tumour)
    assert counts[0.5, 2][1] == max(round(0.5 * tumour), 2) and counts[1.0, 2][1] == tumour
    assert counts[0.0, 5][1] == 5  # the per-case minimum (the phantom has more tumour-free lung slices)
    with pytest.raises(TrainingError, match="negative_ratio and min_negatives must be >= 0"):
        SliceOptions(grid, -0.5)


def test_segmenter_progress_and_cancel(tmp_path):
    from oncoqi.errors import Cancelled
    from oncoqi.lung.onnx_model import OnnxSegmenter

    seg = OnnxSegmenter(small_identity_model(tmp_path / "id.onnx"), threads=1)
    assert seg.preprocess_options == SMALL_GRID and seg.threshold == IDENTITY_THRESHOLD
    slices = np.random.default_rng(0).integers(0, 256, (10, 32, 32)).astype(np.uint8)
    calls = []
    prob = seg.predict(slices, batch_size=3, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(0, 10), (3, 10), (6, 10), (9, 10), (10, 10)]
    np.testing.assert_allclose(prob, slices / 255.0, atol=1e-6)

    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 4:
            cancel.set()

    with pytest.raises(Cancelled, match="after 4 of 10"):
        seg.predict(slices, batch_size=2, progress=progress, cancel=cancel)
    assert seen == [0, 2, 4]


def test_segmenter_rejects_missing_and_bad_models(tmp_path):
    from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter

    with pytest.raises(ModelError, match="no such model file"):
        OnnxSegmenter(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxSegmenter(bad)
    with OnnxSegmenter(small_identity_model(tmp_path / "id.onnx")) as seg:
        with pytest.raises(ModelError, match="not multiples of 16"):
            seg.predict(np.zeros((1, 40, 40), np.uint8))
        assert seg.predict(np.zeros((1, 16, 16), np.uint8)).shape == (1, 16, 16)
    with pytest.raises(ModelError, match="closed"):
        seg.predict(np.zeros((1, 16, 16), np.uint8))


def test_segment_ct_outputs_on_the_input_grid(tmp_path, phantom):
    from oncoqi.lung.segment import segment_ct

    ct = phantom.ct
    model = small_identity_model(tmp_path / "id.onnx")
    done = []
    result = segment_ct(ct, model, threads=1, progress=lambda d, n: done.append((d, n)))
    for image in (result.labels, result.lungs, result.probability):
        assert image.same_grid(ct) and image.array.shape == ct.array.shape
    # the network ran exactly on the slices meeting the search region, and the probability
    # is the known model output there, mapped back: 0 on the other slices
    search = result.masks.search_region.array.any(axis=(1, 2))
    assert done[-1] == (len(result.slices_run), len(result.slices_run)) and len(result.slices_run) < ct.array.shape[0]
    assert not result.probability.array[~search].any()
    pre = preprocess(ct, SMALL_GRID)
    expected = pre.to_input_grid(pre.array / np.float32(255.0), "probability").array
    np.testing.assert_allclose(result.probability.array[search], expected[search], atol=1e-5)
    # lesions: inside the search region, above the threshold, label 1 the largest undoubted one
    labels = result.labels.array
    assert labels.max() == len(result.lesions) >= 1
    assert not labels[result.masks.search_region.array == 0].any()
    assert (result.probability.array[labels > 0] >= IDENTITY_THRESHOLD).all()
    order = [(bool(lesion.doubts), -lesion.volume_ml) for lesion in result.lesions]
    assert order == sorted(order) and [lesion.label for lesion in result.lesions] == list(range(1, labels.max() + 1))
    assert all(IDENTITY_THRESHOLD <= lesion.confidence <= 1.0 for lesion in result.lesions)


def test_segment_cli_writes_outputs_on_the_input_grid(tmp_path, phantom):
    study = tmp_path / "study"
    write_study(phantom, study)
    model = small_identity_model(tmp_path / "id.onnx")
    out = tmp_path / "out"
    assert main(["lung", "segment", str(study / "CT"), "--out", str(out), "--model", str(model), "--threads", "1"]) == 0
    reference = sitk.ReadImage(str(study / "truth" / "tumor_label.nrrd"))
    for name in ("tumor_label.nrrd", "lung_mask.nrrd"):
        image = sitk.ReadImage(str(out / name))
        assert image.GetSize() == reference.GetSize()
        np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)
    records = json.loads((out / "lesions.json").read_text())
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "tumor_label.nrrd")))
    assert [r["label"] for r in records] == list(range(1, labels.max() + 1))
    assert records and all(LESION_KEYS <= set(r) for r in records)
    assert all(r["side"] in ("left", "right", "both") for r in records)


def test_segment_cli_report_writes_seg_and_sr_and_refuses_volume_input(tmp_path, capsys):
    # A 64-pixel, 20-slice phantom on which the known-output model, with its threshold at 0.8, finds
    # 3 lesions (the tumour as GTV-1, 2 doubtful), not the 20 of the module's phantom: pixelmed's
    # check of the SR grows faster than its lesion count (measured 10 s of CPU for 3 lesions, 16 s
    # for 6, 37 s for 16, 240 s for 57), and the report is written three times.
    study = tmp_path / "study"
    write_study(make_ct(PhantomOptions(seed=4, size=64, slices=20, slice_thickness_mm=5.0)), study)
    model = small_identity_model(tmp_path / "id.onnx", threshold=0.8)
    report = tmp_path / "report"
    args = [
        "lung",
        "segment",
        str(study / "CT"),
        "--out",
        str(tmp_path / "out"),
        "--model",
        str(model),
        "--threads",
        "1",
        "--report",
        str(report),
    ]
    assert main(args) == 0
    n_lesions = len(json.loads((tmp_path / "out" / "lesions.json").read_text()))
    from oncoqi.dicom.seg import read_segmentation

    seg = read_segmentation(report / "seg.dcm")
    assert n_lesions > 1  # more than one measurement group in the SR that pixelmed checks
    assert [s.label for s in seg.metadata.segments][:1] == ["GTV-1"] and len(seg.metadata.segments) == n_lesions
    errors, warnings = pixelmed_findings(report / "sr.dcm")
    assert (errors, warnings) == ([], [])
    assert main(args) == 2 and "already holds tumor_label.nrrd" in capsys.readouterr().err  # not without --force
    assert main([*args, "--force"]) == 0
    assert main([*args[:-2], "--dicom-seg", "--force"]) == 0 and (tmp_path / "out" / "seg.dcm").is_file()
    volume_input = [
        "lung",
        "segment",
        str(study / "truth" / "tumor_label.nrrd"),
        "--out",
        str(tmp_path / "o2"),
        "--model",
        str(model),
        "--report",
        str(tmp_path / "r2"),
    ]
    assert main(volume_input) == 2 and "--report needs the CT as a DICOM series" in capsys.readouterr().err


def test_segment_cli_without_a_model_says_so(tmp_path, phantom, monkeypatch, capsys):
    from oncoqi.lung import segment

    monkeypatch.setattr(segment, "default_model_path", lambda: tmp_path / "absent" / "lung_unet.onnx")
    volume = tmp_path / "ct.nrrd"
    sitk.WriteImage(phantom.ct.to_sitk(), str(volume))
    assert main(["lung", "segment", str(volume), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no trained model:" in err and "lung_unet.onnx is missing from this installation" in err
    assert not (tmp_path / "out").exists()


# --- TensorFlow needed ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow", reason="TensorFlow (the 'train' extra) is not installed")
    pytest.importorskip("tf2onnx", reason="tf2onnx (the 'train' extra) is not installed")
    from oncoqi.lung.training.unet import import_keras

    return import_keras()


def test_default_unet_shape_and_size(keras):
    from oncoqi.lung.training.unet import UNetOptions, build_unet

    model = build_unet()
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.name for d in dropouts] == ["down3_dropout", "down4_dropout"] and all(d.rate == 0.5 for d in dropouts)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.activation.__name__ == "elu" for c in convs[:-1]) and convs[-1].activation.__name__ == "sigmoid"
    assert model.count_params() * 4 <= 50e6
    assert UNetOptions().divisor == 16


@pytest.mark.parametrize("context_mm", [0.0, 3.0])
def test_keras_and_onnx_agree(tmp_path, keras, context_mm):
    from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter, model_metadata
    from oncoqi.lung.training.unet import UNetOptions, build_unet, export_onnx

    options = UNetOptions(base_filters=8, depth=3)
    grid = PreprocessOptions(columns=64, rows=64, context_mm=context_mm)
    model = build_unet(options, seed=3, channels=grid.channels)
    path = export_onnx(model, tmp_path / "net.onnx", model_metadata(grid, 0.6, options, options.divisor))
    seg = OnnxSegmenter(path, threads=1)
    assert seg.preprocess_options == grid and seg.threshold == 0.6 and seg.divisor == 8
    assert seg.channels == grid.channels
    rng = np.random.default_rng(0)
    for shape in ((5, 64, 64), (4, 48, 80)):  # the graph is fully convolutional
        codes = rng.integers(0, 256, shape).astype(np.uint8)
        # Each input: the slice alone, or (below, slice, above) with clamping at the ends.
        indices = np.array([[max(i - 1, 0), i, min(i + 1, shape[0] - 1)] for i in range(shape[0])])
        indices = indices[:, 1:2] if grid.channels == 1 else indices
        stacked = np.moveaxis(codes[indices], 1, -1).astype(np.float32)
        expected = model(stacked, training=False).numpy()[..., 0]
        got = seg.predict(codes, batch_size=2, indices=indices)
        assert got.shape == shape and np.abs(got - expected).max() <= 1e-4
        assert 0.0 < got.min() and got.max() < 1.0 and got.std() > 0  # a real, non-constant output
    if grid.channels == 3:
        with pytest.raises(ModelError, match="takes 3 slice"):
            seg.predict(codes)  # a multi-slice model needs to be told the neighbours


# Keras' own weight saving trips NumPy 2's copy-keyword deprecation; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_train_cli_on_tiny_phantoms(tmp_path, keras, capsys, phantom):
    from oncoqi.lung.onnx_model import OnnxSegmenter
    from oncoqi.lung.segment import segment_ct
    from oncoqi.lung.training.train import LOG_COLUMNS

    out = tmp_path / "run"
    argv = [
        "lung",
        "train",
        "--phantoms",
        "2",
        "--seed",
        "3",
        "--phantom-size",
        "64",
        "--epochs",
        "2",
        "--base-filters",
        "4",
        "--depth",
        "2",
        "--grid",
        "64",
        "--pixel-mm",
        "6",
        "--batch-size",
        "8",
        "--crop",
        "32",
        "--steps-per-epoch",
        "3",
        "--workers",
        "2",
        "--context-mm",
        "4",
        "--negative-ratio",
        "1",
        "--min-negatives",
        "3",
        "--tumour-fraction",
        "0.3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "best validation Dice" in capsys.readouterr().out
    with open(out / "training_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == LOG_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[0]["dice_weight"]) == 1.0 and float(rows[1]["learning_rate"]) < float(rows[0]["learning_rate"])
    assert rows[0]["best"] == "1"
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "best.weights.h5").is_file()
    seg = OnnxSegmenter(out / "lung_unet.onnx", threads=1)
    # The neighbouring-slice network: the model says so, and takes three slices per input.
    assert seg.preprocess_options == PreprocessOptions(pixel_mm=6.0, columns=64, rows=64, context_mm=4.0)
    assert seg.channels == 3
    assert "best epoch" in seg.metadata["oncoqi.training"]
    assert (
        "; trained on " in seg.metadata["oncoqi.training"]
        and "synthetic phantoms of set seed" in seg.metadata["oncoqi.training"]
    )
    prob = seg.predict(np.full((3, 64, 64), 59, np.uint8), indices=[[0, 1, 2]])
    assert prob.shape == (1, 64, 64) and np.isfinite(prob).all()
    # The whole pipeline runs the neighbouring-slice model (stacks built per batch) on a CT's grid.
    result = segment_ct(phantom.ct, out / "lung_unet.onnx", threads=1)
    assert result.labels.same_grid(phantom.ct) and result.probability.same_grid(phantom.ct)
    assert np.isfinite(result.probability.array).all() and result.probability.array.max() > 0
    # Fine-tuning starts from that network and says so in the new model.
    tuned = tmp_path / "tuned"
    argv[argv.index("--epochs") + 1] = "1"
    argv[argv.index("--out") + 1] = str(tuned)
    assert main([*argv, "--init-from", str(out / "lung_unet.onnx")]) == 0
    assert f"initial weights from {out / 'lung_unet.onnx'}" in capsys.readouterr().out
    note = OnnxSegmenter(tuned / "lung_unet.onnx", threads=1).metadata["oncoqi.training"]
    assert note.startswith("best epoch 1 of 1") and "fine-tuned from lung_unet.onnx (SHA-256 " in note


def test_wide_geometry_adds_thick_slices_and_coarse_matrices_to_training_phantoms_only():
    from oncoqi.lung.training.data import SLICE_THICKNESSES, THICK_SLICES, phantom_case

    def geometry(index: int, wide: bool) -> tuple[float, int]:
        ct = phantom_case(7, index, size=64, z_mm=120.0, wide_geometry=wide).ct
        return round(float(ct.spacing[2]), 2), int(ct.array.shape[1])

    test_set = [geometry(i, False) for i in range(10)]
    training = [geometry(i, True) for i in range(12)]
    assert {t for t, _ in test_set} <= set(SLICE_THICKNESSES) and {n for _, n in test_set} == {64}
    assert {t for t, _ in training} & set(THICK_SLICES), training  # 2 of 8 choices: P(none in 12) ~ 3 %
    assert {n for _, n in training} == {64, 38}, training  # 0.6 x 64, rounded to even


def test_subsolid_share_makes_training_tumours_part_solid_or_ground_glass():
    from oncoqi.lung.training.data import phantom_case

    solid, subsolid = [], []
    for index in range(6):
        plain, hazy = (phantom_case(11, index, size=64, z_mm=120.0, subsolid=share) for share in (0.0, 1.0))
        assert np.array_equal(plain.label.array, hazy.label.array)  # the same case, only the density differs
        inside = plain.label.array > 0
        if inside.any():
            solid.append(float(np.median(plain.ct.array[inside])))
            subsolid.append(float(np.median(hazy.ct.array[inside])))
    assert solid and min(solid) > -100 and min(subsolid) < -400, (solid, subsolid)
    assert all(hazy < plain - 100 for plain, hazy in zip(solid, subsolid)), (solid, subsolid)


@functools.cache
def _plain_case(index: int) -> Any:
    from oncoqi.lung.training.data import phantom_case

    return phantom_case(11, index, size=64, z_mm=200.0)


def training_case(index: int, **share: float) -> Any:
    """``phantom_case(11, index, size=64, z_mm=200.0, **share)``, the plain case (share 0, the default) made
    once: the large- and hard-share tests below both compare their cases with the same plain ones."""
    if not any(share.values()):
        return _plain_case(index)
    from oncoqi.lung.training.data import phantom_case

    return phantom_case(11, index, size=64, z_mm=200.0, **share)


def test_large_share_draws_training_tumours_the_size_of_primary_nsclc():
    from oncoqi.lung.training.data import LARGE_TUMOUR_ML

    def volumes(case):
        counts = np.bincount(case.label.array.ravel())[1:]
        return list(counts[counts > 0] * np.prod(case.label.spacing) / 1000.0)

    plain, large = [], []
    for index in range(6):
        default, big = (training_case(index, large=share) for share in (0.0, 1.0))
        assert np.array_equal(default.lungs.array, big.lungs.array)  # the same anatomy, only the volumes differ
        assert len(volumes(default)) == len(volumes(big))
        plain += volumes(default)
        large += volumes(big)
    low, high = LARGE_TUMOUR_ML
    assert len(large) >= 3 and max(plain) < low, (plain, large)
    # on a 64-pixel grid the voxel count matches the asked volume to within a few per cent
    assert all(0.9 * low <= v <= 1.05 * high for v in large), large


def test_hard_share_places_training_tumours_against_the_mediastinum_or_chest_wall():
    from oncoqi.lung.training.data import HARD_LOCATIONS, _hard_tumours
    from oncoqi.phantom import PhantomOptions, TumourSpec

    options = PhantomOptions(tumours=tuple(TumourSpec() for _ in range(200)))
    placed = [t.location for t in _hard_tumours(options, np.random.default_rng(0), 0.5).tumours]
    assert set(placed) == {None, *HARD_LOCATIONS}
    assert 80 <= placed.count(None) <= 120 and abs(placed.count("mediastinum") - placed.count("chest_wall")) <= 30
    # So placed, the tumours touch more soft tissue (CT number above -400 HU around them) than tumours anywhere.
    touching = {}
    for share in (0.0, 1.0):
        shells = []
        for index in range(6):
            case = training_case(index, hard=share)
            for value in np.unique(case.label.array)[1:]:
                tumour = case.label.array == value
                shell = ndimage.binary_dilation(tumour) & (case.label.array == 0)
                shells.append(float((case.ct.array[shell] > -400).mean()))
        touching[share] = np.mean(shells)
    assert touching[1.0] > touching[0.0] + 0.05, touching


def test_contrast_share_enhances_the_blood_of_training_phantoms_and_nothing_else():
    from oncoqi.lung.training.data import CONTRAST_HU

    for index in range(3):
        plain, enhanced = _plain_case(index), training_case(index, contrast=1.0)
        assert np.array_equal(plain.label.array, enhanced.label.array)  # the same study, only enhanced
        assert np.array_equal(plain.lungs.array, enhanced.lungs.array)
        rise = enhanced.ct.array.astype(float) - plain.ct.array
        # the densest soft tissue (the heart's blood) rises by the drawn enhancement
        assert CONTRAST_HU[0] - 30 < np.percentile(rise, 99.5) < CONTRAST_HU[1] + 30
        assert abs(np.median(rise[plain.ct.array < -700])) < 5  # aerated lung and air do not


def test_hard_negatives_centre_tumour_free_crops_on_dense_tissue():
    from oncoqi.lung.training.data import HardNegatives, crop_centre

    image = np.full((128, 128), 40, np.uint8)  # aerated lung everywhere ...
    image[60:68, 90:98] = 200  # ... but one dense spot
    search, mask = np.ones_like(image), np.zeros_like(image)
    rng = np.random.default_rng(0)
    hard = HardNegatives(1.0, dense_code=150)
    centres = {crop_centre(mask, search, rng, 0.5, 32, hard=hard, image=image) for _ in range(50)}
    # the crop (top-left corner) always holds the dense spot at its centre
    assert all(60 - 16 <= y <= 67 - 16 and 90 - 16 <= x <= 97 - 16 for y, x in centres), centres
    anywhere = {crop_centre(mask, search, rng, 0.5, 32) for _ in range(50)}
    assert len(anywhere) > 40


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--phantoms", "1"], "--phantoms must be >= 2"),
        (["--phantoms", "4", "--subsolid", "1.5"], "--subsolid must be between 0 and 1"),
        (["--phantoms", "4", "--large-tumours", "-0.1"], "--large-tumours must be between 0 and 1"),
        (["--phantoms", "4", "--flip", "2"], "--flip must be between 0 and 1"),
        (["--phantoms", "4", "--hard-cases", "2"], "--hard-cases must be between 0 and 1"),
        (["--phantoms", "4", "--hard-negatives", "-1"], "--hard-negatives must be between 0 and 1"),
        (["--phantoms", "4", "--contrast", "1.2"], "--contrast must be between 0 and 1"),
        (["--phantoms", "4", "--init-from", "missing.onnx"], "missing.onnx: no such model file"),
    ],
)
def test_train_cli_refuses_bad_options_before_any_work(tmp_path, capsys, flags, message):
    assert main(["lung", "train", *flags, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
