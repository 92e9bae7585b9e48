"""The cohort's ``report.html`` read as a reader would: units, glossary, plurals, failure colour, study names.

The report is written from hand-made table rows (the columns of ``results.csv``) and parsed with
the standard library's HTML parser; the expected headers and units are written out here, not taken
from the code under test.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from oncoqi.batch.html import GLOSSARY, SHOWN, plural, write_html_report
from oncoqi.batch.table import RESULT_COLUMNS
from oncoqi.picture import save_png

UID_A = "1.2.826.0.1.3680043.8.498.53996221607518038653721427246088323685"
UID_B = "1.2.826.0.1.3680043.8.498.42942548578165398086310367535915319988"
#: Headers a reader must see for the measured columns: name and unit (SUV body weight in g/ml, TLG = SUV x ml in g).
EXPECTED_HEADERS = {
    "volume_ml": "Volume (ml)",
    "recist_mm": "RECIST diameter (mm)",
    "confidence": "Confidence (0-1)",
    "suv_max": "SUVmax (g/ml)",
    "suv_peak": "SUVpeak (g/ml)",
    "suv_mean": "SUVmean (g/ml)",
    "mtv_ml": "MTV (ml)",
    "tlg": "TLG (g)",
    "thr_suv": "PET threshold (g/ml)",
    "thr_mtv_ml": "PET-defined MTV (ml)",
    "thr_tlg": "PET-defined TLG (g)",
}


class Page(HTMLParser):
    """What the report shows: lesion table headers (text, link), element ids, text styled as failure, visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.headers: list[list[str]] = []  # [text, href] per lesion table header
        self.ids: dict[str, list[str]] = {}  # id -> text of the element
        self.failed: list[str] = []  # text inside an element of class 'fail'
        self.text: list[str] = []
        self.cells: list[tuple[str, str]] = []  # (title, text) of lesion table cells
        self.summary = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append((tag, {k: v or "" for k, v in attrs}))
        attributes = self.stack[-1][1]
        if tag == "th" and self._inside("table", "lesions"):
            self.headers.append(["", ""])
        if tag == "a" and self.headers and self._inside("th") and self._inside("table", "lesions"):
            self.headers[-1][1] = attributes.get("href", "")
        if tag == "td" and self._inside("table", "lesions"):
            self.cells.append((attributes.get("title", ""), ""))
        if "id" in attributes:
            self.ids[attributes["id"]] = []

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._inside("th") and self._inside("table", "lesions"):
            self.headers[-1][0] += data
        if self._inside("td") and self._inside("table", "lesions"):
            self.cells[-1] = (self.cells[-1][0], self.cells[-1][1] + data)
        if self._inside("span", "fail") or self._inside("td", "fail"):
            self.failed.append(data)
        if self._inside("p") and not self.summary.endswith("."):
            self.summary += data
        for _, attributes in self.stack:
            if "id" in attributes:
                self.ids[attributes["id"]].append(data)

    def _inside(self, tag: str, cls: str | None = None) -> bool:
        return any(t == tag and (cls is None or cls in a.get("class", "").split()) for t, a in self.stack)


def _row(patient: str, uid: str, lesion: str, label: int | None) -> dict:
    row: dict = {c: None for c in RESULT_COLUMNS}
    row.update(patient_id=patient, study_uid=uid, lesion=lesion, label=label)
    if lesion != "none":
        numbers = {c: 1.5 + n for n, c in enumerate(c for c in RESULT_COLUMNS if c.endswith(("_ml", "_mm")))}
        row.update(numbers, confidence=0.8, side="right", suv_max=9.8, suv_peak=9.4, suv_mean=7.6, tlg=92.5)
        row.update(thr_method="background 50", thr_suv=5.2, thr_suv_max=9.8, thr_suv_peak=9.4, thr_tlg=91.2)
    return row


def _qc(out: Path, folder: str, names: dict[str, str] | None) -> str:
    """A stand-in QC picture with the names a real one is written with; returns its path relative to ``out``."""
    save_png(PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)), out / folder / "qc.png", names)
    return f"{folder}/qc.png"


