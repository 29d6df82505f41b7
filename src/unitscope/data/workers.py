"""DataLoader workers whose errors reach the caller as themselves.

When a dataset raises inside a ``DataLoader`` worker process, torch sends
back only the exception's type and formatted traceback, and raises
``Caught ValueError in DataLoader worker process 0. Original Traceback ...``
-- or, for an exception whose constructor takes more than a message (such
as :class:`~unitscope.data.errors.CorruptFileError`), a ``RuntimeError``
with that text.  A user then reads a traceback instead of "cannot read
images/a.png: ...".

:func:`worker_batches` builds the loader so that an error in a worker is
caught there, sent back as a value (:class:`RaisedInWorker`), and raised
again in the calling process as the original exception, with the worker's
traceback attached as a note (shown by ``--debug``, never in the one-line
message).  Without workers nothing changes: errors propagate as usual.

Examples
--------
>>> for batch in worker_batches(pool, batch_size=8, num_workers=2, collate_fn=collate):  # doctest: +SKIP
...     images, metas = batch
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Callable, Iterator

from torch.utils.data import DataLoader, Dataset, get_worker_info

__all__ = ["RaisedInWorker", "worker_batches"]


class RaisedInWorker:
    """An exception raised in a worker process, carried back to the main one as data.

    Parameters
    ----------
    exc : BaseException
        The exception.  If it does not survive a pickle round trip, an
        exception of a built-in type with the same message is carried
        instead (``RuntimeError`` naming the original type when even that
        is not possible).
    """

    def __init__(self, exc: BaseException) -> None:
        self.worker_traceback = "".join(traceback.format_exception(exc))
        self.exception = exc if _round_trips(exc) else _stand_in(exc)

    def reraise(self) -> None:
        """Raise the carried exception in this process."""
        exc = self.exception
        if hasattr(exc, "add_note"):
            exc.add_note("raised in a DataLoader worker process:\n" + self.worker_traceback)
        raise exc


def _round_trips(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def _stand_in(exc: BaseException) -> BaseException:
    for kind in (FileNotFoundError, PermissionError, OSError, LookupError, ValueError, TypeError):
        if isinstance(exc, kind):
            return kind(str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Catching(Dataset):
    """``dataset[i]``, or in a worker process the :class:`RaisedInWorker` of its error."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except Exception as exc:
            if get_worker_info() is None:
                raise
            return RaisedInWorker(exc)


class _CatchingCollate:
    """A collate function that passes a worker's error through (collation runs in the worker too)."""

    def __init__(self, collate_fn: Callable | None) -> None:
        self.collate_fn = collate_fn

    def __call__(self, batch):
        items = batch if isinstance(batch, list) else [batch]
        for item in items:
            if isinstance(item, RaisedInWorker):
                return item
        if self.collate_fn is None:
            return batch
        try:
            return self.collate_fn(batch)
        except Exception as exc:
            if get_worker_info() is None:
                raise
            return RaisedInWorker(exc)


def worker_batches(dataset: Dataset, *, num_workers: int = 0, collate_fn: Callable | None = None,
                   **loader_options: Any) -> Iterator[Any]:
    """Iterate ``DataLoader(dataset, ...)`` and raise a worker's error as the original exception.

    Parameters
    ----------
    dataset : Dataset
    num_workers : int, keyword-only
        Worker processes; 0 loads in this process (errors propagate as usual).
    collate_fn : callable, keyword-only
        As for ``DataLoader``.  With ``batch_size=None`` and no
        ``collate_fn``, items come back as they are (no tensor conversion).
    **loader_options
        Any other ``DataLoader`` option (``batch_size``, ``sampler``, ...).

    Yields
    ------
    Whatever the loader yields.

    Raises
    ------
    Exception
        The exception the dataset (or ``collate_fn``) raised, in a worker or not.
    """
    if num_workers:
        dataset = _Catching(dataset)
        if collate_fn is None and loader_options.get("batch_size", 1) is not None:
            from torch.utils.data import default_collate

            collate_fn = default_collate
        collate_fn = _CatchingCollate(collate_fn)
    elif collate_fn is None and loader_options.get("batch_size", 1) is None:
        collate_fn = _identity
    batches = iter(DataLoader(dataset, num_workers=num_workers, collate_fn=collate_fn, **loader_options))
    try:
        for batch in batches:
            if isinstance(batch, RaisedInWorker):
                batch.reraise()
            yield batch
    finally:
        # Closing this generator stops the worker processes at once (not when the garbage
        # collector gets to them), so a caller's cleanup never races with a worker still writing.
        getattr(batches, "_shutdown_workers", lambda: None)()


def _identity(item):
    return item
