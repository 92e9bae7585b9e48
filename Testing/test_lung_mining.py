"""Mining a network's mistakes on the training slices (``--mine-from``, ``--mined``) and feeding them back as crops."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers.known_models import identity_model
from oncoqi.cli import main
from oncoqi.lung.onnx_model import ModelError
from oncoqi.lung.preprocess import PreprocessOptions
from oncoqi.lung.training.data import SliceSet, crop_centre
from oncoqi.lung.training.mining import MAX_POINTS_PER_SLICE, Mistakes, mine_mistakes

GRID = PreprocessOptions(rows=64, columns=64, pixel_mm=6.0)


def _slices() -> SliceSet:
    """Three 64 x 64 slices whose mistakes under the identity model (probability = code / 255,
    threshold 0.5) are known: bright tissue that is not tumour, faint tumour, and a clean slice."""
    images = np.full((3, 64, 64, 1), 20, np.uint8)
    masks = np.zeros((3, 64, 64), np.uint8)
    search = np.zeros((3, 64, 64), np.uint8)
    search[:, 8:56, 8:56] = 1
    images[0, 10:14, 20:25] = 240  # 20 false-positive pixels inside the search region
    images[0, 60:64, 0:8] = 240  # bright but outside the search region: not a mistake
    masks[1, 30:33, 30:33] = 1  # tumour the model does not see (code 20): 9 false negatives
    images[1, 40:42, 40:42] = 200  # and it is found where it is: 4 true positives
    masks[1, 40:42, 40:42] = 1
    images[2, 20:22, 20:22] = 220  # found and tumour: no mistake
    masks[2, 20:22, 20:22] = 1
    return SliceSet(images, masks, search)


def test_mining_keeps_the_false_positives_and_the_missed_tumour_inside_the_search_region(tmp_path):
    model = identity_model(tmp_path / "identity.onnx", GRID, threshold=0.5)
    progress = []
    mistakes = mine_mistakes(model, _slices(), progress=lambda done, n: progress.append((done, n)))
    assert mistakes.false_positive == 20 and mistakes.false_negative == 9
    assert mistakes.slices.tolist() == [0, 1] and len(mistakes) == 2
    assert {tuple(p) for p in mistakes.points[0]} == {(r, c) for r in range(10, 14) for c in range(20, 25)}
    assert {tuple(p) for p in mistakes.points[1]} == {(r, c) for r in range(30, 33) for c in range(30, 33)}
    assert progress == [(3, 3)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        index, (row, column) = mistakes.draw(rng)
        assert (index == 0 and 10 <= row < 14 and 20 <= column < 25) or (index == 1 and 30 <= row < 33)
    assert "2 slices with mistakes: 20 false-positive and 9 false-negative pixels" == mistakes.summary()


def test_mining_thins_out_a_large_mistake_and_refuses_a_model_of_other_channels(tmp_path):
    slices = _slices()
    slices.images[0, 8:56, 8:56] = 250  # the whole search region called tumour
    mistakes = mine_mistakes(identity_model(tmp_path / "identity.onnx", GRID, threshold=0.5), slices)
    assert mistakes.false_positive == 48 * 48 and len(mistakes.points[0]) == MAX_POINTS_PER_SLICE
    three = SliceSet(np.repeat(slices.images, 3, axis=-1), slices.masks, slices.search)
    with pytest.raises(ModelError, match="takes 1 slice"):
        mine_mistakes(tmp_path / "identity.onnx", three)


def test_a_crop_with_a_focus_holds_that_pixel():
    rng = np.random.default_rng(1)
    mask, search = np.zeros((64, 64), np.uint8), np.ones((64, 64), np.uint8)
    for focus in [(0, 0), (63, 63), (10, 50), (32, 32)]:
        for _ in range(10):
            y0, x0 = crop_centre(mask, search, rng, 0.5, 32, focus=focus)
            assert 0 <= y0 <= 32 and 0 <= x0 <= 32
            assert y0 <= focus[0] < y0 + 32 and x0 <= focus[1] < x0 + 32


def test_draw_covers_every_mined_slice():
    mistakes = Mistakes(np.array([4, 9]), (np.array([[1, 2]]), np.array([[3, 4], [5, 6]])), 1, 2)
    drawn = {mistakes.draw(np.random.default_rng(seed)) for seed in range(40)}
    assert drawn == {(4, (1, 2)), (9, (3, 4)), (9, (5, 6))}


def test_the_cli_checks_the_mining_options_before_preparing_cases(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["lung", "train", "--phantoms", "2", "--mined", "0.3", "--out", out]) == 2
    assert "--mine-from MODEL and --mined SHARE go together" in capsys.readouterr().err
    assert main(["lung", "train", "--phantoms", "2", "--mined", "1.5", "--mine-from", "x.onnx", "--out", out]) == 2
    assert "--mined must be between 0 and 1" in capsys.readouterr().err
    missing = tmp_path / "missing.onnx"
    assert main(["lung", "train", "--phantoms", "2", "--mined", "0.3", "--mine-from", str(missing), "--out", out]) == 2
    assert f"{missing}: no such model file" in capsys.readouterr().err
    model = identity_model(tmp_path / "identity.onnx", GRID, threshold=0.5)
    args = ["--phantoms", "2", "--context-mm", "4", "--mined", "0.3", "--mine-from", str(model), "--out", out]
    assert main(["lung", "train", *args]) == 2
    assert "takes 1 slice(s) per input, this run's network 3" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("tf2onnx") is None,
    reason="TensorFlow and tf2onnx (the 'train' extra) are not installed",
)
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_a_run_mines_its_starting_models_mistakes_and_says_so_in_the_model(tmp_path, capsys):
    import onnx

    model = identity_model(tmp_path / "identity.onnx", GRID, threshold=0.5)
    recipe = (
        "--phantoms 2 --seed 3 --phantom-size 64 --epochs 1 --base-filters 4 --depth 2 --grid 64 --pixel-mm 6 "
        "--batch-size 4 --crop 32 --steps-per-epoch 2 --negative-ratio 1 --min-negatives 3 --workers 1"
    ).split()
    out = tmp_path / "run"
    assert main(["lung", "train", *recipe, "--mine-from", str(model), "--mined", "0.5", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert f"mining the mistakes of {model}" in log and "slices with mistakes:" in log
    note = {p.key: p.value for p in onnx.load(str(out / "lung_unet.onnx")).metadata_props}["oncoqi.training"]
    assert "0.5 of the crops on the mined mistakes of identity.onnx" in note
