"""Dissection cost against a bare forward pass, and its peak memory for pools of N and 2N images.

For each case the same pool is run, side by side in one process:

- a bare forward pass up to the studied layer (TraceDict with early stop),
  same batch size, same DataLoader -- the floor any dissection must pay;
- ``dissect()`` over the same images (both passes, the activation cache,
  mask decoding, IoU counting).

A pool's masks are decoded once and kept in a label cache (they depend on
the pool, not on the network), so two ratios are printed:

- ``<case>_overhead_ratio_cold``: the first dissection of the pool, which
  decodes every mask (in a worker process, beside the forward pass);
- ``<case>_overhead_ratio``: every later dissection of it (another network,
  layer or threshold), the steady state of a study.

The machine is noisy, so bare and warm runs alternate ``--repeats`` times
and the ratios are of the medians.  Peak memory is measured in a fresh
subprocess per pool size (``ru_maxrss``), so the figures for N and 2N are
comparable.  Cases: ``mini_alexnet`` on the built-in world (conv5),
``squeezenet1_0`` (real ImageNet weights) on CamVid (features.12).  Ends
with ``name=value`` lines.

``--device cuda`` runs both on a GPU (images moved per batch, as
``dissect()`` does).

Usage: python benchmarks/dissect_overhead.py [--quick] [--repeats R] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO / ".." / "shared" / "realdata").resolve()


def bare_forward(model, layer, pool, batch_size):
    from unitscope.experiments._common import iter_batches, model_device
    from unitscope.hooks import TraceDict

    model.eval()
    device = model_device(model)
    with torch.inference_mode():
        for _, images, _, _ in iter_batches(pool, batch_size):
            with TraceDict(model, [layer], stop=True):
                model(images.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_dissect(model, layer, pool, batch_size, label_cache=None):
    from unitscope.experiments.dissect import dissect

    return dissect(model, [layer], pool, batch_size=batch_size, label_cache=label_cache)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def world_case(n_images):
    from unitscope.data import BrodenPool
    from unitscope.data.world import generate_world
    from unitscope.models import create_model, model_info

    home = Path(os.environ.get("UNITSCOPE_HOME", Path(tempfile.gettempdir()) / "unitscope-bench"))
    world = home / "world"  # the demo's world when it exists
    if not (world / "broden" / "index.csv").exists():
        world = home / "bench-world"
        generate_world(world)
    torch.manual_seed(0)
    model = create_model("mini_alexnet", num_classes=10)
    pool = BrodenPool(world / "broden", preprocessing=model_info(model).preprocessing)
    n = min(n_images, len(pool))
    return model, "conv5", pool.subset(range(n))


def camvid_case(n_images):
    from unitscope.data import camvid_pool
    from unitscope.models import create_model, model_info

    model = create_model("squeezenet1_0", weights=REALDATA / "models" / "squeezenet1_0_imagenet.pth")
    pool = camvid_pool(REALDATA / "camvid", preprocessing=model_info(model).preprocessing)
    n = min(n_images, len(pool))
    return model, "features.12", pool.subset([i % len(pool) for i in range(n)])


CASES = {"world": world_case, "camvid": camvid_case}


def child(case, n_images, batch_size, device):
    """Run one dissection in this process and print its peak RSS (KiB) as JSON."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, layer, pool = CASES[case](n_images)
    run_dissect(model.to(device), layer, pool, batch_size)
    print(json.dumps({"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/dissection runs (medians)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "N", "BATCH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), args.device)
        return
    sizes = {"world": 160 if args.quick else 400, "camvid": 50 if args.quick else 101}
    batch = {"world": 32, "camvid": 16}
    figures = {"device": args.device}
    for case in CASES:
        if case == "camvid" and not REALDATA.is_dir():
            print(f"skipping camvid: {REALDATA} not found")
            continue
        model, layer, pool = CASES[case](sizes[case])
        model = model.to(args.device)
        bare_forward(model, layer, pool.subset(range(min(8, len(pool)))), batch[case])  # warm-up
        with tempfile.TemporaryDirectory(prefix="unitscope-bench-labels-") as cache:
            t_cold = timed(run_dissect, model, layer, pool, batch[case], label_cache=cache)
            t_bare, t_warm = [], []
            for _ in range(args.repeats):
                t_bare.append(timed(bare_forward, model, layer, pool, batch[case]))
                t_warm.append(timed(run_dissect, model, layer, pool, batch[case], label_cache=cache))
        bare, warm = statistics.median(t_bare), statistics.median(t_warm)
        print(f"{case}: {len(pool)} images, batch {batch[case]}: bare forward {bare:.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in t_bare)}), dissection {warm:.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in t_warm)}), first dissection of the pool {t_cold:.2f} s")
        figures[f"{case}_overhead_ratio"] = warm / bare
        figures[f"{case}_overhead_ratio_cold"] = t_cold / bare
        rss = {}
        for n in (sizes[case], 2 * sizes[case]):
            out = subprocess.run([sys.executable, __file__, "--child", case, str(n), str(batch[case]),
                                  "--device", args.device],
                                 capture_output=True, text=True, check=True)
            rss[n] = json.loads(out.stdout.strip().splitlines()[-1])["max_rss_kib"] / 1024
            print(f"{case}: peak memory with {n} images {rss[n]:.0f} MiB")
        n1, n2 = sorted(rss)
        figures[f"{case}_peak_mib_n"] = rss[n1]
        figures[f"{case}_peak_mib_2n"] = rss[n2]
        figures[f"{case}_memory_ratio_2n_over_n"] = rss[n2] / rss[n1]
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    main()
