"""``report.html``: the cohort at a glance, one self-contained file viewable without a server.

It holds the counts (studies done, skipped from an earlier run, failed), the histograms of lesion
volume and SUVmax (PNG drawn with Pillow, embedded as base64), the lesion table, a glossary of
every column, the failures with their reasons, and every study's QC picture (linked by relative
path, ``<patient>/<study>/qc.png``, so the page stays small; keep it beside the study folders). No
script, no external resource.

Written for a reader who did not write the code: column headers are names with units
(:data:`GLOSSARY`; ``results.csv`` keeps its column names, which scripts read), the glossary says
what each column means, counts take the right plural, a failure count is red only when it is not 0,
and studies are named by PatientID, StudyDescription and StudyDate, read from each study's QC
picture (:func:`oncoqi.batch.qc.read_qc_names`), with the end of the UID only where those are
missing (no QC picture, or a study without description and date).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from oncoqi import __version__
from oncoqi.atomic import write_text
from oncoqi.batch.qc import display_date, read_qc_names, shorten_uids, study_caption
from oncoqi.picture import label_font


@dataclass(frozen=True)
class Column:
    """How the report shows one ``results.csv`` column.

    Attributes
    ----------
    name
        What a reader calls it (the table header, with ``unit``).
    unit
        Its unit (empty when it has none).
    meaning
        The glossary's definition, in words a clinician uses.
    """

    name: str
    unit: str
    meaning: str

    @property
    def header(self) -> str:
        """``name (unit)``, or the name alone."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


