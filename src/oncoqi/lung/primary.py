"""Which lesion is GTV-1: the largest lesion the evidence does not doubt, not merely the largest.

The first row of the lesion table is the one a clinician reads, so GTV-1 must be a tumour. Size
alone chose it before, and on ``oncoqi phantom ct --seed 5 --size 192 --slices 60`` GTV-1 was an
18 ml slab of liver on the scan's first slice (confidence 0.95, 1 slice, 93 mm across), the true
tumour missed. Each lesion is now checked against the evidence that it is a tumour, and every
doubt is kept with its reason (:attr:`oncoqi.lung.measure.LesionMeasurement.doubts`, in
``lesions.json``, the batch table and the Slicer table). The lesions are then numbered: those
without a doubt first, by decreasing volume, then the doubted ones, by decreasing volume. A
doubted lesion becomes GTV-1 only when every lesion is doubted, and then it says so.

The doubts (:class:`EvidenceRules`):

thin sheet
    Compactness (:func:`oncoqi.lung.postprocess.compactness`, thickness over length) below
    :data:`oncoqi.lung.postprocess.MIN_COMPACTNESS`: a lung tumour is a compact mass (every
    synthetic tumour is at least 0.72); a band along the pleura or a slab of the abdomen is not.
at the scan's edge
    The lesion reaches the first or the last slice: the scan cuts it, so neither its extent nor
    what it is can be judged; the liver dome and the upper abdomen meet the lowest slices.
low confidence
    Mean network probability (:attr:`~oncoqi.lung.measure.LesionMeasurement.confidence`) below
    ``min_confidence``: a lesion whose voxels barely pass the threshold (not asked of a lesion a
    reader added with a point, :mod:`oncoqi.lung.click`, which the network may not have seen).
not FDG-avid
    With a PET of the same study: SUVmax (body weight) below ``min_suvmax``. Primary NSCLC is
    FDG-avid; the 2.5 cut-off is the classic one for a malignant nodule (and imperfect: small or
    lepidic adenocarcinomas can stay below it, which is why it is a doubt, not a deletion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from oncoqi.image import Image
from oncoqi.lung.measure import LesionMeasurement
from oncoqi.lung.postprocess import MIN_COMPACTNESS, compactness
from oncoqi.metrics.lesions import label_boxes

#: Mean probability under which a lesion is doubted (the threshold itself is usually 0.5).
MIN_CONFIDENCE = 0.6
#: SUVmax (body weight) under which a lesion is doubted as not FDG-avid.
MIN_SUVMAX = 2.5


@dataclass(frozen=True)
class EvidenceRules:
    """Bounds under which a lesion is doubted (module documentation); 0 switches a test off."""

    min_compactness: float = MIN_COMPACTNESS
    min_confidence: float = MIN_CONFIDENCE
    min_suvmax: float = MIN_SUVMAX


def lesion_doubts(
    labels: Image,
    lesions: list[LesionMeasurement],
    rules: EvidenceRules = EvidenceRules(),
    suvmax: Mapping[int, float] | None = None,
) -> dict[int, tuple[str, ...]]:
    """Why each lesion may not be a tumour (an empty tuple: no doubt), by label.

    Parameters
    ----------
    labels
        The lesion label map the measurements were made on.
    lesions
        Its measurements (:func:`oncoqi.lung.measure.measure_lesions`).
    rules
        The bounds.
    suvmax
        SUVmax (body weight) of each label when a PET of the study exists; None without one. A
        label missing from it (e.g. outside the PET's field of view) is not judged on it.
    """
    boxes = dict(label_boxes(labels.array))
    last = labels.array.shape[0] - 1
    out: dict[int, tuple[str, ...]] = {}
    for lesion in lesions:
        box = boxes[lesion.label]
        reasons = []
        shape = compactness(labels.array[box] == lesion.label, labels.spacing)
        if shape < rules.min_compactness:
            reasons.append(f"a thin sheet, not a mass (compactness {shape:.2f})")
        if box[0].start == 0 or box[0].stop - 1 == last:
            reasons.append("at the scan's edge (reaches its first or last slice)")
        network = lesion.source == "network"  # a lesion a reader pointed at is not judged on the network's belief
        if network and lesion.confidence is not None and lesion.confidence < rules.min_confidence:
            reasons.append(f"low confidence ({lesion.confidence:.2f})")
        value = None if suvmax is None else suvmax.get(lesion.label)
        if value is not None and np.isfinite(value) and value < rules.min_suvmax:
            reasons.append(f"not FDG-avid (SUVmax {value:.1f})")
        out[lesion.label] = tuple(reasons)
    return out


def order_by_evidence(
    labels: Image,
    lesions: list[LesionMeasurement],
    rules: EvidenceRules = EvidenceRules(),
    suvmax: Mapping[int, float] | None = None,
) -> tuple[Image, list[LesionMeasurement]]:
    """Number the lesions by evidence: undoubted ones first, each group by decreasing volume.

    Parameters are those of :func:`lesion_doubts`.

    Returns
    -------
    tuple
        The relabelled map (same grid, dtype and metadata; label 1 is GTV-1) and the measurements
        with their new labels and their :attr:`~oncoqi.lung.measure.LesionMeasurement.doubts`,
        in label order.
    """
    doubts = lesion_doubts(labels, lesions, rules, suvmax)
    order = sorted(lesions, key=lambda m: (bool(doubts[m.label]), -m.volume_ml, m.label))
    relabel = np.zeros(int(labels.array.max(initial=0)) + 1, labels.array.dtype)
    for new, lesion in enumerate(order, start=1):
        relabel[lesion.label] = new
    relabelled = labels.with_array(relabel[labels.array], **labels.metadata)
    ordered = [replace(m, label=new, doubts=doubts[m.label]) for new, m in enumerate(order, start=1)]
    return relabelled, ordered
