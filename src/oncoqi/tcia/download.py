"""Download a queue of series with bounded parallel workers, verification and atomic placement.

:func:`download_series` is the one entry point (the CLI and the Slicer browser both call it):

1. Series already complete in the output folder (recorded in its manifest, files present with the
   recorded sizes) are skipped; a series folder that exists without a manifest entry (e.g. the run
   stopped between placing it and recording it) is checked and adopted.
2. The others are fetched by the source into ``OUT/.oncoqi-staging/<SeriesInstanceUID>/`` (same file
   system as ``OUT``), which verifies what its transport offers (MD5 sums, ZIP integrity, instance count).
3. Every file is then checked as a complete DICOM instance (:mod:`oncoqi.tcia.dicomcheck`; the NBIA
   ZIP download checks each file from memory as it extracts it) and must belong to the series, with
   no duplicate instance.
4. The staging folder is renamed to ``OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/``, so a
   series folder appears only when complete, and the series is recorded in ``OUT/oncoqi-tcia-manifest.json``
   (source, UIDs, sizes, MD5 of every file, licence).

A failed or cancelled series leaves no series folder; its staging folder is removed too, except when
the source can resume (instance-by-instance mode) and the failure was an interruption, so a rerun
continues where it stopped. A full disk stops the whole queue (nothing else could succeed).

Progress is reported through a callback receiving :class:`DownloadProgress` events (called from the
worker threads, one at a time: a GUI must hand them to its own thread); cancellation through an
:class:`oncoqi.errors.CancelToken` (or a :class:`threading.Event`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from oncoqi.errors import Cancelled, CancelToken, InputError, OncoQIError, check_cancel
from oncoqi.tcia.dicomcheck import DicomCheckError, InstanceCheck, inspect_file
from oncoqi.tcia.http import TransferError
from oncoqi.tcia.models import Series, is_valid_uid
from oncoqi.tcia.source import (
    FileOpener,
    FileRecord,
    ImagingSource,
    file_record,
    open_for_writing,
    remove_tree_quietly,
)

log = logging.getLogger(__name__)

MANIFEST_NAME = "oncoqi-tcia-manifest.json"
MANIFEST_FORMAT = "oncoqi-tcia-download"
MANIFEST_VERSION = 1
STAGING_NAME = ".oncoqi-staging"

#: Upper bound of parallel downloads: more only hurts a shared public server.
MAX_WORKERS = 16

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class SeriesState(str, Enum):
    """Where a series of the queue stands."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for the states a series ends in."""
        return self in (SeriesState.DONE, SeriesState.SKIPPED, SeriesState.FAILED, SeriesState.CANCELLED)


class VerificationError(OncoQIError):
    """Downloaded files are not the requested series (not DICOM, another series, duplicates)."""


@dataclass(frozen=True)
class DownloadProgress:
    """One progress event.

    Attributes
    ----------
    series_uid, state, message
        The series this event is about, its new state, and a note (the error for FAILED).
    series_bytes, series_total
        Bytes received for the series, and its declared size (None when unknown).
    done_bytes, total_bytes
        The same over the whole queue (the total grows when a series of unknown size arrives).
    finished, count
        Series in a final state, and series in the queue.
    """

    series_uid: str
    state: SeriesState
    series_bytes: int
    series_total: int | None
    done_bytes: int
    total_bytes: int
    finished: int
    count: int
    message: str = ""


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass
class SeriesOutcome:
    """How one series of the queue ended.

    Attributes
    ----------
    path
        The series folder (for DONE and SKIPPED).
    series
        The archive's record of the series, when it could be looked up.
    """

    series_uid: str
    state: SeriesState
    message: str = ""
    path: Path | None = None
    series: Series | None = None


