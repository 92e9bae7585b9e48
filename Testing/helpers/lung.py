"""Lung helpers of the tests: the known-output ONNX model on a small network grid."""

from __future__ import annotations

import pytest

from helpers.known_models import identity_model
from oncoqi.lung.preprocess import PreprocessOptions

# A test using these helpers runs the model, which needs onnxruntime (a core dependency): a test
# module importing them is skipped without it.
pytest.importorskip("onnxruntime", reason="onnxruntime (a core dependency) is not installed")

#: A small network grid for fast tests: 128 x 128 pixels of 3 mm.
SMALL_GRID = PreprocessOptions(pixel_mm=3.0, columns=128, rows=128)
#: In the identity model, probability = code / 255; this threshold keeps soft tissue and denser
#: (code 0.77 * 255 = 196, about -197 HU in the lung window), not lung parenchyma.
IDENTITY_THRESHOLD = 0.77


def small_identity_model(path, grid: PreprocessOptions = SMALL_GRID, threshold: float = IDENTITY_THRESHOLD):
    """An ONNX graph with our input/output convention whose output is exactly ``codes / 255``."""
    return identity_model(path, grid, threshold)
