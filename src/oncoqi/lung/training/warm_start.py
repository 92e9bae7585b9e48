"""Start training from a trained network: the weights of an ONNX model back into the Keras U-Net.

Why: a user with a few annotated CTs of their own, or a new augmentation to teach, should not have to
train from scratch, which takes hours on a CPU; fine-tuning a trained network keeps what it learned
and needs a few epochs. Only the ONNX file is shipped (Keras weights are not), so the weights are read
back from the graph ``tf2onnx`` wrote: the Keras ``Conv2D`` layer ``NAME`` became a ``Conv`` whose
kernel is the initializer ``.../NAME[_k]/convolution/ReadVariableOp:0`` (laid out O, I, H, W) and
whose bias is the float vector of ``O`` values beside it (absent when all zero). An ensemble written by
``oncoqi lung ensemble`` holds its network under ``member0/``; one network, with or without its
mirrored pass, is a valid start, several are not (which of them would training continue?).

The loaded network is then run against the ONNX model, through :class:`~oncoqi.lung.onnx_model.OnnxSegmenter`
as inference runs it, on a random slice (the mean with its mirrored pass when the model has one),
and must agree within :data:`TOLERANCE`, the bound Keras and ONNX are held to at export, so a graph
laid out differently can never start a training silently wrong.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter
from oncoqi.lung.training.ensemble import COLUMN_AXIS, read_model

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

#: Largest difference between the loaded Keras network and the ONNX model on the check slice.
TOLERANCE = 1e-4

#: Side of the random check slice, in network pixels (rounded up to a multiple of the model's divisor).
CHECK_SIDE = 96

_MEMBER = re.compile(r"^(member\d+)/")


def load_onnx_weights(model: keras.Model, path: str | os.PathLike) -> str:
    """Set the convolution weights of ``model`` from the network in the ONNX file ``path``.

    Parameters
    ----------
    model
        A U-Net built by :func:`oncoqi.lung.training.unet.build_unet` with the same base filters, depth and
        input channels as the network in ``path``.
    path
        An ONNX model written by ``oncoqi lung train``, or an ensemble of one network (with or without
        its mirrored pass) written by ``oncoqi lung ensemble``, such as the shipped model.

    Returns
    -------
    str
        The SHA-256 of the file, for the new model's training note.

    Raises
    ------
    ModelError
        When the file is missing or not an ONNX model, holds several networks, lacks the weights of a
        layer of ``model`` or has them in another shape (other ``--base-filters``, ``--depth`` or
        ``--context-mm``), or when the loaded network does not reproduce the model's output.
    """
    from onnx import TensorProto, numpy_helper

    path = Path(path)
    proto, sha256 = read_model(path)
    tensors = {t.name: t for t in proto.graph.initializer if t.data_type == TensorProto.FLOAT}
    members = sorted({m.group(1) for name in tensors if (m := _MEMBER.match(name))})
    if len(members) > 1:
        raise ModelError(
            f"{path}: an ensemble of {len(members)} networks ({', '.join(members)}); "
            "training starts from one network: pass one member's ONNX file"
        )
    prefix = re.escape(members[0] + "/") if members else ""
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    for layer in convolutions:
        inside = re.compile(rf"^{prefix}[^/]+/{re.escape(layer.name)}(_\d+)?/")
        names = [name for name in tensors if inside.match(name)]
        kernels = [name for name in names if name.endswith("/convolution/ReadVariableOp:0")]
        biases = [name for name in names if name not in kernels and list(tensors[name].dims) == [layer.filters]]
        if len(kernels) != 1 or len(biases) > 1:
            raise ModelError(
                f"{path}: no unique weights for layer {layer.name!r} (kernels {kernels}, biases {biases}); "
                "is it a network written by oncoqi lung train?"
            )
        kernel = numpy_helper.to_array(tensors[kernels[0]]).transpose(2, 3, 1, 0)
        if kernel.shape != tuple(layer.kernel.shape):
            raise ModelError(
                f"{path}: layer {layer.name!r} has a {kernel.shape} kernel, the network being trained "
                f"needs {tuple(layer.kernel.shape)}: use the model's --base-filters, --depth and "
                f"--context-mm ({_recorded(path)})"
            )
        # tf2onnx drops an all-zero bias (an untrained layer); the check below catches any other absence
        bias = numpy_helper.to_array(tensors[biases[0]]) if biases else np.zeros(layer.filters, np.float32)
        layer.set_weights([kernel, bias])
    _check(model, path)
    return sha256


def _recorded(path: Path) -> str:
    """The model's own U-Net and neighbouring-slice options, for an error message."""
    with OnnxSegmenter(path, threads=1) as segmenter:
        unet = segmenter.metadata.get("oncoqi.unet", "unknown")
        return f"it records U-Net {unet}, context_mm {segmenter.preprocess_options.context_mm:g}"


def _check(model: keras.Model, path: Path) -> None:
    """Raise unless ``model`` (averaged with its mirrored pass when the model has one) reproduces the
    ONNX model on a random slice of 8-bit codes."""
    with OnnxSegmenter(path) as segmenter:
        channels = segmenter.channels
        side = -(-CHECK_SIDE // segmenter.divisor) * segmenter.divisor
        codes = np.random.default_rng(0).integers(0, 256, (channels, side, side), np.uint8)
        stack = np.arange(channels)[None]  # one input: the random slices as its channels
        got = segmenter.predict(codes, indices=stack)
        members = json.loads(segmenter.metadata.get("oncoqi.ensemble", "[]"))
    x = np.moveaxis(codes[stack], 1, -1).astype(np.float32)
    expected = model(x, training=False).numpy()
    if any(member.get("mirror") for member in members):  # oncoqi lung ensemble --mirror
        flipped = model(np.flip(x, COLUMN_AXIS).copy(), training=False).numpy()
        expected = (expected + np.flip(flipped, COLUMN_AXIS)) / 2.0
    worst = float(np.max(np.abs(got - expected[..., 0])))
    if not worst <= TOLERANCE:
        raise ModelError(
            f"{path}: the weights read back differ from the model by up to {worst:.2g} on a check slice "
            f"(tolerance {TOLERANCE:g}); the graph is not laid out as oncoqi lung train writes it"
        )
