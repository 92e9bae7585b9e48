"""Where long work is: the stage it is in and how far along that stage, for whoever shows it.

Segmenting a study takes from 30 s to minutes; without word of progress a user cannot tell
working from hung. The core's long functions therefore report their stages to a
:class:`Reporter` they are given, and never print: the default, a plain :class:`Reporter`, shows
nothing, so a script or a test gets no output it did not ask for. The command line gives a :class:`Terminal`
(one line per stage on stderr), the cohort batch a :class:`Relay` that carries each study's
stage to its progress bar, and Slicer's lung module one that feeds its progress bar.

The stages, in the order a study goes through them, are :data:`STAGES`; ``oncoqi lung segment``,
``oncoqi batch`` and ``oncoqi demo`` use the same names. A :class:`Reporter` is also a network
``progress(done, total)`` callback (:meth:`Reporter.__call__`), so it can be handed wherever one
is taken: functions that know the stages (:func:`oncoqi.lung.segment.segment_ct`) report them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

#: The stages of a study, in order: reading the CT, lung isolation, the tumour network, labelling
#: and measuring the lesions, the PET part (when there is a PET), writing the results.
STAGES = ("read", "lungs", "network", "lesions", "pet", "write")
#: Width of the stage name in a :class:`Terminal` line (the longest stage name and a space).
NAME_WIDTH = max(map(len, STAGES)) + 1


class Reporter:
    """Told which stage long work has entered and how far it is within it; this base shows nothing.

    Subclasses show it; they call ``super().stage(name)`` so that :attr:`current` stays right.
    Used as a context manager, :meth:`close` is called when the block ends, also on an error, so
    that a display is left tidy before the error is printed.

    Attributes
    ----------
    current
        The stage entered last; None before the first one and after :meth:`close`.
    """

    current: str | None = None

    def stage(self, name: str) -> None:
        """The work entered stage ``name`` (one of :data:`STAGES`); its fraction is 0."""
        self.current = name

    def fraction(self, value: float) -> None:
        """Share of the current stage done, 0 to 1 (reported only by stages that can count, e.g. network slices)."""

    def close(self) -> None:
        """The work ended (or failed): the last stage is over."""
        self.current = None

    def update(self, stage: str, fraction: float) -> None:
        """Both calls in one, as a :class:`Relay` hands them on: a stage other than :attr:`current` is entered."""
        if stage != self.current:
            self.stage(stage)
        if fraction > 0:
            self.fraction(fraction)

    def __call__(self, done: int, total: int) -> None:
        """The network's ``progress(done, total)`` callback: ``done`` of ``total`` slices is the stage's fraction."""
        self.fraction(done / total if total > 0 else 1.0)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stages_of(progress: object) -> Reporter:
    """The :class:`Reporter` in a ``progress`` argument, or a silent one for a plain callback or None.

    Why: functions that take the network's ``progress(done, total)`` callback take a reporter in
    the same argument; a plain callback gets the slice counts only, a reporter the stages too.
    A new silent one each time, because a reporter keeps its current stage.
    """
    return progress if isinstance(progress, Reporter) else Reporter()


class Relay(Reporter):
    """Hands every stage and fraction to ``callback(stage, fraction)`` (fraction 0 when a stage starts).

    Why: a callback is what crosses a thread or a process (the batch puts it on a queue), and
    :meth:`Reporter.update` turns it back into stage calls at the other end.
    """

    def __init__(self, callback: Callable[[str, float], None]) -> None:
        self.callback = callback

    def stage(self, name: str) -> None:
        super().stage(name)
        self.callback(name, 0.0)

    def fraction(self, value: float) -> None:
        if self.current is not None:
            self.callback(self.current, float(value))


class Terminal(Reporter):
    """One line per stage on a text stream: its name and elapsed seconds, with the fraction redrawn in place.

    A stage's line is drawn when the stage starts, redrawn with ``\\r`` as its fraction grows (at
    most every ``interval`` seconds) and ended with its total time when the next stage starts or
    the work ends. Meant for a terminal: :func:`for_terminal` gives one only there.

    Parameters
    ----------
    stream
        Where the lines go (the command line's stderr).
    prefix
        Written before each line (e.g. an indent under a heading).
    interval
        Least seconds between two redraws of a fraction (a redraw per network batch would flicker).
    clock
        Seconds, for the elapsed time (a test gives its own).
    """

    def __init__(
        self,
        stream: TextIO,
        prefix: str = "",
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.prefix, self.interval, self.clock = stream, prefix, interval, clock
        self._started = self._drawn = 0.0
        self._share: float | None = None

    def stage(self, name: str) -> None:
        self._end_line()
        super().stage(name)
        self._started = self.clock()
        self._share = None
        self._draw()

    def fraction(self, value: float) -> None:
        if self.current is None:
            return
        self._share = min(max(float(value), 0.0), 1.0)
        if self._share >= 1.0 or self.clock() - self._drawn >= self.interval:
            self._draw()

    def close(self) -> None:
        self._end_line()
        super().close()

    def _line(self, share: float | None) -> str:
        percent = f"{share:4.0%}" if share is not None else " " * 4
        return f"\r{self.prefix}{self.current:<{NAME_WIDTH}}{percent} {self.clock() - self._started:6.1f} s"

    def _draw(self) -> None:
        self._drawn = self.clock()
        self.stream.write(self._line(self._share))
        self.stream.flush()

    def _end_line(self) -> None:
        """The current stage's last line: its total time, the fraction column blank (the stage is over)."""
        if self.current is not None:
            self.stream.write(self._line(None) + "\n")
            self.stream.flush()


def for_terminal(stream: TextIO, quiet: bool = False, prefix: str = "") -> Reporter:
    """A :class:`Terminal` on ``stream`` when it is a terminal and ``quiet`` is off, else a silent :class:`Reporter`.

    Why: ``\\r`` redraws are for a person watching; in a log file or a pipe they are noise, and
    ``--quiet`` asks for none.
    """
    interactive = getattr(stream, "isatty", None)
    if quiet or interactive is None or not interactive():
        return Reporter()
    return Terminal(stream, prefix)


__all__ = ["STAGES", "Relay", "Reporter", "Terminal", "for_terminal", "stages_of"]
