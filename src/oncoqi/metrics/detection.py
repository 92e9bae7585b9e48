"""Lung-wise detection over a set of cases: sensitivity, specificity and ROC AUC.

Each case contributes two samples, its right and its left lung. A lung is *positive* when the
reference has a lesion there and *predicted positive* when the prediction has one; a lesion (a
26-connected component) belongs to a lung by :func:`oncoqi.metrics.lesions.lesion_side` (its
centroid's side of the midline, or the lung masks; a lesion on ``both`` counts for both lungs).

=============  ===============================================================================
metric         definition (TP, FP, TN, FN counted over all lungs of the set)
=============  ===============================================================================
sensitivity    ``TP / (TP + FN)``: the fraction of lungs with a tumour in which one is found
specificity    ``TN / (TN + FP)``: the fraction of tumour-free lungs left empty
AUC            area under the ROC curve of a per-lung score: the trapezoid rule over the points
               (FPR, TPR) of every score threshold, which equals the probability that a positive
               lung scores higher than a negative one, ties counting one half
=============  ===============================================================================

The score is the maximum tumour probability inside the lung when every case has a probability
map, otherwise the predicted lesion volume (ml) in the lung (0 without a predicted lesion), so
that a set of hard label maps still ranks lungs by how much tumour was found. Rates with an empty
denominator, and the AUC without both classes, are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from oncoqi.image import Image
from oncoqi.metrics.grid import require_same_grid
from oncoqi.metrics.lesions import LEFT_LUNG, RIGHT_LUNG, centroid_lps, label_boxes, lesion_side
from oncoqi.metrics.surface import bounding_box

SIDES = ("right", "left")
#: Score names, as reported in :class:`DetectionSummary`.
SCORE_PROBABILITY = "max_probability"
SCORE_VOLUME = "predicted_volume_ml"


@dataclass(frozen=True)
class LungFinding:
    """One lung of one case.

    Attributes
    ----------
    case
        Case name.
    side
        ``right`` or ``left``.
    positive
        The reference has a lesion in this lung.
    predicted
        The prediction has a lesion in this lung.
    predicted_ml
        Volume (ml) of the predicted lesions in this lung.
    max_probability
        Highest tumour probability in this lung, None without a probability map.
    """

    case: str
    side: str
    positive: bool
    predicted: bool
    predicted_ml: float
    max_probability: float | None = None

    def score(self, name: str) -> float:
        """The ROC score :data:`SCORE_PROBABILITY` or :data:`SCORE_VOLUME`."""
        value = self.max_probability if name == SCORE_PROBABILITY else self.predicted_ml
        if value is None:
            raise ValueError(f"lung finding {self.case}/{self.side} has no {name}")
        return value


@dataclass(frozen=True)
class DetectionSummary:
    """Lung-wise detection statistics of a set (definitions in the module documentation)."""

    lungs: int
    positives: int
    negatives: int
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    sensitivity: float
    specificity: float
    auc: float
    score: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _sides_with_lesions(mask: np.ndarray, image: Image, lungs: Image | None, midline_x_mm: float) -> dict[str, float]:
    """Lesion volume (ml) per side of the 26-connected components of ``mask``."""
    volume = {side: 0.0 for side in SIDES}
    crop = bounding_box(mask)
    if crop is None:
        return volume
    components, _ = ndimage.label(mask[crop], structure=np.ones((3, 3, 3), bool))
    for label, local in label_boxes(components):
        lesion = components[local] == label
        box = tuple(slice(c.start + s.start, c.start + s.stop) for c, s in zip(crop, local))
        offset = (box[0].start, box[1].start, box[2].start)
        x = float(centroid_lps(image, lesion, offset)[0])
        side = lesion_side(lungs.array[box][lesion] if lungs is not None else None, x, midline_x_mm)
        ml = int(np.count_nonzero(lesion)) * image.voxel_volume_ml
        for s in SIDES if side == "both" else (side,):
            volume[s] += ml
    return volume


def _max_probability_per_side(probability: Image, lungs: Image | None, midline_x_mm: float) -> dict[str, float]:
    """Maximum probability over each lung (lung masks) or each half-space of the midline."""
    if lungs is not None:
        values = {"right": RIGHT_LUNG, "left": LEFT_LUNG}
        return {side: float(probability.array[lungs.array == value].max(initial=0.0)) for side, value in values.items()}
    best = {side: 0.0 for side in SIDES}
    k, j, i = probability.array.shape
    # LPS x of voxel (i, j, k) = x0 + A[0, 0] i + A[0, 1] j + A[0, 2] k, one slice at a time.
    a = probability.affine
    in_plane = a[0, 0] * np.arange(i, dtype=np.float64)[None, :] + a[0, 1] * np.arange(j, dtype=np.float64)[:, None]
    for kk in range(k):
        x = in_plane + (a[0, 3] + a[0, 2] * kk)
        plane = probability.array[kk]
        best["left"] = max(best["left"], float(plane[x > midline_x_mm].max(initial=0.0)))
        best["right"] = max(best["right"], float(plane[x <= midline_x_mm].max(initial=0.0)))
    return best


def lung_findings(
    case: str,
    prediction: Image,
    reference: Image,
    *,
    probability: Image | None = None,
    lungs: Image | None = None,
    midline_x_mm: float = 0.0,
) -> list[LungFinding]:
    """The right and left lung findings of one case.

    Parameters
    ----------
    case
        Case name, carried into the findings.
    prediction, reference
        Label maps on one grid; any non-zero voxel is lesion.
    probability
        Tumour probability on the same grid, for the score; without it the score is the
        predicted lesion volume in the lung.
    lungs
        Lung label map (1 right, 2 left, as ``LungMasks.lungs`` of
        :func:`oncoqi.lung.isolate_lungs`) on the same grid, or None to split at ``midline_x_mm``.
    midline_x_mm
        LPS x (mm) of the body midline.

    Returns
    -------
    list of LungFinding
        Right lung first, then left.

    Raises
    ------
    GeometryError
        When an image is not on the reference grid.
    """
    for other, what in ((prediction, "prediction"), (probability, "probability map"), (lungs, "lung label map")):
        require_same_grid(reference, other, what)
    positive = _sides_with_lesions(reference.array != 0, reference, lungs, midline_x_mm)
    predicted = _sides_with_lesions(prediction.array != 0, prediction, lungs, midline_x_mm)
    best = _max_probability_per_side(probability, lungs, midline_x_mm) if probability is not None else None
    return [
        LungFinding(case, s, positive[s] > 0, predicted[s] > 0, predicted[s], best[s] if best is not None else None)
        for s in SIDES
    ]


def roc_curve(positive: Sequence[bool], score: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points for every distinct score used as threshold (``score >= threshold`` is positive).

    Returns
    -------
    fpr, tpr, thresholds
        False- and true-positive rates, from (0, 0) (threshold +inf) to (1, 1) (the lowest score).
    """
    labels = np.asarray(positive, bool)
    scores = np.asarray(score, float)
    thresholds = np.concatenate([[math.inf], np.unique(scores)[::-1]])
    called = scores[None, :] >= thresholds[:, None]
    tpr = (called & labels).sum(axis=1) / max(int(labels.sum()), 1)
    fpr = (called & ~labels).sum(axis=1) / max(int((~labels).sum()), 1)
    return fpr, tpr, thresholds


