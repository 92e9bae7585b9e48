"""An int8 copy of a tumour model (``oncoqi lung quantize``): the same network, about 1.8 times faster.

The network is most of the pipeline's time (43 of 53 s on the benchmark's 512 x 512 x 150 CT), and
its convolutions are the network. The processors this runs on have 8-bit integer dot products
(AVX-512 VNNI, AVX2), which onnxruntime uses for quantized convolutions. Static quantization
(:func:`onnxruntime.quantization.quantize_static`, QDQ format) stores each convolution's weights
as int8 per output channel and its input as uint8 with a scale and zero point chosen on
calibration inputs, so that nothing but the convolutions changes.

The calibration inputs are what inference feeds the network: the lung-window codes of the slices
the network runs on, over the search region's window (:func:`oncoqi.lung.segment.network_window`),
of synthetic training-distribution cases (:func:`oncoqi.lung.training.data.phantom_case`, set seed 0
by default: cases the network was trained on, never a tuning or test case). Every metadata entry of
the source model is kept (preprocessing, threshold, lesion rules), and ``oncoqi.quantized`` says
what was done, on what, and from which file (its SHA-256).

Whether the int8 model may replace the float one is decided by measurement, side by side on the
same cases (``Docs/model-card.md``).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from oncoqi.atomic import atomic_path
from oncoqi.lung.isolation import isolate_lungs
from oncoqi.lung.onnx_model import OnnxSegmenter
from oncoqi.lung.preprocess import preprocess
from oncoqi.lung.segment import network_window
from oncoqi.lung.training.data import Case, TrainingError

#: Slices of each calibration case fed to the calibration (evenly spaced over the searched slices).
SLICES_PER_CASE = 6


def calibration_inputs(model: Path, cases: Iterable[Case], per_case: int = SLICES_PER_CASE) -> Iterator[np.ndarray]:
    """Network inputs ``(1, rows, columns, channels)`` float32, as inference builds them, ``per_case`` per case."""
    segmenter = OnnxSegmenter(model, threads=1)
    for case in cases:
        pre = preprocess(case.ct, segmenter.preprocess_options)
        search = pre.to_network_grid(isolate_lungs(case.ct, name=case.name).search_region, "label")
        run = np.flatnonzero(search.any(axis=(1, 2)))
        if not len(run):
            continue
        rows, columns = network_window(search, segmenter.divisor)
        picked = run[np.linspace(0, len(run) - 1, min(per_case, len(run))).round().astype(int)]
        for stack in pre.channel_indices(picked):
            yield np.moveaxis(pre.array[stack][:, rows, columns], 0, -1)[None].astype(np.float32)


def quantize_model(
    model: str | Path,
    out: str | Path,
    cases: Iterable[Case],
    what: str,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the int8 copy of ``model`` to ``out`` (atomically), calibrated on ``cases``.

    Parameters
    ----------
    model
        A float ONNX tumour model (``oncoqi lung train`` or ``ensemble``).
    out
        The int8 model to write.
    cases
        Calibration cases (:func:`calibration_inputs`).
    what
        What the cases are, for the ``oncoqi.quantized`` note (e.g. ``"8 phantoms of set seed 0"``).
    log
        Called with a line per stage.

    Raises
    ------
    TrainingError
        When ``onnx`` (the ``train`` extra) is missing, or the cases give no calibration input.
    """
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise TrainingError(f"quantization needs onnx ({exc}); install the extra: pip install 'oncoqi[train]'") from exc
    model, out = Path(model), Path(out)
    inputs = list(calibration_inputs(model, cases))
    if not inputs:
        raise TrainingError("the calibration cases gave no slice with lungs")
    log(f"calibrating on {len(inputs)} slices of {what}")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter({"ct_codes": x} for x in inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    source = onnx.load(str(model))
    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
        )
        result = onnx.load(str(quantized))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    del result.metadata_props[:]
    for prop in source.metadata_props:
        result.metadata_props.add(key=prop.key, value=prop.value)
    note = (
        f"int8 (static, QDQ, convolutions only, weights per channel) of {model.name} (SHA-256 {digest[:12]}), "
        f"calibrated on {len(inputs)} slices of {what}"
    )
    result.metadata_props.add(key="oncoqi.quantized", value=note)
    with atomic_path(out) as tmp_out:
        onnx.save(result, str(tmp_out))
    log(f"{out}: {note}")
    return out
