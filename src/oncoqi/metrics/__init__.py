"""Segmentation evaluation: overlap, surface distances (DeepMind's definitions), lung-wise detection.

Typical use::

    from oncoqi.metrics import evaluate_case, EvaluationCase, evaluate_set

    m = evaluate_case(prediction, reference, tolerance_mm=1.18)   # Image label maps, one grid
    print(m.dice, m.hd95_mm, m.surface_dice, m.apl_mm)

    report = evaluate_set(EvaluationCase(name, pred, ref) for name, pred, ref in cases)
    print(report.summary["dice"].median, report.detection.sensitivity)

or ``oncoqi lung evaluate PRED GT``. The definitions are in the documentation of
:mod:`oncoqi.metrics.overlap`, :mod:`oncoqi.metrics.surface` and :mod:`oncoqi.metrics.detection`;
:mod:`oncoqi.metrics.lesions` puts each lesion in its lung (shared with the lesion measurements),
:mod:`oncoqi.metrics.matching` pairs prediction and reference files by case name, and
:mod:`oncoqi.metrics.report` prints a report as a table or JSON.
"""

from oncoqi.metrics.case import SUMMARY_KEYS, CaseMetrics, Stats, evaluate_case, evaluate_masks, summarise
from oncoqi.metrics.detection import DetectionSummary, LungFinding, detection_summary, lung_findings, roc_auc, roc_curve
from oncoqi.metrics.evaluation import EvaluationCase, EvaluationReport, evaluate_set
from oncoqi.metrics.overlap import OverlapCounts
from oncoqi.metrics.surface import (
    DEFAULT_TOLERANCE_MM,
    SurfaceDistances,
    added_path_length,
    crop_to_union,
    surface_distances,
)

__all__ = [
    "DEFAULT_TOLERANCE_MM",
    "SUMMARY_KEYS",
    "CaseMetrics",
    "DetectionSummary",
    "EvaluationCase",
    "EvaluationReport",
    "LungFinding",
    "OverlapCounts",
    "Stats",
    "SurfaceDistances",
    "added_path_length",
    "crop_to_union",
    "detection_summary",
    "evaluate_case",
    "evaluate_masks",
    "evaluate_set",
    "lung_findings",
    "roc_auc",
    "roc_curve",
    "summarise",
    "surface_distances",
]
