"""worker_batches: an error in a DataLoader worker is raised in the caller as the original exception."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from unitscope.data import CorruptFileError
from unitscope.data.workers import RaisedInWorker, worker_batches


class Failing(Dataset):
    """Items 0..5 are their index; item ``bad`` raises ``error()``."""

    def __init__(self, bad: int, error) -> None:
        self.bad, self.error = bad, error

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i):
        if i == self.bad:
            raise self.error()
        return i


class Unpicklable(ValueError):
    def __init__(self, message, handle):
        super().__init__(message)
        self.handle = handle

    def __reduce__(self):
        raise TypeError("cannot pickle a handle")


@pytest.mark.parametrize("workers", [0, 2])
def test_the_original_exception_comes_back(workers):
    data = Failing(3, lambda: CorruptFileError("images/a.png", "file is empty (0 bytes)"))
    with pytest.raises(CorruptFileError) as info:
        list(worker_batches(data, batch_size=2, num_workers=workers))
    assert str(info.value) == "cannot read images/a.png: file is empty (0 bytes)"
    assert "Caught" not in str(info.value) and "Traceback" not in str(info.value)
    if workers:  # the worker's traceback is kept for --debug, out of the message
        assert any("__getitem__" in note for note in info.value.__notes__)


def test_an_unpicklable_exception_becomes_its_builtin_base_with_the_same_message():
    data = Failing(0, lambda: Unpicklable("mask holds 999", handle=object()))
    with pytest.raises(ValueError) as info:
        list(worker_batches(data, batch_size=None, num_workers=1))
    assert type(info.value) is ValueError and str(info.value) == "mask holds 999"


def test_errors_of_the_collate_function_and_plain_batches():
    data = Failing(99, RuntimeError)

    def refuse_odd(batch):
        if any(i % 2 for i in batch):
            raise OSError("cannot write the cache in /full (No space left on device)")
        return torch.tensor(batch)

    with pytest.raises(OSError, match=r"^cannot write the cache in /full"):
        list(worker_batches(data, batch_size=1, num_workers=2, collate_fn=refuse_odd))
    assert [b.tolist() for b in worker_batches(data, batch_size=4, num_workers=2)] == [[0, 1, 2, 3], [4, 5]]
    assert list(worker_batches(data, batch_size=None, num_workers=0)) == [0, 1, 2, 3, 4, 5]


def test_reraise_outside_a_worker():
    carried = RaisedInWorker(KeyError("unit"))
    with pytest.raises(KeyError):
        carried.reraise()