@dataclass
class DownloadReport:
    """Outcome of :func:`download_series`, one :class:`SeriesOutcome` per requested series, in order."""

    outcomes: list[SeriesOutcome]
    manifest_path: Path

    def _with(self, state: SeriesState) -> list[SeriesOutcome]:
        return [o for o in self.outcomes if o.state is state]

    @property
    def done(self) -> list[SeriesOutcome]:
        """Series downloaded by this run."""
        return self._with(SeriesState.DONE)

    @property
    def skipped(self) -> list[SeriesOutcome]:
        """Series that were already complete."""
        return self._with(SeriesState.SKIPPED)

    @property
    def failed(self) -> list[SeriesOutcome]:
        """Series that could not be downloaded."""
        return self._with(SeriesState.FAILED)

    @property
    def cancelled(self) -> list[SeriesOutcome]:
        """Series stopped by cancellation."""
        return self._with(SeriesState.CANCELLED)

    @property
    def ok(self) -> bool:
        """True when every series is done or was already complete."""
        return all(o.state in (SeriesState.DONE, SeriesState.SKIPPED) for o in self.outcomes)


def safe_component(text: str, fallback: str) -> str:
    """``text`` as one safe folder name (letters, digits, ``._-``; at most 64 characters).

    PatientIDs come from the archive and may hold slashes or be ``..``; anything that would not be a
    plain name becomes ``fallback``.
    """
    cleaned = _UNSAFE_CHARS.sub("_", text.strip())[:64]
    return cleaned if cleaned.strip("._") else fallback


def series_folder(out_dir: Path, patient_id: str, study_uid: str, series_uid: str) -> Path:
    """``OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>`` with every part made safe."""
    study = study_uid if is_valid_uid(study_uid) else safe_component(study_uid, "unknown-study")
    return out_dir / safe_component(patient_id, "unknown-patient") / study / series_uid


