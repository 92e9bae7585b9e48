"""Extract a downloaded series ZIP safely; a ZIP from the network is untrusted input.

Two ways in, with the same checks:

* :class:`StreamingExtractor` extracts the entries while the ZIP is still arriving (from the local
  headers, in stream order), so that inflating, hashing and parsing 1,000 files overlaps the
  transfer instead of following it. When the stream is complete it checks the central directory
  exactly as below and requires it to list the same entries (names, CRC-32, sizes) in the same
  order. Anything it does not handle (a compression method other than stored or deflate, ZIP64,
  a stream that is not a ZIP) makes it stand aside: the whole ZIP, which is written to disk as it
  arrives anyway, is then extracted by :func:`extract_series_zip` once complete.
* :func:`extract_series_zip` reads a complete ZIP file, checking every entry first.

The checks:

* a name that is absolute, has a drive letter, or contains a ``..`` component would write outside
  the series folder ("zip slip"): the series is refused (:class:`UnsafeArchiveError`) before that
  entry is written, and nothing is ever written outside the (staging) folder given;
* symbolic links and encrypted entries are refused; links are only listed in the central
  directory, so a streamed one has been written as a plain file by then (never as a link) and the
  series is refused when the central directory is read;
* the expanded bytes must stay below a limit derived from the series' declared size, so a ZIP that
  expands far beyond it (a "zip bomb") is refused: the streaming extractor counts what it inflates
  and stops at the limit; :func:`extract_series_zip` adds up the central directory's sizes (Python's
  :mod:`zipfile` never returns more bytes than an entry's recorded size, so that holds for what is
  written);
* CRC-32 errors surface as :class:`CorruptArchiveError` (a new download may succeed).

Every DICOM entry is hashed (MD5) and checked with :func:`oncoqi.tcia.dicomcheck.inspect_instance`
from the bytes in memory as it is written, so that verification does not read 1,000 files back;
entries larger than :data:`IN_MEMORY_ENTRY` are streamed to disk and checked from the file later.

Entries in sub-folders are flattened into one folder (``a/b.dcm`` becomes ``a_b.dcm``). NBIA adds a
``LICENSE`` text (skipped: the licence is in the series metadata) and, in the MD5 variant, an
``md5hashes.csv`` (header ``Filename,MD5Hash``), which is read, not written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from oncoqi.errors import CancelToken, check_cancel
from oncoqi.tcia.dicomcheck import InstanceCheck, check_instance
from oncoqi.tcia.http import TransferError
from oncoqi.tcia.source import FileOpener, FileRecord

LICENSE_ENTRY = "LICENSE"
MD5_ENTRY = "md5hashes.csv"

#: The MD5 list is read into memory; a larger one is refused.
MAX_METADATA_ENTRY = 16 * 1024 * 1024

#: Entries up to this size are inflated in memory, written with one call and checked from memory;
#: larger ones (big multi-frame objects) are streamed to disk and checked from the file.
IN_MEMORY_ENTRY = 64 * 1024 * 1024


class UnsafeArchiveError(TransferError):
    """The ZIP would write outside its folder, contains links, or expands far beyond its declared size."""


class CorruptArchiveError(TransferError):
    """The ZIP cannot be read (truncated, bad CRC); a new download may succeed."""

    transient = True


class ChecksumError(TransferError):
    """Downloaded files do not match the MD5 sums the archive supplied; a new download may succeed."""

    transient = True


@dataclass
class ExtractedArchive:
    """What a series ZIP held.

    Attributes
    ----------
    files
        Name of each extracted file to its size and MD5.
    md5_sums
        The archive's own MD5 list (name to lowercase hex), or None when it has none.
    checks
        Name to its DICOM check, for the files checked from memory (see :data:`oncoqi.tcia.dicomcheck.InstanceCheck`).
    """

    files: dict[str, FileRecord]
    md5_sums: dict[str, str] | None
    checks: dict[str, InstanceCheck] = field(default_factory=dict)


def safe_entry_name(name: str) -> str:
    """The flat file name an entry is written under.

    Raises
    ------
    UnsafeArchiveError
        For absolute names, drive letters, ``..`` components, backslash tricks or NUL characters.
    """
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"entry with an empty or NUL-containing name {name!r}")
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        raise UnsafeArchiveError(f"entry {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(normal).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"entry {name!r} climbs out of the series folder with '..'")
    if not parts:
        raise UnsafeArchiveError(f"entry {name!r} has no file name")
    return "_".join(parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def parse_md5_list(text: str) -> dict[str, str]:
    """Name to lowercase MD5 from an NBIA ``md5hashes.csv`` (``Filename,MD5Hash`` header).

    Raises
    ------
    CorruptArchiveError
        When the list has no such header or a malformed row.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["filename", "md5hash"]:
        raise CorruptArchiveError(f"{MD5_ENTRY} lacks its 'Filename,MD5Hash' header")
    sums: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or len(row[1].strip()) != 32:
            raise CorruptArchiveError(f"{MD5_ENTRY} line {n} is not 'name,md5': {row!r}")
        sums[safe_entry_name(row[0].strip())] = row[1].strip().lower()
    return sums


