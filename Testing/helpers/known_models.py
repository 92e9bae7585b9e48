"""ONNX models with the tumour network's input/output convention and a known output, for tests
that check the pipeline's plumbing and geometry rather than a trained model's accuracy."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
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
    TensorProto, helper = _onnx()
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [gain / 255.0])
    node = helper.make_node("Mul", ["ct_codes", "scale"], ["tumour_probability"])
    return _save([node], [scale], path, grid, threshold, metadata)


def constant_model(path: Path, grid: PreprocessOptions, value: float = 0.9, threshold: float = 0.5) -> Path:
    """An ONNX model whose output is ``value`` on every pixel (``codes * 0 + value``).

    Above ``threshold`` it "segments" the whole search region as one lesion: for tests of the
    pipeline's plumbing (stages, progress, files) that need a lesion but not many, since every
    lesion costs a SEG segment and an SR measurement group to write.
    """
    TensorProto, helper = _onnx()
    constants = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("value", TensorProto.FLOAT, [], [value]),
    ]
    nodes = [
        helper.make_node("Mul", ["ct_codes", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "value"], ["tumour_probability"]),
    ]
    return _save(nodes, constants, path, grid, threshold, None)


def half_blind_model(path: Path, grid: PreprocessOptions, threshold: float) -> Path:
    """The identity model (``codes / 255``) with 0 in the first half of the network grid's columns.

    On an axial CT the first columns are the patient's right (LPS x grows to the left), so this
    "network" misses every tumour of the right side and finds everything dense on the left: a
    known miss, for the tests of recovering a missed tumour from a point placed in it.
    """
    import numpy as np

    TensorProto, helper = _onnx()
    gain = np.full((1, grid.rows, grid.columns, 1), 1.0 / 255.0, np.float32)
    gain[:, :, : grid.columns // 2] = 0.0
    scale = helper.make_tensor("scale", TensorProto.FLOAT, list(gain.shape), gain.ravel().tolist())
    node = helper.make_node("Mul", ["ct_codes", "scale"], ["tumour_probability"])
    return _save([node], [scale], path, grid, threshold, None)


def shift_model(path: Path, grid: PreprocessOptions, threshold: float = 0.5) -> Path:
    """An ONNX model whose output is ``codes / 255`` moved one column to the right (column 0: 0).

    Not left-right symmetric, so its mirrored pass (``oncoqi lung ensemble --mirror``) differs from
    it in a known way: the mirror image moves one column to the left.
    """
    TensorProto, helper = _onnx()
    constants = [
        helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / 255.0]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [2]),
        helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 0, 0, 0, 0, 0]),
    ]
    nodes = [
        helper.make_node("Slice", ["ct_codes", "starts", "ends", "axes"], ["left"]),
        helper.make_node("Pad", ["left", "pads"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "scale"], ["tumour_probability"]),
    ]
    return _save(nodes, constants, path, grid, threshold, None)


def conv_model(path: Path, grid: PreprocessOptions, threshold: float = 0.5, seed: int = 0) -> Path:
    """A small convolutional network (two 3 x 3 convolutions with random weights, ELU, sigmoid) with our
    input/output convention: what quantization acts on, unlike the arithmetic-only models above."""
    TensorProto, helper = _onnx()
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(0, 0.02, (8, 1, 3, 3)), rng.normal(0, 0.3, (1, 8, 3, 3))
    constants = [
        helper.make_tensor("w1", TensorProto.FLOAT, w1.shape, w1.ravel().tolist()),
        helper.make_tensor("b1", TensorProto.FLOAT, [8], rng.normal(0, 0.5, 8).tolist()),
        helper.make_tensor("w2", TensorProto.FLOAT, w2.shape, w2.ravel().tolist()),
        helper.make_tensor("b2", TensorProto.FLOAT, [1], [0.0]),
    ]
    nodes = [
        helper.make_node("Transpose", ["ct_codes"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Elu", ["c1"], ["e1"]),
        helper.make_node("Conv", ["e1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["p"]),
        helper.make_node("Transpose", ["p"], ["tumour_probability"], perm=[0, 2, 3, 1]),
    ]
    return _save(nodes, constants, path, grid, threshold, {"oncoqi.tuning": "none"})


def _onnx() -> tuple:
    """``onnx.TensorProto`` and ``onnx.helper``; the calling test is skipped without the onnx package."""
    onnx = pytest.importorskip("onnx", reason="onnx (in the test extra) builds the known-output model")
    return onnx.TensorProto, onnx.helper


def _save(
    nodes: list, constants: list, path: Path, grid: PreprocessOptions, threshold: float, metadata: dict[str, str] | None
) -> Path:
    import onnx  # the builders above have checked that it is installed
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "known",
        [helper.make_tensor_value_info("ct_codes", TensorProto.FLOAT, ["n", "h", "w", 1])],
        [helper.make_tensor_value_info("tumour_probability", TensorProto.FLOAT, ["n", "h", "w", 1])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "oncoqi.preprocess": json.dumps(asdict(grid)),
        "oncoqi.threshold": repr(threshold),
        "oncoqi.divisor": "16",
        **(metadata or {}),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(model, str(path))
    return path
