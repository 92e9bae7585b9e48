"""What the TCIA browser shows and does, without Qt: sources, table rows, search, background downloads.

The Widget only copies :class:`Table` rows into Qt tables and polls a :class:`DownloadJob` with a
timer; everything that can fail or take time is here, so it runs (and is tested) under pytest on
slicer-core as well as in Slicer. Downloads run on a :class:`threading.Thread` through
:func:`oncoqi.tcia.download_series` (verification, atomic placement, manifest, resume), so the GUI
thread never waits for the network; QIICR's TCIABrowser downloaded on the GUI thread and froze Slicer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oncoqi.errors import CancelToken, InputError
from oncoqi.tcia import (
    DownloadProgress,
    DownloadReport,
    IDCSource,
    ImagingSource,
    MetadataCache,
    NBIAClient,
    Series,
    SeriesState,
    download_series,
    with_referenced_series,
)
from oncoqi.tcia.download import MANIFEST_NAME, DownloadManifest
from oncoqi.tcia.http import HttpClient, RetryPolicy
from oncoqi.tcia.models import is_valid_uid

#: Source names shown in the source selector.
TCIA = "TCIA"
IDC = "IDC"
SOURCES = (TCIA, IDC)

#: Seconds a listing request may wait for the NBIA server: the browser asks on the GUI thread,
#: so it must give up sooner than the command line's 60 s (the cache answers when it can).
LISTING_TIMEOUT = 20.0


def make_source(name: str, api_url: str, cache: MetadataCache | None = None) -> ImagingSource:
    """The archive behind a source name of :data:`SOURCES`.

    Parameters
    ----------
    name
        ``"TCIA"`` (NBIA REST API at ``api_url``) or ``"IDC"`` (the index bundled with idc-index).
    api_url
        NBIA base URL (ignored for IDC).
    cache
        Metadata cache for TCIA listings (IDC answers from its bundled index).

    Raises
    ------
    InputError
        For an unknown source name or an unusable URL.
    """
    if name == TCIA:
        http = HttpClient(timeout=LISTING_TIMEOUT, retry=RetryPolicy(retries=2))
        return NBIAClient(api_url, http=http, cache=cache)
    if name == IDC:
        return IDCSource()
    raise InputError(f"unknown source '{name}'; choose one of {', '.join(SOURCES)}")


@dataclass(frozen=True)
class Column:
    """One table column: its header and how a record shows in it."""

    title: str
    value: Callable[[Any], object]


def _mb(size: int | None) -> str:
    return f"{size / 1e6:.1f}" if size is not None else ""


#: Columns of the tables, as researchers know them from QIICR's TCIABrowser (its Series table:
#: UID, Status, Patient ID, Study Date, Series Description, Series Number, Modality, Body Part,
#: Image Count, File Size (MB), Protocol, Manufacturer, Model, License).
COLLECTION_COLUMNS = (Column("Collection", lambda c: c.name), Column("Link", lambda c: c.url))
PATIENT_COLUMNS = (
    Column("Patient ID", lambda p: p.patient_id),
    Column("Sex", lambda p: p.sex),
    Column("Collection", lambda p: p.collection),
)
STUDY_COLUMNS = (
    Column("Study Instance UID", lambda s: s.study_uid),
    Column("Patient ID", lambda s: s.patient_id),
    Column("Study Date", lambda s: s.date),
    Column("Study Description", lambda s: s.description),
    Column("Patient Age", lambda s: s.patient_age),
    Column("Series", lambda s: s.series_count),
)
SERIES_COLUMNS = (
    Column("Series Instance UID", lambda s: s.series_uid),
    Column("Patient ID", lambda s: s.patient_id),
    Column("Study Date", lambda s: s.study_date),
    Column("Series Description", lambda s: s.description),
    Column("Series Number", lambda s: s.series_number),
    Column("Modality", lambda s: s.modality),
    Column("Body Part", lambda s: s.body_part),
    Column("Image Count", lambda s: s.image_count),
    Column("File Size (MB)", lambda s: _mb(s.file_size)),
    Column("Protocol", lambda s: s.protocol_name),
    Column("Manufacturer", lambda s: s.manufacturer),
    Column("Model", lambda s: s.manufacturer_model),
    Column("License", lambda s: s.license_name),
)


@dataclass
class Table:
    """Rows ready for a table widget, with the records they show (same order) and where they came from.

    Attributes
    ----------
    headers
        Column titles; a series table starts with a "Status" column (downloaded or not).
    rows
        One list of cell texts per record.
    records
        The records themselves (a selected row maps back to its record by index).
    note
        A sentence for the status line, e.g. that the server was unreachable and the cache answered.
    """

    headers: list[str]
    rows: list[list[str]]
    records: list[Any]
    note: str = ""


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def make_table(records: Sequence[Any], columns: Sequence[Column], note: str = "") -> Table:
    """A :class:`Table` of ``records`` in ``columns``."""
    return Table(
        headers=[c.title for c in columns],
        rows=[[_cell(c.value(r)) for c in columns] for r in records],
        records=list(records),
        note=note,
    )


def _note(listing: Any) -> str:
    if listing.offline:
        return f"The server could not be reached: showing the answer cached {listing.age / 3600:.1f} h ago."
    return ""


class Browser:
    """Listings and search of one source, as tables.

    Parameters
    ----------
    source
        The archive to browse.
    download_folder
        Where series are downloaded; the series table's Status column says which are already there.
    """

    def __init__(self, source: ImagingSource, download_folder: Path) -> None:
        self.source = source
        self.download_folder = Path(download_folder)

    def collections(self, refresh: bool = False) -> Table:
        """Every collection (the Widget shows the selected one's description from the record)."""
        listing = self.source.collections(refresh=refresh)
        return make_table(listing.items, COLLECTION_COLUMNS, _note(listing))

    def patients(self, collection: str) -> Table:
        """The patients of ``collection``."""
        listing = self.source.patients(collection)
        return make_table(listing.items, PATIENT_COLUMNS, _note(listing))

    def studies(self, collection: str, patient_id: str | None = None) -> Table:
        """The studies of a collection, or of one of its patients."""
        listing = self.source.studies(collection, patient_id)
        return make_table(listing.items, STUDY_COLUMNS, _note(listing))

    def series(
        self, collection: str | None = None, patient_id: str | None = None, study_uid: str | None = None
    ) -> Table:
        """The series matching the filters, with a Status column."""
        listing = self.source.series(collection=collection, patient_id=patient_id, study_uid=study_uid)
        return self._series_table(listing.items, _note(listing))

    def search(self, text: str, collection: str | None = None) -> Table:
        """Series found by a PatientID, a StudyInstanceUID or a SeriesInstanceUID.

        A UID is tried as a series, then as a study; anything else is a PatientID (within
        ``collection`` when given, since PatientIDs are unique only within a collection).

        Raises
        ------
        InputError
            For empty search text.
        """
        text = text.strip()
        if not text:
            raise InputError("type a PatientID, StudyInstanceUID or SeriesInstanceUID to search for")
        if is_valid_uid(text) and "." in text:
            listing = self.source.series(series_uid=text)
            if not listing.items:
                listing = self.source.series(study_uid=text)
        else:
            listing = self.source.series(collection=collection or None, patient_id=text)
        return self._series_table(listing.items, _note(listing))

    def downloaded(self) -> set[str]:
        """SeriesInstanceUIDs complete in the download folder (recorded in its manifest, files present)."""
        path = self.download_folder / MANIFEST_NAME
        if not path.exists():
            return set()
        manifest = DownloadManifest(path)
        return {uid for uid in manifest.entries if manifest.complete_path(uid) is not None}

    def _series_table(self, records: list[Series], note: str) -> Table:
        table = make_table(records, SERIES_COLUMNS, note)
        done = self.downloaded()
        table.headers.insert(1, "Status")
        for row, record in zip(table.rows, records, strict=True):
            row.insert(1, "downloaded" if record.series_uid in done else "")
        return table

    def with_references(self, series: Sequence[Series]) -> list[Series | str]:
        """``series`` plus the image series their SEG/RTSTRUCT members were drawn on (as UIDs)."""
        uids = with_referenced_series(self.source, series)
        known = {s.series_uid: s for s in series}
        return [known.get(uid, uid) for uid in uids]


@dataclass(frozen=True)
class JobProgress:
    """A snapshot of a :class:`DownloadJob` for a GUI poller.

    Attributes
    ----------
    fraction
        Bytes received over bytes expected, 0 to 1 (1 when finished).
    done_bytes, total_bytes
        The same in bytes.
    finished, count
        Series in a final state, and series in the job.
    states
        SeriesInstanceUID to its current :class:`SeriesState`.
    messages
        SeriesInstanceUID to the last message (the reason for a failure).
    running
        False once the job's thread has ended.
    """

    fraction: float
    done_bytes: int
    total_bytes: int
    finished: int
    count: int
    states: dict[str, SeriesState]
    messages: dict[str, str]
    running: bool


@dataclass
class _JobState:
    done_bytes: int = 0
    total_bytes: int = 0
    finished: int = 0
    states: dict[str, SeriesState] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)