_SUVBW = (
    "body-weight standardised uptake value (SUVbw = activity concentration x body weight / injected dose, "
    "the dose decayed to the scan time)"
)
#: Every ``results.csv`` column, in its order: the name and unit the report shows and the glossary's definition.
GLOSSARY: dict[str, Column] = {
    "patient_id": Column("Patient", "", "The patient's identifier (DICOM PatientID), as in the input."),
    "study_uid": Column(
        "Study",
        "",
        "The imaging study, shown by its description and date (DICOM StudyDescription and StudyDate); results.csv "
        "holds its StudyInstanceUID. Where description and date are unknown the study is shown by the last "
        "characters of that UID.",
    ),
    "ct_series_uid": Column(
        "CT series", "", "The CT series segmented (SeriesInstanceUID); the study's log.txt says why it was chosen."
    ),
    "pet_series_uid": Column(
        "PET series",
        "",
        "The PET series used (SeriesInstanceUID); empty when the study has no PET registered to the CT.",
    ),
    "lesion": Column(
        "Lesion",
        "",
        "GTV-1 is the largest lesion found on the CT, then Lesion 2, 3, ... by decreasing volume; 'none' when no "
        "lesion was found in the study.",
    ),
    "label": Column("Label", "", "The lesion's value in tumor_label.nrrd and its segment number in the DICOM SEG."),
    "volume_ml": Column("Volume", "ml", "Volume of the lesion as segmented on the CT."),
    "recist_mm": Column(
        "RECIST diameter",
        "mm",
        "Longest diameter of the lesion on one axial slice (the RECIST 1.1 long axis), measured on its outline.",
    ),
    "perpendicular_mm": Column(
        "Short axis", "mm", "Longest diameter perpendicular (within 5 degrees) to the RECIST diameter on that slice."
    ),
    "side": Column(
        "Lung", "", "The lung holding the lesion: right, left, or both when each lung holds at least 10 % of it."
    ),
    "confidence": Column(
        "Confidence",
        "0-1",
        "Mean tumour probability the segmentation network gave the lesion's voxels: near 1 for a lesion the model "
        "is sure of, near its detection threshold for a doubtful one. It is the model's own score, not a "
        "probability of malignancy.",
    ),
    "doubts": Column(
        "Doubts",
        "",
        "Why the lesion may not be a tumour: a thin sheet rather than a mass, at the scan's edge (its first or last "
        "slice), low confidence (below 0.6), or not FDG-avid (SUVmax below 2.5 on the study's PET). GTV-1 is the "
        "largest lesion without a doubt; a doubted GTV-1 means every lesion is doubted.",
    ),
    "suv_max": Column(
        "SUVmax", "g/ml", f"Highest {_SUVBW} in the CT lesion, read on the PET voxels whose centre lies in it."
    ),
    "suv_peak": Column(
        "SUVpeak",
        "g/ml",
        "Highest mean SUVbw over a 1 ml sphere centred in the CT lesion: less sensitive to noise than SUVmax.",
    ),
    "suv_mean": Column("SUVmean", "g/ml", "Mean SUVbw over the CT lesion on the PET grid."),
    "mtv_ml": Column(
        "MTV",
        "ml",
        "Metabolic tumour volume of the CT lesion: its volume on the PET grid (no SUV threshold; the "
        "PET-defined MTV is the thresholded one).",
    ),
    "tlg": Column("TLG", "g", "Total lesion glycolysis of the CT lesion: SUVmean x MTV (g/ml x ml = g)."),
    "thr_method": Column(
        "PET threshold rule",
        "",
        "How GTV-1's PET-defined lesion was cut out of the PET, within GTV-1 grown by a margin (10 mm unless "
        "--pet-margin says otherwise): 'background 50' keeps the voxels above 50 % of the way from the local "
        "background SUV (a 10 mm shell around that region) to SUVmax, 'percent N' above N % of SUVmax, "
        "'fixed N' above SUVbw N. GTV-1's row only.",
    ),
    "thr_suv": Column("PET threshold", "g/ml", "The SUVbw that rule came to for this lesion."),
    "thr_suv_max": Column("PET-defined SUVmax", "g/ml", "SUVmax of the PET-defined lesion."),
    "thr_suv_peak": Column("PET-defined SUVpeak", "g/ml", "SUVpeak of the PET-defined lesion."),
    "thr_mtv_ml": Column(
        "PET-defined MTV",
        "ml",
        "Volume of the PET-defined lesion: the metabolic tumour volume a reader thresholding the PET would report.",
    ),
    "thr_tlg": Column("PET-defined TLG", "g", "SUVmean x MTV of the PET-defined lesion."),
    "warnings": Column(
        "Warnings",
        "",
        "Assumptions made and problems met (e.g. an assumed injection time, a lesion smaller than a PET voxel), "
        "separated by ';'. An empty PET cell has its reason here.",
    ),
}
#: Columns shown in the HTML lesion table (the CSV has them all).
SHOWN = (
    "patient_id",
    "study_uid",
    "lesion",
    "volume_ml",
    "recist_mm",
    "side",
    "confidence",
    "doubts",
    "suv_max",
    "suv_peak",
    "suv_mean",
    "mtv_ml",
    "tlg",
    "thr_method",
    "thr_suv",
    "thr_mtv_ml",
    "thr_tlg",
    "warnings",
)
#: Shown columns holding text (left-aligned); numbers are right-aligned.
TEXT_COLUMNS = frozenset({"patient_id", "study_uid", "lesion", "side", "doubts", "thr_method", "warnings"})
#: Short identifiers kept on one line (a PatientID or "Lesion 2" broken in two reads as two values).
NO_WRAP = frozenset({"patient_id", "lesion"})
#: Plural of each counted word that does not just take an s.
PLURALS = {"study": "studies"}
#: How the report words each study status.
STATUS_WORDS = {"done": "processed now", "skipped": "complete from an earlier run", "failed": "failed"}


def plural(count: int, word: str) -> str:
    """``"1 study"``, ``"2 studies"``, ``"0 lesions"``."""
    return f"{count} {word if count == 1 else PLURALS.get(word, word + 's')}"