def _report(tmp_path: Path, n_studies: int, n_lesions: int, n_failed: int = 0) -> Page:
    """A report of ``n_studies`` done studies, the first named by its QC picture, with ``n_lesions`` lesions in
    the first and ``n_failed`` further failed studies."""
    out = tmp_path / "out"
    names = {
        "PatientID": "OQI-PHANTOM-11",
        "StudyInstanceUID": UID_A,
        "StudyDescription": "Synthetic thorax PET/CT",
        "StudyDate": "20210312",
    }
    studies = [{"key": f"OQI-PHANTOM-11/{UID_A}", "status": "done", "qc": _qc(out, "a", names)}]
    rows = [_row("OQI-PHANTOM-11", UID_A, "GTV-1" if n == 0 else f"Lesion {n + 1}", n + 1) for n in range(n_lesions)]
    if n_studies > 1:
        studies.append({"key": f"OQI-PHANTOM-3/{UID_B}", "status": "skipped", "qc": _qc(out, "b", None)})
        rows.append(_row("OQI-PHANTOM-3", UID_B, "none", None))
    failures = []
    for n in range(n_failed):
        studies.append({"key": f"BROKEN-{n}/1.2.3.{n}", "status": "failed", "qc": ""})
        failures.append({"patient_id": f"BROKEN-{n}", "study_uid": f"1.2.3.{n}", "part": "study", "reason": "bad"})
    page = Page()
    page.feed(write_html_report(out, rows, failures, studies).read_text(encoding="utf-8"))
    return page


def test_headers_are_names_with_units_linked_to_the_glossary(tmp_path):
    page = _report(tmp_path, 2, 2)
    headers = {href.removeprefix("#col-"): text for text, href in page.headers}
    assert list(headers) == list(SHOWN)
    for column, header in EXPECTED_HEADERS.items():
        assert headers[column] == header
    assert headers["patient_id"] == "Patient" and headers["study_uid"] == "Study"
    raw = {text for text, _ in page.headers} & set(RESULT_COLUMNS)
    assert not raw, f"raw column names shown as headers: {raw}"


def test_every_shown_column_has_a_glossary_entry(tmp_path):
    page = _report(tmp_path, 1, 1)
    assert set(GLOSSARY) == set(RESULT_COLUMNS)  # a new results.csv column needs its definition
    for text, href in page.headers:
        entry = " ".join(page.ids[href.removeprefix("#")])
        name = text.split(" (")[0]
        assert entry.startswith(name) and len(entry) > len(name) + 30, f"{text}: {entry!r}"
    glossary = " ".join(page.ids["glossary"]) + " ".join(" ".join(page.ids[f"col-{c}"]) for c in RESULT_COLUMNS)
    for word in ("SUVpeak", "1 ml sphere", "Metabolic tumour volume", "glycolysis", "RECIST", "probability", "50 %"):
        assert word in glossary, word


def test_counts_take_the_right_plural(tmp_path):
    one = _report(tmp_path / "one", 1, 1).summary
    assert "1 study (" in one and "1 lesion." in one and "studies" not in one and "lesions" not in one
    two = _report(tmp_path / "two", 2, 2).summary
    assert "2 studies (" in two and "2 lesions." in two
    assert "0 lesions." in _report(tmp_path / "none", 2, 0).summary
    assert [plural(n, "study") for n in (0, 1, 2)] == ["0 studies", "1 study", "2 studies"]


def test_failed_count_is_red_only_when_not_zero(tmp_path):
    clean = _report(tmp_path / "clean", 2, 1)
    assert "0 failed" in clean.summary and clean.failed == []
    broken = _report(tmp_path / "broken", 2, 1, n_failed=1)
    assert "1 failed" in broken.summary and "1 failed" in broken.failed


def test_studies_are_named_not_numbered(tmp_path):
    page = _report(tmp_path, 2, 1)
    studies = [(title, text) for title, text in page.cells if title]
    assert studies == [(UID_A, "Synthetic thorax PET/CT, 2021-03-12"), (UID_B, "..." + UID_B[-8:])]
    visible = "".join(page.text)
    assert UID_A not in visible and UID_B not in visible
    assert "OQI-PHANTOM-11  |  Synthetic thorax PET/CT  |  2021-03-12 (processed now)" in visible


def test_a_broken_qc_picture_leaves_the_uid(tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "qc.png").write_bytes(b"not the picture")
    studies = [{"key": f"P/{UID_A}", "status": "done", "qc": "a/qc.png"}]
    page = Page()
    page.feed(write_html_report(out, [_row("P", UID_A, "GTV-1", 1)], [], studies).read_text(encoding="utf-8"))
    assert [text for title, text in page.cells if title] == ["..." + UID_A[-8:]]