class DownloadManifest:
    """The JSON record of the series completed in an output folder.

    Parameters
    ----------
    path
        The manifest file; read when it exists.

    Raises
    ------
    InputError
        When the file exists but is not an OncoQI download manifest.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.entries: dict[str, dict] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"{path}: unreadable download manifest ({exc}); move it away to start afresh") from exc
            if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
                raise InputError(f"{path}: not an OncoQI download manifest (no format '{MANIFEST_FORMAT}')")
            self.entries = dict(data.get("series", {}))

    def complete_path(self, series_uid: str) -> Path | None:
        """The series folder when the manifest records the series and every file is there with its size."""
        entry = self.entries.get(series_uid)
        if entry is None:
            return None
        folder = self.path.parent / entry["path"]
        for f in entry.get("files", []):
            try:
                if (folder / f["name"]).stat().st_size != f["size"]:
                    return None
            except OSError:
                return None
        return folder if entry.get("files") else None

    def record(self, entry: dict) -> None:
        """Add (or replace) a series entry and rewrite the file atomically.

        The file is rewritten after every series, so its cost grows with the queue: it is written
        with one series per line, which lets :mod:`json` use its C encoder (``indent`` would force
        the pure-Python one, about 10x slower) while staying readable and diffable.
        """
        with self._lock:
            self.entries[entry["series_uid"]] = entry
            head = json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION})[:-1]
            lines = [f"{json.dumps(uid)}: {json.dumps(e, sort_keys=True)}" for uid, e in sorted(self.entries.items())]
            fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(head + ', "series": {\n' + ",\n".join(lines) + "\n}}\n")
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


@dataclass(frozen=True)
class _Headers:
    patient_id: str
    study_uid: str


def verify_series_files(
    folder: Path,
    files: dict[str, FileRecord],
    series_uid: str,
    cancel: CancelToken | None = None,
    checks: dict[str, InstanceCheck] | None = None,
) -> _Headers:
    """Check every file as a complete DICOM instance of ``series_uid``.

    Parameters
    ----------
    folder, files
        The folder and the files it must hold (no more, no fewer).
    series_uid
        The series every file must belong to.
    cancel
        Checked between files.
    checks
        Checks already made from memory while the files were written (see
        :class:`oncoqi.tcia.source.FetchResult`); the other files are checked from disk.

    Raises
    ------
    VerificationError
        When the folder holds other files, a file is not a complete DICOM instance (see
        :mod:`oncoqi.tcia.dicomcheck`), belongs to another series or patient/study, or two files
        are the same instance.
    """
    present = {p.name for p in folder.iterdir()}
    if present != set(files):
        extra = sorted(present - set(files)) or sorted(set(files) - present)
        raise VerificationError(f"{folder}: unexpected or missing file {extra[0]}")
    if not files:
        raise VerificationError(f"series {series_uid}: the download holds no files")
    known = checks or {}
    sops: set[str] = set()
    identity: tuple[str, str] | None = None
    for name in sorted(files):
        check_cancel(cancel)
        header = known.get(name)
        if header is None:
            try:
                header = inspect_file(folder / name)
            except DicomCheckError as exc:
                header = exc
            except OSError as exc:
                raise VerificationError(f"series {series_uid}: {folder / name}: cannot read ({exc})") from exc
        if isinstance(header, DicomCheckError):
            raise VerificationError(f"series {series_uid}: {folder / name} is not a complete DICOM file: {header}")
        if header.series_uid != series_uid:
            raise VerificationError(
                f"series {series_uid}: file {name} belongs to series {header.series_uid or '(none)'}"
            )
        if not header.sop_uid or header.sop_uid in sops:
            raise VerificationError(f"series {series_uid}: file {name} repeats or lacks its SOPInstanceUID")
        sops.add(header.sop_uid)
        this = (header.patient_id, header.study_uid)
        if identity is not None and this != identity:
            raise VerificationError(f"series {series_uid}: file {name} is from another patient or study")
        identity = this
    assert identity is not None
    return _Headers(patient_id=identity[0], study_uid=identity[1])


class _AnySet(CancelToken):
    """A cancel token set when any of its parts is (only ``is_set()`` asks them: do not ``wait()`` on it)."""

    def __init__(self, *tokens: CancelToken | None) -> None:
        super().__init__()
        self.tokens = [t for t in tokens if t is not None]

    def is_set(self) -> bool:
        """True when this token or any of its parts is set."""
        return super().is_set() or any(t.is_set() for t in self.tokens)


class _Tracker:
    """Per-series bytes and states; emits :class:`DownloadProgress` one at a time."""

    def __init__(self, uids: list[str], callback: ProgressCallback | None) -> None:
        self._lock = threading.Lock()
        self._callback = callback
        self._bytes = dict.fromkeys(uids, 0)
        self._totals: dict[str, int | None] = dict.fromkeys(uids)
        self._states = dict.fromkeys(uids, SeriesState.QUEUED)

    def set_total(self, uid: str, total: int | None) -> None:
        with self._lock:
            self._totals[uid] = total

    def _emit(self, uid: str, message: str) -> None:
        if self._callback is None:
            return
        total = sum(t if t is not None else self._bytes[u] for u, t in self._totals.items())
        self._callback(
            DownloadProgress(
                series_uid=uid,
                state=self._states[uid],
                series_bytes=self._bytes[uid],
                series_total=self._totals[uid],
                done_bytes=sum(self._bytes.values()),
                total_bytes=total,
                finished=sum(s.final for s in self._states.values()),
                count=len(self._states),
                message=message,
            )
        )

    def bytes(self, uid: str, received: int) -> None:
        with self._lock:
            self._bytes[uid] = received
            self._emit(uid, "")

    def state(self, uid: str, state: SeriesState, message: str = "") -> None:
        with self._lock:
            self._states[uid] = state
            total = self._totals[uid]
            if state is SeriesState.DONE and total is not None:
                self._bytes[uid] = total
            elif state in (SeriesState.SKIPPED, SeriesState.FAILED, SeriesState.CANCELLED):
                self._totals[uid] = self._bytes[uid]  # no longer expected
            self._emit(uid, message)


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _manifest_entry(
    source: ImagingSource, s: Series, folder: Path, out_dir: Path, files: dict[str, FileRecord], md5_verified: bool
) -> dict:
    return {
        "series_uid": s.series_uid,
        "study_uid": s.study_uid,
        "patient_id": s.patient_id,
        "collection": s.collection,
        "modality": s.modality,
        "description": s.description,
        "source": source.name,
        "source_location": source.location,
        "path": folder.relative_to(out_dir).as_posix(),
        "file_count": len(files),
        "bytes": sum(r.size for r in files.values()),
        "files": [{"name": n, "size": r.size, "md5": r.md5} for n, r in sorted(files.items())],
        "verification": "archive md5 + dicom parse" if md5_verified else "transfer integrity + dicom parse",
        "license_name": s.license_name,
        "license_uri": s.license_uri,
        "collection_uri": s.collection_uri,
        "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _Queue:
    """One run of :func:`download_series` (state shared by the worker threads)."""

    def __init__(
        self,
        source: ImagingSource,
        out_dir: Path,
        tracker: _Tracker,
        cancel: CancelToken | None,
        opener: FileOpener,
    ) -> None:
        self.source = source
        self.out_dir = out_dir
        self.staging_root = out_dir / STAGING_NAME
        self.manifest = DownloadManifest(out_dir / MANIFEST_NAME)
        self.tracker = tracker
        self.user_cancel = cancel
        self.disk_full = CancelToken()
        self.token = _AnySet(cancel, self.disk_full)
        self.opener = opener

    def _end(
        self, uid: str, state: SeriesState, message: str = "", path: Path | None = None, series: Series | None = None
    ) -> SeriesOutcome:
        if state is SeriesState.FAILED:
            if uid not in message:  # a message must name its series wherever it is shown
                message = f"series {uid}: {message}"
            log.warning("%s", message)
        self.tracker.state(uid, state, message)
        return SeriesOutcome(uid, state, message, path, series)

    def _stopped(self, uid: str, series: Series | None = None) -> SeriesOutcome:
        if self.disk_full.cancelled and not (self.user_cancel and self.user_cancel.is_set()):
            return self._end(uid, SeriesState.FAILED, "not downloaded: the disk is full", series=series)
        return self._end(uid, SeriesState.CANCELLED, "cancelled", series=series)

    def resolve(self, item: Series | str) -> Series | SeriesOutcome:
        """Look the series up (unless given as a record), skipping or adopting what is already there."""
        uid = item.series_uid if isinstance(item, Series) else item
        if self.token.is_set():
            return self._stopped(uid)
        done = self.manifest.complete_path(uid)
        if done is not None:
            return self._end(uid, SeriesState.SKIPPED, "already downloaded", path=done)
        if isinstance(item, Series):
            series = item
        else:
            try:
                found = [s for s in self.source.series(series_uid=uid) if s.series_uid == uid]
            except TransferError as exc:
                return self._end(uid, SeriesState.FAILED, f"cannot look the series up: {exc}")
            if not found:
                return self._end(uid, SeriesState.FAILED, f"no series {uid} at {self.source.location}")
            series = found[0]
        candidate = series_folder(self.out_dir, series.patient_id, series.study_uid, uid)
        if candidate.exists():
            return self._adopt(series, candidate)
        self.tracker.set_total(uid, series.file_size)
        return series

    def _adopt(self, series: Series, folder: Path) -> SeriesOutcome:
        uid = series.series_uid
        try:
            files = {p.name: file_record(p) for p in folder.iterdir() if p.is_file()}
            verify_series_files(folder, files, uid, self.token)
            if series.image_count is not None and len(files) != series.image_count:
                raise VerificationError(f"{len(files)} files, the archive lists {series.image_count}")
        except Cancelled:
            return self._stopped(uid, series)
        except (OncoQIError, OSError) as exc:
            message = f"{folder} exists but is not a complete copy ({exc}); move it away"
            return self._end(uid, SeriesState.FAILED, message, series=series)
        self.manifest.record(_manifest_entry(self.source, series, folder, self.out_dir, files, False))
        return self._end(uid, SeriesState.SKIPPED, "already present, verified and recorded", path=folder, series=series)

    def fetch(self, series: Series) -> SeriesOutcome:
        """Download, verify, place and record one series."""
        uid = series.series_uid
        if self.token.is_set():
            return self._stopped(uid, series)
        staging = self.staging_root / uid
        keep_staging = False
        try:
            self.tracker.state(uid, SeriesState.DOWNLOADING)
            result = self.source.fetch_series(
                series, staging, on_bytes=lambda n: self.tracker.bytes(uid, n), cancel=self.token, opener=self.opener
            )
            self.tracker.state(uid, SeriesState.VERIFYING)
            headers = verify_series_files(staging, result.files, uid, self.token, result.checks)
            folder = series_folder(self.out_dir, headers.patient_id, headers.study_uid, uid)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if folder.exists():
                raise VerificationError(f"{folder} appeared during the download; not overwriting it")
            os.rename(staging, folder)
            entry = _manifest_entry(self.source, series, folder, self.out_dir, result.files, result.md5_verified)
            self.manifest.record(entry)
            return self._end(uid, SeriesState.DONE, f"{len(result.files)} files", path=folder, series=series)
        except Cancelled:
            keep_staging = self.source.resumable
            return self._stopped(uid, series)
        except TransferError as exc:
            keep_staging = self.source.resumable and exc.transient
            return self._end(uid, SeriesState.FAILED, str(exc), series=series)
        except OncoQIError as exc:
            return self._end(uid, SeriesState.FAILED, str(exc), series=series)
        except OSError as exc:
            where = exc.filename or staging
            if _is_disk_full(exc):
                self.disk_full.cancel()
                return self._end(uid, SeriesState.FAILED, f"disk full while writing {where}", series=series)
            return self._end(uid, SeriesState.FAILED, f"cannot write {where}: {exc.strerror or exc}", series=series)
        finally:
            if not keep_staging:
                remove_tree_quietly(staging)


def download_series(
    source: ImagingSource,
    series: Sequence[Series | str],
    out_dir: str | os.PathLike,
    *,
    workers: int = 4,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    opener: FileOpener = open_for_writing,
) -> DownloadReport:
    """Download series into ``out_dir`` (see the module docstring for the steps and the layout).

    Parameters
    ----------
    source
        The archive to download from.
    series
        Series records (from a listing) or SeriesInstanceUIDs (looked up first); duplicates are ignored.
    out_dir
        Output folder (created when missing).
    workers
        Parallel downloads, 1 to :data:`MAX_WORKERS`.
    progress
        Called with a :class:`DownloadProgress` at every change, from worker threads.
    cancel
        Cancel it (or set a :class:`threading.Event`) to stop; running transfers stop at the next chunk.
    opener
        Opens every data file written (not the manifest); a hook for tests and embedding applications,
        e.g. to inject ``OSError(ENOSPC)``.

    Returns
    -------
    DownloadReport
        One outcome per requested series; failures are reported there, not raised.

    Raises
    ------
    InputError
        For an invalid UID, worker count or output folder, or an unreadable manifest in ``out_dir``.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(
            f"the number of parallel downloads (workers) must be between 1 and {MAX_WORKERS}, not {workers}",
            setting="workers",
        )
    items: dict[str, Series | str] = {}
    for item in series:
        uid = item.series_uid if isinstance(item, Series) else str(item).strip()
        if not is_valid_uid(uid):
            raise InputError(f"{uid!r} is not a valid SeriesInstanceUID")
        items.setdefault(uid, item if isinstance(item, Series) else uid)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / STAGING_NAME).mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc
    tracker = _Tracker(list(items), progress)
    queue = _Queue(source, out, tracker, cancel, opener)
    outcomes: dict[str, SeriesOutcome] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oncoqi-tcia") as pool:
        resolved = list(pool.map(queue.resolve, items.values()))
        to_fetch = [r for r in resolved if isinstance(r, Series)]
        outcomes.update((r.series_uid, r) for r in resolved if isinstance(r, SeriesOutcome))
        outcomes.update((o.series_uid, o) for o in pool.map(queue.fetch, to_fetch))
    with contextlib.suppress(OSError):  # not empty: resumable partial downloads are kept there
        (out / STAGING_NAME).rmdir()
    return DownloadReport(outcomes=[outcomes[uid] for uid in items], manifest_path=queue.manifest.path)
