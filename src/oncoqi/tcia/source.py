"""The interface every archive source implements, and what sources share.

:class:`ImagingSource` is what the CLI, the download queue and the Slicer browser talk to; the NBIA
client (:class:`oncoqi.tcia.nbia.NBIAClient`) implements it, and an IDC source slots in the same way.
Listings come back as :class:`Listing` (a list that also says whether it came from the cache and
whether the server was unreachable), downloads as :class:`FetchResult`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

import pydicom

from oncoqi.errors import CancelToken
from oncoqi.tcia.cache import MetadataCache
from oncoqi.tcia.dicomcheck import InstanceCheck
from oncoqi.tcia.http import NetworkError
from oncoqi.tcia.models import Collection, Instance, Patient, Series, Study, is_valid_uid

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Opens a file for writing downloaded bytes. Every data file a download writes goes through it,
#: so that a test (or an embedding application) can inject failures such as ``OSError(ENOSPC)``.
FileOpener = Callable[[Path], BinaryIO]

#: Told the number of bytes received so far for one series (restarts at 0 when a transfer is retried).
BytesCallback = Callable[[int], None]


def open_for_writing(path: Path) -> BinaryIO:
    """The default :data:`FileOpener`: a new binary file (an existing one is replaced)."""
    return open(path, "wb")


@dataclass
class Listing(Generic[T]):
    """Records returned by a query, and where they came from.

    Attributes
    ----------
    items
        The records.
    fetched_at
        When the server produced them (seconds since the epoch).
    from_cache
        True when they were read from the metadata cache instead of asking the server.
    offline
        True when the server could not be reached and a stale cached answer is shown instead; a
        browser should say so.
    """

    items: list[T]
    fetched_at: float = field(default_factory=time.time)
    from_cache: bool = False
    offline: bool = False

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    @property
    def age(self) -> float:
        """Seconds since the server produced the records."""
        return time.time() - self.fetched_at


def cached_listing(
    cache: MetadataCache | None,
    source: str,
    query: str,
    fetch: Callable[[], Any],
    parse: Callable[[Any], list[T]],
    max_age: float,
    refresh: bool = False,
) -> Listing[T]:
    """Answer ``query`` from the cache when fresh enough, else from the server, else from a stale cache.

    Parameters
    ----------
    cache
        The metadata cache, or None to always ask the server.
    source, query
        The cache key: which archive (and base URL), and which question.
    fetch
        Asks the server; returns a JSON-serialisable answer (stored as it is).
    parse
        Turns an answer (fresh or cached) into records.
    max_age
        Seconds an answer stays fresh.
    refresh
        Ask the server even when the cached answer is fresh.

    Raises
    ------
    NetworkError
        When the server cannot be reached and nothing is cached for the query.
    """
    entry = cache.get(source, query) if cache is not None else None
    if entry is not None and not refresh and entry.age <= max_age:
        return Listing(parse(entry.payload), fetched_at=entry.fetched_at, from_cache=True)
    try:
        payload = fetch()
    except NetworkError as exc:
        if entry is None:
            raise
        log.warning("%s; showing the cached answer from %s", exc, time.ctime(entry.fetched_at))
        return Listing(parse(entry.payload), fetched_at=entry.fetched_at, from_cache=True, offline=True)
    fetched_at = time.time()
    if cache is not None:
        cache.put(source, query, payload, fetched_at)
    return Listing(parse(payload), fetched_at=fetched_at)


@dataclass(frozen=True)
class FileRecord:
    """One downloaded file: its size and MD5 (as computed while writing it)."""

    size: int
    md5: str


def file_record(path: Path) -> FileRecord:
    """Size and MD5 of a file on disk."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return FileRecord(size=path.stat().st_size, md5=digest.hexdigest())


@dataclass
class FetchResult:
    """What a source placed in the staging folder for one series.

    Attributes
    ----------
    files
        File name (relative to the staging folder) to size and MD5, for every DICOM file.
    md5_verified
        True when the archive supplied MD5 sums and every file matched them.
    checks
        The DICOM check of files the source already checked from memory while writing them; the
        others are checked from disk by the caller.
    """

    files: dict[str, FileRecord]
    md5_verified: bool = False
    checks: dict[str, InstanceCheck] = field(default_factory=dict)


