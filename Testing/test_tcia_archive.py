"""ZIP safety, MD5 lists, .tcia manifests and record helpers of oncoqi.tcia (no network)."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from helpers.tcia_server import build_bulk_catalog, series_zip
from oncoqi.errors import InputError
from oncoqi.tcia.archive import (
    ChecksumError,
    CorruptArchiveError,
    StreamingExtractor,
    UnsafeArchiveError,
    extract_series_zip,
    parse_md5_list,
    safe_entry_name,
    verify_md5,
)
from oncoqi.tcia.dicomcheck import DicomCheckError, InstanceHeader
from oncoqi.tcia.download import safe_component, series_folder
from oncoqi.tcia.manifest import read_tcia_manifest
from oncoqi.tcia.models import Collection, Series, html_to_text, is_valid_uid
from oncoqi.tcia.source import FileRecord, open_for_writing


def _zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _extract(tmp_path: Path, zip_path: Path, limit: int = 10**6):
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    return dest, extract_series_zip(zip_path, dest, max_total_bytes=limit, opener=open_for_writing)


def test_extracts_flat_with_md5_skips_license_and_reads_md5_list(tmp_path):
    a, b = b"first file", b"second file" * 10
    csv = f"Filename,MD5Hash\nsub_b.dcm,{hashlib.md5(b).hexdigest()}\na.dcm,{hashlib.md5(a).hexdigest()}\n"
    entries = [("LICENSE", b"CC BY 4.0"), ("a.dcm", a), ("sub/b.dcm", b), ("md5hashes.csv", csv.encode())]
    z = _zip(tmp_path / "s.zip", entries)
    dest, out = _extract(tmp_path, z)
    assert sorted(p.name for p in dest.iterdir()) == ["a.dcm", "sub_b.dcm"]
    assert (dest / "sub_b.dcm").read_bytes() == b
    assert out.files["a.dcm"] == FileRecord(size=len(a), md5=hashlib.md5(a).hexdigest())
    verify_md5(out.files, out.md5_sums)  # consistent list: no error


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "..\\evil.dcm", "\\\\server\\x.dcm"]
)
def test_zip_slip_entries_are_refused_before_anything_is_written(tmp_path, name):
    info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given (writestr would normalise some)
    z = _zip(tmp_path / "s.zip", [("good.dcm", b"x"), (info, b"owned")])
    with pytest.raises(UnsafeArchiveError):
        _extract(tmp_path, z)
    assert list((tmp_path / "dest").iterdir()) == []
    assert not (tmp_path / "evil.dcm").exists()
    assert not UnsafeArchiveError.transient


def test_symlink_and_duplicate_entries_are_refused(tmp_path):
    link = zipfile.ZipInfo("link.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        _extract(tmp_path, _zip(tmp_path / "l.zip", [(link, b"/etc/passwd")]))
    with pytest.raises(UnsafeArchiveError, match=r"both written as 'a_b\.dcm'"):
        _extract(tmp_path, _zip(tmp_path / "d.zip", [("a/b.dcm", b"1"), ("a_b.dcm", b"2")]))


def test_zip_bomb_is_refused_from_the_central_directory(tmp_path):
    z = _zip(tmp_path / "bomb.zip", [("bomb.dcm", bytes(5 * 1024 * 1024))])
    assert z.stat().st_size < 50_000  # tiny archive, huge content
    with pytest.raises(UnsafeArchiveError, match="expands to 5242880 bytes"):
        _extract(tmp_path, z, limit=1024 * 1024)
    assert list((tmp_path / "dest").iterdir()) == []


def test_corrupt_and_truncated_archives_are_transient_errors(tmp_path):
    z = _zip(tmp_path / "ok.zip", [("a.dcm", bytes(range(256)) * 40)])
    raw = z.read_bytes()
    (tmp_path / "trunc.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptArchiveError):
        _extract(tmp_path, tmp_path / "trunc.zip")
    flipped = bytearray(raw)
    for k in range(60, 80):
        flipped[k] ^= 0xFF
    (tmp_path / "flip.zip").write_bytes(bytes(flipped))
    with pytest.raises(CorruptArchiveError):
        _extract(tmp_path, tmp_path / "flip.zip")
    assert CorruptArchiveError.transient


class _Unseekable:
    """A write-only stream: zipfile then writes data descriptors after the entries, as NBIA's Java server does."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        raise OSError("not seekable")


def _streamed_zip(entries: list[tuple[str, bytes]]) -> bytes:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, data in entries:
            zf.writestr(name, data)
    return b"".join(stream.parts)


def _stream(tmp_path: Path, data: bytes, step: int, limit: int = 10**8, subdir: str = "stream"):
    """Feed ``data`` to a StreamingExtractor in ``step``-byte chunks; returns the folder and the extractor."""
    dest = tmp_path / subdir
    dest.mkdir()
    zip_path = tmp_path / f"{subdir}.zip"
    zip_path.write_bytes(data)
    extractor = StreamingExtractor(dest, max_total_bytes=limit, opener=open_for_writing)
    for start in range(0, len(data), step):
        extractor.feed(data[start : start + step])
    return dest, zip_path, extractor