def verify_md5(files: dict[str, FileRecord], sums: dict[str, str]) -> None:
    """Check that the extracted files are exactly those listed, with the listed MD5 sums.

    Raises
    ------
    ChecksumError
        Naming the first mismatching, missing or unlisted file and how many there are.
    """
    missing = sorted(set(sums) - set(files))
    if missing:
        raise ChecksumError(f"{len(missing)} file(s) listed in {MD5_ENTRY} are missing, e.g. {missing[0]}")
    unlisted = sorted(set(files) - set(sums))
    if unlisted:
        raise ChecksumError(f"{len(unlisted)} file(s) are not listed in {MD5_ENTRY}, e.g. {unlisted[0]}")
    bad = sorted(name for name, rec in files.items() if rec.md5 != sums[name])
    if bad:
        raise ChecksumError(
            f"MD5 mismatch for {len(bad)} file(s), e.g. {bad[0]}: got {files[bad[0]].md5}, expected {sums[bad[0]]}"
        )


def _check_entries(infos: list[zipfile.ZipInfo], max_total_bytes: int) -> list[tuple[zipfile.ZipInfo, str]]:
    entries: list[tuple[zipfile.ZipInfo, str]] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        if info.is_dir():
            safe_entry_name(info.filename)  # a directory entry may still be an escape attempt
            continue
        name = safe_entry_name(info.filename)
        if _is_symlink(info):
            raise UnsafeArchiveError(f"entry {info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(f"entry {info.filename!r} is encrypted")
        if name in seen:
            raise UnsafeArchiveError(f"two entries are both written as {name!r}")
        seen.add(name)
        total += info.file_size
        entries.append((info, name))
    if total > max_total_bytes:
        raise UnsafeArchiveError(
            f"the archive expands to {total} bytes, more than the {max_total_bytes} allowed for this series"
        )
    return entries


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > MAX_METADATA_ENTRY:
        raise UnsafeArchiveError(f"entry {info.filename!r} is too large ({info.file_size} bytes) for an MD5 list")
    return zf.read(info).decode("utf-8", "replace")


def _write_checked(target: Path, data: bytes, opener: FileOpener, checks: dict[str, InstanceCheck]) -> FileRecord:
    """Check a whole entry held in memory as DICOM (into ``checks``), write it with one call, hash it."""
    checks[target.name] = check_instance(data)
    with opener(target) as out:
        out.write(data)
    return FileRecord(size=len(data), md5=hashlib.md5(data).hexdigest())


def _extract_entry(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    opener: FileOpener,
    cancel: CancelToken | None,
    checks: dict[str, InstanceCheck],
) -> FileRecord:
    check_cancel(cancel)
    if info.file_size <= IN_MEMORY_ENTRY:
        return _write_checked(target, zf.read(info), opener, checks)
    digest = hashlib.md5()
    size = 0
    with zf.open(info) as src, opener(target) as out:
        while True:
            check_cancel(cancel)
            block = src.read(1024 * 1024)
            if not block:
                break
            out.write(block)
            digest.update(block)
            size += len(block)
    return FileRecord(size=size, md5=digest.hexdigest())


def extract_series_zip(
    zip_path: Path,
    dest: Path,
    *,
    max_total_bytes: int,
    opener: FileOpener,
    cancel: CancelToken | None = None,
) -> ExtractedArchive:
    """Check every entry of ``zip_path``, then extract its files flat into the folder ``dest``.

    Parameters
    ----------
    zip_path
        The downloaded archive.
    dest
        Existing folder that receives the files.
    max_total_bytes
        Refuse the archive when its entries add up to more than this.
    opener
        Opens each output file (see :data:`oncoqi.tcia.source.FileOpener`).
    cancel
        Checked between blocks.

    Raises
    ------
    UnsafeArchiveError
        When an entry is unsafe or the archive is too large; nothing has been written then.
    CorruptArchiveError
        When the archive or an entry cannot be read.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CorruptArchiveError(f"{zip_path.name}: not a readable ZIP archive ({exc})") from exc
    with zf:
        entries = _check_entries(zf.infolist(), max_total_bytes)
        files: dict[str, FileRecord] = {}
        checks: dict[str, InstanceCheck] = {}
        md5_sums: dict[str, str] | None = None
        try:
            for info, name in entries:
                if name == MD5_ENTRY:
                    md5_sums = parse_md5_list(_read_small(zf, info))
                elif name != LICENSE_ENTRY:  # the licence is recorded from the series metadata
                    files[name] = _extract_entry(zf, info, dest / name, opener, cancel, checks)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CorruptArchiveError(f"{zip_path.name}: damaged entry ({exc})") from exc
    return ExtractedArchive(files=files, md5_sums=md5_sums, checks=checks)


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL_SIGNATURES = (b"PK\x01\x02", b"PK\x05\x06")
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_DESCRIPTOR = struct.Struct("<3L")
_ZIP64_EXTRA = 0x0001
_INFLATE_STEP = 1024 * 1024
#: Compressed bytes gathered before inflating: HTTP chunks are small (8 KiB from the test server), and
#: inflating, hashing and checksumming each one on its own adds Python calls and GIL switches per chunk.
_FEED_BATCH = 256 * 1024


class _StandAside(Exception):
    """The stream uses a ZIP feature the streaming extractor leaves to :mod:`zipfile`."""


@dataclass
class _Entry:
    """The entry being streamed: its local header and what has been inflated so far."""

    raw_name: str
    name: str
    flags: int
    crc: int
    compressed_size: int
    size: int
    inflater: zlib._Decompress | None
    consumed: int = 0
    produced: int = 0
    running_crc: int = 0
    pieces: list[bytes] = field(default_factory=list)
    out: BinaryIO | None = None
    digest: hashlib._Hash | None = None  # only once the entry is streamed to disk

    @property
    def has_descriptor(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def is_metadata(self) -> bool:
        """LICENSE (dropped) or the MD5 list (kept in memory), not a file of the series."""
        return self.name in (MD5_ENTRY, LICENSE_ENTRY)


class StreamingExtractor:
    """Extract a series ZIP into ``dest`` while it arrives (see the module docstring).

    Feed it every chunk of the transfer with :meth:`feed`, then call :meth:`finish` with the complete
    ZIP on disk. Errors found on the way (an unsafe name, a bomb, a damaged entry) are raised by
    :meth:`feed` at once, so a bad transfer stops early.

    Parameters
    ----------
    dest
        Existing (staging) folder that receives the files.
    max_total_bytes
        The most bytes the entries may expand to (refused beyond).
    opener
        Opens each output file (see :data:`oncoqi.tcia.source.FileOpener`).
    cancel
        Checked for every block inflated.
    crc_files
        False when the archive's MD5 list will be checked for every file: their CRC-32 is then
        redundant (about 5% of the CPU time of a download); the MD5 list's own CRC is still checked.
    """

    def __init__(
        self,
        dest: Path,
        *,
        max_total_bytes: int,
        opener: FileOpener,
        cancel: CancelToken | None = None,
        crc_files: bool = True,
    ) -> None:
        self.dest = dest
        self.crc_files = crc_files
        self.max_total_bytes = max_total_bytes
        self.opener = opener
        self.cancel = cancel
        self.files: dict[str, FileRecord] = {}
        self.checks: dict[str, InstanceCheck] = {}
        self.md5_sums: dict[str, str] | None = None
        self._buffer = bytearray()
        self._expanded = 0
        self._entry: _Entry | None = None
        self._streamed: list[tuple[str, int, int]] = []  # name, CRC-32, size: to match the central directory
        self._names: set[str] = set()
        self._stage = "header"  # header, data, descriptor, central (the stream's end), aside

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream; extract what they complete, in blocks of :data:`_FEED_BATCH`.

        Raises
        ------
        UnsafeArchiveError
            For an unsafe or duplicate name, an encrypted entry, or expansion beyond the limit.
        CorruptArchiveError
            For a damaged entry (inflate error, CRC-32 or size mismatch).
        """
        if self._stage in ("central", "aside"):
            return
        self._buffer += chunk
        if len(self._buffer) >= _FEED_BATCH:
            self._advance()

    def _advance(self) -> None:
        try:
            while self._step():
                pass
        except _StandAside:
            self._stand_aside()
        except zlib.error as exc:
            raise CorruptArchiveError(f"damaged entry {self._entry.raw_name if self._entry else ''!r} ({exc})") from exc

    def _stand_aside(self) -> None:
        self.close()
        self._stage = "aside"
        self._buffer = bytearray()
        self._entry = None

    def _step(self) -> bool:
        """Advance by one header, one block of data or one descriptor; False when more bytes are needed."""
        if self._stage == "header":
            return self._header()
        if self._stage == "data":
            return self._data()
        return self._descriptor()

    def _header(self) -> bool:
        buf = self._buffer
        if len(buf) < 4:
            return False
        if bytes(buf[:4]) in _CENTRAL_SIGNATURES:
            self._stage = "central"
            self._buffer = bytearray()
            return False
        if bytes(buf[:4]) != _LOCAL_SIGNATURE:
            raise _StandAside
        if len(buf) < _LOCAL_HEADER.size:
            return False
        _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL_HEADER.unpack_from(buf)
        end = _LOCAL_HEADER.size + name_len + extra_len
        if len(buf) < end:
            return False
        raw = bytes(buf[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_len])
        raw_name = raw.decode("utf-8") if flags & 0x800 else raw.decode("cp437")
        if _has_zip64(bytes(buf[_LOCAL_HEADER.size + name_len : end])) or 0xFFFFFFFF in (csize, usize):
            raise _StandAside
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (method == zipfile.ZIP_STORED and flags & 0x08):
            raise _StandAside
        name = safe_entry_name(raw_name)
        if flags & 0x1:
            raise UnsafeArchiveError(f"entry {raw_name!r} is encrypted")
        del buf[:end]
        if raw_name.replace("\\", "/").endswith("/"):  # a folder: nothing to write
            if csize or usize or flags & 0x08:
                raise _StandAside
            return True
        if name in self._names:
            raise UnsafeArchiveError(f"two entries are both written as {name!r}")
        self._names.add(name)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS) if method == zipfile.ZIP_DEFLATED else None
        self._entry = _Entry(raw_name, name, flags, crc, csize, usize, inflater)
        self._stage = "data"
        return True

    def _data(self) -> bool:
        entry = self._entry
        assert entry is not None
        buf = self._buffer
        if entry.inflater is None:  # stored: the local header gives the size
            take = min(len(buf), entry.compressed_size - entry.consumed)
            self._emit(entry, bytes(buf[:take]))
            entry.consumed += take
            del buf[:take]
            if entry.consumed < entry.compressed_size:
                return False
            return self._end_data(entry)
        if not buf:
            return False
        data = bytes(buf)
        buf.clear()
        inflater = entry.inflater
        while data and not inflater.eof:
            out = inflater.decompress(data, _INFLATE_STEP)
            entry.consumed += len(data) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
            data = inflater.unconsumed_tail
            self._emit(entry, out)
        if not inflater.eof:
            return False
        buf += inflater.unused_data
        return self._end_data(entry)

    def _emit(self, entry: _Entry, out: bytes) -> None:
        check_cancel(self.cancel)
        self._expanded += len(out)
        if self._expanded > self.max_total_bytes:
            raise UnsafeArchiveError(
                f"the archive expands to {self._expanded} bytes or more, more than the {self.max_total_bytes} "
                "allowed for this series"
            )
        entry.produced += len(out)
        if entry.is_metadata or self.crc_files:
            entry.running_crc = zlib.crc32(out, entry.running_crc)
        if entry.is_metadata:
            if entry.name == MD5_ENTRY:
                if entry.produced > MAX_METADATA_ENTRY:
                    raise UnsafeArchiveError(f"entry {entry.raw_name!r} is too large for an MD5 list")
                entry.pieces.append(out)
            return
        if entry.out is not None:
            entry.digest.update(out)  # type: ignore[union-attr]  # set with out
            entry.out.write(out)
            return
        entry.pieces.append(out)  # hashed, checked and written whole by _close
        if entry.produced > IN_MEMORY_ENTRY:  # too big to keep: stream it to disk, check it from there
            entry.out = self.opener(self.dest / entry.name)
            entry.digest = hashlib.md5()
            for piece in entry.pieces:
                entry.digest.update(piece)
                entry.out.write(piece)
            entry.pieces = []

    def _end_data(self, entry: _Entry) -> bool:
        if entry.has_descriptor:
            self._stage = "descriptor"
            return True
        if entry.consumed != entry.compressed_size:
            raise CorruptArchiveError(
                f"damaged entry {entry.raw_name!r} ({entry.consumed} compressed bytes, the header says "
                f"{entry.compressed_size})"
            )
        self._close(entry, entry.crc, entry.size)
        return True

    def _descriptor(self) -> bool:
        entry = self._entry
        assert entry is not None
        buf = self._buffer
        if len(buf) < 4:
            return False
        skip = 4 if bytes(buf[:4]) == _DESCRIPTOR_SIGNATURE else 0
        if len(buf) < skip + _DESCRIPTOR.size:
            return False
        crc, csize, usize = _DESCRIPTOR.unpack_from(buf, skip)
        del buf[: skip + _DESCRIPTOR.size]
        if csize != entry.consumed:
            raise CorruptArchiveError(f"damaged entry {entry.raw_name!r} (its compressed size is not {csize})")
        self._close(entry, crc, usize)
        return True

    def _close(self, entry: _Entry, crc: int, size: int) -> None:
        crc_checked = entry.is_metadata or self.crc_files
        if (crc_checked and entry.running_crc != crc) or entry.produced != size:
            raise CorruptArchiveError(f"damaged entry {entry.raw_name!r} (Bad CRC-32 or size)")
        self._streamed.append((entry.raw_name, crc, size))
        self._entry = None
        self._stage = "header"
        if entry.name == MD5_ENTRY:
            self.md5_sums = parse_md5_list(b"".join(entry.pieces).decode("utf-8", "replace"))
        elif entry.out is not None:
            entry.out.close()
            md5 = entry.digest.hexdigest()  # type: ignore[union-attr]  # set with out
            self.files[entry.name] = FileRecord(size=entry.produced, md5=md5)
        elif not entry.is_metadata:
            self.files[entry.name] = _write_checked(
                self.dest / entry.name, b"".join(entry.pieces), self.opener, self.checks
            )

    def close(self) -> None:
        """Close the file of an entry left unfinished (after an error); the caller removes ``dest``."""
        if self._entry is not None and self._entry.out is not None:
            self._entry.out.close()

    def finish(self, zip_path: Path) -> ExtractedArchive:
        """Check the complete ZIP's central directory against what was streamed, or extract it now.

        Parameters
        ----------
        zip_path
            The complete ZIP as received.

        Raises
        ------
        UnsafeArchiveError, CorruptArchiveError
            As :func:`extract_series_zip`, and when the central directory does not list exactly the
            streamed entries.
        """
        if self._stage not in ("central", "aside"):
            self._advance()  # what the last chunks completed
        if self._stage != "central":  # stood aside, or the stream ended before its central directory
            self.close()
            for path in self.dest.iterdir():  # start from an empty folder, as a fresh extraction does
                path.unlink()
            return extract_series_zip(
                zip_path, self.dest, max_total_bytes=self.max_total_bytes, opener=self.opener, cancel=self.cancel
            )
        try:
            with zipfile.ZipFile(zip_path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, EOFError) as exc:
            raise CorruptArchiveError(f"{zip_path.name}: not a readable ZIP archive ({exc})") from exc
        _check_entries(infos, self.max_total_bytes)
        listed = [(i.orig_filename, i.CRC, i.file_size) for i in infos if not i.is_dir()]
        if listed != self._streamed:
            raise CorruptArchiveError(f"{zip_path.name}: the central directory does not list the entries as sent")
        return ExtractedArchive(files=self.files, md5_sums=self.md5_sums, checks=self.checks)


def _has_zip64(extra: bytes) -> bool:
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        if kind == _ZIP64_EXTRA:
            return True
        pos += 4 + length
    return False