class ImagingSource(ABC):
    """An archive that lists collections, patients, studies and series and downloads series.

    Listing methods return a :class:`Listing`; pass ``refresh=True`` to bypass the cache.
    Implementations must be safe to call from several threads at once (the download queue does).
    """

    #: Short name recorded in manifests and cache keys ("nbia", "idc", ...).
    name: str = ""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data come from (e.g. the API base URL), recorded in the download manifest."""

    @property
    def resumable(self) -> bool:
        """True when :meth:`fetch_series` can continue from files already in its staging folder."""
        return False

    @abstractmethod
    def collections(self, refresh: bool = False) -> Listing[Collection]:
        """Every collection, with descriptions where the archive has them."""

    @abstractmethod
    def patients(self, collection: str, refresh: bool = False) -> Listing[Patient]:
        """The patients of one collection."""

    @abstractmethod
    def studies(self, collection: str, patient_id: str | None = None, refresh: bool = False) -> Listing[Study]:
        """The studies of a collection, or of one of its patients."""

    @abstractmethod
    def series(
        self,
        collection: str | None = None,
        patient_id: str | None = None,
        study_uid: str | None = None,
        modality: str | None = None,
        series_uid: str | None = None,
        refresh: bool = False,
    ) -> Listing[Series]:
        """The series matching every filter given (at least one filter is needed)."""

    @abstractmethod
    def instances(self, series_uid: str, refresh: bool = False) -> Listing[Instance]:
        """The SOP instances of one series."""

    @abstractmethod
    def referenced_series(self, series: Series) -> list[str]:
        """SeriesInstanceUIDs the given SEG or RTSTRUCT series refers to (empty for other series)."""

    @abstractmethod
    def fetch_series(
        self,
        series: Series,
        staging: Path,
        *,
        on_bytes: BytesCallback,
        cancel: CancelToken | None,
        opener: FileOpener,
    ) -> FetchResult:
        """Download one series' DICOM files into the (existing) folder ``staging``.

        The source verifies what its transport offers (MD5 sums, archive integrity, instance count)
        and retries transient failures; the caller parses every file and places the folder.

        Raises
        ------
        oncoqi.tcia.http.TransferError
            When the series cannot be downloaded intact.
        oncoqi.errors.Cancelled
            When ``cancel`` is set.
        OSError
            When a file cannot be written (e.g. the disk is full).
        """


def referenced_series_uids(ds: pydicom.Dataset) -> list[str]:
    """SeriesInstanceUIDs a SEG, RTSTRUCT or SR instance refers to, in order of first mention.

    Looks in the Referenced Series Sequence (SEG), the RT Referenced Series Sequence inside the
    Referenced Frame of Reference Sequence (RTSTRUCT) and the evidence sequences (SR); invalid
    UIDs are ignored.
    """
    found: list[str] = []

    def add(item: pydicom.Dataset) -> None:
        uid = str(item.get("SeriesInstanceUID", "") or "").strip()
        if is_valid_uid(uid) and uid not in found:
            found.append(uid)

    for item in ds.get("ReferencedSeriesSequence", []) or []:
        add(item)
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []) or []:
        for study in frame.get("RTReferencedStudySequence", []) or []:
            for series in study.get("RTReferencedSeriesSequence", []) or []:
                add(series)
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword, []) or []:
            for series in study.get("ReferencedSeriesSequence", []) or []:
                add(series)
    own = str(ds.get("SeriesInstanceUID", "") or "")
    return [uid for uid in found if uid != own]


def with_referenced_series(source: ImagingSource, series: Sequence[Series]) -> list[str]:
    """The UIDs of ``series`` followed by those of the image series their SEG/RTSTRUCT members refer to.

    Used to offer (or, on the command line, add) the images a segmentation was drawn on.
    """
    uids = [s.series_uid for s in series]
    for s in series:
        if s.is_segmentation:
            for ref in source.referenced_series(s):
                if ref not in uids:
                    uids.append(ref)
    return uids


def remove_tree_quietly(path: Path) -> None:
    """Delete a staging folder; a failure is logged, not raised (cleanup must not hide the real error)."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("cannot remove the partial download %s; delete it by hand", path)
