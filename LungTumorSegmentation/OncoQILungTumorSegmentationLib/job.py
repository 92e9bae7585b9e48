"""A computation run in a background thread that the GUI polls, follows and can cancel.

Segmenting a chest CT takes from seconds to minutes. Run on Slicer's main thread it would freeze
the application, so the Widget runs the core in a Python thread instead: onnxruntime, numpy,
SciPy and SimpleITK release the GIL during their long calls, so the GUI keeps running. MRML is
not thread-safe, so the work given to a job must not touch the scene; the Widget polls
:attr:`BackgroundJob.done` with a timer and creates the nodes on the main thread afterwards.

This module imports neither Qt nor Slicer, so the threading is tested under plain pytest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from oncoqi.errors import CancelToken
from oncoqi.progress import Reporter

T = TypeVar("T")

#: Called as ``progress(done, total)`` (from the worker thread).
Progress = Callable[[int, int], None]
#: The job's work: gets the progress callback and the cancel token, returns the result. The callback
#: is a :class:`oncoqi.progress.Reporter`: work that reports stages (``segment_ct``) reports them through it.
Work = Callable[[Progress, CancelToken], T]


class _JobReporter(Reporter):
    """What a job hands its work: the ``progress(done, total)`` callback, and as a reporter the stages too."""

    def __init__(self, job: BackgroundJob) -> None:
        self._job = job

    def stage(self, name: str) -> None:
        super().stage(name)
        self._job._stage = (name, 0.0)

    def fraction(self, value: float) -> None:
        if self.current is not None:
            self._job._stage = (self.current, float(value))

    def __call__(self, done: int, total: int) -> None:
        self._job._report(done, total)
        super().__call__(done, total)


class BackgroundJob(Generic[T]):
    """Run ``work(progress, cancel)`` in a daemon thread and keep its progress, result or error.

    Parameters
    ----------
    work
        The computation. It reports progress through the callback it is given and stops (by
        raising) soon after the event is set; it must not touch the MRML scene.
    name
        Thread name (shown in debuggers and logs).
    cancel_event
        The token :meth:`cancel` sets (a ``threading.Event`` works too); a new
        :class:`~oncoqi.errors.CancelToken` when None. Passing one lets a caller that already holds
        a token (a script, a test) cancel the job through it.
    on_progress
        Also called with every progress report, from the worker thread (e.g. to log).

    Notes
    -----
    The thread is a daemon so that quitting Slicer during a segmentation does not hang on it;
    the work writes nothing to disk or scene, so nothing is left half-written.
    """

    def __init__(
        self,
        work: Work[T],
        name: str = "OncoQI job",
        cancel_event: CancelToken | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self._work = work
        self._on_progress = on_progress
        self.cancel_event = cancel_event if cancel_event is not None else CancelToken()
        self._finished = threading.Event()
        self._progress: tuple[int, int] | None = None
        self._stage: tuple[str, float] | None = None
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> BackgroundJob[T]:
        """Start the thread; returns the job so that ``job = BackgroundJob(...).start()`` reads well."""
        self._thread.start()
        return self

    def _report(self, done: int, total: int) -> None:
        # One tuple assignment: a reader on another thread sees the old or the new pair, never a mix.
        self._progress = (int(done), int(total))
        if self._on_progress is not None:
            self._on_progress(done, total)

    def _run(self) -> None:
        try:
            self._result = self._work(_JobReporter(self), self.cancel_event)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread through result()/error
            self._error = exc
        finally:
            self._finished.set()

    @property
    def progress(self) -> tuple[int, int] | None:
        """The last ``(done, total)`` reported, or None before the first report."""
        return self._progress

    @property
    def stage(self) -> tuple[str, float] | None:
        """The last ``(stage, fraction)`` the work reported (:mod:`oncoqi.progress`), or None before the first."""
        return self._stage

    @property
    def done(self) -> bool:
        """True once the work has returned or raised (also after a cancellation)."""
        return self._finished.is_set()

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called or the cancel event set."""
        return self.cancel_event.is_set()

    @property
    def error(self) -> BaseException | None:
        """What the work raised (None while running or after success)."""
        return self._error if self.done else None

    def cancel(self) -> None:
        """Ask the work to stop; it raises at its next check (see :attr:`done`)."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work finishes or ``timeout`` seconds pass; True when it finished.

        For scripts and tests: the GUI polls :attr:`done` instead, never blocking its thread.
        """
        return self._finished.wait(timeout)

    def result(self) -> T:
        """The work's return value; re-raises what the work raised.

        Raises
        ------
        RuntimeError
            When the job has not finished yet.
        """
        if not self.done:
            raise RuntimeError("the job is still running; poll 'done' or call wait() first")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
