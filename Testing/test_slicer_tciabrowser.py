"""OncoQITCIABrowser's Qt-free library (``OncoQITCIABrowserLib.browser``) against the local NBIA test server.

The tables the Widget shows, search by patient or UID, and the background :class:`DownloadJob` a GUI
timer polls: progress snapshots while it runs, Cancel, the folders to index, a rerun that skips. The
module's own Logic test (``OncoQITCIABrowserTest.test_OncoQITCIABrowserLogic``) runs in ``test_slicer_mrml.py``.
"""

from __future__ import annotations

import time

import pytest

from helpers.tcia_server import COLLECTION
from helpers.tcia_server import shared_catalog as catalog
from oncoqi.errors import InputError
from oncoqi.tcia import NBIAClient, SeriesState
from oncoqi.tcia.download import STAGING_NAME
from oncoqi.tcia.http import HttpClient, RetryPolicy


@pytest.fixture
def lib(extension_paths):
    from OncoQITCIABrowserLib import browser

    return browser


def nbia(server) -> NBIAClient:
    return NBIAClient(server.url, http=HttpClient(timeout=5, retry=RetryPolicy(retries=0)))


def test_tables_have_the_columns_researchers_use(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    collections = b.collections()
    assert collections.headers == ["Collection", "Link"] and collections.rows[1][0] == COLLECTION
    assert collections.records[1].description_text.startswith("Synthetic PET/CT phantoms")
    patients = b.patients(COLLECTION)
    assert [r[:2] for r in patients.rows] == [["PHANTOM-001", "M"], ["PHANTOM-002", "F"]]
    studies = b.studies(COLLECTION, "PHANTOM-002")
    assert studies.headers[:3] == ["Study Instance UID", "Patient ID", "Study Date"]
    assert studies.rows[0][1:3] == ["PHANTOM-002", "2001-01-01"] and studies.rows[0][-1] == "2"
    series = b.series(COLLECTION, "PHANTOM-002", studies.records[0].study_uid)
    assert series.headers == [
        "Series Instance UID",
        "Status",
        "Patient ID",
        "Study Date",
        "Series Description",
        "Series Number",
        "Modality",
        "Body Part",
        "Image Count",
        "File Size (MB)",
        "Protocol",
        "Manufacturer",
        "Model",
        "License",
    ]
    ct = next(r for r in series.rows if r[6] == "CT")
    record = catalog().find("CT", "PHANTOM-002").row
    assert ct[7:10] == ["CHEST", "3", f"{record['FileSize'] / 1e6:.1f}"]
    assert ct[11:] == ["OncoQI", "Phantom 1", "Creative Commons Attribution 4.0 International License"]


def test_search_by_patient_series_uid_and_study_uid(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    rt = catalog().find("RTSTRUCT", "PHANTOM-001")
    by_patient = b.search(" PHANTOM-001 ", COLLECTION)
    assert sorted(s.modality for s in by_patient.records) == ["CT", "RTSTRUCT"]
    assert [s.series_uid for s in b.search(rt.uid).records] == [rt.uid]
    by_study = b.search(rt.row["StudyInstanceUID"])
    assert sorted(s.series_uid for s in by_study.records) == sorted(s.series_uid for s in by_patient.records)
    assert b.search("NOBODY").records == []
    with pytest.raises(InputError, match="type a PatientID"):
        b.search("  ")


def test_job_runs_in_the_background_reports_progress_and_returns_folders(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    records = b.series(COLLECTION, "PHANTOM-002").records
    server.add_fault("getImageWithMD5Hash", "slow", times=-1, chunk=512, seconds=0.03)
    job = lib.DownloadJob(b.source, records, tmp_path, workers=2)
    first = job.progress()
    assert (first.fraction, first.running, first.count) == (0.0, True, 2)
    assert set(first.states.values()) == {SeriesState.QUEUED}
    started = time.monotonic()
    job.start()
    assert time.monotonic() - started < 0.2  # start() does not wait for the network
    seen = []
    while job.running:
        seen.append(job.progress())
        time.sleep(0.02)
    assert job.wait(10)
    assert any(0 < p.fraction < 1 and SeriesState.DOWNLOADING in p.states.values() for p in seen)
    assert all(a.done_bytes <= b_.done_bytes for a, b_ in zip(seen, seen[1:], strict=False))
    end = job.progress()
    assert (end.fraction, end.finished, end.running) == (1.0, 2, False)
    assert end.done_bytes == end.total_bytes == sum(s.file_size for s in records)
    folders = job.folders()
    assert [f.name for f in folders] == [s.series_uid for s in records]
    assert all(f.is_relative_to(tmp_path / "PHANTOM-002") for f in folders)
    assert [row[1] for row in b.series(COLLECTION, "PHANTOM-002").rows] == ["downloaded", "downloaded"]

    server.state.faults.clear()
    again = lib.DownloadJob(b.source, records, tmp_path).start()
    assert again.wait(10)
    assert [o.state for o in again.result().outcomes] == [SeriesState.SKIPPED] * 2
    assert again.folders() == folders  # already there: still indexed


def test_cancel_stops_the_job_and_leaves_no_partial_series(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    records = b.series(COLLECTION, "PHANTOM-002").records
    server.add_fault("getImageWithMD5Hash", "slow", times=-1, chunk=256, seconds=0.1)
    job = lib.DownloadJob(b.source, records, tmp_path, workers=2).start()
    deadline = time.monotonic() + 10
    while job.progress().done_bytes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel()
    assert job.wait(10) and job.cancelled
    report = job.result()
    assert [o.state for o in report.outcomes] == [SeriesState.CANCELLED] * 2
    assert job.folders() == []
    assert set(job.progress().states.values()) == {SeriesState.CANCELLED}
    assert not (tmp_path / "PHANTOM-002").exists() and not (tmp_path / STAGING_NAME).exists()


def test_failures_are_reported_per_series_not_raised(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    records = b.series(COLLECTION, "PHANTOM-002").records
    bad = records[0].series_uid
    server.add_fault("getImageWithMD5Hash", "wrong_md5", times=-1, series_uid=bad)
    job = lib.DownloadJob(b.source, records, tmp_path).start()
    assert job.wait(10)
    progress = job.progress()
    assert progress.states[bad] is SeriesState.FAILED and "MD5 mismatch" in progress.messages[bad]
    assert [f.name for f in job.folders()] == [records[1].series_uid]


def test_references_of_an_rtstruct_are_added(lib, server, tmp_path):
    b = lib.Browser(nbia(server), tmp_path)
    rt, ct = catalog().find("RTSTRUCT", "PHANTOM-001"), catalog().find("CT", "PHANTOM-001")
    (record,) = b.search(rt.uid).records
    items = b.with_references([record])
    assert items == [record, ct.uid]


def test_sources_and_user_errors(lib, server, tmp_path):
    assert isinstance(lib.make_source(lib.TCIA, server.url), NBIAClient)
    with pytest.raises(InputError, match="unknown source 'PACS'"):
        lib.make_source("PACS", server.url)
    with pytest.raises(InputError, match="select at least one series"):
        lib.DownloadJob(nbia(server), [], tmp_path)
    job = lib.DownloadJob(nbia(server), ["1.2.3"], tmp_path)
    with pytest.raises(InputError, match="still running"):
        job.result()  # not started: nothing to report yet


def test_idc_source_gives_the_same_tables(lib, tmp_path):
    pytest.importorskip("idc_index_data", reason="the IDC source needs the optional extra oncoqi[idc]")
    b = lib.Browser(lib.make_source(lib.IDC, ""), tmp_path)
    series = b.search("LUNG1-001", "NSCLC-Radiomics")
    ct = next(row for row in series.rows if row[6] == "CT")
    assert ct[2] == "LUNG1-001" and ct[8] == "134" and ct[13] == "CC BY-NC 3.0"
    assert b.patients("NSCLC-Radiomics").rows[0][0] == "LUNG1-001"


def test_logic_asks_for_idc_index_before_browsing_idc(slicer_module_loader, tmp_path):
    pytest.importorskip("idc_index_data", reason="the IDC source needs the optional extra oncoqi[idc]")
    module = slicer_module_loader.load("OncoQITCIABrowser")
    logic = module.OncoQITCIABrowserLogic()
    with pytest.raises(InputError, match="choose a source first"):
        logic.collections()
    logic.configure(module.NBIA_API_URL, tmp_path)
    logic.setSource("IDC")
    assert (["idc-index>=0.13"], "OncoQITCIABrowser") in slicer_module_loader.requirement_checks
    studies = logic.studies("NSCLC-Radiomics", "LUNG1-001")
    assert [row[1:3] for row in studies.rows] == [["LUNG1-001", "2008-09-18"]]
    series = logic.series("NSCLC-Radiomics", "LUNG1-001", studies.records[0].study_uid)
    assert len(series.rows) == studies.records[0].series_count and "CT" in {row[6] for row in series.rows}
