"""Progress of a study: a bar per step, opened and closed by the library.

A ``progress`` argument is a factory, ``progress(description) -> (callback,
bar)``: ``callback(done, total)`` is handed to the experiment function and
``bar.close()`` is called when the step ends, however it ends.  The CLI
passes tqdm bars on stderr (:func:`tqdm_bars`); a notebook user may pass the
same, or nothing for silence.  When stderr is not a terminal (a log file, a
batch job) a bar would be noise, so :func:`tqdm_progress` writes instead one
line every :data:`LINE_EVERY_S` seconds: done, total, elapsed time and the
estimated time left.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator, Optional

__all__ = ["Progress", "step", "tqdm_bars", "tqdm_progress", "LINE_EVERY_S"]

#: Seconds between the progress lines written when stderr is not a terminal.
LINE_EVERY_S = 30.0

#: ``progress(description) -> (callback(done, total), bar with .close())``
Progress = Callable[[str], "tuple[Callable[..., None], Any]"]


@contextlib.contextmanager
def step(progress: Optional[Progress], description: str) -> Iterator[Optional[Callable[..., None]]]:
    """The callback of a bar named ``description`` (None without ``progress``), closed at the end."""
    if progress is None:
        yield None
        return
    callback, bar = progress(description)
    try:
        yield callback
    finally:
        bar.close()


def tqdm_progress(description: str, *, total: int | None = None, unit: str = "it"):
    """A tqdm bar on stderr as ``(callback(done, total), bar)``: one step of a ``progress`` factory.

    Off a terminal, a :class:`ProgressLines` instead (tqdm would draw nothing).
    """
    if not _is_terminal(sys.stderr):
        lines = ProgressLines(description, total=total, unit=unit, stream=sys.stderr)
        return lines.update, lines
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True,
               disable=None)

    def callback(done: int, total: int | None = None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return callback, bar


def tqdm_bars(**options) -> Progress:
    """A ``progress`` factory of tqdm bars (``unit=...``, ``total=...``): what the command line passes."""
    return lambda description: tqdm_progress(description, **options)


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class ProgressLines:
    """Progress as a line every ``every`` seconds (``desc: 120/5,184 passes (2%), 0:31 elapsed, ~21:40 left``).

    Nothing is written for a step shorter than ``every``; ``close()`` writes
    the last count only when a line was written before.
    """

    def __init__(self, description: str, *, total: int | None = None, unit: str = "it", stream=None,
                 every: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every = LINE_EVERY_S if every is None else every
        self.clock = clock
        self.started = self.last = clock()
        self.done, self.written = 0, False

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self.clock() - self.last >= self.every:
            self._write()

    def close(self) -> None:
        if self.written:
            self._write()

    def _write(self) -> None:
        now = self.clock()
        self.last, self.written = now, True
        elapsed = now - self.started
        line = f"{self.description}: {self.done:,}"
        if self.total:
            line += f"/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            line += f" {self.unit}"
        line += f", {_clock(elapsed)} elapsed"
        if self.total and 0 < self.done < self.total:
            line += f", ~{_clock(elapsed * (self.total - self.done) / self.done)} left"
        print(line, file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