def roc_auc(positive: Sequence[bool], score: Sequence[float]) -> float:
    """Trapezoidal area under :func:`roc_curve`; NaN unless both classes are present."""
    labels = np.asarray(positive, bool)
    if labels.all() or not labels.any():
        return math.nan
    fpr, tpr, _ = roc_curve(labels, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def detection_summary(findings: Iterable[LungFinding]) -> DetectionSummary:
    """Sensitivity, specificity and AUC over lung findings.

    The ROC score is the maximum probability when every finding has one, otherwise the
    predicted volume (mixing the two would rank lungs on two scales).

    Parameters
    ----------
    findings
        The findings of every lung of the set.
    """
    items = list(findings)
    score = SCORE_PROBABILITY if items and all(f.max_probability is not None for f in items) else SCORE_VOLUME
    tp = sum(f.positive and f.predicted for f in items)
    fn = sum(f.positive and not f.predicted for f in items)
    fp = sum(not f.positive and f.predicted for f in items)
    tn = sum(not f.positive and not f.predicted for f in items)
    return DetectionSummary(
        lungs=len(items),
        positives=tp + fn,
        negatives=tn + fp,
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
        sensitivity=tp / (tp + fn) if tp + fn else math.nan,
        specificity=tn / (tn + fp) if tn + fp else math.nan,
        auc=roc_auc([f.positive for f in items], [f.score(score) for f in items]),
        score=score,
    )
