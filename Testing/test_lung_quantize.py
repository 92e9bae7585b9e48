"""``oncoqi lung quantize``: an int8 copy of a tumour model that keeps what the model carries and its output."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.known_models import conv_model
from helpers.lung import SMALL_GRID
from oncoqi.cli import main
from oncoqi.lung.onnx_model import OnnxSegmenter

pytest.importorskip("onnx", reason="onnx (the 'train' and 'test' extras) writes the quantized model")


def test_the_int8_copy_keeps_the_metadata_and_the_output(tmp_path, capsys, monkeypatch):
    import oncoqi.lung.training.data as data

    source = conv_model(tmp_path / "float.onnx", SMALL_GRID)
    small = data.phantom_case  # 64-pixel calibration phantoms keep the test fast
    monkeypatch.setattr(data, "phantom_case", lambda seed, index, *a, **k: small(seed, index, 64, 200.0))
    out = tmp_path / "int8.onnx"
    argv = ["lung", "quantize", str(source), "--phantoms", "2", "--out", str(out)]
    assert main(argv) == 0
    assert "calibrating on 12 slices of 2 phantoms of set seed 0" in capsys.readouterr().out
    f32, i8 = OnnxSegmenter(source, threads=1), OnnxSegmenter(out, threads=1)
    assert {k: v for k, v in i8.metadata.items() if k != "oncoqi.quantized"} == f32.metadata
    assert i8.metadata["oncoqi.quantized"].startswith(
        "int8 (static, QDQ, convolutions only, weights per channel) of float.onnx"
    )
    import onnx

    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    # On slices of another phantom, as inference feeds them: close, and really another network.
    from oncoqi.lung.training.quantize import calibration_inputs

    codes = np.concatenate([x[..., 0] for x in calibration_inputs(source, [small(0, 5, 64, 200.0)])]).astype(np.uint8)
    a, b = f32.predict(codes), i8.predict(codes)
    assert 0 < np.abs(a - b).mean() < 0.01 and np.abs(a - b).max() < 0.25, (np.abs(a - b).mean(), np.abs(a - b).max())
    assert np.mean((a >= 0.5) == (b >= 0.5)) > 0.99
    # The overwrite rule: an existing model is not replaced without --force.
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
