"""The cohort tables: ``results.csv`` (+ ``results.parquet``) with one row per lesion, and ``failures.csv``.

Columns of the results table (:data:`RESULT_COLUMNS`); empty cells are values that do not apply
(no PET, a lesion too small for the PET grid, ...), the reason being in ``warnings``:

==================  ===========================================================================
column              meaning
==================  ===========================================================================
patient_id          PatientID
study_uid           StudyInstanceUID
ct_series_uid       the CT segmented
pet_series_uid      the PET used (empty: CT only)
lesion              ``GTV-1`` (the largest undoubted lesion), ``Lesion 2``, ...; ``none`` for a
                    study without lesion
label               label value in ``tumor_label.nrrd`` and the SEG segment
volume_ml           lesion volume on the CT (ml)
recist_mm           RECIST longest axial diameter (mm)
perpendicular_mm    longest diameter perpendicular to it on the same slice (mm)
side                ``right``, ``left`` or ``both`` lungs
confidence          mean tumour probability of the lesion's voxels
doubts              why the lesion may not be a tumour (:mod:`oncoqi.lung.primary`), ``;``-separated;
                    empty when there is no doubt
suv_max, suv_peak   SUVbw max and peak (1 ml sphere) of the CT lesion on the PET grid
suv_mean            its mean SUVbw
mtv_ml, tlg         its volume on the PET grid (ml) and total lesion glycolysis (SUV x ml)
thr_method          threshold of GTV-1's PET-defined lesion, e.g. ``background 50`` (GTV-1 row only)
thr_suv             that threshold in SUVbw
thr_suv_max, ...    SUVmax, SUVpeak, MTV and TLG of the PET-thresholded lesion
warnings            assumptions and problems, ``;``-separated
==================  ===========================================================================

Parquet is written when ``pyarrow`` is importable (the ``batch`` extra); the CSV always.
Rows are sorted by patient, study and label, so that the table does not depend on the order in
which workers finished.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from oncoqi.atomic import atomic_path, write_text

#: Columns of ``results.csv``, in order.
RESULT_COLUMNS = (
    "patient_id",
    "study_uid",
    "ct_series_uid",
    "pet_series_uid",
    "lesion",
    "label",
    "volume_ml",
    "recist_mm",
    "perpendicular_mm",
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
    "thr_suv_max",
    "thr_suv_peak",
    "thr_mtv_ml",
    "thr_tlg",
    "warnings",
)
#: Columns holding numbers (float64 in Parquet); ``label`` is an integer.
NUMBER_COLUMNS = frozenset(
    {
        "volume_ml",
        "recist_mm",
        "perpendicular_mm",
        "confidence",
        "suv_max",
        "suv_peak",
        "suv_mean",
        "mtv_ml",
        "tlg",
        "thr_suv",
        "thr_suv_max",
        "thr_suv_peak",
        "thr_mtv_ml",
        "thr_tlg",
    }
)
#: Columns of ``failures.csv``.
#: ``part``: ``study`` (nothing of it could be used), ``pet`` (its CT results are in results.csv) or ``download``.
FAILURE_COLUMNS = ("patient_id", "study_uid", "folder", "part", "reason")


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered by patient, study and label (a study without lesion first within its study)."""
    return sorted(
        rows, key=lambda r: (str(r.get("patient_id", "")), str(r.get("study_uid", "")), int(r.get("label") or 0))
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV (RFC 4180, ``\\n`` line ends) of ``rows`` with these columns; floats keep every digit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_results_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the results table as CSV atomically; returns ``path``."""
    return write_text(csv_text(sort_rows(rows), RESULT_COLUMNS), path)


def write_failures_csv(failures: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``failures.csv`` (header only when nothing failed) atomically; returns ``path``."""
    ordered = sorted(failures, key=lambda f: (str(f.get("patient_id", "")), str(f.get("study_uid", ""))))
    return write_text(csv_text(ordered, FAILURE_COLUMNS), path)


def parquet_available() -> bool:
    """True when ``pyarrow`` can be imported (the ``batch`` extra)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def write_results_parquet(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the results table as Parquet atomically (same columns and order as the CSV).

    Raises
    ------
    ImportError
        When ``pyarrow`` is not installed (``pip install 'oncoqi[batch]'``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def kind(column: str) -> Any:
        if column == "label":
            return pa.int64()
        return pa.float64() if column in NUMBER_COLUMNS else pa.string()

    schema = pa.schema([(c, kind(c)) for c in RESULT_COLUMNS])
    ordered = sort_rows(rows)
    data = {c: [r.get(c) for r in ordered] for c in RESULT_COLUMNS}
    for c in RESULT_COLUMNS:
        if c not in NUMBER_COLUMNS and c != "label":
            data[c] = [None if v is None else str(v) for v in data[c]]
    table = pa.table(data, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_results_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a ``results.csv`` back as a list of dicts of strings (empty cells as ``""``)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


__all__ = [
    "FAILURE_COLUMNS",
    "RESULT_COLUMNS",
    "csv_text",
    "parquet_available",
    "read_results_csv",
    "sort_rows",
    "write_failures_csv",
    "write_results_csv",
    "write_results_parquet",
]