@pytest.mark.parametrize("step", [1, 8192, 10**7])
@pytest.mark.parametrize("md5", [True, False])
def test_streaming_extraction_gives_what_zipfile_gives(tmp_path, step, md5):
    series = next(iter(build_bulk_catalog(1, 5, 128).series.values()))
    for k, data in enumerate([series_zip(series, md5), _streamed_zip([(n, d) for n, d, _ in series.files])]):
        dest, zip_path, extractor = _stream(tmp_path, data, step, subdir=f"s{k}")
        out = extractor.finish(zip_path)
        reference_dest = tmp_path / f"ref{k}"
        reference_dest.mkdir()
        reference = extract_series_zip(zip_path, reference_dest, max_total_bytes=10**8, opener=open_for_writing)
        assert out.files == reference.files and out.md5_sums == reference.md5_sums
        assert out.checks == reference.checks and set(out.checks) == {n for n, _, _ in series.files}
        assert all(isinstance(c, InstanceHeader) and c.series_uid == series.uid for c in out.checks.values())
        for name, content, _ in series.files:
            assert (dest / name).read_bytes() == content
        if k == 1:
            assert all(i.flag_bits & 0x08 for i in zipfile.ZipFile(zip_path).infolist())  # data descriptors


def test_streaming_refuses_unsafe_entries_as_they_arrive(tmp_path):
    noise = os.urandom(300_000)  # incompressible: the evil entry arrives after more than one feed batch
    data = _streamed_zip([("good.dcm", noise), ("../evil.dcm", b"owned"), ("late.dcm", noise * 3)])
    dest = tmp_path / "stream"
    dest.mkdir()
    extractor = StreamingExtractor(dest, max_total_bytes=10**8, opener=open_for_writing)
    fed = 0
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        for fed in range(0, len(data), 8192):
            extractor.feed(data[fed : fed + 8192])
    assert fed < len(data) / 2  # refused long before the rest arrived
    assert sorted(p.name for p in dest.iterdir()) == ["good.dcm"]  # removed with the staging folder
    assert not (tmp_path / "evil.dcm").exists()
    bomb = _streamed_zip([("bomb.dcm", bytes(20 * 1024 * 1024))])
    with pytest.raises(UnsafeArchiveError, match="expands to"):
        _, zip_path, extractor = _stream(tmp_path, bomb, 4096, limit=1024 * 1024, subdir="bomb")
        extractor.finish(zip_path)
    assert list((tmp_path / "bomb").iterdir()) == []  # refused while inflating, before anything was written


