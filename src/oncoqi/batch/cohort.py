"""Run a cohort: find the studies, skip the complete ones, run the others in parallel, write the tables.

:func:`run_cohort` is what ``oncoqi batch``, ``oncoqi demo`` and the Slicer script call:

1. **Input**: a folder (any nesting; studies are the (PatientID, StudyInstanceUID) groups of the
   series :func:`oncoqi.dicom.scan_series` finds) or a TCIA manifest (``.tcia`` cart or a file of
   SeriesInstanceUIDs), whose series are first downloaded with :func:`oncoqi.tcia.download_series`
   into ``OUT/downloads`` (resumable too: complete series are not fetched again).
2. **Resume**: a study whose ``done.json`` verifies (:func:`oncoqi.batch.study.load_done`) is
   ``skipped`` and its rows are reused; a failed or interrupted study is redone; one whose PET part
   failed has only its PET part redone (its CT results are reused, see :mod:`oncoqi.batch.study`);
   ``force`` redoes all, the CT part of those too.
3. **Schedule**: ``workers == 1``: one study after the other in this process; ``workers > 1``: a
   :class:`concurrent.futures.ProcessPoolExecutor` of fresh (spawned) processes, each single-threaded
   (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` = 1 and one onnxruntime thread
   per study unless ``StudyOptions.threads`` says otherwise); ``scheduler``: a Dask cluster
   (``tcp://host:8786`` or a ``dask.distributed`` client/cluster object), whose workers must see the
   input and output folders at the same paths. The outputs are the same in every mode.
4. **Outputs**: ``results.csv`` (+ ``results.parquet`` when ``pyarrow`` is importable),
   ``failures.csv`` and ``report.html`` in the output folder, rewritten at the end of every run from
   all studies (done now or before).

A failed study never stops the others; :attr:`CohortResult.exit_code` is the number of failed
studies, capped at :data:`MAX_EXIT_CODE`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from queue import Empty
from typing import Any

from tqdm import tqdm

from oncoqi.batch.html import write_html_report
from oncoqi.batch.selection import StudyInput, find_override_problems, group_studies
from oncoqi.batch.study import (
    DONE,
    DONE_NAME,
    FAILED,
    QC_NAME,
    SKIPPED,
    StudyOptions,
    StudyResult,
    load_done,
    run_study,
    skipped_result,
    study_folder,
)
from oncoqi.batch.table import (
    parquet_available,
    sort_rows,
    write_failures_csv,
    write_results_csv,
    write_results_parquet,
)
from oncoqi.dicom.scan import ScanResult, SeriesInfo, scan_series
from oncoqi.errors import InputError, OncoQIError
from oncoqi.progress import Relay

log = logging.getLogger(__name__)

#: Exit codes above this are reserved by shells (126: not executable, 127: not found, 128+n: signal n).
MAX_EXIT_CODE = 125
#: Names written into the output folder.
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
FAILURES_CSV = "failures.csv"
REPORT_HTML = "report.html"
DOWNLOADS_DIR = "downloads"
#: The note of a run without pyarrow. Logged at INFO, not WARNING: results.csv holds the same table, the
#: Parquet copy is an optional extra, and a WARNING line was the first thing ``oncoqi demo`` showed on a
#: plain install (``oncoqi batch`` still prints it among its notes).
NO_PARQUET_NOTE = "results.parquet not written: pyarrow is not installed (pip install 'oncoqi[batch]')"
#: Environment variables that make numerical libraries single-threaded in worker processes.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",
}
#: Called in the calling process with each finished study (e.g. by the Slicer script).
StudyCallback = Callable[[StudyResult], None]
#: Called in the calling process as ``on_stage(study key, stage, fraction)`` while a study runs
#: (stages of :mod:`oncoqi.progress`; fraction 0 when a stage starts).
StageCallback = Callable[[str, str, float], None]
#: Seconds the calling process waits for a worker's study before it passes on the stages reported meanwhile.
STAGE_POLL_S = 0.2
#: In a worker process: the queue its studies' stages go to (set by :func:`_init_stage_queue`).
_stage_queue: Any = None


class DaskMissingError(OncoQIError):
    """A Dask scheduler was given but ``dask.distributed`` is not installed."""


@dataclass
class CohortResult:
    """Outcome of :func:`run_cohort`.

    Attributes
    ----------
    out_dir
        The output folder.
    studies
        One result per study, sorted by patient and study.
    rows
        The results table (sorted).
    failures
        The ``failures.csv`` records.
    files
        The cohort files written: ``results.csv``, ``failures.csv``, ``report.html`` and, when
        pyarrow is installed, ``results.parquet``.
    notes
        Things the user should know (no Parquet, chosen series UIDs found in no study, download failures).
    series
        Every series scanned in the input, by SeriesInstanceUID (e.g. to load a study's CT again).
    """

    out_dir: Path
    studies: list[StudyResult] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    series: dict[str, SeriesInfo] = field(default_factory=dict)

    def with_status(self, status: str) -> list[StudyResult]:
        """The studies that ended ``done``, ``skipped`` or ``failed``."""
        return [s for s in self.studies if s.status == status]

    @property
    def exit_code(self) -> int:
        """Number of failed studies and failed downloads, capped at :data:`MAX_EXIT_CODE` (0: all fine)."""
        return min(len(self.failures), MAX_EXIT_CODE)


def is_manifest(path: str | os.PathLike) -> bool:
    """True for a TCIA ``.tcia`` manifest or a text file of SeriesInstanceUIDs (not a DICOM file)."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() in (".tcia", ".txt", ".csv"):
        return True
    with p.open("rb") as f:
        head = f.read(132)
    return not (len(head) == 132 and head[128:132] == b"DICM")


def download_manifest(
    manifest: str | os.PathLike,
    download_dir: str | os.PathLike,
    *,
    api_url: str | None = None,
    source: str = "nbia",
    workers: int = 4,
    timeout: float = 60.0,
    retries: int = 3,
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Download the series of a manifest (resumably) and return their folders and the failures.

    Parameters
    ----------
    manifest
        TCIA ``.tcia`` manifest or a file of SeriesInstanceUIDs.
    download_dir
        Where the series go (``<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/``).
    api_url
        NBIA v4 API base URL (default: TCIA's public one).
    source
        ``nbia`` (TCIA) or ``idc`` (NCI Imaging Data Commons; needs the ``idc`` extra).
    workers, timeout, retries
        Parallel downloads, seconds before a request times out, retries of a failed request.

    Returns
    -------
    tuple
        The series folders downloaded or already present, and one failure record per series that
        could not be downloaded (``reason`` names the series).

    Raises
    ------
    InputError
        When the manifest cannot be read or lists no series.
    """
    from oncoqi.tcia.download import download_series
    from oncoqi.tcia.http import HttpClient, RetryPolicy
    from oncoqi.tcia.manifest import read_tcia_manifest

    uids = read_tcia_manifest(manifest).series_uids
    if source == "idc":
        from oncoqi.tcia.idc import IDCSource

        client: Any = IDCSource()
    elif source == "nbia":
        from oncoqi.tcia.nbia import NBIA_API_URL, NBIAClient

        http = HttpClient(timeout=timeout, retry=RetryPolicy(retries=max(0, retries)))
        client = NBIAClient(api_url or NBIA_API_URL, http=http)
    else:
        raise InputError(f"unknown download source {source!r}: choose 'nbia' or 'idc'")
    report = download_series(client, uids, download_dir, workers=max(1, min(workers, 16)))
    folders = [o.path for o in report.outcomes if o.path is not None and o.state.value in ("done", "skipped")]
    failures = [
        {
            "patient_id": "",
            "study_uid": "",
            "folder": "",
            "part": "download",
            "reason": f"download of series {o.series_uid} failed: {o.message}",
        }
        for o in report.outcomes
        if o.path is None or o.state.value not in ("done", "skipped")
    ]
    return folders, failures


def find_studies(
    inputs: Sequence[str | os.PathLike],
    exclude: str | os.PathLike | None = None,
) -> tuple[list[StudyInput], ScanResult]:
    """Scan folders and group their series into studies.

    Parameters
    ----------
    inputs
        Folders (or files) to scan; their series are merged.
    exclude
        A folder whose files are left out (the output folder, when it lies inside the input).

    Returns
    -------
    tuple
        The studies (sorted by patient and study) and the merged scan.

    Raises
    ------
    InputError
        When an input does not exist.
    """
    merged: ScanResult | None = None
    for path in inputs:
        scan = scan_series(path)
        if merged is None:
            merged = scan
        else:
            merged.series.extend(scan.series)
            merged.skipped.extend(scan.skipped)
    if merged is None:
        raise InputError("no input folder given")
    if exclude is not None:
        ex = Path(exclude).resolve()
        merged.series = [s for s in merged.series if not s.files[0].resolve().is_relative_to(ex)]
    return group_studies(merged), merged


@contextmanager
def single_threaded_env() -> Iterator[None]:
    """Set :data:`SINGLE_THREAD_ENV` for processes started inside the block (unless already set)."""
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _dask_client(scheduler: Any) -> tuple[Any, bool]:
    """A ``dask.distributed.Client`` for an address, a cluster or a client; True when we own it."""
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise DaskMissingError(
            f"a Dask scheduler needs dask.distributed ({exc}); install the batch extra: pip install 'oncoqi[batch]'"
        ) from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout=30), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from exc


def _init_stage_queue(queue: Any) -> None:
    """Worker process initialiser: where :func:`_run_study_reporting` puts its study's stages."""
    global _stage_queue
    _stage_queue = queue


def _run_study_reporting(study: StudyInput, out_dir: Path, options: StudyOptions) -> StudyResult:
    """:func:`run_study` in a worker process, its stages put on the queue as ``(key, stage, fraction)``."""
    queue = _stage_queue
    return run_study(study, out_dir, options, Relay(lambda stage, fraction: queue.put((study.key, stage, fraction))))


def _pass_on_stages(queue: Any, on_stage: StageCallback) -> None:
    """Hand every stage the workers have reported so far to ``on_stage`` (in this process)."""
    while True:
        try:
            on_stage(*queue.get_nowait())
        except Empty:
            return


def _follow_pool(
    pending: dict[Future, StudyInput],
    out_dir: Path,
    finished: Callable[[StudyResult], None],
    queue: Any,
    on_stage: StageCallback | None,
) -> None:
    """Wait for the pool's studies, calling ``finished`` as each ends; with a stage queue, its stages on the way."""
    if queue is None or on_stage is None:
        for future in as_completed(pending):
            finished(_collect(future, pending[future], out_dir))
        return
    waiting = set(pending)
    while waiting:
        ended, waiting = wait(waiting, timeout=STAGE_POLL_S, return_when=FIRST_COMPLETED)
        _pass_on_stages(queue, on_stage)
        for future in ended:
            finished(_collect(future, pending[future], out_dir))


def _run_all(
    todo: list[StudyInput],
    out_dir: Path,
    options: StudyOptions,
    workers: int,
    scheduler: Any,
    finished: Callable[[StudyResult], None],
    on_stage: StageCallback | None = None,
) -> None:
    """Run ``todo`` in the chosen mode, calling ``finished`` in this process as each study ends.

    ``on_stage`` follows the stages of the studies run here or in worker processes (through a
    queue: a study's last stages may come after its result); a Dask cluster's workers report none.
    """
    if not todo:
        return
    if scheduler is not None:
        client, own = _dask_client(scheduler)
        try:
            from dask.distributed import as_completed as dask_completed

            futures = [client.submit(run_study, s, out_dir, options, pure=False) for s in todo]
            by_future = dict(zip(futures, todo))
            for future in dask_completed(futures):
                finished(_collect(future, by_future[future], out_dir))
        finally:
            if own:
                client.close()
        return
    if workers <= 1:
        for study in todo:
            reporter = None if on_stage is None else Relay(partial(on_stage, study.key))
            finished(run_study(study, out_dir, options, reporter))
        return
    with single_threaded_env():
        context = multiprocessing.get_context("spawn")
        queue = context.Queue() if on_stage is not None else None
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=context,
            initializer=_init_stage_queue if queue is not None else None,
            initargs=(queue,) if queue is not None else (),
        ) as pool:
            work = run_study if queue is None else _run_study_reporting
            pending: dict[Future, StudyInput] = {pool.submit(work, s, out_dir, options): s for s in todo}
            _follow_pool(pending, out_dir, finished, queue, on_stage)
        if queue is not None and on_stage is not None:
            _pass_on_stages(queue, on_stage)  # what the workers sent last, flushed as they stopped


def _collect(future: Any, study: StudyInput, out_dir: Path) -> StudyResult:
    """The result of a future; a worker that died (killed, out of memory) gives a failed study."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the worker itself failed, not the study's code (that returns FAILED)
        return StudyResult(
            study.key,
            study.patient_id,
            study.study_uid,
            study_folder(out_dir, study),
            FAILED,
            error=f"the worker running the study stopped: {type(exc).__name__}: {exc}",
        )


@dataclass(frozen=True)
class CohortOptions:
    """How a cohort is run, as opposed to how each study is processed (:class:`StudyOptions`).

    Attributes
    ----------
    workers
        Studies processed at once on this machine (ignored with ``scheduler``).
    scheduler
        Dask scheduler address (``tcp://host:8786``), ``dask.distributed.Client`` or cluster.
    force
        Redo studies that are already complete.
    progress
        Show a tqdm progress bar and one status line per study on stderr, and when stderr is a
        terminal, each running study's stage in the bar.
    api_url, source, download_dir
        For a manifest: the NBIA API URL, ``nbia`` or ``idc``, and where the series are downloaded
        (default ``out_dir/downloads``).
    """

    workers: int = 1
    scheduler: Any = None
    force: bool = False
    progress: bool = True
    api_url: str | None = None
    source: str = "nbia"
    download_dir: str | os.PathLike | None = None


def _scan_inputs(src: Path, out: Path, cohort: CohortOptions) -> tuple[list[Path], list[dict[str, Any]]]:
    """Step 1: what to scan (the input folder, or a manifest's series downloaded first) and the failed downloads."""
    if not is_manifest(src):
        return [src], []
    target = Path(cohort.download_dir) if cohort.download_dir is not None else out / DOWNLOADS_DIR
    folders, download_failures = download_manifest(src, target, api_url=cohort.api_url, source=cohort.source)
    if not folders:
        raise InputError(f"{src}: none of the manifest's series could be downloaded into {target}")
    return folders, download_failures


def _cohort_studies(src: Path, out: Path, scan_inputs: list[Path]) -> tuple[list[StudyInput], ScanResult]:
    """Step 1: the studies found (the output folder left out when it lies in the input); none is an error."""
    studies, scan = find_studies(
        scan_inputs, exclude=out if out.resolve().is_relative_to(src.resolve()) and src.is_dir() else None
    )
    if not studies:
        reason = (
            f" ({len(scan.skipped)} files skipped, e.g. {scan.skipped[0][0]}: {scan.skipped[0][1]})"
            if scan.skipped
            else ""
        )
        raise InputError(f"{src}: no DICOM series found{reason}")
    return studies, scan


def _resume(studies: list[StudyInput], out: Path, force: bool) -> tuple[dict[str, StudyResult], list[StudyInput]]:
    """Step 2: the results of the studies already complete (skipped, rows reused), and the studies to run
    (new, failed, or done with a failed part, such as a PET that could not be read: the study redoes
    only that part). With ``force`` every study is run, and the marker of one with a failed part is
    removed first, so that it is redone whole."""
    results: dict[str, StudyResult] = {}
    todo: list[StudyInput] = []
    for study in studies:
        folder = study_folder(out, study)
        done = None if force else load_done(folder)
        if done is not None and not done.get("failed_part"):
            results[study.key] = skipped_result(study, folder, done)
            continue
        if force and _has_failed_part(folder):
            (folder / DONE_NAME).unlink()
        todo.append(study)
    return results, todo


def _has_failed_part(folder: Path) -> bool:
    """Whether the study's ``done.json`` (verified or not) records a failed part."""
    try:
        done = json.loads((folder / DONE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(done, dict) and bool(done.get("failed_part"))


@dataclass
class _BarPostfix:
    """The batch bar's postfix: the studies done, skipped and failed so far, and each running study's stage.

    A running study shows as ``s3: network 40%``, ``s3`` being the cohort's third study (a study's
    key is too long for a bar), so that a study of minutes shows it is moving.
    """

    bar: Any
    numbers: dict[str, int]
    show_stages: bool
    counts: dict[str, int] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    drawn: float = 0.0

    def stage(self, key: str, stage: str, fraction: float) -> None:
        """A study's stage (``on_stage``); redrawn at once for a new stage, at most every :data:`STAGE_POLL_S` otherwise."""
        if not self.show_stages or key in self.ended:  # a worker's late report of a study that has ended
            return
        self.running[key] = stage + (f" {fraction:.0%}" if fraction > 0 else "")
        now = time.monotonic()
        if fraction == 0 or now - self.drawn >= STAGE_POLL_S:
            self.drawn = now
            self.bar.set_postfix(self.items(), refresh=True)

    def end(self, key: str, counts: dict[str, int]) -> None:
        """A study ended: it leaves the running ones, the counts are new (drawn with the bar's next update)."""
        self.ended.add(key)
        self.running.pop(key, None)
        self.counts = counts
        self.bar.set_postfix(self.items(), refresh=False)

    def items(self) -> dict[str, Any]:
        running = sorted(self.running.items(), key=lambda item: self.numbers.get(item[0], 0))
        now = ", ".join(f"s{self.numbers.get(key, 0)}: {text}" for key, text in running)
        return {**self.counts, "now": now} if now else dict(self.counts)


def _run_and_follow(
    studies: list[StudyInput],
    results: dict[str, StudyResult],
    todo: list[StudyInput],
    out: Path,
    options: StudyOptions,
    cohort: CohortOptions,
    on_study: StudyCallback | None,
    on_stage: StageCallback | None = None,
) -> None:
    """Step 3: run ``todo`` into ``results``, following every study as it ends (bar, status line, ``on_study``)
    and, on a terminal, the stage of each study while it runs (the bar's postfix; ``on_stage`` too)."""
    bar = tqdm(total=len(studies), desc="batch", unit="study", disable=not cohort.progress, dynamic_ncols=True)
    postfix = _BarPostfix(
        bar, {s.key: n for n, s in enumerate(studies, 1)}, show_stages=cohort.progress and sys.stderr.isatty()
    )

    def staged(key: str, stage: str, fraction: float) -> None:
        postfix.stage(key, stage, fraction)
        if on_stage is not None:
            on_stage(key, stage, fraction)

    def finished(r: StudyResult) -> None:
        results[r.key] = r
        if on_study is not None:
            on_study(r)
        lesions = sum(1 for row in r.rows if row.get("lesion") not in (None, "", "none"))
        detail = r.error if r.status == FAILED else f"{lesions} lesion(s), {r.seconds:.1f} s"
        if r.failed_part:
            detail += f"; {r.failed_part.upper()} part failed: {r.error}"
        if cohort.progress:
            bar.write(f"{r.status:<7} {r.key}: {detail}", file=sys.stderr)
        counts = {s: sum(1 for x in results.values() if x.status == s) for s in (DONE, SKIPPED, FAILED)}
        postfix.end(r.key, counts)  # before the update, which draws it
        bar.update(1)

    try:
        for study in studies:
            if study.key in results:
                finished(results[study.key])
        follow = staged if postfix.show_stages or on_stage is not None else None
        _run_all(todo, out, options, cohort.workers, cohort.scheduler, finished, follow)
    finally:
        bar.close()


def _write_outputs(result: CohortResult, download_failures: list[dict[str, Any]]) -> None:
    """Step 4: the results table, the failures and the HTML report, from every study (done now or before)."""
    out = result.out_dir
    result.rows = sort_rows(row for r in result.studies for row in r.rows)
    result.failures = download_failures + [
        {
            "patient_id": r.patient_id,
            "study_uid": r.study_uid,
            "folder": r.folder.relative_to(out).as_posix(),
            "part": r.failed_part or "study",
            "reason": r.error,
        }
        for r in result.studies
        if r.status == FAILED or r.failed_part
    ]
    result.files["results.csv"] = write_results_csv(result.rows, out / RESULTS_CSV)
    if parquet_available():
        result.files["results.parquet"] = write_results_parquet(result.rows, out / RESULTS_PARQUET)
    else:
        (out / RESULTS_PARQUET).unlink(missing_ok=True)
        result.notes.append(NO_PARQUET_NOTE)
    result.files["failures.csv"] = write_failures_csv(result.failures, out / FAILURES_CSV)
    studies_html = [
        {
            "key": r.key,
            "status": r.status,
            "qc": (r.folder / QC_NAME).relative_to(out).as_posix()
            if (r.folder / QC_NAME).is_file() and r.status != FAILED
            else "",
        }
        for r in result.studies
    ]
    result.files["report.html"] = write_html_report(out, result.rows, result.failures, studies_html, out / REPORT_HTML)


def run_cohort(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: StudyOptions | None = None,
    cohort: CohortOptions | None = None,
    *,
    on_study: StudyCallback | None = None,
    on_stage: StageCallback | None = None,
) -> CohortResult:
    """Process every study of a folder or manifest into ``out_dir`` (steps in the module documentation).

    Parameters
    ----------
    input_path
        Folder of studies (any nesting) or TCIA manifest.
    out_dir
        Output folder (created).
    options
        How each study is processed (default: :class:`StudyOptions` defaults).
    cohort
        How the cohort is run: workers or Dask scheduler, redo complete studies, progress display,
        manifest download (default: :class:`CohortOptions` defaults).
    on_study
        Called in this process with each study's result as it finishes (skipped ones included).
    on_stage
        Called in this process as ``on_stage(key, stage, fraction)`` while a study runs, here or in a
        worker process (not on a Dask cluster): the stages of :mod:`oncoqi.progress`, fraction 0 as
        a stage starts. A study goes through ``read``, ``lungs``, ``network``, ``lesions`` and
        ``write`` (the CT's results), then, with a PET, ``pet`` and ``write`` again (the QC picture
        and ``done.json``).

    Returns
    -------
    CohortResult

    Raises
    ------
    InputError
        When the input does not exist, holds no DICOM series, or ``workers`` < 1.
    DaskMissingError
        When ``scheduler`` is given without ``dask.distributed``.
    """
    cohort = cohort if cohort is not None else CohortOptions()
    if cohort.workers < 1:
        raise InputError(
            f"the number of studies run at once (workers) must be at least 1, not {cohort.workers}", setting="workers"
        )
    options = options if options is not None else StudyOptions()
    out = Path(out_dir)
    src = Path(input_path)
    if not src.exists():
        raise InputError(f"{src}: no such folder or manifest file")
    new = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    result = CohortResult(out_dir=out)
    try:
        scan_inputs, download_failures = _scan_inputs(src, out, cohort)
        studies, scan = _cohort_studies(src, out, scan_inputs)
    except OncoQIError:
        if new and not any(out.iterdir()):
            out.rmdir()  # an input without a study leaves no empty output folder behind
        raise
    result.notes.extend(f["reason"] for f in download_failures)
    result.series = {s.series_uid: s for s in scan.series}
    unknown = find_override_problems(studies, options.series)
    if unknown:
        result.notes.append(f"series chosen by UID (series) found in no study: {', '.join(unknown)}")

    results, todo = _resume(studies, out, cohort.force)
    _run_and_follow(studies, results, todo, out, options, cohort, on_study, on_stage)
    result.studies = sorted(results.values(), key=lambda r: (r.patient_id, r.study_uid))
    _write_outputs(result, download_failures)
    for note in result.notes:
        log.log(logging.INFO if note == NO_PARQUET_NOTE else logging.WARNING, "%s", note)
    return result


__all__ = [
    "MAX_EXIT_CODE",
    "CohortOptions",
    "CohortResult",
    "DaskMissingError",
    "download_manifest",
    "find_studies",
    "is_manifest",
    "run_cohort",
    "single_threaded_env",
]