def histogram_png(values: Sequence[float], label: str, bins: int = 12, size: tuple[int, int] = (420, 240)) -> bytes:
    """A bar histogram of ``values`` as PNG bytes (axis ticks at the first, middle and last bin edges)."""
    width, height = size
    left, bottom, top, right = 40, 36, 20, 12
    canvas = PILImage.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = label_font(12)
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    draw.text((left, 4), f"{label} (n = {data.size})", fill=(0, 0, 0), font=font)
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
            tick = f"{edges[n]:.3g}"
            x = min(left + n * bar_w - 10, width - draw.textlength(tick, font=font) - 2)  # the last one stays inside
            draw.text((x, height - bottom + 4), tick, fill=(0, 0, 0), font=font)
        draw.text((4, top), str(peak), fill=(0, 0, 0), font=font)
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
        ``failures.csv`` records (``patient_id``, ``study_uid``, ``part``, ``reason``, ...).
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
    names = {s["key"]: read_qc_names(out / s["qc"]) if s.get("qc") else {} for s in studies}
    by_uid = {n["StudyInstanceUID"]: n for n in names.values() if n.get("StudyInstanceUID")}
    parts = [
        *_summary(studies, lesions),
        *_distributions(lesions),
        *_lesion_table(rows, by_uid),
        *_glossary(),
        *_failure_table(failures, by_uid),
        *_qc_figures(studies, names),
        "</body></html>\n",
    ]
    return write_text("\n".join(parts), target)


#: The page's style: compact tables, numbers right-aligned, red only for what failed.
STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}td.t,th{text-align:left}td.n{white-space:nowrap}"
    "th{background:#eef;vertical-align:bottom}th a{color:inherit}table.glossary td{text-align:left;vertical-align:top}"
    ".fail{color:#a00;font-weight:bold}figure{display:inline-block;margin:6px}img.qc{max-width:100%}"
)


def _summary(studies: Sequence[dict[str, Any]], lesions: Sequence[dict[str, Any]]) -> list[str]:
    """The page head and the counts of studies by status and of lesions, so the run is judged at a glance.

    The failed count is styled as an error only when it is not 0: a red "0 failed" reads as a problem.
    """
    esc = html.escape
    counts = {status: sum(1 for s in studies if s["status"] == status) for status in STATUS_WORDS}
    failed = f"{counts['failed']} failed"
    if counts["failed"]:
        failed = f"<span class='fail'>{failed}</span>"
    return [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>OncoQI batch report</title><style>{STYLE}</style>',
        "</head><body>",
        f"<h1>OncoQI batch report</h1><p>oncoqi {esc(__version__)}: {plural(len(studies), 'study')} "
        f"({counts['done']} {STATUS_WORDS['done']}, {counts['skipped']} {STATUS_WORDS['skipped']}, {failed}), "
        f"{plural(len(lesions), 'lesion')}. The full table is <a href='results.csv'>results.csv</a>; "
        "the <a href='#glossary'>glossary</a> says what each column means.</p>",
    ]


def _distributions(lesions: Sequence[dict[str, Any]]) -> list[str]:
    """Histograms of lesion volume and SUVmax, embedded so the page stands alone, to spot outliers."""
    parts = ["<h2>Distributions</h2>"]
    for key, label in (("volume_ml", "Lesion volume (ml)"), ("suv_max", "SUVmax of the CT lesion (g/ml)")):
        png = base64.b64encode(histogram_png(_numbers(lesions, key), label)).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(label)} histogram' src='data:image/png;base64,{png}'></figure>")
    return parts


def _study_text(uid: str, names: dict[str, str]) -> str:
    """A study as a reader knows it: its description and date, else the end of its UID."""
    known = [names.get("StudyDescription", ""), display_date(names.get("StudyDate", ""))]
    return ", ".join(part for part in known if part) or shorten_uids(uid)


