"""Fine-tuning starts from a trained network: its ONNX weights read back into the Keras U-Net."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from oncoqi.lung.onnx_model import ModelError
from oncoqi.lung.preprocess import PreprocessOptions
from oncoqi.lung.segment import default_model_path

pytest.importorskip("tensorflow", reason="TensorFlow (the 'train' extra) is not installed")
pytest.importorskip("tf2onnx", reason="tf2onnx (the 'train' extra) is not installed")

from oncoqi.lung.onnx_model import model_metadata
from oncoqi.lung.training.ensemble import ensemble_onnx
from oncoqi.lung.training.unet import UNetOptions, build_unet, export_onnx
from oncoqi.lung.training.warm_start import load_onnx_weights

SMALL = UNetOptions(base_filters=8, depth=3)
GRID = PreprocessOptions(columns=64, rows=64, context_mm=3.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small three-channel network (seed 3) and its ONNX export."""
    model = build_unet(SMALL, seed=3, channels=GRID.channels)
    rng = np.random.default_rng(3)
    for layer in model.layers:  # trained networks have biases; fresh ones have zeros that the export drops
        if hasattr(layer, "bias") and layer.bias is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    path = export_onnx(
        model, tmp_path_factory.mktemp("net") / "net.onnx", model_metadata(GRID, 0.5, SMALL, SMALL.divisor)
    )
    return model, path


def _slices(channels: int) -> np.ndarray:
    return np.random.default_rng(7).uniform(0, 255, (2, 48, 80, channels)).astype(np.float32)


@pytest.mark.parametrize("mirror", [False, True])
def test_weights_read_back_reproduce_the_network_plain_or_inside_its_mirrored_ensemble(tmp_path, exported, mirror):
    original, path = exported
    if mirror:
        path = ensemble_onnx([path], tmp_path / "mirrored.onnx", mirror=True)
    fresh = build_unet(SMALL, seed=11, channels=GRID.channels)
    x = _slices(GRID.channels)
    before = np.abs(fresh(x, training=False).numpy() - original(x, training=False).numpy()).max()
    assert before > 1e-3  # other seed, other network: the load has something to do
    assert load_onnx_weights(fresh, path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert np.abs(fresh(x, training=False).numpy() - original(x, training=False).numpy()).max() <= 1e-6
    for mine, theirs in zip(fresh.get_weights(), original.get_weights()):
        assert np.array_equal(mine, theirs)


def test_shipped_model_is_a_valid_start():
    shipped = default_model_path()
    if not shipped.is_file():
        pytest.skip(f"no trained model shipped at {shipped}")
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(shipped), load_external_data=False).metadata_props}
    unet = UNetOptions(**json.loads(meta["oncoqi.unet"]))
    preprocess = PreprocessOptions(**json.loads(meta["oncoqi.preprocess"]))
    model = build_unet(unet, seed=0, channels=preprocess.channels)
    load_onnx_weights(model, shipped)  # includes the check against onnxruntime, mirrored pass and all
    assert np.isfinite(model(_slices(preprocess.channels), training=False).numpy()).all()


def test_refuses_what_is_not_one_matching_network(tmp_path, exported):
    _, path = exported
    fresh = build_unet(SMALL, seed=11, channels=GRID.channels)
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    two = ensemble_onnx([path, copy], tmp_path / "two.onnx")
    with pytest.raises(ModelError, match="an ensemble of 2 networks"):
        load_onnx_weights(fresh, two)
    wider = build_unet(UNetOptions(base_filters=16, depth=3), seed=0, channels=GRID.channels)
    with pytest.raises(ModelError, match=r"layer 'down0_conv1' has a \(3, 3, 3, 8\) kernel.*needs \(3, 3, 3, 16\)"):
        load_onnx_weights(wider, path)
    single = build_unet(SMALL, seed=0, channels=1)
    with pytest.raises(ModelError, match="--context-mm"):
        load_onnx_weights(single, path)
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ModelError, match="notes.onnx: not a loadable ONNX model"):
        load_onnx_weights(fresh, tmp_path / "notes.onnx")


def test_a_graph_that_computes_something_else_fails_the_check(tmp_path, exported):
    import onnx

    _, path = exported
    proto = onnx.load(str(path))
    sigmoids = [node for node in proto.graph.node if node.op_type == "Sigmoid"]
    assert len(sigmoids) == 1
    sigmoids[0].op_type = "Identity"  # same weights, another output
    onnx.save(proto, str(tmp_path / "altered.onnx"))
    with pytest.raises(ModelError, match="altered.onnx: the weights read back differ"):
        load_onnx_weights(build_unet(SMALL, seed=11, channels=GRID.channels), tmp_path / "altered.onnx")
