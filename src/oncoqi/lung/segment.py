"""End-to-end lung tumour segmentation of a chest CT with the ONNX tumour network.

:func:`segment_ct` chains the steps of the pipeline, each on the grid where it belongs:

1. lung isolation on the CT's own grid (:func:`oncoqi.lung.isolate_lungs`): the tight lung mask
   and the tumour search region (lungs and their mirror about the spine, dilated);
2. preprocessing to the network grid the model was trained on (its ``oncoqi.preprocess``
   metadata; :func:`oncoqi.lung.preprocess`);
3. the network runs only on the slices that meet the search region (with their neighbours as
   extra channels when the model was trained so): slices above and below the lungs cannot hold
   a lung tumour, and skipping them is most of the speed on a whole-body CT. Among those it runs
   first on slices at most :data:`SPARSE_STEP_MM` apart, then only around the slices where it
   saw something (:func:`network_pass`), which halves the network's time on a 2 mm CT and
   leaves the lesions as the dense pass finds them. In the slice it
   runs only on the rows and columns of the search region and :data:`WINDOW_MARGIN_PX` beyond
   (:func:`network_window`): what lies further out is chest wall and air, which the network would
   pay for and the search region then discards (the window is 63 % of the slice on the
   benchmark's 512 x 512 x 150 CT, and the network's time falls by about as much);
4. the probability comes back onto the CT's exact grid (:meth:`Preprocessed.to_input_grid`,
   linear), so that thresholding and lesion labelling happen at the CT's own resolution;
5. :func:`oncoqi.lung.postprocess.label_lesions` restricted to the search region (every 3D
   component kept, by decreasing volume, except those below the minimum
   volume or slice count, or that a vessel runs through, as the model's metadata sets, see
   :mod:`oncoqi.lung.training.tune`, and thin sheets when it sets ``oncoqi.min_compactness``, see
   :func:`oncoqi.lung.postprocess.compactness`);
6. :func:`oncoqi.lung.measure.measure_lesions` with the CT, probability and lung masks;
7. :func:`oncoqi.lung.primary.order_by_evidence`: each lesion's doubts (a thin sheet, at the
   scan's edge, low confidence), and the lesions numbered so that GTV-1 is the largest undoubted
   one (with a PET, :mod:`oncoqi.batch` orders them again with SUVmax as evidence).

The shipped model is ``oncoqi/data/lung_unet.onnx`` (:func:`default_model_path`; its model
card is ``Docs/model-card.md``); :func:`resolve_model` says so clearly when it is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oncoqi.errors import CancelToken, OncoQIError
from oncoqi.image import Image
from oncoqi.lung.isolation import LungMasks, isolate_lungs
from oncoqi.lung.measure import LesionMeasurement, measure_lesions
from oncoqi.lung.onnx_model import OnnxSegmenter, Progress
from oncoqi.lung.postprocess import LesionRules, label_lesions
from oncoqi.lung.preprocess import Preprocessed, preprocess
from oncoqi.lung.primary import order_by_evidence
from oncoqi.metrics.surface import bounding_box
from oncoqi.progress import Reporter, stages_of

#: File name of the shipped model inside the package's ``data`` folder.
MODEL_FILE = "lung_unet.onnx"
#: File name of the lesion label map (:attr:`TumourSegmentation.labels`) that ``oncoqi lung segment`` and the
#: cohort batch write. It keeps the US spelling "tumor", unlike the code's "tumour", because existing readers
#: (scripts, the phantom's ``truth/tumor_label.nrrd``, training folders) look for this name: do not rename it.
TUMOUR_LABEL_FILE = "tumor_label.nrrd"
#: Network pixels kept around the search region when the network runs on a window of the slice
#: (:func:`network_window`). The U-Net's receptive field reaches about 140 pixels, but what lies
#: beyond 96 barely counts: with this margin the probability inside the search region equals the
#: whole slice's to 2e-7 on 9 of 11 development CTs, 1.4e-5 on one and 5e-4 on the demo sample's,
#: with the same lesions on all 11 (``Testing/benchmarks/bench_lung_window.py --cases 4``; 4e-7 on
#: the first measurement's three CTs): all but the demo sample's inside the 1e-4 that Keras and ONNX
#: are held to, and no lesion changes, so a model's tuning and measured accuracy stay valid. A margin
#: of 64 was faster but changed the probability by up to 0.02, and 32 by 0.5.
WINDOW_MARGIN_PX = 96
#: The first network pass runs on search-region slices at most this far apart (mm); the slices between
#: run only next to a slice where the network saw something (:func:`network_pass`). Why 6 mm: the smallest
#: lesion kept (0.5 ml, a 10 mm ball) then always crosses a first-pass slice within 3 mm of its centre,
#: where the network sees it as well as anywhere, and the neighbouring slices the network is given as
#: context (4 mm) overlap the gap.
SPARSE_STEP_MM = 6.0
#: A first-pass slice whose probability inside the search region reaches this share of the threshold has
#: the slices around it run: a fifth of the threshold, so that a lesion's faint end slices bring in the
#: next ones as surely as its centre does.
SEED_FRACTION = 0.2


class NoModelError(OncoQIError):
    """No trained tumour model is available (none given, and the shipped one is missing)."""


def default_model_path() -> Path:
    """Where the shipped model lives: ``oncoqi/data/lung_unet.onnx`` inside the package."""
    return Path(__file__).resolve().parent.parent / "data" / MODEL_FILE


def resolve_model(model_path: str | os.PathLike | None) -> Path:
    """The model to use: ``model_path`` when given, else the shipped one.

    A given path is not checked here: :class:`OnnxSegmenter` reports a missing or bad file.

    Raises
    ------
    NoModelError
        When no path is given and no model is shipped.
    """
    if model_path is not None:
        return Path(model_path)
    shipped = default_model_path()
    if not shipped.is_file():
        raise NoModelError(
            f"no trained model: {shipped} is missing from this installation; reinstall oncoqi, or train one with "
            "`oncoqi lung train` and give its path (model)",
            setting="model",
        )
    return shipped


def check_model(model_path: str | os.PathLike | None) -> None:
    """Load the tumour model once (None: the shipped one), so that a command running many studies says
    that it is missing or bad once, before any work, instead of failing every study alike.

    Raises
    ------
    OncoQIError
        :class:`NoModelError` as :func:`resolve_model`; :class:`ModelError` when there is no such file or
        it is not a loadable ONNX model; an error naming onnxruntime when it is not installed.
    """
    with OnnxSegmenter(resolve_model(model_path), threads=1):
        pass


@dataclass
class TumourSegmentation:
    """The lung tumours found by :func:`segment_ct`, with the lung masks and probability, every image on the CT's own grid.

    Attributes
    ----------
    labels
        Lesion labels: 0 background, 1 GTV-1 (the largest undoubted lesion), 2..n the others
        (:func:`oncoqi.lung.primary.order_by_evidence`).
    lungs
        Tight lung mask: 0 outside, 1 right lung, 2 left lung.
    probability
        float32 tumour probability (0 on slices, rows and columns the network did not run on).
    lesions
        Measurements of each lesion, in label order (``to_dict()`` gives the ``lesions.json`` records).
    masks
        Everything lung isolation found (search region, body, spine axis, ...).
    threshold
        Probability threshold used for ``labels``.
    slices_run
        Indices of the network-grid slices the network ran on.
    """

    labels: Image
    lungs: Image
    probability: Image
    lesions: list[LesionMeasurement]
    masks: LungMasks
    threshold: float
    slices_run: np.ndarray


@dataclass
class TumourProbability:
    """The network's tumour probability on the CT's grid, and how the model says to label it.

    Attributes
    ----------
    masks
        Lung isolation of the CT (search region, lungs, ...).
    probability
        float32 tumour probability on the CT's grid (0 where the network did not run: other slices, and
        outside :func:`network_window`).
    slices_run
        Indices of the network-grid slices the network ran on.
    threshold, rules
        The model's post-processing (:class:`~oncoqi.lung.onnx_model.OnnxSegmenter`).
    """

    masks: LungMasks
    probability: Image
    slices_run: np.ndarray
    threshold: float
    rules: LesionRules


def network_window(search: np.ndarray, divisor: int, margin: int = WINDOW_MARGIN_PX) -> tuple[slice, slice]:
    """The rows and columns of the network grid the network runs on: the search region's, with a margin.

    Why: the network's time grows with the pixels it sees, and only the search region's count.
    Why on the divisor's grid: the window's corner and size are multiples of ``divisor`` (the
    network's total pooling), so its pooling cells, and those of the mirrored pass, which mirrors
    the window, fall where they fall on the whole slice; only the window's edges, ``margin``
    pixels from the search region, are new to the network.

    Parameters
    ----------
    search
        bool or 0/1 ``(slices, rows, columns)``: the search region on the network grid.
    divisor
        The model's divisor (rows and columns of an input must be multiples of it); the grid's
        rows and columns are multiples of it too.
    margin
        Pixels kept beyond the search region on each side (before rounding out to the divisor).

    Returns
    -------
    tuple of slice
        Rows and columns; the whole slice when the search region is empty.
    """
    footprint = np.asarray(search).any(axis=0)
    box = bounding_box(footprint)
    if box is None:
        return slice(None), slice(None)
    rows, columns = (
        slice(
            max(0, (cut.start - margin) // divisor * divisor), min(size, -(-(cut.stop + margin) // divisor) * divisor)
        )
        for cut, size in zip(box, footprint.shape)
    )
    return rows, columns


def slice_step(spacing_mm: float, step_mm: float = SPARSE_STEP_MM) -> int:
    """How many slices apart the first network pass runs: as many as fit in ``step_mm``, at least 1 (every slice)."""
    return max(1, int(step_mm // abs(spacing_mm))) if step_mm > 0 else 1


def first_pass_slices(candidates: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th of ``candidates`` (increasing slice indices), the last one included."""
    return np.union1d(candidates[::step], candidates[-1:])


def _counted_on(progress: Progress | Reporter, done: int, total: int) -> Progress:
    """One network call's ``(d, n)`` reports as ``(done + d, total)``, the slices of the whole pass.

    Its first report, ``(0, n)``, is left out: it repeats the last one.
    """

    def report(slices: int, _in_call: int) -> None:
        if slices:
            progress(done + slices, total)

    return report


def network_pass(
    segmenter: OnnxSegmenter,
    pre: Preprocessed,
    search: np.ndarray,
    progress: Progress | Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    batch_size: int = 2,
    step_mm: float = SPARSE_STEP_MM,
) -> tuple[Image, np.ndarray]:
    """Step 3 of the pipeline: the network's probability on the network grid, sparse first, then where it counts.

    The network runs on :func:`first_pass_slices`, then on every not yet run search-region slice
    within one step of a run slice whose largest probability inside the search region reaches
    :data:`SEED_FRACTION` of the model's threshold, again and again until no new slice qualifies.
    So each lesion's slices, and one step beyond its ends, are run densely; the slices skipped lie
    between first-pass slices where the network saw nothing, and their probability stays 0.
    ``step_mm`` 0 runs every search-region slice (the dense pass, which
    :mod:`oncoqi.lung.training.tune` uses, as its thresholds may go below the seed).

    Parameters
    ----------
    segmenter
        The open model.
    pre
        The preprocessed CT (network grid).
    search
        The search region on the network grid.
    progress, cancel, batch_size
        As :func:`segment_ct`; the progress total is the number of search-region slices, and the
        last report is ``(total, total)`` however many were skipped.
    step_mm
        Largest distance between first-pass slices (:data:`SPARSE_STEP_MM`).

    Returns
    -------
    tuple
        The float32 probability on the part of the network grid that holds :func:`network_window`
        and two pixels of zeros around it (0 elsewhere: kept as an image of that part, it is 40 %
        smaller on the benchmark's 512 x 512 x 150 CT), and the increasing indices of the slices run.
    """
    candidates = np.flatnonzero(search.any(axis=(1, 2)))
    shape = pre.array.shape
    window = [slice(*cut.indices(n)[:2]) for cut, n in zip(network_window(search, segmenter.divisor), shape[1:])]
    box = (slice(0, shape[0]), *(slice(max(0, w.start - 2), min(n, w.stop + 2)) for w, n in zip(window, shape[1:])))
    rows, columns = (slice(w.start - b.start, w.stop - b.start) for w, b in zip(window, box[1:]))
    probability = np.zeros(tuple(b.stop - b.start for b in box), np.float32)
    ran = np.zeros(shape[0], bool)
    seed = SEED_FRACTION * segmenter.threshold
    step = slice_step(pre.image.spacing[2], step_mm)
    todo = first_pass_slices(candidates, step)
    total = len(candidates)
    if progress is not None:
        progress(0, total)
    while len(todo):
        probability[todo, rows, columns] = segmenter.predict(
            pre.array[:, window[0], window[1]],
            batch_size=batch_size,
            progress=None if progress is None else _counted_on(progress, int(ran.sum()), total),
            cancel=cancel,
            indices=pre.channel_indices(todo),
        )
        ran[todo] = True
        seen = (probability[todo] * search[todo][:, box[1], box[2]]).max(axis=(1, 2)) >= seed
        near = (todo[seen][:, None] + np.arange(-step + 1, step)[None]).ravel()
        todo = np.intersect1d(near, candidates[~ran[candidates]])
    if progress is not None and ran.sum() < total:  # slices were skipped: the last batch did not say so
        progress(total, total)
    return pre.network_grid.sub(box).image(probability), np.flatnonzero(ran)


def tumour_probability(
    ct: Image,
    model_path: str | os.PathLike | None = None,
    threads: int | None = None,
    progress: Progress | Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    batch_size: int = 2,
    name: str | None = None,
    step_mm: float = SPARSE_STEP_MM,
) -> TumourProbability:
    """Steps 1-4 of the pipeline (module documentation): lungs, preprocessing, network, back to the CT grid.

    :func:`segment_ct` labels and measures the result; :mod:`oncoqi.lung.training.tune` relabels it with
    every candidate post-processing, with ``step_mm`` 0 (:func:`network_pass`). Other parameters and
    errors as :func:`segment_ct`.
    """
    stages = stages_of(progress)
    with OnnxSegmenter(resolve_model(model_path), threads=threads) as segmenter:
        stages.stage("lungs")
        masks = isolate_lungs(ct, name=name)
        stages.stage("network")
        pre = preprocess(ct, segmenter.preprocess_options)
        search_net = pre.to_network_grid(masks.search_region, "label") != 0
        on_network, run = network_pass(
            segmenter, pre, search_net, progress, cancel, batch_size=batch_size, step_mm=step_mm
        )
        settings = (segmenter.threshold, segmenter.lesion_rules)
    # onnxruntime's arena (about 0.6 GB on 512 x 512 slices) is released before the full-volume
    # steps, and the network-grid arrays when this returns: peak memory
    probability = pre.input_grid.image(pre.input_grid.resample(on_network, "probability"))
    return TumourProbability(masks, probability, run, *settings)


def segment_ct(
    ct: Image,
    model_path: str | os.PathLike | None = None,
    threads: int | None = None,
    progress: Progress | Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    threshold: float | None = None,
    batch_size: int = 2,
    name: str | None = None,
) -> TumourSegmentation:
    """Segment the lung tumours of an axial chest CT (the steps are in the module documentation).

    Parameters
    ----------
    ct
        CT in Hounsfield units.
    model_path
        ONNX tumour model (default: the shipped one).
    threads
        onnxruntime threads (``None``: one per physical core).
    progress
        Called as ``progress(done, total)`` with the network's slices done of the slices that meet
        the search region (the last call is ``(total, total)``, also when the sparse pass skipped
        some, :func:`network_pass`). A :class:`~oncoqi.progress.Reporter` is also told the stages:
        ``lungs`` (step 1), ``network`` (steps 2-4, its fraction the slices done) and ``lesions``
        (steps 5-6).
    cancel
        Cancel it from another thread to stop at the next batch (raises
        :class:`~oncoqi.errors.Cancelled`).
    threshold
        Probability threshold (default: the one stored in the model).
    batch_size
        Slices per network call (see :meth:`OnnxSegmenter.predict`).
    name
        How to name the CT in messages.

    Returns
    -------
    TumourSegmentation
        Labels, lung mask, probability and measurements on the CT's grid.

    Raises
    ------
    NoModelError
        When no model is given and none is shipped.
    oncoqi.lung.onnx_model.ModelError
        When the model cannot be loaded or does not fit the grid.
    oncoqi.lung.LungNotFoundError, oncoqi.lung.NotCTError, oncoqi.errors.GeometryError
        When the CT has no lungs, is not a CT, or is not axial.
    """
    found = tumour_probability(ct, model_path, threads, progress, cancel, batch_size=batch_size, name=name)
    stages_of(progress).stage("lesions")
    cut = found.threshold if threshold is None else float(threshold)
    labels = label_lesions(
        found.probability, cut, found.rules, search_mask=found.masks.search_region, ct=ct, lungs=found.masks.lungs
    )
    lesions = measure_lesions(labels, ct, found.probability, found.masks.lungs)
    labels, lesions = order_by_evidence(labels, lesions)
    return TumourSegmentation(
        labels=labels,
        lungs=found.masks.lungs,
        probability=found.probability,
        lesions=lesions,
        masks=found.masks,
        threshold=cut,
        slices_run=found.slices_run,
    )
