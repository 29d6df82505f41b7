"""The compaction step of :class:`~unitscope.stats.quantile.RunningQuantile`'s sketch.

A level is compacted by sorting each unit's items and promoting every other
one of the lowest part, from an offset chosen by a reproducible coin; this
module is that sort-and-split (numpy threads on CPU, ``torch.sort``
elsewhere) and the coin.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = ["sort_and_split", "coin"]

_MASK64 = (1 << 64) - 1


def sort_and_split(
    blocks: list[torch.Tensor], extra_rows: list[torch.Tensor], compacted: int, offset: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort ``[blocks | extra_rows transposed]`` per row; split off the compaction.

    `blocks` are (C, L_i) tensors, `extra_rows` (N_i, C) tensors; the lowest
    `compacted` sorted items of each row are compacted, keeping positions
    ``offset, offset + 2, ...``. Returns ``(first, last, kept, promoted)``:
    each row's smallest and largest item, its top ``size - compacted`` items
    and the promoted ones. The inputs are not modified.

    On CPU the work is done with numpy, in blocks of rows on torch's thread
    count: numpy's vectorised sort is an order of magnitude faster than
    ``torch.sort`` (26 ms vs 410 ms for 256 x 18432 float32 on one core), it
    releases the GIL, and gathering (and transposing) the parts block by block
    inside the same threads avoids slow strided ``torch.cat`` copies.
    """
    if extra_rows:
        device, dtype = extra_rows[0].device, extra_rows[0].dtype
    else:
        device, dtype = blocks[0].device, blocks[0].dtype
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        buffer = torch.cat([*blocks, *(rows.t() for rows in extra_rows)], dim=1)
        ordered = torch.sort(buffer, dim=1).values
        return (ordered[:, 0], ordered[:, -1], ordered[:, compacted:].contiguous(),
                ordered[:, offset:compacted:2].contiguous())

    parts = [(block.numpy(), False) for block in blocks] + [(rows.numpy(), True) for rows in extra_rows]
    num_rows = parts[0][0].shape[1] if parts[0][1] else parts[0][0].shape[0]
    widths = [array.shape[0] if transposed else array.shape[1] for array, transposed in parts]
    size = sum(widths)
    np_dtype = parts[0][0].dtype
    first, last = np.empty(num_rows, np_dtype), np.empty(num_rows, np_dtype)
    kept = np.empty((num_rows, size - compacted), np_dtype)
    promoted = np.empty((num_rows, len(range(offset, compacted, 2))), np_dtype)

    def work(start: int, stop: int) -> None:
        buffer = np.empty((stop - start, size), np_dtype)
        column = 0
        for (array, transposed), width in zip(parts, widths):
            part = array[:, start:stop].T if transposed else array[start:stop]
            buffer[:, column : column + width] = part
            column += width
        buffer.sort(axis=1)
        first[start:stop], last[start:stop] = buffer[:, 0], buffer[:, -1]
        kept[start:stop] = buffer[:, compacted:]
        promoted[start:stop] = buffer[:, offset:compacted:2]

    workers = min(torch.get_num_threads(), num_rows, max(1, (num_rows * size) >> 18))
    if workers <= 1:
        work(0, num_rows)
    else:
        # Blocks of about 2**18 items keep each thread's buffer in cache.
        blocks_count = min(num_rows, max(workers, -(-num_rows * size // (1 << 18))))
        bounds = np.linspace(0, num_rows, blocks_count + 1).astype(int)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, bounds[:-1], bounds[1:]))
    return tuple(torch.from_numpy(a) for a in (first, last, kept, promoted))




def coin(seed: int, level: int, index: int) -> int:
    """A reproducible fair coin (splitmix64 of seed, level and compaction number)."""
    x = (
        seed * 0x9E3779B97F4A7C15 + level * 0xD1B54A32D192ED03 + index * 0x8CB92BA72F3D8DD7
        + 0x632BE59BD9B4E019
    ) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return int(x >> 63)
