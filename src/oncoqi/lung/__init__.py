"""Lung tumour segmentation of chest CT with the shipped ONNX network: lung isolation, the tumour pipeline, measurements.

Main entry points
-----------------
:func:`preprocess`
    CT to the fixed-size, 1 mm, lung-window 8-bit network input, with the exact way back
    (:meth:`Preprocessed.to_input_grid`).
:func:`isolate_lungs`
    Tight lung mask (for comparison with expert lung contours), tumour search region (mirrored
    about the spine and dilated), body, couch and spine axis, on the CT's own grid.
:func:`write_lung_qc`
    A PNG with the lung outlines over axial and coronal slices.
:func:`segment_ct`
    The whole tumour pipeline with the ONNX network (:class:`OnnxSegmenter`, onnxruntime only):
    lesion labels (1 GTV-1, 2..n others), lung mask, probability and measurements on the CT grid
    (:class:`TumourSegmentation`).

Modules
-------
Inference: :mod:`~oncoqi.lung.ct` (input checks), :mod:`~oncoqi.lung.orientation`,
:mod:`~oncoqi.lung.morphology`, :mod:`~oncoqi.lung.isolation`, :mod:`~oncoqi.lung.qc`,
:mod:`~oncoqi.lung.preprocess`, :mod:`~oncoqi.lung.onnx_model` (the model file and onnxruntime),
:mod:`~oncoqi.lung.postprocess` (probability to lesions), :mod:`~oncoqi.lung.measure` (volume,
RECIST, side, confidence), :mod:`~oncoqi.lung.segment` (the pipeline) and
:mod:`~oncoqi.lung.naming` (how lesions are named). The command line ``oncoqi lung`` is
:mod:`~oncoqi.lung.cli`.

Making the model (:mod:`oncoqi.lung.training`: training data, the Keras U-Net and its ONNX export,
training, tuning of the post-processing, ensembles) needs the ``train`` extra (TensorFlow) and is
not imported here.
"""

from oncoqi.lung.ct import EmptyVolumeError, NotCTError, check_axial, check_ct
from oncoqi.lung.isolation import LEFT_LUNG, RIGHT_LUNG, LungMasks, LungNotFoundError, isolate_lungs
from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter
from oncoqi.lung.preprocess import (
    GridGeometry,
    Preprocessed,
    PreprocessOptionError,
    PreprocessOptions,
    lung_window,
    network_geometry,
    preprocess,
)
from oncoqi.lung.qc import write_lung_qc
from oncoqi.lung.segment import NoModelError, TumourSegmentation, default_model_path, segment_ct

__all__ = [
    "LEFT_LUNG",
    "RIGHT_LUNG",
    "EmptyVolumeError",
    "GridGeometry",
    "LungMasks",
    "LungNotFoundError",
    "ModelError",
    "NoModelError",
    "NotCTError",
    "OnnxSegmenter",
    "PreprocessOptionError",
    "PreprocessOptions",
    "Preprocessed",
    "TumourSegmentation",
    "check_axial",
    "check_ct",
    "default_model_path",
    "isolate_lungs",
    "lung_window",
    "network_geometry",
    "preprocess",
    "segment_ct",
    "write_lung_qc",
]
