"""Dissection at Broden scale: throughput and memory from 1k to 20k images, the cache's size, resume.

Builds (once; reused afterwards) a pool of ``--images`` annotated images at
``--size`` px from the built-in world in the Broden layout (the ``study``
preset: 34 scenes, 92 objects), then dissects ``mini_alexnet``'s conv5
(seeded random weights: speed does not depend on training) over the first
``--small`` images and over all of them, each in a fresh subprocess so
that its peak RSS is its own.  Then the resume test: the full dissection
runs again in a subprocess that is SIGKILLed once its checkpoint shows
``--kill-at`` images done, the same command runs again, and its tables must
equal the uninterrupted run's byte for byte.

Prints, and ends with, ``name=value`` lines:

- ``images_per_s_small`` / ``images_per_s_full``: images dissected per
  second (the ``dissect()`` call: both passes, mask decoding, the cache),
  and ``throughput_ratio_20k_over_1k`` (target >= 0.9);
- ``forward_images_per_s``: a bare forward pass up to the layer over the
  small pool (same batches), the floor any dissection pays;
- ``peak_rss_mib_small`` / ``peak_rss_mib_full`` and
  ``memory_ratio_20k_over_1k`` (target <= 1.1);
- ``cache_gb_per_10k_images``: the activation cache's bytes on disk at the
  end of pass 1, per 10,000 images, and ``cache_policy``;
  ``label_files_gb_per_10k_images``: the decoded masks beside it (the run
  folder's label files; with a label cache they are kept there instead);
- ``projected_63k_minutes``: Broden's 63,305 images at the full run's rate;
- ``resumed_recomputed_images``: images the rerun after the kill sent
  through the network again (the rest came from the last checkpoint), and
  ``resumed_equal`` (1: the tables equal the uninterrupted run's).

Usage: python benchmarks/dissect_scale.py [--images 20000] [--small 1000] [--kill-at 15000]
       [--size 224] [--folder DIR] [--device cpu|cuda] [--threads N] [--activation-cache auto]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BRODEN_IMAGES = 63_305  # Network Dissection's Broden 1.0 (224 px)
LAYER = "conv5"


def build_pool(folder: Path, n_images: int, size: int) -> tuple[Path, float]:
    """A world of at least ``n_images`` Broden images at ``size`` px under ``folder``, and its build time.

    A larger world built there before is reused (the runs take its first
    images); else one of ``n_images`` is generated.
    """
    from unitscope.data.world import generate_world

    started = time.perf_counter()
    built = sorted((int(p.name.rsplit("-", 1)[1]), p) for p in folder.glob(f"world-study-{size}px-*")
                   if p.name.rsplit("-", 1)[1].isdigit() and (p / "broden" / "index.csv").is_file())
    n_world = next((n for n, _ in built if n >= n_images), n_images)
    paths = generate_world(folder / f"world-study-{size}px-{n_world}", preset="study", size=size,
                           n_dissect=n_world, n_train=10, n_val=10, n_object_train=10, n_object_val=10)
    return Path(paths.broden), time.perf_counter() - started


def open_case(broden: Path, n_images: int, size: int, device: str):
    import torch

    from unitscope.data import BrodenPool
    from unitscope.models import create_model, model_info

    model = create_model("mini_alexnet", num_classes=34, input_size=size, seed=0).to(torch.device(device))
    pool = BrodenPool(broden, preprocessing=model_info(model).preprocessing)
    if len(pool) < n_images:
        raise SystemExit(f"{broden} has {len(pool)} images, fewer than {n_images}")
    return model, pool.subset(range(n_images))


def child(args) -> None:
    """One dissection in this process; prints its figures as one JSON line."""
    import torch

    from unitscope.experiments.dissect import dissect

    torch.set_num_threads(args.threads)
    model, pool = open_case(Path(args.broden), args.n, args.size, args.device)
    work = Path(args.work)
    forwarded = [0]
    model.register_forward_pre_hook(lambda module, inputs: forwarded.__setitem__(0, forwarded[0] + len(inputs[0])))
    cache_bytes, label_bytes = [0], [0]
    n_batches = -(-args.n // args.batch_size)

    def progress(done, total):
        if done == n_batches:  # the end of pass 1: the whole cache is on disk, and every label file
            cache_bytes[0] = sum(p.stat().st_size for p in work.glob("acts_rank*"))
            label_bytes[0] = sum(p.stat().st_size for p in work.glob("labels_rank*"))

    lines = []
    started = time.perf_counter()
    result = dissect(model, [LAYER], pool, network="mini_alexnet", batch_size=args.batch_size, work_dir=work,
                     checkpoint_every=args.checkpoint_every, activation_cache=args.activation_cache,
                     progress=progress, log=lines.append)
    seconds = time.perf_counter() - started
    result.save(Path(args.save))
    print(json.dumps({"seconds": seconds, "images": args.n, "max_rss_kib":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "cache_bytes": cache_bytes[0], "label_bytes": label_bytes[0],
                      "forwarded": forwarded[0] - 1,  # (less the layer check's one-image probe)
                      "policy": result.config["activation_cache"], "log": lines}))


def forward_rate(broden: Path, n_images: int, size: int, device: str, batch_size: int, threads: int) -> float:
    """Images per second of a bare load + forward pass up to the layer, same batches as the dissection."""
    import torch

    from unitscope.experiments._common import iter_batches
    from unitscope.hooks import TraceDict

    torch.set_num_threads(threads)
    model, pool = open_case(broden, n_images, size, device)
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for _, images, _, _ in iter_batches(pool, batch_size):
            with TraceDict(model, [LAYER], stop=True):
                model(images.to(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n_images / (time.perf_counter() - started)


def child_command(args, n: int, work: Path, save: Path) -> list[str]:
    return [sys.executable, __file__, "--child", "--broden", str(args.broden), "--n", str(n), "--work", str(work),
            "--save", str(save), "--size", str(args.size), "--device", args.device, "--threads", str(args.threads),
            "--batch-size", str(args.batch_size), "--checkpoint-every", str(args.checkpoint_every),
            "--activation-cache", args.activation_cache]


def run_child(args, n: int, work: Path, save: Path) -> dict:
    out = subprocess.run(child_command(args, n, work, save), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the dissection of {n} images failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def images_done(work: Path, batch_size: int) -> int:
    """Images of the full run behind its last checkpoint (pass 2: all of pass 1 and pass 2's batches)."""
    from unitscope.experiments._io import read_state

    path = work / "rank0.state.npz"
    if not path.exists():
        return 0
    try:
        state = read_state(path)
    except (OSError, ValueError, KeyError):  # (being replaced right now)
        return 0
    return state["batch"] * batch_size if state["pass"] == 1 else 10 ** 12


def killed_and_resumed(args, work: Path, save: Path) -> tuple[dict, int]:
    """The full run SIGKILLed once ``--kill-at`` images are checkpointed, then the same command again."""
    proc = subprocess.Popen(child_command(args, args.images, work, save), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    done = 0
    while proc.poll() is None:
        done = images_done(work, args.batch_size)
        if done >= args.kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.5)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        raise SystemExit(f"the run to kill ended by itself (code {proc.returncode}) before {args.kill_at} images:\n"
                         f"{proc.stderr.read()[-3000:]}")
    return run_child(args, args.images, work, save), min(done, args.images)


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000, help="the full pool (default 20,000)")
    parser.add_argument("--small", type=int, default=1_000, help="the small pool: its first images (default 1,000)")
    parser.add_argument("--kill-at", type=int, default=None, help="images checkpointed before the kill "
                        "(default 3/4 of --images)")
    parser.add_argument("--size", type=int, default=224, help="image side in px (default 224)")
    parser.add_argument("--folder", type=Path, default=None, help="where the pool is built and kept "
                        "(default $UNITSCOPE_HOME/bench, else a folder under the system's temporary one)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--checkpoint-every", type=int, default=20, help="batches between checkpoints")
    parser.add_argument("--activation-cache", default="auto", help="auto, disk, float16 or recompute")
    parser.add_argument("--resume-beside", action="store_true", help="run the kill-and-resume test at the "
                        "same time as the throughput runs (faster on a shared machine; both throughputs then "
                        "share the CPU with it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--broden", "--n", "--work", "--save"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.n = int(args.n)
        child(args)
        return
    args.kill_at = args.kill_at if args.kill_at is not None else 3 * args.images // 4
    home = os.environ.get("UNITSCOPE_HOME")
    folder = args.folder or (Path(home) / "bench" if home else Path(tempfile.gettempdir()) / "unitscope-bench")
    args.broden, build_s = build_pool(folder, args.images, args.size)
    print(f"pool: {args.images:,} images at {args.size} px in {args.broden} ({build_s:.0f} s to build or find)")
    figures: dict[str, object] = {"pool_build_s": build_s}
    figures["forward_images_per_s"] = forward_rate(args.broden, args.small, args.size, args.device,
                                                   args.batch_size, args.threads)
    print(f"bare forward, {args.small:,} images: {figures['forward_images_per_s']:.1f} images/s")
    with tempfile.TemporaryDirectory(prefix="unitscope-scale-", dir=folder) as scratch:
        scratch = Path(scratch)
        runs = {}
        beside = {}
        if args.resume_beside:
            import threading

            def resume_test():
                beside["result"] = killed_and_resumed(args, scratch / "work-killed", scratch / "tables-killed")

            thread = threading.Thread(target=resume_test)
            thread.start()
        for label, n in (("small", args.small), ("full", args.images)):
            runs[label] = run_child(args, n, scratch / f"work-{label}", scratch / f"tables-{label}")
            r = runs[label]
            print(f"dissection of {n:,} images: {r['seconds']:.0f} s, {n / r['seconds']:.1f} images/s, peak RSS "
                  f"{r['max_rss_kib'] / 1024:.0f} MiB, cache {r['cache_bytes'] / 1e9:.2f} GB ({'; '.join(r['log'])})")
        if args.resume_beside:
            thread.join()
            if "result" not in beside:
                raise SystemExit("the kill-and-resume test failed (see above)")
            resumed, done = beside["result"]
        else:
            resumed, done = killed_and_resumed(args, scratch / "work-killed", scratch / "tables-killed")
        equal = same_files(scratch / "tables-full", scratch / "tables-killed")
        print(f"killed with {done:,} images checkpointed; the rerun sent {resumed['forwarded']:,} images through "
              f"the network in {resumed['seconds']:.0f} s; tables {'equal' if equal else 'DIFFER'}")
    small, full = runs["small"], runs["full"]
    rate_small, rate_full = args.small / small["seconds"], args.images / full["seconds"]
    figures.update({
        "device": args.device, "images_small": args.small, "images_full": args.images,
        "images_per_s_small": rate_small, "images_per_s_full": rate_full,
        "throughput_ratio_20k_over_1k": rate_full / rate_small,
        "dissection_over_forward": figures["forward_images_per_s"] / rate_full,
        "peak_rss_mib_small": small["max_rss_kib"] / 1024, "peak_rss_mib_full": full["max_rss_kib"] / 1024,
        "memory_ratio_20k_over_1k": full["max_rss_kib"] / small["max_rss_kib"],
        "cache_policy": full["policy"], "cache_gb_per_10k_images": full["cache_bytes"] / 1e9 * 1e4 / args.images,
        "label_files_gb_per_10k_images": full["label_bytes"] / 1e9 * 1e4 / args.images,
        "projected_63k_minutes": BRODEN_IMAGES / rate_full / 60,
        "resume_beside": int(args.resume_beside), "killed_at_images": done, "resumed_recomputed_images": resumed["forwarded"], "resumed_equal": int(equal),
    })
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    main()
