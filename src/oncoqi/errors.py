"""Exceptions that carry a message meant for the user.

Every expected problem with user input (a folder without DICOM, a truncated file, a series with
a missing slice, ...) is raised as an :class:`OncoQIError` subclass whose message names the file
or series and the problem. The command line prints that message without a traceback; anything
else is a bug and keeps its traceback.

Long work (a download, a segmentation) takes a :class:`CancelToken` and raises :class:`Cancelled`
at its next check once the token is cancelled from any thread.
"""

from __future__ import annotations

import threading


class OncoQIError(Exception):
    """Base class of the errors that are the user's input, not our bug.

    Parameters
    ----------
    *args
        The message, as for any exception.
    setting
        The keyword argument the message is about when changing it is the remedy (e.g. ``force``).
        The core's messages name concepts, never command-line flags, because Slicer and Python call
        the same functions; the command line adds its option for the setting
        (:func:`oncoqi.cli.error_text`).
    """

    #: See ``setting`` above; None when no single setting is concerned.
    setting: str | None = None

    def __init__(self, *args: object, setting: str | None = None) -> None:
        super().__init__(*args)
        if setting is not None:
            self.setting = setting


class InputError(OncoQIError):
    """An input file or folder cannot be used (missing, unreadable, not an image)."""


class OutputError(OncoQIError):
    """An output path cannot be written (a file where a folder is wanted, no permission, a read-only
    or full disk): found before any work is done, so nothing is computed for nothing."""


class GeometryError(OncoQIError):
    """A series cannot be turned into one regular 3D grid.

    Parameters
    ----------
    message
        What is wrong, naming the series.
    problems
        One line per problem found, so that a checker can list them all.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class Cancelled(OncoQIError):
    """Work stopped because its cancel token was set (the caller's choice, not a problem of the input); nothing was returned."""


class CancelToken(threading.Event):
    """Set it from any thread to stop work early: the work raises :class:`Cancelled` at its next check.

    A :class:`threading.Event` with cancellation's names. A plain Event (or anything with ``is_set()``)
    given where a token is taken works too: the work only ever asks ``is_set()``, through
    :func:`check_cancel`.
    """

    def cancel(self) -> None:
        """Ask the work to stop (the same as ``set()``)."""
        self.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` (or ``set()``) was called."""
        return self.is_set()


def check_cancel(cancel: CancelToken | None, message: str = "") -> None:
    """Raise :class:`Cancelled` with ``message`` when ``cancel`` is set (None: never)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(message)
