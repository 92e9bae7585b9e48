"""oncoqi.tcia.download_series against the local NBIA test server: layout, verification, faults, resume."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import threading
from pathlib import Path

import pydicom
import pytest

from helpers.tcia_server import LICENSE_URI, FakeSeries, NBIATestServer, build_catalog
from helpers.tcia_server import shared_catalog as catalog
from oncoqi.errors import InputError
from oncoqi.tcia.download import MANIFEST_NAME, STAGING_NAME, DownloadProgress, SeriesState, download_series
from oncoqi.tcia.http import HttpClient, RetryPolicy
from oncoqi.tcia.nbia import DownloadMode, NBIAClient


def client(srv: NBIATestServer, retries: int = 2, **kw) -> NBIAClient:
    http = HttpClient(timeout=2.0, retry=RetryPolicy(retries=retries, backoff=0.01, max_delay=1.0))
    return NBIAClient(srv.url, http=http, **kw)


def ct1() -> FakeSeries:
    return catalog().find("CT", "PHANTOM-001")


def expected_folder(out: Path, s: FakeSeries) -> Path:
    return out / s.row["PatientID"] / s.row["StudyInstanceUID"] / s.uid


def assert_no_partial(out: Path, s: FakeSeries) -> None:
    assert not expected_folder(out, s).exists()
    assert not (out / STAGING_NAME / s.uid).exists()
    assert not (out / STAGING_NAME / f"{s.uid}.zip").exists()


def test_downloads_land_verified_with_a_manifest(server, tmp_path):
    events: list[DownloadProgress] = []
    uids = list(catalog().series)
    report = download_series(client(server), uids, tmp_path, workers=3, progress=events.append)
    assert report.ok and len(report.done) == 4
    for uid in uids:
        s = catalog().series[uid]
        folder = expected_folder(tmp_path, s)
        assert report.outcomes[uids.index(uid)].path == folder
        assert sorted(p.name for p in folder.iterdir()) == [name for name, _, _ in s.files]
        for name, data, sop in s.files:
            assert (folder / name).read_bytes() == data
            assert pydicom.dcmread(folder / name).SOPInstanceUID == sop
    assert not (tmp_path / STAGING_NAME).exists()
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    entry = manifest["series"][ct1().uid]
    assert entry["path"] == f"PHANTOM-001/{ct1().row['StudyInstanceUID']}/{ct1().uid}"
    assert entry["source"] == "nbia" and entry["source_location"] == server.url
    assert entry["license_uri"] == LICENSE_URI and entry["file_count"] == 4
    assert entry["files"][0] == {
        "name": "00000001.dcm",
        "size": len(ct1().files[0][1]),
        "md5": hashlib.md5(ct1().files[0][1]).hexdigest(),
    }
    assert entry["verification"].startswith("archive md5")
    last = events[-1]
    assert (last.finished, last.count) == (4, 4) and last.done_bytes == last.total_bytes > 0
    assert {e.state for e in events if e.series_uid == ct1().uid} >= {
        SeriesState.DOWNLOADING,
        SeriesState.VERIFYING,
        SeriesState.DONE,
    }
    assert all(len(server.requests_to("getImageWithMD5Hash", u)) == 1 for u in uids)


def test_rerun_skips_complete_series_and_redownloads_a_damaged_one(server, tmp_path):
    uids = list(catalog().series)
    download_series(client(server), uids, tmp_path)
    (expected_folder(tmp_path, ct1()) / "00000002.dcm").write_bytes(b"damaged")
    report = download_series(client(server), uids, tmp_path)
    # a damaged copy is not "complete" but is not silently overwritten either
    states = {o.series_uid: o.state for o in report.outcomes}
    assert [states[u] for u in uids if u != ct1().uid] == [SeriesState.SKIPPED] * 3
    assert states[ct1().uid] is SeriesState.FAILED
    assert "exists but is not a complete copy" in report.outcomes[uids.index(ct1().uid)].message
    assert all(len(server.requests_to("getImageWithMD5Hash", u)) == 1 for u in uids)


def test_existing_folder_without_manifest_entry_is_adopted(server, tmp_path):
    download_series(client(server), [ct1().uid], tmp_path)
    (tmp_path / MANIFEST_NAME).unlink()
    report = download_series(client(server), [ct1().uid], tmp_path)
    assert report.outcomes[0].state is SeriesState.SKIPPED and "recorded" in report.outcomes[0].message
    assert ct1().uid in json.loads((tmp_path / MANIFEST_NAME).read_text())["series"]
    assert len(server.requests_to("getImageWithMD5Hash")) == 1


def test_connection_dropped_mid_zip_is_retried(server, tmp_path):
    server.add_fault("getImageWithMD5Hash", "drop", after_bytes=1500, series_uid=ct1().uid)
    report = download_series(client(server), [ct1().uid], tmp_path)
    assert report.ok
    assert len(server.requests_to("getImageWithMD5Hash", ct1().uid)) == 2


@pytest.mark.parametrize(
    ("kind", "endpoint", "md5", "reason"),
    [
        ("corrupt", "getImageWithMD5Hash", True, "damaged entry"),
        ("wrong_md5", "getImageWithMD5Hash", True, "MD5 mismatch"),
        ("missing_file", "getImage", False, "holds 3 files but the series has 4 images"),
        ("missing_file", "getImageWithMD5Hash", True, "no md5hashes.csv"),
        ("garbage", "getImage", False, "not a readable ZIP"),
        ("drop", "getImage", False, "connection dropped"),
    ],
)
def test_bad_transfers_are_retried_then_fail_cleanly(server, tmp_path, kind, endpoint, md5, reason):
    server.add_fault(endpoint, kind, times=-1, after_bytes=1500)
    report = download_series(client(server, retries=1, md5=md5), [ct1().uid], tmp_path)
    outcome = report.outcomes[0]
    assert outcome.state is SeriesState.FAILED
    assert reason in outcome.message and ct1().uid in outcome.message
    assert len(server.requests_to(endpoint, ct1().uid)) == 2  # one retry
    assert_no_partial(tmp_path, ct1())
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_one_corrupt_zip_then_a_good_one_succeeds(server, tmp_path):
    server.add_fault("getImageWithMD5Hash", "corrupt")
    assert download_series(client(server), [ct1().uid], tmp_path).ok


@pytest.mark.parametrize("name", ["../../evil.dcm", "/tmp/oncoqi-evil.dcm"])
def test_zip_slip_refuses_the_series_without_retry(server, tmp_path, name):
    server.add_fault("getImage", "zip_slip", times=-1, entry_name=name)
    out = tmp_path / "out"
    report = download_series(client(server, md5=False), [ct1().uid], out)
    assert report.outcomes[0].state is SeriesState.FAILED
    assert "climbs out" in report.outcomes[0].message or "absolute path" in report.outcomes[0].message
    assert len(server.requests_to("getImage")) == 1
    assert not (tmp_path / "evil.dcm").exists() and not Path("/tmp/oncoqi-evil.dcm").exists()
    assert_no_partial(out, ct1())


def test_zip_bomb_is_refused(server, tmp_path):
    server.add_fault("getImageWithMD5Hash", "zip_bomb", times=-1)
    report = download_series(client(server), [ct1().uid], tmp_path)
    assert report.outcomes[0].state is SeriesState.FAILED
    assert "expands to" in report.outcomes[0].message
    assert len(server.requests_to("getImageWithMD5Hash")) == 1
    assert_no_partial(tmp_path, ct1())


def test_4xx_fails_fast_and_unknown_series_is_reported(server, tmp_path):
    server.add_fault("getImageWithMD5Hash", "status", status=403, body="restricted collection", times=-1)
    unknown = "1.2.3.4.5.6.7"
    report = download_series(client(server), [ct1().uid, unknown], tmp_path)
    first, second = report.outcomes
    assert first.state is SeriesState.FAILED
    assert "HTTP 403" in first.message and "restricted collection" in first.message
    assert len(server.requests_to("getImageWithMD5Hash")) == 1
    assert second.state is SeriesState.FAILED and f"no series {unknown}" in second.message


def test_invalid_input_is_refused_before_any_request(server, tmp_path):
    with pytest.raises(InputError, match="not a valid SeriesInstanceUID"):
        download_series(client(server), ["../../etc"], tmp_path)
    with pytest.raises(InputError, match="between 1 and 16"):
        download_series(client(server), [ct1().uid], tmp_path, workers=0)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(InputError, match="unreadable download manifest"):
        download_series(client(server), [ct1().uid], tmp_path)
    assert server.state.requests == []


class _FullDisk:
    """A FileOpener (the documented write hook) whose files raise ENOSPC once ``budget`` bytes are written."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.lock = threading.Lock()

    def __call__(self, path: Path) -> io.FileIO:
        return _BudgetedFile(path, self)


