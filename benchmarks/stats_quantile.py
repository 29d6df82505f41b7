"""Cost and accuracy of RunningQuantile on dissection-sized batches.

A batch is the activations of one conv layer for 64 images at 16x16 positions
and 256 units, flattened to (64*16*16, 256) = (16384, 256) values. The cost
of adding it is compared with the forward pass of the conv layer that would
produce it (3x3, 384 -> 256 channels). Accuracy is the worst rank error at
q = 0.995 over the units, against the exact order statistic, beside the bound
the sketch states.

Prints ``name=value`` lines. Usage: ``python benchmarks/stats_quantile.py
[--device cuda] [--batches 40] [--resolution 4096]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from unitscope.stats import RunningQuantile


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, repeats: int) -> float:
    fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--resolution", type=int, default=4096)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)

    conv = torch.nn.Conv2d(384, 256, 3, padding=1).to(device)
    features = torch.randn(64, 384, 16, 16, device=device, generator=gen)
    with torch.no_grad():
        conv_s = _time(lambda: conv(features), device, repeats=3)
        acts = torch.relu(conv(features))
    batch = acts.permute(0, 2, 3, 1).reshape(-1, 256)  # (16384, 256), ~half zeros

    # Stream of post-ReLU-like batches: 70% exact zeros, log-normal tail.
    def make_batch() -> torch.Tensor:
        x = torch.randn(16384, 256, device=device, generator=gen).exp_()
        x[torch.rand(16384, 256, device=device, generator=gen) < 0.7] = 0.0
        return x

    stream = [make_batch() for _ in range(args.batches)]
    rq = RunningQuantile(resolution=args.resolution, seed=0)
    rq.add(batch)  # warm-up, and the real activations are part of the stream
    _sync(device)
    start = time.perf_counter()
    for x in stream:
        rq.add(x)
    _sync(device)
    add_s = (time.perf_counter() - start) / len(stream)
    query_s = _time(lambda: rq.quantiles([0.5, 0.99, 0.995, 0.999]), device, repeats=2)

    everything = torch.cat([batch, *stream]).cpu().numpy()
    n = everything.shape[0]
    answer = rq.quantiles(0.995).cpu().numpy()
    target = math.floor(0.995 * (n - 1)) + 1
    worst = 0
    for c in range(everything.shape[1]):
        column = np.sort(everything[:, c])
        below = np.searchsorted(column, answer[c], side="left")
        at_most = np.searchsorted(column, answer[c], side="right")
        worst = max(worst, below + 1 - target, target - at_most, 0)
    items = rq.state_dict()["items"].shape[1]

    print(f"device={device}")
    print(f"torch_threads={torch.get_num_threads()}")
    print(f"resolution={args.resolution}")
    print(f"values_per_unit={n}")
    print(f"conv3x3_384to256_64x16x16_forward_ms={conv_s * 1e3:.2f}")
    print(f"quantile_add_16384x256_ms={add_s * 1e3:.2f}")
    print(f"quantile_add_over_conv_forward={add_s / conv_s:.3f}")
    print(f"quantile_add_values_per_s={16384 * 256 / add_s:.3g}")
    print(f"quantile_query_4_levels_ms={query_s * 1e3:.2f}")
    print(f"sketch_items_per_unit={items}")
    print(f"sketch_depth={rq.depth}")
    print(f"rank_error_q0995_worst={worst / n:.3g}")
    print(f"rank_error_q0995_bound={rq.rank_error_bound(0.995):.3g}")
    print(f"rank_error_q0995_closed_form={RunningQuantile.rank_error_bound_for(0.995, count=n, resolution=args.resolution):.3g}")


if __name__ == "__main__":
    main()