class DownloadJob:
    """A download queue on a background thread, polled by the GUI, cancellable.

    Parameters
    ----------
    source
        The archive.
    series
        Series records or SeriesInstanceUIDs.
    out_dir
        Download folder (series land as ``OUT/<PatientID>/<StudyUID>/<SeriesUID>/``).
    workers
        Parallel downloads.
    """

    def __init__(self, source: ImagingSource, series: Sequence[Series | str], out_dir: Path, workers: int = 4) -> None:
        if not series:
            raise InputError("select at least one series to download")
        self.source = source
        self.series = list(series)
        self.out_dir = Path(out_dir)
        self.workers = workers
        self._cancel = CancelToken()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = _JobState(states={self._uid(s): SeriesState.QUEUED for s in self.series})
        self._report: DownloadReport | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="oncoqi-tciabrowser-download", daemon=True)

    @staticmethod
    def _uid(item: Series | str) -> str:
        return item.series_uid if isinstance(item, Series) else str(item).strip()

    def start(self) -> DownloadJob:
        """Start the download thread and return at once."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._report = download_series(
                self.source,
                self.series,
                self.out_dir,
                workers=self.workers,
                progress=self._on_progress,
                cancel=self._cancel,
            )
        except BaseException as exc:  # handed to the GUI thread by result()
            self._error = exc
        finally:
            self._done.set()

    def _on_progress(self, event: DownloadProgress) -> None:
        with self._lock:
            s = self._state
            s.done_bytes, s.total_bytes, s.finished = event.done_bytes, event.total_bytes, event.finished
            s.states[event.series_uid] = event.state
            if event.message:
                s.messages[event.series_uid] = event.message

    def cancel(self) -> None:
        """Ask the download to stop; running transfers stop at their next chunk, partial series are removed."""
        self._cancel.cancel()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.cancelled

    @property
    def running(self) -> bool:
        """True while the download thread works."""
        return self._thread.is_alive() and not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (for tests and scripts, never in the GUI thread); True when it has."""
        return self._done.wait(timeout)

    def progress(self) -> JobProgress:
        """A consistent snapshot, cheap enough to take from a GUI timer several times a second."""
        with self._lock:
            s = self._state
            ended = self._done.is_set()
            fraction = 1.0 if ended else (s.done_bytes / s.total_bytes if s.total_bytes else 0.0)
            return JobProgress(
                fraction=min(1.0, fraction),
                done_bytes=s.done_bytes,
                total_bytes=s.total_bytes,
                finished=s.finished,
                count=len(s.states),
                states=dict(s.states),
                messages=dict(s.messages),
                running=not ended,
            )

    def result(self) -> DownloadReport:
        """The report once the job has ended.

        Raises
        ------
        InputError
            When called while the job runs.
        oncoqi.errors.OncoQIError
            What the download itself raised (e.g. an unreadable manifest in the download folder).
        """
        if not self._done.is_set():
            raise InputError("the download is still running")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def folders(self) -> list[Path]:
        """The series folders to index (downloaded now or already present), in the order requested."""
        return [o.path for o in self.result().outcomes if o.path is not None]