class _BudgetedFile(io.FileIO):
    def __init__(self, path: Path, disk: _FullDisk) -> None:
        super().__init__(path, "wb")
        self.disk = disk

    def write(self, data) -> int:
        with self.disk.lock:
            self.disk.left -= len(data)
            full = self.disk.left < 0
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", self.name)
        return super().write(data)


def test_full_disk_fails_the_series_and_stops_the_queue(server, tmp_path):
    uids = list(catalog().series)
    report = download_series(client(server), uids, tmp_path, workers=1, opener=_FullDisk(6000))
    states = [o.state for o in report.outcomes]
    assert SeriesState.FAILED in states and SeriesState.DONE not in states[states.index(SeriesState.FAILED) :]
    full = [o for o in report.outcomes if o.state is SeriesState.FAILED]
    assert "disk full while writing" in full[0].message
    assert all("the disk is full" in o.message for o in full[1:]) and len(full) >= 2
    for uid in (o.series_uid for o in full):
        assert_no_partial(tmp_path, catalog().series[uid])
    assert len(server.state.requests) < 4 + 2 * len(uids)  # the queue stopped asking for ZIPs


def test_cancel_mid_download_leaves_no_partial_folder_and_rerun_resumes(server, tmp_path):
    uids = list(catalog().series)
    slow = uids[1]
    server.add_fault("getImageWithMD5Hash", "slow", times=-1, seconds=0.05, chunk=128, series_uid=slow)
    cancel = threading.Event()

    def progress(e: DownloadProgress) -> None:
        if e.series_uid == slow and e.series_bytes > 0:
            cancel.set()  # cancel once the slow series is half-way through its transfer

    report = download_series(client(server), uids, tmp_path, workers=1, progress=progress, cancel=cancel)
    states = [o.state for o in report.outcomes]
    assert states == [SeriesState.DONE, SeriesState.CANCELLED, SeriesState.CANCELLED, SeriesState.CANCELLED]
    assert_no_partial(tmp_path, catalog().series[slow])
    assert not (tmp_path / STAGING_NAME).exists()
    server.state.faults.clear()
    again = download_series(client(server), uids, tmp_path, workers=2)
    assert [o.state for o in again.outcomes] == [SeriesState.SKIPPED] + [SeriesState.DONE] * 3
    assert len(server.requests_to("getImageWithMD5Hash", uids[0])) == 1


