"""Sharded runs under ``torchrun``: which part of the pool this process takes, and merging.

When ``torch.distributed`` is initialised (``torchrun --nproc_per_node N``,
gloo on CPU, nccl on GPU), every rank processes a contiguous shard of the
pool and the statistics' ``state_dict`` s are gathered and merged in rank
order, so every rank ends with the same merged statistics.  Without a
process group everything is a no-op and the run is single-process.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

__all__ = ["rank_and_world", "gather_objects", "barrier", "init_from_environment", "process_group"]


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment() -> bool:
    """Initialise the default process group when launched by ``torchrun``.

    Returns True when a group is (now) initialised.  Uses nccl when CUDA is
    available, gloo otherwise.
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


@contextlib.contextmanager
def process_group(device: str) -> Iterator[str]:
    """Run the block as one rank of a ``torchrun`` launch when it is one; yields the device to use.

    A ``cuda`` device becomes this rank's own GPU, and the process group
    made here is destroyed when the block ends normally.  Launched without
    ``torchrun``, ``device`` is yielded as it is and nothing else happens.
    """
    distributed = init_from_environment()
    if distributed and device.startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    yield device
    if distributed:
        dist.destroy_process_group()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when single-process)."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def merge_across_ranks(stat, factory: Callable[[dict], Any]):
    """Merge a statistic over all ranks (rank order); returns a new merged statistic."""
    states = gather_objects(stat.state_dict())
    merged = factory(states[0])
    for state in states[1:]:
        merged.merge(factory(state))
    return merged


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()
