"""``report.html``: the cohort at a glance, one self-contained file viewable without a server.

It holds the counts (studies done, skipped from an earlier run, failed), the histograms of lesion
volume and SUVmax (PNG drawn with Pillow, embedded as base64), the lesion table, the failures with
their reasons, and every study's QC picture (linked by relative path, ``<patient>/<study>/qc.png``,
so the page stays small; keep it beside the study folders). No script, no external resource.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from oncoqi import __version__
from oncoqi.atomic import write_text

#: Columns shown in the HTML lesion table (the CSV has them all).
SHOWN = (
    "patient_id",
    "study_uid",
    "lesion",
    "volume_ml",
    "recist_mm",
    "side",
    "confidence",
    "suv_max",
    "suv_peak",
    "mtv_ml",
    "tlg",
    "thr_mtv_ml",
    "warnings",
)


def histogram_png(values: Sequence[float], label: str, bins: int = 12, size: tuple[int, int] = (420, 240)) -> bytes:
    """A bar histogram of ``values`` as PNG bytes (axis ticks at the first, middle and last bin edges)."""
    width, height = size
    left, bottom, top, right = 40, 36, 20, 12
    canvas = PILImage.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    draw.text((left, 4), f"{label} (n = {data.size})", fill=(0, 0, 0))
    draw.line([(left, height - bottom), (width - right, height - bottom)], fill=(0, 0, 0))
    draw.line([(left, top), (left, height - bottom)], fill=(0, 0, 0))
    if data.size:
        lo, hi = float(data.min()), float(data.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(data, bins=bins, range=(lo, hi))
        plot_w, plot_h = width - left - right, height - top - bottom
        bar_w = plot_w / bins
        peak = max(int(counts.max()), 1)
        for n, c in enumerate(counts):
            h = plot_h * c / peak
            x0 = left + n * bar_w
            draw.rectangle([x0 + 1, height - bottom - h, x0 + bar_w - 1, height - bottom], fill=(70, 110, 190))
        for n in (0, bins // 2, bins):
            x = left + n * bar_w
            draw.text((x - 10, height - bottom + 4), f"{edges[n]:.3g}", fill=(0, 0, 0))
        draw.text((4, top), str(peak), fill=(0, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _numbers(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    out = []
    for r in rows:
        try:
            out.append(float(r[key]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def write_html_report(
    out_dir: str | os.PathLike,
    rows: Sequence[dict[str, Any]],
    failures: Sequence[dict[str, Any]],
    studies: Sequence[dict[str, Any]],
    path: str | os.PathLike | None = None,
) -> Path:
    """Write ``report.html`` into ``out_dir`` (atomically).

    Parameters
    ----------
    out_dir
        The cohort's output folder (QC pictures are linked relative to it).
    rows
        The results table rows (sorted as wanted).
    failures
        ``failures.csv`` records (``patient_id``, ``study_uid``, ``reason``, ...).
    studies
        One record per study: ``key``, ``status``, ``qc`` (path relative to ``out_dir`` or empty).
    path
        Where to write (default ``out_dir/report.html``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    out = Path(out_dir)
    target = Path(path) if path is not None else out / "report.html"
    lesions = [r for r in rows if r.get("lesion") not in (None, "", "none")]
    parts = [
        *_summary(studies, lesions),
        *_distributions(lesions),
        *_lesion_table(rows),
        *_failure_table(failures),
        *_qc_figures(studies),
        "</body></html>\n",
    ]
    return write_text("\n".join(parts), target)


def _summary(studies: Sequence[dict[str, Any]], lesions: Sequence[dict[str, Any]]) -> list[str]:
    """The page head and the counts of studies by status and of lesions, so the run is judged at a glance."""
    esc = html.escape
    counts: dict[str, int] = {}
    for s in studies:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>OncoQI batch report</title>',
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}td.t,th{text-align:left}"
        ".fail{color:#a00}figure{display:inline-block;margin:6px}img.qc{max-width:100%}</style></head><body>",
        f"<h1>OncoQI batch report</h1><p>oncoqi {esc(__version__)}: {len(studies)} studies "
        f"({counts.get('done', 0)} processed now, {counts.get('skipped', 0)} complete from an earlier run, "
        f"<span class='fail'>{counts.get('failed', 0)} failed</span>), {len(lesions)} lesions. "
        "The full table is <a href='results.csv'>results.csv</a>.</p>",
    ]


def _distributions(lesions: Sequence[dict[str, Any]]) -> list[str]:
    """Histograms of lesion volume and SUVmax, embedded so the page stands alone, to spot outliers."""
    parts = ["<h2>Distributions</h2>"]
    for key, label in (("volume_ml", "lesion volume (ml)"), ("suv_max", "SUVmax of the CT lesion")):
        png = base64.b64encode(histogram_png(_numbers(lesions, key), label)).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(label)} histogram' src='data:image/png;base64,{png}'></figure>")
    return parts


def _lesion_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The shown columns of the results table, row by row (long study UIDs shortened to their end)."""
    esc = html.escape
    parts = ["<h2>Lesions</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in SHOWN) + "</tr>"]
    for r in rows:
        cells = []
        for c in SHOWN:
            text = esc(_fmt(r.get(c)))
            if c == "study_uid" and len(text) > 24:
                text = "&hellip;" + text[-20:]
            cls = " class='t'" if c in ("patient_id", "study_uid", "lesion", "side", "warnings") else ""
            cells.append(f"<td{cls}>{text}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return parts


def _failure_table(failures: Sequence[dict[str, Any]]) -> list[str]:
    """The failed studies with their reasons and a link to each log, so they can be fixed and rerun."""
    esc = html.escape
    parts = [f"<h2>Failures ({len(failures)})</h2>"]
    if failures:
        parts.append("<table><tr><th>patient</th><th>study</th><th>reason</th><th>log</th></tr>")
        for f in failures:
            log = f"{f.get('folder', '')}/log.txt".lstrip("/")
            parts.append(
                f"<tr><td class='t'>{esc(str(f.get('patient_id', '')))}</td><td class='t'>{esc(str(f.get('study_uid', '')))}</td>"
                f"<td class='t fail'>{esc(str(f.get('reason', '')))}</td><td class='t'><a href='{esc(log)}'>log</a></td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>none</p>")
    return parts


def _qc_figures(studies: Sequence[dict[str, Any]]) -> list[str]:
    """Every study's QC picture, linked (lazily loaded) rather than embedded: a cohort has many."""
    esc = html.escape
    parts = ["<h2>Quality control</h2>"]
    for s in studies:
        if s.get("qc"):
            parts.append(
                f"<figure><figcaption>{esc(s['key'])} ({esc(s['status'])})</figcaption>"
                f"<img class='qc' loading='lazy' alt='QC {esc(s['key'])}' src='{esc(s['qc'])}'></figure>"
            )
    return parts


__all__ = ["histogram_png", "write_html_report"]