def test_instance_mode_resumes_mid_series_after_an_interruption(server, tmp_path):
    s = ct1()
    sops = [sop for _, _, sop in s.files]
    server.add_fault("getSingleImage", "status", status=503, times=-1, sop_uid=sops[2])
    c = client(server, retries=1, download_mode=DownloadMode.INSTANCES)
    first = download_series(c, [s.uid], tmp_path)
    assert first.outcomes[0].state is SeriesState.FAILED and "HTTP 503" in first.outcomes[0].message
    # the series failed, but the two instances already fetched stay staged (hidden) for the rerun
    staged = sorted(p.name for p in (tmp_path / STAGING_NAME / s.uid).iterdir())
    assert staged == sorted(f"{u}.dcm" for u in sops[:2])
    assert not expected_folder(tmp_path, s).exists()
    server.state.faults.clear()
    before = len(server.requests_to("getSingleImage"))
    second = download_series(c, [s.uid], tmp_path)
    assert second.ok
    fetched = [r.params["SOPInstanceUID"] for r in server.requests_to("getSingleImage")[before:]]
    assert fetched == sops[2:]  # only what was missing
    folder = expected_folder(tmp_path, s)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{u}.dcm" for u in sops)
    assert [pydicom.dcmread(folder / f"{u}.dcm").SOPInstanceUID for u in sops] == sops
    assert not (tmp_path / STAGING_NAME).exists()


def test_files_of_another_series_fail_verification(tmp_path):
    bad = build_catalog()
    target, other = bad.find("CT", "PHANTOM-001"), bad.find("CT", "PHANTOM-002")
    target.files[1] = (target.files[1][0], other.files[0][1], other.files[0][2])
    target.row["FileSize"] = sum(len(d) for _, d, _ in target.files)
    with NBIATestServer(bad) as srv:
        report = download_series(client(srv, md5=False), [target.uid], tmp_path)
    outcome = report.outcomes[0]
    assert outcome.state is SeriesState.FAILED
    assert f"file 00000002.dcm belongs to series {other.uid}" in outcome.message
    assert_no_partial(tmp_path, target)


@pytest.mark.parametrize("md5", [True, False])
@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[:-100], "cut short: element 7FE00010"),  # the archive holds a truncated file
        (lambda data: b"<html>not an image</html>", "no DICOM preamble"),
    ],
)
def test_an_intact_zip_of_a_broken_file_is_refused_without_retry(tmp_path, md5, damage, reason):
    bad = build_catalog()
    target = bad.find("CT", "PHANTOM-001")
    name, data, sop = target.files[2]
    target.files[2] = (name, damage(data), sop)  # the server's MD5 list and CRCs describe the damaged file
    target.row["FileSize"] = sum(len(d) for _, d, _ in target.files)
    with NBIATestServer(bad) as srv:
        report = download_series(client(srv, md5=md5), [target.uid], tmp_path)
        endpoint = "getImageWithMD5Hash" if md5 else "getImage"
        assert len(srv.requests_to(endpoint, target.uid)) == 1  # not a transfer error: no retry
    outcome = report.outcomes[0]
    assert outcome.state is SeriesState.FAILED
    assert f"{name} is not a complete DICOM file" in outcome.message and reason in outcome.message
    assert_no_partial(tmp_path, target)
