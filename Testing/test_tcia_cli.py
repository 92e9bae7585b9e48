"""``oncoqi tcia ...`` end to end through oncoqi.cli.main against the local NBIA test server."""

from __future__ import annotations

import json
import signal
import threading

import pytest

import oncoqi.cli
from helpers.tcia_server import COLLECTION, DOI
from helpers.tcia_server import shared_catalog as catalog
from oncoqi.tcia.download import MANIFEST_NAME


@pytest.fixture(autouse=True)
def only_tcia(monkeypatch, tmp_path):
    """Run main() with the tcia family alone and a private metadata cache."""
    monkeypatch.setattr(oncoqi.cli, "COMMAND_MODULES", ("oncoqi.tcia.cli",))
    monkeypatch.setenv("ONCOQI_CACHE_DIR", str(tmp_path / "cache"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = oncoqi.cli.main(["tcia", *argv])
    out, err = capsys.readouterr()
    return code, out, err


FAST = ("--timeout", "2", "--retries", "0")


def test_collections_table_and_json(server, capsys, tmp_path):
    code, out, _ = run(capsys, "collections", "--api-url", server.url, *FAST)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["COLLECTION", "URL"]
    assert lines[2].split() == [COLLECTION, DOI]
    code, out, _ = run(capsys, "collections", "--json", "--api-url", server.url, *FAST)
    data = json.loads(out)
    assert code == 0 and data[1]["name"] == COLLECTION and data[1]["description_text"].startswith("Synthetic")
    assert (tmp_path / "cache" / "tcia.sqlite").exists()


def test_listings_filter_and_offline_note(server, capsys):
    argv = ("series", "--collection", COLLECTION, "--modality", "CT", "--api-url", server.url)
    code, out, _ = run(capsys, *argv, *FAST)
    rows = out.splitlines()[1:]
    assert code == 0 and len(rows) == 2 and all(r.split()[2] == "CT" for r in rows)
    code, out, _ = run(
        capsys, "studies", "--collection", COLLECTION, "--patient", "PHANTOM-001", "--api-url", server.url
    )
    assert code == 0 and out.splitlines()[1].split()[1:4] == ["PHANTOM-001", "2001-01-01", "2"]
    code, before, _ = run(capsys, "patients", "--collection", COLLECTION, "--api-url", server.url, *FAST)
    url = server.url
    server.stop()
    code, after, err = run(capsys, "patients", "--collection", COLLECTION, "--refresh", "--api-url", url, *FAST)
    assert code == 0 and after == before
    assert "note: the server could not be reached; showing the cached answer" in err
    code, _, err = run(capsys, "patients", "--collection", "Empty-Collection", "--api-url", url, *FAST)
    assert code == 2 and err.startswith("error: ") and "cannot reach the server" in err


def test_user_errors_are_one_line_with_exit_code_2(server, capsys):
    code, _, err = run(capsys, "series", "--api-url", server.url)
    assert code == 2 and err == "error: give a collection, patient, study, modality or series UID to list series\n"
    code, _, err = run(capsys, "collections", "--api-url", "ftp://example.org/")
    assert code == 2 and "must start with http:// or https://" in err
    code, _, err = run(capsys, "patients", "--collection", "Empty-Collection", "--api-url", server.url, *FAST)
    assert code == 1 and err == "no patients found\n"


def test_download_from_manifest_with_references_then_rerun(server, capsys, tmp_path):
    rt, ct = catalog().find("RTSTRUCT", "PHANTOM-001"), catalog().find("CT", "PHANTOM-001")
    manifest = tmp_path / "cart.tcia"
    manifest.write_text(
        "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet\n"
        "includeAnnotation=true\nnoOfrRetry=4\ndatabasketId=manifest-1.tcia\nmanifestVersion=3.0\n"
        f"ListOfSeriesToDownload=\n{rt.uid}\n"
    )
    out_dir = tmp_path / "out"
    argv = (
        "download",
        "--manifest",
        str(manifest),
        "--out",
        str(out_dir),
        "--with-references",
        "--api-url",
        server.url,
    )
    code, out, err = run(capsys, *argv, *FAST)
    assert code == 0, err
    assert "adding 1 referenced image series" in err
    study = rt.row["StudyInstanceUID"]
    assert out.splitlines() == [
        f"done: {rt.uid} -> {out_dir / 'PHANTOM-001' / study / rt.uid}",
        f"done: {ct.uid} -> {out_dir / 'PHANTOM-001' / study / ct.uid}",
    ]
    assert set(json.loads((out_dir / MANIFEST_NAME).read_text())["series"]) == {rt.uid, ct.uid}
    code, out, _ = run(capsys, *argv, *FAST)
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()] == ["skipped", "skipped"]


def test_download_instances_mode_and_failure_exit_code(server, capsys, tmp_path):
    pt = catalog().find("PT", "PHANTOM-002")
    out_dir = str(tmp_path / "o")
    argv = ("download", "--out", out_dir, "--mode", "instances", "--workers", "2", "--api-url", server.url)
    code, out, _ = run(capsys, *argv, "--series", pt.uid, "1.2.3.999", *FAST)
    assert code == 1
    assert out.splitlines()[0].startswith(f"done: {pt.uid} -> ")
    assert out.splitlines()[1] == f"failed: no series 1.2.3.999 at {server.url}"
    assert len(server.requests_to("getSingleImage")) == 3 and not server.requests_to("getImageWithMD5Hash")
    code, _, err = run(capsys, "download", "--out", str(tmp_path / "o"), "--series", "x/../y", "--api-url", server.url)
    assert code == 2 and "'x/../y' is not a valid SeriesInstanceUID" in err


def test_ctrl_c_cancels_cleanly_with_exit_code_130(server, capsys, tmp_path):
    ct = catalog().find("CT", "PHANTOM-001")
    # about 35 chunks 0.05 s apart: the interrupt at 0.3 s arrives mid-transfer
    server.add_fault("getImageWithMD5Hash", "slow", times=-1, seconds=0.05, chunk=128)
    # Python's own Ctrl-C handler, as an interactive `oncoqi` has: a test session started in the
    # background (`cmd &`, nohup) inherits SIGINT ignored, and Python keeps it ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    try:
        code, _, err = run(
            capsys, "download", "--series", ct.uid, "--out", str(tmp_path / "o"), "--api-url", server.url
        )
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert "cancelling; partial downloads are being removed" in err  # the queue's own cancel, not main()'s
    assert [
        str(p.relative_to(tmp_path)) for p in (tmp_path / "o").rglob("*")
    ] == []  # no series folder, no staging, no manifest
