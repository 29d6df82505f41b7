"""Progress of a study: a bar per step, opened and closed by the library.

A ``progress`` argument is a factory, ``progress(description) -> (callback,
bar)``: ``callback(done, total)`` is handed to the experiment function and
``bar.close()`` is called when the step ends, however it ends.  The CLI
passes tqdm bars on stderr (:func:`tqdm_bars`); a notebook user may pass the
same, or nothing for silence.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator, Optional

__all__ = ["Progress", "step", "tqdm_bars", "tqdm_progress"]

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
    """A tqdm bar on stderr as ``(callback(done, total), bar)``: one step of a ``progress`` factory."""
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
