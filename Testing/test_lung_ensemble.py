"""``oncoqi lung ensemble``: several networks as one ONNX model whose output is their mean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.known_models import identity_model, shift_model
from oncoqi.cli import main
from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter
from oncoqi.lung.preprocess import PreprocessOptions
from oncoqi.lung.segment import default_model_path
from oncoqi.lung.training.ensemble import ensemble_onnx

pytest.importorskip("onnx", reason="onnx (in the test extra) builds the ensemble")
GRID = PreprocessOptions(columns=64, rows=64)


def test_ensemble_outputs_the_mean_of_its_members_and_must_be_tuned_again(tmp_path):
    a = identity_model(tmp_path / "a.onnx", GRID, 0.4, metadata={"oncoqi.min_slices": "3", "oncoqi.training": "run A"})
    b = identity_model(tmp_path / "b.onnx", GRID, 0.6, gain=0.5, metadata={"oncoqi.divisor": "32"})
    out = ensemble_onnx([a, b], tmp_path / "ab.onnx")
    codes = np.random.default_rng(0).integers(0, 256, (3, 64, 64)).astype(np.uint8)
    with OnnxSegmenter(out) as seg:
        mean = seg.predict(codes)
        assert seg.preprocess_options == GRID
        assert seg.divisor == 32  # every member's divisor divides it
        assert seg.threshold == 0.5 and seg.lesion_rules.min_slices == 1  # members' tuning is not carried
        members = json.loads(seg.metadata["oncoqi.ensemble"])
    assert np.allclose(mean, 0.75 * codes / 255.0, atol=1e-6)
    assert [m["file"] for m in members] == ["a.onnx", "b.onnx"] and members[0]["training"] == "run A"
    assert all(len(m["sha256"]) == 64 for m in members)


def test_ensemble_of_the_shipped_network_with_itself_is_the_network(tmp_path):
    shipped = default_model_path()
    if not shipped.is_file():
        pytest.skip(f"no trained model shipped at {shipped}")
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(shipped.read_bytes())
    out = ensemble_onnx([shipped, copy], tmp_path / "twice.onnx")
    codes = np.random.default_rng(1).integers(0, 256, (3, 64, 64)).astype(np.uint8)
    with OnnxSegmenter(shipped) as one, OnnxSegmenter(out) as two:
        stacks = _stacks(len(codes), one.channels)
        assert np.allclose(two.predict(codes, indices=stacks), one.predict(codes, indices=stacks), atol=1e-6)
        assert two.preprocess_options == one.preprocess_options


def test_mirror_pass_sees_the_slice_mirrored_left_to_right_and_mirrors_its_output_back(tmp_path):
    shift = shift_model(tmp_path / "shift.onnx", GRID)  # output: the input moved one column right
    out = ensemble_onnx([shift], tmp_path / "mirrored.onnx", mirror=True)
    codes = np.random.default_rng(2).integers(1, 256, (2, 64, 64)).astype(np.uint8)
    right, left = np.zeros(codes.shape), np.zeros(codes.shape)
    right[:, :, 1:], left[:, :, :-1] = codes[:, :, :-1], codes[:, :, 1:]
    with OnnxSegmenter(shift) as one, OnnxSegmenter(out) as both:
        assert np.allclose(one.predict(codes), right / 255.0, atol=1e-6)
        assert np.allclose(both.predict(codes), 0.5 * (right + left) / 255.0, atol=1e-6)
        assert json.loads(both.metadata["oncoqi.ensemble"])[0]["mirror"] is True
        assert both.metadata["oncoqi.training"] == "mean of 1 network and its mirror image: shift.onnx"


def test_mirrored_shipped_network_reads_its_weights_once_and_is_symmetric(tmp_path):
    """The shipped network with its mirrored pass: no second copy of the weights, and mirroring the
    slice mirrors the probability (exactly, whatever the network)."""
    shipped = default_model_path()
    if not shipped.is_file():
        pytest.skip(f"no trained model shipped at {shipped}")
    out = ensemble_onnx([shipped], tmp_path / "mirrored.onnx", mirror=True)
    assert out.stat().st_size < 1.1 * shipped.stat().st_size
    codes = np.random.default_rng(2).integers(0, 256, (3, 64, 64)).astype(np.uint8)
    with OnnxSegmenter(out) as both:
        stacks = _stacks(len(codes), both.channels)
        flipped = both.predict(np.ascontiguousarray(codes[:, :, ::-1]), indices=stacks)[:, :, ::-1]
        assert np.allclose(both.predict(codes, indices=stacks), flipped, atol=1e-5)


def _stacks(slices: int, channels: int) -> np.ndarray:
    """Each slice with the next ``channels - 1`` (wrapping round) as one input: the ``indices`` of
    :meth:`OnnxSegmenter.predict` for a network that also looks at neighbouring slices."""
    return (np.arange(slices)[:, None] + np.arange(channels)[None, :]) % slices


def test_mirror_of_a_pointwise_model_is_the_model(tmp_path):
    a = identity_model(tmp_path / "a.onnx", GRID, 0.5, gain=0.8)
    out = ensemble_onnx([a], tmp_path / "a_mirror.onnx", mirror=True)
    codes = np.random.default_rng(3).integers(0, 256, (2, 64, 64)).astype(np.uint8)
    with OnnxSegmenter(out) as seg:
        assert np.allclose(seg.predict(codes), 0.8 * codes / 255.0, atol=1e-6)


@pytest.mark.parametrize("problem", ["one member", "other grid", "overwrite", "missing"])
def test_ensemble_refuses_members_that_cannot_be_averaged(tmp_path, problem):
    a = identity_model(tmp_path / "a.onnx", GRID, 0.5)
    other = PreprocessOptions(columns=64, rows=64, pixel_mm=0.8)
    b = identity_model(tmp_path / "b.onnx", other if problem == "other grid" else GRID, 0.5)
    members, out, message = [a, b], tmp_path / "ab.onnx", ""
    if problem == "one member":
        members, message = [a], "at least two models"
    elif problem == "other grid":
        message = "oncoqi.preprocess differs"
    elif problem == "overwrite":
        out, message = b, "overwrite one of its members"
    else:
        members, message = [a, tmp_path / "none.onnx"], "no such model file"
    before = b.read_bytes()
    with pytest.raises(ModelError, match=message):
        ensemble_onnx(members, out)
    assert b.read_bytes() == before and not (tmp_path / "ab.onnx").exists()


def test_ensemble_cli(tmp_path, capsys):
    a = identity_model(tmp_path / "a.onnx", GRID, 0.5)
    b = identity_model(tmp_path / "b.onnx", GRID, 0.5, gain=0.0)
    assert main(["lung", "ensemble", str(a), str(b), "--out", str(tmp_path / "ab.onnx")]) == 0
    assert "mean of 2 passes of 2 network(s)" in capsys.readouterr().out
    with OnnxSegmenter(tmp_path / "ab.onnx") as seg:
        assert np.allclose(seg.predict(np.full((1, 64, 64), 255, np.uint8)), 0.5, atol=1e-6)
    assert main(["lung", "ensemble", str(a), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert main(["lung", "ensemble", str(a), "--mirror", "--out", str(tmp_path / "a_mirror.onnx")]) == 0
    assert "mean of 2 passes of 1 network(s)" in capsys.readouterr().out
