"""Progress of a study: a bar per step, opened and closed by the library.

A ``progress`` argument is a factory, ``progress(description) -> (callback,
bar)``: ``callback(done, total)`` is handed to the experiment function and
``bar.close()`` is called when the step ends, however it ends.  The CLI
passes tqdm bars (``unitscope.cli._common.tqdm_progress``); a notebook user
may pass the same, or nothing for silence.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

__all__ = ["Progress", "step"]

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
