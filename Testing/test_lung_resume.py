"""``oncoqi lung train`` in pieces: ``--stop-after`` ends a piece, ``--resume`` goes on exactly where it stopped."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from oncoqi.cli import main

pytest.importorskip("tensorflow", reason="TensorFlow (the 'train' extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the 'train' extra) is not installed")

#: A run small enough for a test: two 64-pixel phantoms, a 4-filter U-Net of depth 2, 2 epochs of 3 steps.
RECIPE = (
    "--phantoms 2 --seed 3 --phantom-size 64 --epochs 2 --base-filters 4 --depth 2 --grid 64 --pixel-mm 6 "
    "--batch-size 4 --crop 32 --steps-per-epoch 3 --negative-ratio 1 --min-negatives 3 --tumour-fraction 0.3"
).split()
# Keras' own weight saving trips NumPy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _state(folder):
    from oncoqi.lung.training.train import RESUME_NAME, ResumeState

    return ResumeState.load(folder / RESUME_NAME)


def _log(folder):
    with open(folder / "training_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_in_pieces_ends_exactly_where_the_run_in_one_piece_does(tmp_path, capsys):
    whole, pieces = tmp_path / "whole", tmp_path / "pieces"
    assert main(["lung", "train", *RECIPE, "--workers", "1", "--out", str(whole)]) == 0
    # --stop-after 0 ends the piece after its first epoch.
    assert main(["lung", "train", *RECIPE, "--workers", "1", "--stop-after", "0", "--out", str(pieces)]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 epochs done" in out and "--resume" in out
    assert _state(pieces).epoch == 1 and [int(r["piece"]) for r in _log(pieces)] == [1]
    checkpoint = str(pieces / "resume.npz")
    # A checkpoint travels as resume.npz and the best epoch's weights: without them, one clear line.
    best = pieces / "best.weights.h5"
    best.rename(tmp_path / "elsewhere.h5")
    assert main(["lung", "train", "--resume", checkpoint]) == 2
    assert f"{best}: the best epoch's weights are missing beside resume.npz" in capsys.readouterr().err
    (tmp_path / "elsewhere.h5").rename(best)
    assert main(["lung", "train", "--resume", checkpoint]) == 0
    assert "best validation Dice" in capsys.readouterr().out
    a, b = _state(whole), _state(pieces)
    assert a.epoch == b.epoch == 2 and len(a.variables) == len(b.variables) and len(a.optimizer) == len(b.optimizer)
    # Weights, dropout seeds, Adam's moments and step count are those of the uninterrupted run.
    for x, y in zip(a.variables + a.optimizer, b.variables + b.optimizer):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert a.rng == b.rng and a.recipe == b.recipe
    whole_log, pieces_log = _log(whole), _log(pieces)
    assert [int(r["piece"]) for r in pieces_log] == [1, 2] and [int(r["piece"]) for r in whole_log] == [1, 1]
    for key in ("loss", "val_dice", "learning_rate", "best"):
        assert [float(r[key]) for r in whole_log] == pytest.approx([float(r[key]) for r in pieces_log], rel=1e-4)
    assert (pieces / "lung_unet.onnx").is_file() and (pieces / "learning_curves.png").is_file()


def test_resume_refuses_settings_of_its_own_another_folder_and_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "resume.npz"
    bad.write_bytes(b"not a checkpoint")
    assert main(["lung", "train", "--resume", str(bad)]) == 2
    assert f"{bad}: not a training checkpoint" in capsys.readouterr().err
    assert main(["lung", "train", "--resume", str(bad), "--epochs", "9"]) == 2
    assert "leave out --epochs" in capsys.readouterr().err
    assert main(["lung", "train", "--resume", str(bad), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "goes on in the checkpoint's folder" in capsys.readouterr().err
    assert main(["lung", "train", "--epochs", "9", "--out", str(tmp_path / "x")]) == 2
    assert "give the cases" in capsys.readouterr().err
