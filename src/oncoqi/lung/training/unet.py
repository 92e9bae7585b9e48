"""The slice-wise 2D U-Net that finds lung tumours, defined with Keras (TensorFlow backend), and its ONNX export.

Layout (after the published NSCLC network, Primakov et al. 2022, built from the published layer
table only): an encoder of ``depth`` max-pool levels below the input level, each level two 3x3
convolutions with ELU activations (the published network used ReLU; ELU is used here because it
keeps gradients for negative inputs and trains faster from scratch), dropout 0.5 on the outputs of
the last two encoder levels (the deepest skip level and the bottleneck) against over-fitting, and
a mirrored decoder of nearest-neighbour up-sampling, a 2x2 convolution, concatenation with the
skip, and two 3x3 convolutions; a 1x1 convolution with a sigmoid gives the tumour probability.
Filters double at each level from ``base_filters``.

The model takes the raw 8-bit lung-window codes of :func:`oncoqi.lung.preprocess` (as float32,
shape ``(batch, rows, columns, channels)``: the slice alone, or with its neighbouring slices as
in :meth:`~oncoqi.lung.preprocess.Preprocessed.channel_indices`) and rescales them to 0-1 inside the graph, so the exported
ONNX file needs no separate normalisation step that could drift from training. The spatial size
is left open (fully convolutional): any ``rows`` and ``columns`` divisible by ``2 ** depth`` work.

Why the default is ``base_filters=16, depth=4`` on the 512 x 512, 1 mm grid: the published width
(64-1024 filters) costs 1.1 s per 512 x 512 slice on 2 cores and 124 MB of weights; the
computation scales with the square of the width, so 16-256 filters is 1/16 of it (about
27 GFLOP per slice) with 1.94 M parameters (7.8 MB). Measured here with onnxruntime on 2
threads: 0.21 s per 512 x 512 slice in batches of 2 (0.24 s one by one; 0.30 s on a 2-core AMD
EPYC with AVX2 but no AVX-512), inside the 0.5 s per slice budget, while keeping the
full 512 mm, 1 mm field of view so that small nodules keep their pixels. Base 24 (4.4 M
parameters, 17 MB) measured 0.44-0.47 s per slice, too close to the budget on a loaded machine.

TensorFlow is imported here and only here (and by :mod:`oncoqi.lung.training.train`); inference uses the
ONNX export (:func:`export_onnx`) through onnxruntime (:mod:`oncoqi.lung.onnx_model`), so the core
never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from oncoqi.errors import OncoQIError
from oncoqi.lung.onnx_model import save_with_metadata

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

#: Name of the network input (8-bit codes as float32, NHWC).
INPUT_NAME = "ct_codes"
#: Name of the network output (tumour probability, NHWC).
OUTPUT_NAME = "tumour_probability"
#: ONNX opset of the export (onnxruntime >= 1.14 runs it).
OPSET = 17


class UNetOptionError(OncoQIError):
    """A U-Net option is out of its range."""


class TensorFlowMissingError(OncoQIError):
    """TensorFlow (the ``train`` extra) is needed for this and is not installed."""


@dataclass(frozen=True)
class UNetOptions:
    """Shape of the U-Net.

    Parameters
    ----------
    base_filters
        Filters of the first level; each deeper level doubles them.
    depth
        Number of 2x2 max-poolings (the network has ``depth + 1`` resolution levels); the input's
        rows and columns must be divisible by ``2 ** depth``.
    dropout
        Dropout rate before the last two encoder levels (0.5 as published).
    """

    base_filters: int = 16
    depth: int = 4
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.base_filters <= 128:
            raise UNetOptionError(f"base_filters={self.base_filters} is out of range [1, 128]")
        if not 2 <= self.depth <= 6:
            raise UNetOptionError(f"depth={self.depth} is out of range [2, 6]")
        if not 0.0 <= self.dropout < 1.0:
            raise UNetOptionError(f"dropout={self.dropout} is out of range [0, 1)")

    @property
    def divisor(self) -> int:
        """Rows and columns of the input must be multiples of this."""
        return 2**self.depth


def import_keras() -> ModuleType:
    """Import Keras on the TensorFlow backend, or explain how to get it.

    Raises
    ------
    TensorFlowMissingError
        When TensorFlow or Keras is not installed.
    """
    try:
        import keras
        import tensorflow  # noqa: F401  (Keras must run on the TensorFlow backend for the ONNX export)
    except ImportError as exc:
        raise TensorFlowMissingError(
            f"training and ONNX export need TensorFlow ({exc}); install the extra: pip install 'oncoqi[train]'"
        ) from exc
    if keras.backend.backend() != "tensorflow":
        raise TensorFlowMissingError(
            f"Keras runs on the {keras.backend.backend()!r} backend; set KERAS_BACKEND=tensorflow"
        )
    return keras


def build_unet(
    options: UNetOptions = UNetOptions(), levels: int = 256, seed: int | None = None, channels: int = 1
) -> keras.Model:
    """Build the (untrained) U-Net.

    Parameters
    ----------
    options
        Width, depth and dropout.
    levels
        Number of 8-bit codes of the input (``PreprocessOptions.levels``); the input is divided
        by ``levels - 1`` inside the graph.
    seed
        Seed of the He-normal initialisers (``None``: random), so tests and trainings repeat.
    channels
        Slices per input (``PreprocessOptions.channels``).

    Returns
    -------
    keras.Model
        Input ``ct_codes`` ``(batch, rows, columns, channels)`` float32, output
        ``tumour_probability`` ``(batch, rows, columns, 1)``.
    """
    keras = import_keras()
    layers = keras.layers
    counter = iter(range(10_000))

    def conv(x: keras.KerasTensor, filters: int, kernel: int, name: str) -> keras.KerasTensor:
        init = keras.initializers.HeNormal(seed=None if seed is None else seed + next(counter))
        return layers.Conv2D(filters, kernel, padding="same", activation="elu", kernel_initializer=init, name=name)(x)

    def block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
        return conv(conv(x, filters, 3, f"{name}_conv1"), filters, 3, f"{name}_conv2")

    inputs = keras.Input((None, None, channels), name=INPUT_NAME)
    x = layers.Rescaling(1.0 / (levels - 1), name="codes_to_unit")(inputs)
    skips = []
    for level in range(options.depth + 1):
        if level > 0:
            x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
        x = block(x, options.base_filters * 2**level, f"down{level}")
        if level >= options.depth - 1:
            x = layers.Dropout(options.dropout, name=f"down{level}_dropout")(x)
        skips.append(x)
    for level in range(options.depth - 1, -1, -1):
        filters = options.base_filters * 2**level
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_upsample")(x)
        x = conv(x, filters, 2, f"up{level}_conv_up")
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = block(x, filters, f"up{level}")
    init = keras.initializers.GlorotUniform(seed=seed)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=init, name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name=f"oncoqi_lung_unet_b{options.base_filters}_d{options.depth}")


def export_onnx(model: keras.Model, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Convert a Keras model to ONNX and write it atomically.

    Parameters
    ----------
    model
        A single-input, single-output Keras model on the TensorFlow backend (e.g.
        :func:`build_unet`), input ``(batch, rows, columns, channels)``.
    path
        Destination ``.onnx`` file (parent folders are created).
    metadata
        Extra ``metadata_props`` (:func:`oncoqi.lung.onnx_model.model_metadata` gives the keys
        inference reads).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TensorFlowMissingError
        When TensorFlow, tf2onnx or onnx is not installed.
    """
    import_keras()
    try:
        import onnx  # noqa: F401  (saved by save_with_metadata; checked here for one clear message)
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise TensorFlowMissingError(
            f"ONNX export needs tf2onnx and onnx ({exc}): pip install 'oncoqi[train]'"
        ) from exc
    spec = (tf.TensorSpec((None, None, None, model.input_shape[-1]), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    save_with_metadata(proto, path, metadata or {})
    return Path(path)
