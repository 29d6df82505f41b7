"""Empirical receptive fields of a deep layer: naive, exact and adaptive sweeps measured side by side.

The same units and top images, three ways (issue 15):

- *naive*: one full-image forward per occluder position, batched
  (``crop=False, incremental=False``);
- *exact*: the default sweep (``mode="exact"``): positions that miss the
  unit's theoretical window skipped, one set of occlusions shared by all
  units of an image, and incremental inference
  (:mod:`unitscope.models.incremental`): each copy recomputes only the part of
  each layer its occluder reaches and its units read;
- *adaptive*: Krypton's drill-down (``mode="adaptive"``, also incremental):
  every ``--coarse``-th position first, the paper's stride only in cells
  whose coarse values and their second differences are above the tolerance
  of the unit's peak, the rest interpolated.

Prints ``name=value`` lines at the end:

- ``theoretical_rf_px`` / ``rf_covers_input``: the layer's theoretical RF and
  whether it covers the image (then the crop cannot save anything);
- ``naive_s`` / ``exact_s`` / ``adaptive_s``, ``*_passes`` and
  ``*_passes_per_s``: occlusion time (locating the maxima included, the
  top-k data pass, the same for all three, excluded), forward passes of
  occluded copies and their rate; ``exact_incremental``: whether the exact
  sweep ran incrementally;
- ``exact_speedup_vs_naive`` (target >= 2), ``adaptive_speedup_vs_exact``
  (target >= 10);
- ``adaptive_max_abs_error_rel`` (target <= 0.01): over the live units (a
  dead unit's map is all zero in every mode), the largest absolute difference
  between the adaptive and exact averaged maps, relative to the exact map's
  peak; ``exact_vs_naive_max_abs_error_rel`` the same for exact against naive
  (float rounding only);
- ``exact_map_rough_share``: the share of the exact maps' support where the
  map interpolated from every coarse step misses by more than the tolerance
  -- about the least share of positions *any* drill-down at that step must
  occlude to stay within the tolerance, so ``1 / rough_share`` bounds its
  speed-up.

Measured on two CPU cores shared with other work (load 8-10), mini_alexnet
conv5 at 80 px (theoretical RF 83 px: it covers the image, so the crop saves
nothing), random weights, 1 image, 8 units (6 live), 5,930 passes per sweep:

- one thread (the default), three runs: naive 21.5-36.2 s, exact 5.0-7.3 s,
  ``exact_speedup_vs_naive`` 3.2, 3.2 and 7.3 (815-1,190 passes/s against
  164-276); ``exact_vs_naive_max_abs_error_rel`` 9.2e-06 (rounding);
- two threads (``--threads 0``), two runs: naive 71.0 and 39.3 s, exact
  43.9 and 19.9 s, 1.6x and 2.0x: small convolutions on two threads of a
  loaded machine wait on each other, and that ratio says more about the
  load than about the method;
- adaptive: 401 coarse passes, 5,916 in all, ``adaptive_speedup_vs_exact``
  0.72-0.99, ``adaptive_max_abs_error_rel`` 0.0027.  It cannot do much better
  here: ``exact_map_rough_share`` is 0.66 -- linear interpolation from every
  4th position misses the exact map by more than 1% of its peak on two
  thirds of its support (neighbouring positions differ by a median 3-4% of
  the peak: each has its own random patch, and a one-step shift uncovers
  other pixels), so no coarse-to-fine drill-down at 1% can skip more than a
  third of the passes (at most 1.5x).  The issue's 10x at 1% is out of reach
  for such maps.

With SceneNet's trained convolutions (``--weights`` of the study's
SceneNet, width 16; 2 live units) the maps are more compact: the crop skips
positions (exact 4,293 passes), ``exact_speedup_vs_naive`` 3.8-4.9,
adaptive 3,571 passes, 1.17x exact at an error of 0.0073 of the peak;
``exact_map_rough_share`` 0.32 (a drill-down bound of about 3x).

On the same machine quiet (no other work), the defaults: naive 7.9 s,
exact 2.2 s, adaptive 2.3 s (``exact_speedup_vs_naive`` 3.56,
``adaptive_speedup_vs_exact`` 0.98, error 0.0027, rough share 0.66); two
threads (``--threads 0``): 2.66 and 1.01.  SceneNet's convolutions (the
study world's, retrained on one thread): 2.62 and 1.11 at an error of
0.0076, rough share 0.31; over 16 images, top-4 each (65,230 naive
passes, maps averaged over four images): 5.70 and 1.23 at 0.0047, rough
share 0.47.

Uses ``mini_alexnet`` (``--width`` 32) with seeded random weights unless
``--weights`` gives a checkpoint (its convolutions are loaded; the
classifier, which depends on the input size, is not needed).  The defaults
(conv5 at 80 px, 1 image, 8 units) run in 40 s to 3 minutes on two busy CPU
cores, most of it the naive sweep; ``--device cuda`` prints the same figures on a
GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from experiments_speed import RandomPool
from unitscope.experiments import empirical_receptive_fields
from unitscope.models.mini_alexnet import MiniAlexNet
from unitscope.models.rf_window import theoretical_window


def network(args) -> torch.nn.Module:
    """mini_alexnet at ``--resolution``: seeded random weights, or a checkpoint's convolutions."""
    torch.manual_seed(args.seed)
    if not args.weights:
        return MiniAlexNet(10, width=args.width, input_size=args.resolution).eval()
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    convs = {k: v for k, v in state.items() if k.startswith("conv")}
    width = convs["conv1.conv.weight"].shape[0]
    model = MiniAlexNet(10, width=width, input_size=args.resolution)
    model.load_state_dict(convs, strict=False)
    return model.eval()


