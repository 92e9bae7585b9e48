"""ONNX models with the tumour network's input/output convention and a known output, for tests
that check the pipeline's plumbing and geometry rather than a trained model's accuracy."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from oncoqi.lung.preprocess import PreprocessOptions


def identity_model(
    path: Path, grid: PreprocessOptions, threshold: float, *, gain: float = 1.0, metadata: dict[str, str] | None = None
) -> Path:
    """An ONNX model whose output is exactly ``gain * codes / 255``, carrying ``grid``, ``threshold``
    and any other ``metadata``.

    In the lung window, a probability of ``threshold`` is the code of a CT number, so the model
    "segments" everything denser than that inside the search region.
    """
    onnx = pytest.importorskip("onnx", reason="onnx (in the test extra) builds the known-output model")
    from onnx import TensorProto, helper

    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [gain / 255.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["ct_codes", "scale"], ["tumour_probability"])],
        "identity",
        [helper.make_tensor_value_info("ct_codes", TensorProto.FLOAT, ["n", "h", "w", 1])],
        [helper.make_tensor_value_info("tumour_probability", TensorProto.FLOAT, ["n", "h", "w", 1])],
        [scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"oncoqi.preprocess": json.dumps(asdict(grid)), "oncoqi.threshold": repr(threshold), "oncoqi.divisor": "16", **(metadata or {})}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(model, str(path))
    return path
