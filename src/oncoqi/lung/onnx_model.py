"""The tumour network as an ONNX file: its metadata, and inference with onnxruntime.

Why ONNX: Slicer users (and the command line) should not need TensorFlow, a 500 MB dependency
that often conflicts with Slicer's own Python. The Keras model is converted once, after training,
with ``tf2onnx`` (:func:`oncoqi.lung.training.unet.export_onnx`, needs the ``train`` extra);
inference (:class:`OnnxSegmenter`) needs only ``onnxruntime``, a core dependency.

The ONNX file carries what inference must reproduce from training in its metadata
(``metadata_props``), so that a model can never be run on a grid or coding it was not trained on:

``oncoqi.preprocess``
    JSON of the :class:`~oncoqi.lung.preprocess.PreprocessOptions` used in training, including
    ``context_mm``: how far the neighbouring slices given as extra channels lie (0 or absent: a
    single-slice network, as the first shipped model).
``oncoqi.threshold``
    Probability at or above which a voxel is tumour.
``oncoqi.min_volume_ml``, ``oncoqi.min_slices``, ``oncoqi.min_confidence``, ``oncoqi.through_fraction``,
``oncoqi.min_lung_fraction``, ``oncoqi.dome_fraction``
    Lesions smaller, or spanning fewer slices, or less probable on average, or that a vessel runs through (see
    :func:`oncoqi.lung.postprocess.through_going`), or mostly outside the lungs, or that are the top of a
    diaphragm dome (:func:`~oncoqi.lung.postprocess.dome_caps`) are dropped (absent: none dropped); chosen on
    a held-out tuning set by :mod:`oncoqi.lung.training.tune`, which records how in ``oncoqi.tuning``.
``oncoqi.unet``
    JSON of the :class:`~oncoqi.lung.training.unet.UNetOptions`, for the record.
``oncoqi.divisor``
    Rows and columns of a slice must be multiples of this.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oncoqi.atomic import atomic_path
from oncoqi.errors import CancelToken, InputError, OncoQIError, check_cancel
from oncoqi.lung.postprocess import DEFAULT_THRESHOLD, LesionRules
from oncoqi.lung.preprocess import PreprocessOptions

if TYPE_CHECKING:  # pragma: no cover - typing only
    import onnx

#: Called with ``(slices done, slices in total)`` after each batch.
Progress = Callable[[int, int], None]


class ModelError(InputError):
    """The model file is missing, unreadable, not an ONNX model, or not a tumour network of ours."""


class OnnxRuntimeMissingError(OncoQIError):
    """onnxruntime, needed for inference, is not installed."""


def save_with_metadata(proto: onnx.ModelProto, path: str | os.PathLike, metadata: Mapping[str, str]) -> Path:
    """Set ``metadata`` in the model's ``metadata_props`` (replacing keys already there) and save it atomically.

    Used at export and by :mod:`oncoqi.lung.training.tune`, which rewrites the post-processing keys of a
    trained model. Needs the ``onnx`` package (``train`` extra).
    """
    import onnx

    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return Path(path)


def model_metadata(preprocess: PreprocessOptions, threshold: float, unet: object, divisor: int) -> dict[str, str]:
    """The ``metadata_props`` that :class:`OnnxSegmenter` reads back (see the module documentation).

    ``unet`` is a dataclass instance (:class:`~oncoqi.lung.training.unet.UNetOptions`).
    """
    return {
        "oncoqi.preprocess": json.dumps(asdict(preprocess)),
        "oncoqi.threshold": repr(float(threshold)),
        "oncoqi.unet": json.dumps(asdict(unet)),  # type: ignore[call-overload]
        "oncoqi.divisor": str(int(divisor)),
    }


class OnnxSegmenter:
    """Run the tumour network on axial slices with onnxruntime, in batches, cancellably.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    threads
        onnxruntime intra-op threads (``None``: onnxruntime's default, one per physical core).
        Slicer passes fewer than the machine has so that the GUI stays responsive.

    Use it as a context manager (or call :meth:`close`) to free onnxruntime's memory arena as soon
    as the slices are done: on 512 x 512 slices it holds about 0.6 GB, which would otherwise stay
    resident during the full-volume steps that follow inference.

    Raises
    ------
    ModelError
        When the file is missing or onnxruntime cannot load it.
    OnnxRuntimeMissingError
        When onnxruntime is not installed.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise OnnxRuntimeMissingError(f"inference needs onnxruntime ({exc}): pip install onnxruntime") from exc
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        if threads is not None and threads < 1:
            raise ModelError(f"threads must be >= 1, got {threads}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or 0
        so.inter_op_num_threads = 1
        # No memory pattern (one block planned for all of a shape's intermediate tensors): on the
        # 368 x 448 window of the benchmark's 512 x 512 CT, batch 2, it held 0.38 GB at its peak
        # against 0.24 GB without, at the same speed (0.31 s per slice either way, 2 cores, quiet)
        so.enable_mem_pattern = False
        so.log_severity_level = 3
        try:
            self._session: ort.InferenceSession | None = ort.InferenceSession(
                str(self.path), so, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for any bad file
            raise ModelError(f"{self.path}: not a loadable ONNX model ({exc})") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(
                f"{self.path}: expected one NHWC image input and one output, found "
                f"{[i.shape for i in inputs]} -> {[o.shape for o in outputs]}"
            )
        self._input = inputs[0].name
        self.channels = inputs[0].shape[3] if isinstance(inputs[0].shape[3], int) else 1
        self._output = outputs[0].name
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)

    def __enter__(self) -> OnnxSegmenter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the onnxruntime session and its memory; :meth:`predict` then raises :class:`ModelError`."""
        self._session = None

    @property
    def preprocess_options(self) -> PreprocessOptions:
        """The preprocessing the model was trained with (the defaults when the file does not say)."""
        raw = self.metadata.get("oncoqi.preprocess")
        if raw is None:
            return PreprocessOptions()
        try:
            values = json.loads(raw)
            known = {f.name for f in fields(PreprocessOptions)}
            return PreprocessOptions(**{k: v for k, v in values.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{self.path}: unreadable oncoqi.preprocess metadata ({exc})") from exc

    @property
    def threshold(self) -> float:
        """Probability at or above which a voxel is tumour."""
        return float(self.metadata.get("oncoqi.threshold", DEFAULT_THRESHOLD))

    @property
    def lesion_rules(self) -> LesionRules:
        """Which components are lesions (absent keys: none dropped, no vessel test)."""
        through, dome = self.metadata.get("oncoqi.through_fraction"), self.metadata.get("oncoqi.dome_fraction")
        return LesionRules(
            min_volume_ml=float(self.metadata.get("oncoqi.min_volume_ml", 0.0)),
            min_slices=int(self.metadata.get("oncoqi.min_slices", 1)),
            min_confidence=float(self.metadata.get("oncoqi.min_confidence", 0.0)),
            through_fraction=float(through) if through else None,
            min_lung_fraction=float(self.metadata.get("oncoqi.min_lung_fraction", 0.0)),
            min_compactness=float(self.metadata.get("oncoqi.min_compactness", 0.0)),
            dome_fraction=float(dome) if dome else None,
        )

    @property
    def divisor(self) -> int:
        """Rows and columns of a slice must be multiples of this."""
        return int(self.metadata.get("oncoqi.divisor", 1))

    def predict(
        self,
        slices: np.ndarray,
        batch_size: int = 2,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        *,
        indices: np.ndarray | None = None,
    ) -> np.ndarray:
        """Tumour probability of each slice.

        Parameters
        ----------
        slices
            ``(m, rows, columns)`` network input (the 8-bit codes of
            :func:`oncoqi.lung.preprocess`, any numeric dtype).
        batch_size
            Slices per onnxruntime call. On 512 x 512 slices with the default U-Net and 2 threads,
            batch 2 is about 10 % faster than batch 1 (0.21 against 0.24 s per slice) at a peak
            of 0.7 GB; batch 4 gains 3 % more for 1.2 GB, too much for the 1.5 GB budget.
        progress
            Called as ``progress(done, n)`` after every batch (and ``progress(0, n)`` first).
        cancel
            When cancelled (from any thread), the next batch boundary raises
            :class:`oncoqi.errors.Cancelled`.
        indices
            int ``(n, channels)``: the slices stacked as the channels of each input
            (:meth:`~oncoqi.lung.preprocess.Preprocessed.channel_indices`); stacks are built one
            batch at a time, so a multi-channel model costs no copy of the volume. Default: every
            slice alone (single-channel models only).

        Returns
        -------
        numpy.ndarray
            float32 ``(n, rows, columns)`` probabilities.

        Raises
        ------
        oncoqi.errors.Cancelled
            When ``cancel`` was set.
        ModelError
            When the slices' shape or the number of channels does not fit the model.
        """
        if self._session is None:
            raise ModelError(f"{self.path}: the segmenter was closed")
        slices = np.asarray(slices)
        if slices.ndim != 3:
            raise ModelError(f"slices must be (m, rows, columns), got shape {slices.shape}")
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        indices = np.arange(len(slices))[:, None] if indices is None else np.asarray(indices, dtype=int)
        if indices.ndim != 2 or indices.shape[1] != self.channels:
            raise ModelError(
                f"{self.path}: the model takes {self.channels} slice(s) per input (its "
                f"oncoqi.preprocess context_mm), got indices of shape {indices.shape}"
            )
        _, rows, columns = slices.shape
        if rows % self.divisor or columns % self.divisor:
            raise ModelError(f"{self.path}: slices of {rows} x {columns} are not multiples of {self.divisor}")
        n = len(indices)
        out = np.empty((n, rows, columns), np.float32)
        if progress is not None:
            progress(0, n)
        for start in range(0, n, batch_size):
            check_cancel(cancel, f"segmentation cancelled after {start} of {n} slices")
            batch = np.moveaxis(slices[indices[start : start + batch_size]], 1, -1).astype(np.float32)
            out[start : start + len(batch)] = self._session.run([self._output], {self._input: batch})[0][..., 0]
            if progress is not None:
                progress(start + len(batch), n)
        return out