def rough_share(maps: np.ndarray, live, step: int, tolerance: float) -> float:
    """Share of the live maps' support where the map, interpolated bilinearly from every ``step``-th
    pixel, misses by more than ``tolerance`` of its peak: about the least share of positions any
    coarse-to-fine drill-down at that step must occlude to keep within the tolerance."""
    missed = support = 0
    for u in live:
        m = maps[u]
        ys, xs = np.nonzero(m)
        m = m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        rows = np.unique(np.r_[np.arange(0, m.shape[0], step), m.shape[0] - 1])
        cols = np.unique(np.r_[np.arange(0, m.shape[1], step), m.shape[1] - 1])
        coarse = m[np.ix_(rows, cols)]
        by_row = np.stack([np.interp(np.arange(m.shape[1]), cols, r) for r in coarse])
        fine = np.stack([np.interp(np.arange(m.shape[0]), rows, c) for c in by_row.T], axis=1)
        missed += int((np.abs(fine - m) > tolerance * m.max()).sum())
        support += m.size
    return missed / max(support, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="mini_alexnet checkpoint (default: random weights)")
    parser.add_argument("--width", type=int, default=32, help="conv1 channels of the random network")
    parser.add_argument("--resolution", type=int, default=80,
                        help="image side (default 80: conv5's 83 px theoretical RF covers the image)")
    parser.add_argument("--layer", default="conv5")
    parser.add_argument("--images", type=int, default=1, help="pool size (every unit's top-k drawn from it)")
    parser.add_argument("--top-k", type=int, default=1)
    parser.add_argument("--units", type=int, default=8, help="the first N units of the layer")
    parser.add_argument("--coarse", type=int, default=4, help="adaptive: fine steps per coarse step")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="adaptive: the interpolation error allowed, as a fraction of each unit's peak")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: steadier ratios on a shared machine; 0: torch's default)")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = network(args).to(device)
    pool = RandomPool(args.images, args.resolution, seed=3)
    window = theoretical_window(model, args.layer, input_shape=(args.resolution, args.resolution))
    options = dict(top_k=args.top_k, units=list(range(args.units)), batch_size=args.batch_size,
                   mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    runs = {
        "naive": dict(crop=False, incremental=False),
        "exact": dict(crop=True),
        "adaptive": dict(crop=True, mode="adaptive", coarse=args.coarse, tolerance=args.tolerance),
    }
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    results, seconds = {}, {}
    for name, extra in runs.items():
        started = time.perf_counter()
        results[name] = empirical_receptive_fields(model, args.layer, pool, **options, **extra)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds[name] = results[name].stats["occlusion_s"]
        print(f"{name}: {results[name].stats['copies']} passes, {seconds[name]:.1f} s occlusion, "
              f"{time.perf_counter() - started:.1f} s in all", flush=True)

    exact = results["exact"].maps
    live = [u for u in range(len(exact)) if exact[u].max() > 0]

    def error(maps: np.ndarray) -> float:
        return max((float(np.abs(maps[u] - exact[u]).max() / exact[u].max()) for u in live), default=float("nan"))

    figures = {
        "device": str(device), "threads": torch.get_num_threads(), "layer": args.layer,
        "resolution": args.resolution, "weights": args.weights or f"random (seed {args.seed})",
        "theoretical_rf_px": window.size, "rf_covers_input": window.size >= args.resolution,
        "images_occluded": results["exact"].stats["images"], "units": args.units, "live_units": len(live),
        "coarse": args.coarse, "tolerance": args.tolerance,
        "naive_passes": results["naive"].stats["copies"], "exact_passes": results["exact"].stats["copies"],
        "adaptive_passes": results["adaptive"].stats["copies"],
        "adaptive_coarse_passes": results["adaptive"].stats["copies_coarse"],
        "exact_incremental": results["exact"].stats.get("incremental"),
        "naive_s": seconds["naive"], "exact_s": seconds["exact"], "adaptive_s": seconds["adaptive"],
        **{f"{name}_passes_per_s": results[name].stats["copies"] / seconds[name] for name in runs},
        "exact_vs_naive_max_abs_error_rel": error(results["naive"].maps),
        "exact_speedup_vs_naive": seconds["naive"] / seconds["exact"],
        "adaptive_speedup_vs_exact": seconds["exact"] / seconds["adaptive"],
        "adaptive_max_abs_error_rel": error(results["adaptive"].maps),
        "exact_map_rough_share": rough_share(exact, live, args.coarse * results["exact"].stride, args.tolerance),
    }
    for name, value in figures.items():
        print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    main()