def test_streaming_checks_the_central_directory(tmp_path):
    link = zipfile.ZipInfo("link.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    raw = tmp_path / "link-source.zip"
    _zip(raw, [(link, b"/etc/passwd")])
    dest, zip_path, extractor = _stream(tmp_path, raw.read_bytes(), 7)
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extractor.finish(zip_path)
    assert not (dest / "link.dcm").is_symlink()  # written as a plain file, then refused with the series
    data = bytearray(_streamed_zip([("a.dcm", b"1" * 100), ("b.dcm", b"2" * 100)]))
    central = data.rindex(b"PK\x01\x02")  # the last central directory record names b.dcm
    data[central:] = data[central:].replace(b"b.dcm", b"c.dcm", 1)
    _, zip_path, extractor = _stream(tmp_path, bytes(data), 50, subdir="renamed")
    with pytest.raises(CorruptArchiveError, match="central directory does not list"):
        extractor.finish(zip_path)


def test_streaming_damaged_entries_are_transient_errors(tmp_path):
    data = bytearray(_streamed_zip([("a.dcm", bytes(range(256)) * 400)]))
    for k in range(60, 80):
        data[k] ^= 0xFF
    with pytest.raises(CorruptArchiveError, match="damaged entry"):
        _, zip_path, extractor = _stream(tmp_path, bytes(data), 1000)
        extractor.finish(zip_path)


def test_streaming_leaves_file_crcs_to_the_md5_list_when_told(tmp_path):
    raw = _zip(tmp_path / "crc-source.zip", [("a.dcm", b"content" * 100)]).read_bytes()
    central = raw.rindex(b"PK\x01\x02")
    bad = bytearray(raw)
    bad[14:18] = bad[central + 16 : central + 20] = b"\0\0\0\0"  # a wrong CRC-32, listed consistently
    with pytest.raises(CorruptArchiveError, match="Bad CRC-32"):
        _, zip_path, extractor = _stream(tmp_path, bytes(bad), 100)
        extractor.finish(zip_path)
    dest = tmp_path / "md5"
    dest.mkdir()
    extractor = StreamingExtractor(dest, max_total_bytes=10**6, opener=open_for_writing, crc_files=False)
    extractor.feed(bytes(bad))
    (tmp_path / "md5.zip").write_bytes(bytes(bad))
    out = extractor.finish(tmp_path / "md5.zip")  # the content's MD5 is what the archive's list is checked against
    assert out.files["a.dcm"].md5 == hashlib.md5(b"content" * 100).hexdigest()


def test_streaming_stands_aside_for_other_compression_and_non_zips(tmp_path):
    raw = tmp_path / "bz2-source.zip"
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("a.dcm", b"bzip2 content" * 50)
    dest, zip_path, extractor = _stream(tmp_path, raw.read_bytes(), 64)
    out = extractor.finish(zip_path)  # extracted by zipfile from the complete file
    assert (dest / "a.dcm").read_bytes() == b"bzip2 content" * 50
    assert isinstance(out.checks["a.dcm"], DicomCheckError)  # checked all the same (and not DICOM)
    _, zip_path, extractor = _stream(tmp_path, b"<html>Service unavailable</html>", 8, subdir="html")
    with pytest.raises(CorruptArchiveError, match="not a readable ZIP"):
        extractor.finish(zip_path)


def test_md5_list_parsing_and_mismatches():
    good = {"a.dcm": FileRecord(1, "0" * 32), "b.dcm": FileRecord(1, "1" * 32)}
    sums = parse_md5_list("Filename,MD5Hash\r\nb.dcm,11111111111111111111111111111111\r\na.dcm," + "0" * 32 + "\r\n")
    verify_md5(good, sums)
    with pytest.raises(ChecksumError, match="MD5 mismatch for 1 file"):
        verify_md5(good, {**sums, "b.dcm": "2" * 32})
    with pytest.raises(ChecksumError, match=r"missing, e\.g\. c\.dcm"):
        verify_md5(good, {**sums, "c.dcm": "3" * 32})
    with pytest.raises(ChecksumError, match="not listed"):
        verify_md5(good, {"a.dcm": "0" * 32})
    with pytest.raises(CorruptArchiveError, match="header"):
        parse_md5_list("a.dcm,00\n")


def test_safe_names():
    assert safe_entry_name("./x/y.dcm") == "x_y.dcm"
    assert safe_component("LIDC-IDRI-0001", "p") == "LIDC-IDRI-0001"
    assert safe_component("../..", "p") == "p"
    assert safe_component("a/b c", "p") == "a_b_c"
    folder = series_folder(Path("/out"), "..", "not a uid/..", "1.2.3")
    assert folder == Path("/out/unknown-patient/not_a_uid_../1.2.3")
    assert is_valid_uid("1.2.840.10008.5.1.4.1.1.2") and not is_valid_uid("1.2./3") and not is_valid_uid("1." * 40)


def test_models_json_and_html_description():
    c = Collection("X", "<p>Lung <b>CT</b>&amp; PET</p>\n<ul><li>one</li></ul>", "https://doi.org/x")
    assert c.description_text == "Lung CT& PET one"
    assert c.to_dict()["description_text"] == c.description_text
    assert html_to_text("") == ""
    seg = Series("1.2", "1.3", "P", "C", modality="seg")
    assert seg.is_segmentation and not Series("1.2", "1.3", "P", "C", modality="CT").is_segmentation


MANIFEST = """downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet
includeAnnotation=true
noOfrRetry=4
databasketId=manifest-1600709154662.tcia
manifestVersion=3.0
ListOfSeriesToDownload=
1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192
1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919

1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192
"""


def test_tcia_manifest_header_blank_lines_duplicates_bom_and_crlf(tmp_path):
    p = tmp_path / "cart.tcia"
    p.write_bytes(b"\xef\xbb\xbf" + MANIFEST.replace("\n", "\r\n").encode())
    m = read_tcia_manifest(p)
    assert m.series_uids == [
        "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192",
        "1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919",
    ]
    assert m.properties["databasketId"] == "manifest-1600709154662.tcia"
    assert m.properties["manifestVersion"] == "3.0"


def test_plain_uid_list_and_bad_manifests(tmp_path):
    plain = tmp_path / "uids.txt"
    plain.write_text("1.2.3\n\n1.2.4\n")
    assert read_tcia_manifest(plain).series_uids == ["1.2.3", "1.2.4"]
    bad = tmp_path / "bad.tcia"
    bad.write_text(MANIFEST.replace("1.3.6.1.4.1.14519.5.2.1.6279.6001.619", "../../etc/passwd"))
    with pytest.raises(InputError, match=r"bad.tcia, line 8: '\.\./\.\./etc/passwd"):
        read_tcia_manifest(bad)
    empty = tmp_path / "empty.tcia"
    empty.write_text(MANIFEST.split("ListOfSeriesToDownload=")[0] + "ListOfSeriesToDownload=\n")
    with pytest.raises(InputError, match="lists no series"):
        read_tcia_manifest(empty)
    with pytest.raises(InputError, match="cannot read"):
        read_tcia_manifest(tmp_path / "missing.tcia")
    html = tmp_path / "page.tcia"
    html.write_text("<html>not a manifest</html>\n")
    with pytest.raises(InputError, match="lists the UIDs after 'ListOfSeriesToDownload='"):
        read_tcia_manifest(html)
