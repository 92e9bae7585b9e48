"""An evaluation report as text: the per-case table, the summary and the detection line, or JSON.

``oncoqi lung evaluate`` prints :func:`print_report`, or with ``--json`` the document of
:func:`report_dict`: ``{"tolerance_mm", "cases": [...], "summary": {metric: {n, median, q1, q3,
mean}}, "detection": {...}, "lungs": [...]}``, written with infinite and undefined values as null
(:func:`oncoqi.jsonio.strict`; ``empty_prediction`` tells a failed case).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any, TextIO

from oncoqi.metrics.evaluation import EvaluationReport


def report_dict(report: EvaluationReport) -> dict[str, Any]:
    """The ``--json`` document of a report, non-finite values still floats (:func:`oncoqi.jsonio.strict` makes them null)."""
    return {
        "tolerance_mm": report.cases[0].tolerance_mm if report.cases else None,
        "cases": [c.to_dict() for c in report.cases],
        "summary": {k: dataclasses.asdict(v) for k, v in report.summary.items()},
        "detection": report.detection.to_dict(),
        "lungs": [dataclasses.asdict(f) for f in report.findings],
    }


def _fmt(value: float, spec: str) -> str:
    """``value`` formatted by ``spec``; NaN as ``-`` and inf as ``inf``, right-aligned to the spec's width."""
    if math.isfinite(value):
        return format(value, spec)
    width = int(spec.lstrip("+").split(".")[0] or 0)
    return format("-" if math.isnan(value) else "inf", f">{width}s")


def print_report(report: EvaluationReport, out: TextIO | None = None) -> None:
    """Print the per-case table, the summary and the detection line to ``out`` (default stdout)."""
    out = out if out is not None else sys.stdout
    tol = report.cases[0].tolerance_mm
    width = max(12, *(len(c.case) for c in report.cases))
    sdsc = f"sDSC@{tol:g}"
    header = f"{'case':{width}s} {'DSC':>6s} {'Jaccard':>7s} {'HD95 mm':>8s} {sdsc:>10s} {'APL mm':>8s} {'dV ml':>8s}"
    print(header, file=out)
    for c in report.cases:
        note = "  (empty prediction)" if c.empty_prediction else "  (empty reference)" if c.empty_reference else ""
        print(
            f"{c.case:{width}s} {_fmt(c.dice, '6.3f')} {_fmt(c.jaccard, '7.3f')} {_fmt(c.hd95_mm, '8.2f')} "
            f"{_fmt(c.surface_dice, '10.3f')} {_fmt(c.apl_mm, '8.1f')} {_fmt(c.volume_difference_ml, '+8.2f')}{note}",
            file=out,
        )
    print(f"\nsummary over {len(report.cases)} case(s): median [Q1, Q3] (n defined)", file=out)
    for key, s in report.summary.items():
        print(f"  {key:28s} {_fmt(s.median, '.4g')} [{_fmt(s.q1, '.4g')}, {_fmt(s.q3, '.4g')}] (n={s.n})", file=out)
    d = report.detection
    print(
        f"\nlung-wise detection ({d.lungs} lungs, {d.positives} with tumour; score {d.score}): "
        f"sensitivity {_fmt(d.sensitivity, '.3f')}, specificity {_fmt(d.specificity, '.3f')}, AUC {_fmt(d.auc, '.3f')}",
        file=out,
    )