def _cell(row: dict[str, Any], column: str, by_uid: dict[str, dict[str, str]]) -> str:
    """One table cell; the study is named (its UID in the tooltip)."""
    if column == "study_uid":
        uid = str(row.get(column) or "")
        return f"<td class='t' title='{html.escape(uid)}'>{html.escape(_study_text(uid, by_uid.get(uid, {})))}</td>"
    cls = (" class='t n'" if column in NO_WRAP else " class='t'") if column in TEXT_COLUMNS else ""
    return f"<td{cls}>{html.escape(_fmt(row.get(column)))}</td>"


def _lesion_table(rows: Sequence[dict[str, Any]], by_uid: dict[str, dict[str, str]]) -> list[str]:
    """The shown columns of the results table, row by row, under headers with units linked to the glossary."""
    headers = "".join(f"<th><a href='#col-{c}'>{html.escape(GLOSSARY[c].header)}</a></th>" for c in SHOWN)
    parts = [f"<h2>Lesions</h2><table class='lesions'><tr>{headers}</tr>"]
    parts += ["<tr>" + "".join(_cell(r, c, by_uid) for c in SHOWN) + "</tr>" for r in rows]
    parts.append("</table>")
    return parts


def _glossary() -> list[str]:
    """Every results.csv column: the name shown, its unit, its CSV name and what it means."""
    esc = html.escape
    parts = [
        "<h2 id='glossary'>Glossary</h2><p>Every column of results.csv; the lesion table above shows those marked "
        "&#10003;. An empty cell is a value that does not apply (no PET, a lesion smaller than a PET voxel...).</p>",
        "<table class='glossary'><tr><th>Column</th><th>Unit</th><th>results.csv</th><th>shown</th>"
        "<th>Meaning</th></tr>",
    ]
    for key, column in GLOSSARY.items():
        parts.append(
            f"<tr id='col-{key}'><td>{esc(column.name)}</td><td>{esc(column.unit)}</td><td><code>{key}</code></td>"
            f"<td>{'&#10003;' if key in SHOWN else ''}</td><td>{esc(column.meaning)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _failure_table(failures: Sequence[dict[str, Any]], by_uid: dict[str, dict[str, str]]) -> list[str]:
    """The failed studies with their reasons and a link to each log, so they can be fixed and rerun."""
    esc = html.escape
    parts = [f"<h2>Failures ({len(failures)})</h2>"]
    if not failures:
        return [*parts, "<p>none</p>"]
    parts.append("<table><tr><th>Patient</th><th>Study</th><th>Part</th><th>Reason</th><th>Log</th></tr>")
    for f in failures:
        log = f"{f.get('folder', '')}/log.txt".lstrip("/")
        uid = str(f.get("study_uid", ""))
        parts.append(
            f"<tr><td class='t'>{esc(str(f.get('patient_id', '')))}</td>"
            f"<td class='t' title='{esc(uid)}'>{esc(_study_text(uid, by_uid.get(uid, {})))}</td>"
            f"<td class='t'>{esc(str(f.get('part', '')))}</td><td class='t fail'>{esc(str(f.get('reason', '')))}</td>"
            f"<td class='t'><a href='{esc(log)}'>log</a></td></tr>"
        )
    parts.append("</table>")
    return parts


def _qc_figures(studies: Sequence[dict[str, Any]], names: dict[str, dict[str, str]]) -> list[str]:
    """Every study's QC picture, linked (lazily loaded) rather than embedded: a cohort has many."""
    esc = html.escape
    parts = ["<h2>Quality control</h2>"]
    for s in studies:
        if s.get("qc"):
            caption = study_caption(names.get(s["key"], {}), s["key"])
            parts.append(
                f"<figure><figcaption>{esc(caption)} ({esc(STATUS_WORDS.get(s['status'], s['status']))})"
                f"</figcaption><img class='qc' loading='lazy' alt='QC {esc(caption)}' src='{esc(s['qc'])}'></figure>"
            )
    return parts


__all__ = ["GLOSSARY", "SHOWN", "Column", "histogram_png", "plural", "write_html_report"]
