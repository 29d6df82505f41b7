"""Pass 1's activation cache: how it is stored, and whether it is stored at all.

Pass 2 needs every activation of pass 1 again.  Reading them back from disk
costs a fraction of a forward pass, but the cache grows with the pool: one
``C x H x W`` map per image and layer (AlexNet's conv5 at 224 px: 173 kB
per image in float32, 10.9 GB for Broden's 63,000 images).  The policy
(``activation_cache``, under a disk budget ``cache_budget_gb``):

- ``"disk"``: float32 on disk; pass 2 sees exactly pass 1's values.
- ``"float16"``: half the bytes; pass 2 thresholds values rounded to
  float16 (11 significant bits; thresholds stay pass 1's float32), so
  pixels within a rounding step of a unit's threshold may flip.  On the
  study world (1,000 images, a trained network's conv3-5) no label changed
  and no IoU moved by more than 1.3e-4, but on images of flat colour
  regions a whole region can sit on a threshold (0.047 on a toy pool; the
  README's "Dissection at scale"), so it is chosen only when asked for.
- ``"recompute"``: no cache; pass 2 runs the network again (twice the
  forward cost, exactly the same values).
- ``"auto"`` (default): ``"disk"`` when the float32 cache fits the budget,
  else ``"recompute"``.

Whatever is chosen, the cache's bytes are checked against the free space
of its folder before the first batch, and a cache that cannot fit is
refused in one line naming the folder and the bytes.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CACHE_POLICIES", "DEFAULT_CACHE_BUDGET_GB", "CachePlan", "plan_cache"]

#: What ``activation_cache`` accepts.
CACHE_POLICIES = ("auto", "disk", "float16", "recompute")

#: The default disk budget of the activation cache, in GB (10^9 bytes): Broden's 63,000 images at
#: AlexNet's conv5 in float32 (10.9 GB) fit; a layer of a large network over such a pool does not.
DEFAULT_CACHE_BUDGET_GB = 20.0

#: Bytes per stored value, and the files' suffix.
_FORMATS = {"disk": (np.float32, "f32"), "float16": (np.float16, "f16")}

#: The largest finite float16: larger activations are stored as this (never as inf, whose
#: upsampling would give NaN).
_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class CachePlan:
    """The chosen policy and the bytes it needs (``mode``: ``"disk"``, ``"float16"`` or ``"recompute"``)."""

    mode: str
    bytes_needed: int  # this rank's cache, all layers
    float32_bytes: int  # what the float32 cache would take (for the log)
    budget_bytes: int

    def describe(self) -> str:
        """One line for the log: what was chosen and why."""
        gb = lambda b: f"{b / 1e9:.2f} GB"  # noqa: E731
        if self.mode == "recompute":
            return (f"activation cache: none, pass 2 runs the network again (a float32 cache would take "
                    f"{gb(self.float32_bytes)}, budget {gb(self.budget_bytes)})")
        precision = "float32" if self.mode == "disk" else "float16"
        return f"activation cache: {precision} on disk, {gb(self.bytes_needed)} (budget {gb(self.budget_bytes)})"


def plan_cache(requested: str, shapes: dict[str, tuple[int, int, int]], n_images: int, *,
               budget_gb: float) -> CachePlan:
    """Choose the cache for ``n_images`` images of layers of ``shapes`` (``(C, H, W)`` each).

    ``requested`` ``"auto"`` takes float32 within ``budget_gb``, else
    recomputes; an explicit ``"disk"``, ``"float16"`` or ``"recompute"`` is
    kept whatever the budget.
    """
    check_cache_options(requested, budget_gb)
    values = n_images * sum(math.prod(shape) for shape in shapes.values())
    budget = int(budget_gb * 1e9)
    mode = requested
    if requested == "auto":
        mode = "disk" if 4 * values <= budget else "recompute"
    needed = values * np.dtype(_FORMATS[mode][0]).itemsize if mode in _FORMATS else 0
    return CachePlan(mode=mode, bytes_needed=int(needed), float32_bytes=int(4 * values), budget_bytes=budget)


def check_cache_options(requested: str, budget_gb: float) -> None:
    """Refuse an unknown policy or a budget that is not a non-negative number (one line)."""
    if requested not in CACHE_POLICIES:
        raise ValueError(f"activation_cache must be one of {', '.join(map(repr, CACHE_POLICIES))}, "
                         f"not {requested!r}")
    if not isinstance(budget_gb, (int, float)) or not budget_gb >= 0 or math.isinf(budget_gb):
        raise ValueError(f"cache_budget_gb must be a non-negative number of GB, got {budget_gb!r}")


def check_free_space(plan: CachePlan, folder: Path, existing: int = 0) -> None:
    """Refuse (OSError, one line) a cache that the free space of ``folder`` cannot hold.

    ``existing``: bytes of this run's cache already on disk (a resumed run).
    """
    if plan.bytes_needed == 0:
        return
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    missing = plan.bytes_needed - existing
    if missing > free:
        raise OSError(f"the activation cache needs {missing:,} more bytes in {folder} but only {free:,} are "
                      f"free; free space there, pass another work folder, or use activation_cache='recompute' "
                      f"(--activation-cache recompute)")


def cache_suffix(mode: str) -> str:
    """The file suffix of a cache of ``mode`` (``"f32"`` or ``"f16"``)."""
    return _FORMATS[mode][1]


class ActivationFile:
    """Pass 1's activations of one layer on disk: ``(C, H, W)`` per image, in pool order.

    Plain positioned reads and writes rather than a memory map, so the
    pages live in the OS's file cache and not in the process's memory.
    ``mode`` ``"disk"`` stores float32, ``"float16"`` half precision
    (clipped to float16's finite range); :meth:`read` returns float32.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], mode: str = "disk") -> None:
        self.path = path
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(_FORMATS[mode][0])
        self.image_bytes = self.dtype.itemsize * math.prod(self.shape)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def write(self, first: int, array: np.ndarray) -> None:
        if self.dtype == np.float16:
            array = np.clip(array, -_FLOAT16_MAX, _FLOAT16_MAX)
        data = np.ascontiguousarray(array, dtype=self.dtype).tobytes()
        offset = first * self.image_bytes
        while data:
            written = os.pwrite(self.fd, data, offset)
            data, offset = data[written:], offset + written

    def read(self, first: int, stop: int) -> np.ndarray:
        size = (stop - first) * self.image_bytes
        data = os.pread(self.fd, size, first * self.image_bytes)
        if len(data) != size:
            raise RuntimeError(f"the activation cache {self.path} is shorter than expected (a partial run "
                               "from another version?); start again with restart=True")
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - first,) + self.shape).astype(np.float32)

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = close
