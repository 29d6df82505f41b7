"""Speed of the occlusion and minimal-image experiments, measured side by side in one run.

Prints ``name=value`` lines at the end:

- ``bare_forward_per_s``: images per second through the network up to the
  studied layer (batches of ``--batch-size`` full images); the yardstick.
- ``occluded_full_per_s`` / ``occluded_full_ratio``: occluded full-image
  copies per second in the naive sweep (``crop=False``), and their ratio to
  the bare forward (target >= 0.8: building occluded copies costs little).
- ``occluded_crop_per_s`` / ``occluded_crop_ratio``: RF-cropped occluded
  copies per second (a crop counts as one forward), and the ratio.
- ``crop_speedup_vs_full``: time the naive full-image sweep would take for
  the same images (its copies at the measured full-image rate) over the
  cropped sweep's time: what cropping to the RF and skipping far occluder
  positions buys, with identical numbers.
- ``rf_all_units_s`` / ``rf_per_unit_estimate_s`` / ``rf_speedup_vs_per_unit``:
  wall time of the empirical RF of every unit of the layer (top-k pass
  included) against a per-unit approach that reruns a full-image sweep for
  every (unit, top image) pair.  The per-unit time is an *estimate*: pairs x
  sweep copies / measured full-image occluded rate (target >= 10x).
- ``minimal_candidates_per_s`` / ``minimal_ratio``: candidate images scored
  per second in the minimal-image search (SLIC and bookkeeping included)
  against bare full-network forwards per second (target >= 0.8).

Uses ``mini_alexnet`` with random weights at 128 px unless ``--weights`` is
given (a trained net is not needed for speed).  Runs in about 2-3 minutes on
two CPU cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from unitscope.experiments import empirical_receptive_fields, minimal_images
from unitscope.hooks import Trace


class RandomPool(Dataset):
    """Random images: noise upsampled from 1/8 resolution plus a little pixel noise, in ``[0, 1]``."""

    def __init__(self, n: int, size: int, *, labels=None, seed: int = 0, noise: float = 0.2) -> None:
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand((n, 3, max(2, size // 8), max(2, size // 8)), generator=g)
        fine = torch.rand((n, 3, size, size), generator=g)
        self.images = ((1 - noise) * F.interpolate(coarse, size=(size, size), mode="bilinear",
                                                   align_corners=False)
                       + noise * fine)
        self.labels = labels if labels is not None else [-1] * n

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], {"index": i, "id": f"random{i}", "source": "random", "label": self.labels[i]}


def forward_rate(model, layer, batch: torch.Tensor, *, seconds: float) -> float:
    """Images per second through ``model`` up to ``layer`` (the whole network when None)."""
    n, started = 0, None
    with torch.inference_mode():
        for warm in range(2):
            if layer is None:
                model(batch)
            else:
                with Trace(model, layer, stop=True, clone=False):
                    model(batch)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or n == 0:
            if layer is None:
                model(batch)
            else:
                with Trace(model, layer, stop=True, clone=False):
                    model(batch)
            if batch.is_cuda:
                torch.cuda.synchronize()
            n += batch.shape[0]
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="mini_alexnet checkpoint (default: random weights)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layer", default="conv3")
    parser.add_argument("--images", type=int, default=10, help="pool size for the RF run")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--occluder-stride", type=int, default=4,
                        help="occluder grid step (default 4 keeps the naive sweep short; the paper's "
                             "scaled default at 128 px is 2)")
    parser.add_argument("--naive-images", type=int, default=1,
                        help="images of the naive full-image sweep that measures its rate")
    parser.add_argument("--minimal-images", type=int, default=12)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each rate measurement")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    import skimage.segmentation  # noqa: F401  (a one-time import of seconds, not search time)

    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.weights:
        from unitscope.models import create_model

        model = create_model("mini_alexnet", weights=args.weights)
    else:
        from unitscope.models.mini_alexnet import MiniAlexNet

        model = MiniAlexNet(10, width=32, input_size=args.resolution)
    model = model.to(device).eval()
    identity = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    size, bs = args.resolution, args.batch_size
    results: dict[str, float | str] = {"device": str(device), "layer": args.layer, "resolution": size,
                                       "batch_size": bs, "threads": torch.get_num_threads()}
    batch = RandomPool(bs, size, seed=1).images.to(device)

    # 1. the yardstick, measured before and after the occlusion runs (the machine may be shared)
    bare_before = forward_rate(model, args.layer, batch, seconds=args.seconds)

    # 2. naive full-image sweep: the full-image occluded rate
    few = RandomPool(args.naive_images, size, seed=2)
    naive = empirical_receptive_fields(model, args.layer, few, top_k=args.naive_images, units=[0], crop=False,
                                       stride=args.occluder_stride, batch_size=bs, **identity)
    full_rate = naive.stats["copies"] / naive.stats["occlusion_s"]
    sweep = naive.stats["copies"] // naive.stats["images"]  # copies per image (grid + reference)

    # 3. every unit of the layer, RF-cropped, one set of occlusions per image
    pool = RandomPool(args.images, size, seed=3)
    started = time.perf_counter()
    rf = empirical_receptive_fields(model, args.layer, pool, top_k=args.top_k, crop=True,
                                    stride=args.occluder_stride, batch_size=bs, **identity)
    rf_wall = time.perf_counter() - started
    crop_rate = rf.stats["copies"] / rf.stats["occlusion_s"]
    bare_after = forward_rate(model, args.layer, batch, seconds=args.seconds)
    bare = (bare_before + bare_after) / 2
    pairs = int((rf.top_ids >= 0).sum())
    per_unit_estimate = pairs * sweep / full_rate
    naive_same_images = rf.stats["copies_naive"] / full_rate

    results.update({
        "bare_forward_per_s": bare, "bare_forward_before_per_s": bare_before,
        "bare_forward_after_per_s": bare_after,
        "occluded_full_per_s": full_rate, "occluded_full_ratio": full_rate / bare,
        "occluded_crop_per_s": crop_rate, "occluded_crop_ratio": crop_rate / bare,
        "crop_copies": rf.stats["copies"], "crop_pixel_fraction": rf.stats["pixels"] / rf.stats["pixels_naive"],
        "crop_speedup_vs_full": naive_same_images / rf.stats["occlusion_s"],
        "rf_units": len(rf.units), "rf_images": rf.stats["images"], "rf_unit_image_pairs": pairs,
        "rf_all_units_s": rf_wall, "rf_per_unit_estimate_s": per_unit_estimate,
        "rf_per_unit_is_estimate": "yes (pairs x full sweep copies / measured full-image occluded rate)",
        "rf_speedup_vs_per_unit": per_unit_estimate / rf_wall,
        "rf_mean_size_px": float(np.nanmean(rf.sizes)), "rf_theoretical_px": rf.theoretical.size,
    })

    # 4. minimal images: candidates per second against bare full-network forwards
    probe = RandomPool(args.minimal_images, size, seed=4, noise=0.0)  # smooth: SLIC finds its segments
    with torch.inference_mode():
        labels = model(probe.images.to(device)).argmax(1).tolist()
    probe.labels = labels  # every image "correct": the search runs on all of them
    bare_full_before = forward_rate(model, None, batch, seconds=args.seconds)
    started = time.perf_counter()
    # random colour fields need a high SLIC compactness to give about the asked number of segments
    search = minimal_images(model, probe, n_segments=args.segments, compactness=100.0, batch_size=bs,
                            **identity)
    minimal_wall = time.perf_counter() - started
    bare_full_after = forward_rate(model, None, batch, seconds=args.seconds)
    bare_full = (bare_full_before + bare_full_after) / 2
    candidates = search.counts["candidates"]
    results.update({
        "minimal_images": search.counts["evaluated"], "minimal_candidates": candidates,
        "minimal_mean_segments": float(np.mean([r.n_segments for r in search.records])),
        "minimal_wall_s": minimal_wall, "minimal_candidates_per_s": candidates / minimal_wall,
        "bare_full_forward_per_s": bare_full, "minimal_ratio": candidates / minimal_wall / bare_full,
    })
    for name, value in results.items():
        print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    main()
