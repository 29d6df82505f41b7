"""The cost of ``unitscope emergence`` per snapshot, against one bare forward pass over the same pool.

Side by side in one process, on the study world's Broden pool (``unitscope
world --preset study``: 128 px images; the first ``--images`` of them) and a
``mini_alexnet`` at the world's size with several snapshots (checkpoints of
differently seeded weights, saved as a training run's would be):

- a bare forward pass of the pool up to the deepest studied layer
  (``TraceDict`` with early stop), same batch size, same loader: the floor;
- ``emergence_study`` over every snapshot (null off), the label cache
  already filled: everything it does per snapshot (open and fingerprint
  the checkpoint, check the layers, dissect with one forward pass, save the
  snapshot's part), divided by the number of snapshots.

Two cases: ``conv5`` alone (the census's layer; the headline
``emergence_per_snapshot_over_forward``) and the five layers the study
dissects, ``conv1``-``conv5`` (``..._conv1_to_conv5``), where the early
layers' large maps make the dissection's own statistics and counting cost
more than the forward pass.  Bare and emergence runs alternate
``--repeats`` times; the ratio is of the medians.  The first emergence run starts with an empty label cache: its
first snapshot decodes every mask, reported apart
(``first_snapshot_label_fill_over_forward``).  One thread for both (the
machine is shared).  Ends with ``name=value`` lines.

Usage: python benchmarks/emergence_cost.py [--images N] [--snapshots K] [--repeats R] [--world DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dissect_overhead import bare_forward  # the same floor as the dissection benchmark (benchmarks/ is on the path)

STUDY_WORLD = Path("/work/studyhome/world-study")


def study_world(folder: Path | None) -> Path:
    """The study preset's world: ``folder``, else the shared one, else generated under the temp folder."""
    from unitscope.data.world import generate_world

    for candidate in (folder, STUDY_WORLD):
        if candidate is not None and (candidate / "broden" / "index.csv").is_file():
            return candidate
    world = Path(tempfile.gettempdir()) / "unitscope-bench-world-study"
    if not (world / "broden" / "index.csv").is_file():
        generate_world(world, preset="study")
    return world


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400, help="images of the pool (default 400)")
    parser.add_argument("--snapshots", type=int, default=4, help="snapshots of the run (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/emergence runs (medians)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--world", type=Path, default=None, help="a world made by `unitscope world --preset study`")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from unitscope.data import BrodenPool
    from unitscope.models import create_model, model_info, save_checkpoint
    from unitscope.study import emergence_study
    from unitscope.training.snapshots import log_spaced_steps, snapshot_file, write_manifest

    world = study_world(args.world)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="unitscope-bench-emergence-") as tmp:
        tmp = Path(tmp)
        steps = log_spaced_steps(2 ** (args.snapshots - 1))
        run = tmp / "run"
        run.mkdir()
        for step in steps:
            net = create_model("mini_alexnet", num_classes=34, input_size=128, seed=step)
            save_checkpoint(net, run / snapshot_file(step))
        write_manifest(run, steps=steps, total_steps=steps[-1], network="mini_alexnet")
        pool = BrodenPool(world / "broden", preprocessing=model_info(net).preprocessing)
        pool = pool.subset(range(min(args.images, len(pool))))
        bare_forward(net, "conv5", pool.subset(range(8)), args.batch_size)  # warm-up
        print(f"mini_alexnet over {len(pool)} study-world images at 128 px, batch {args.batch_size}, "
              f"{len(steps)} snapshots (steps {', '.join(map(str, steps))}), 1 thread")
        # conv5: the layer of the census; conv1-conv5: every layer the study dissects (study.DEMO_LAYERS)
        for case, layers in (("", ["conv5"]), ("_conv1_to_conv5", ["conv1", "conv2", "conv3", "conv4", "conv5"])):
            cache = tmp / f"labels{case}"

            def emergence(out):
                start = time.perf_counter()
                result = emergence_study(run, layers, pool, network="run", out=out, null=False, label_cache=cache,
                                         batch_size=args.batch_size)
                return time.perf_counter() - start, result

            t_bare = [timed_bare(net, layers[-1], pool, args.batch_size)]
            cold_total, cold = emergence(tmp / f"out{case}-cold")
            t_emergence = []
            for r in range(args.repeats):
                t_bare.append(timed_bare(net, layers[-1], pool, args.batch_size))
                t_emergence.append(emergence(tmp / f"out{case}-{r}")[0] / len(steps))
            bare, per_snapshot = statistics.median(t_bare), statistics.median(t_emergence)
            first = cold.wall_s[str(steps[0])]
            later = statistics.median(cold.wall_s[str(s)] for s in steps[1:]) if len(steps) > 1 else float("nan")
            print(f"layers {', '.join(layers)}: bare forward to {layers[-1]} {bare:.2f} s "
                  f"(runs {', '.join(f'{t:.2f}' for t in t_bare)}); emergence per snapshot, label cache filled, "
                  f"{per_snapshot:.2f} s (runs {', '.join(f'{t:.2f}' for t in t_emergence)}); first run, empty "
                  f"label cache: {cold_total:.2f} s, its first snapshot's dissection {first:.2f} s (decodes the "
                  f"masks), the later ones {later:.2f} s")
            figures.update({f"bare_forward_s{case}": bare, f"emergence_per_snapshot_s{case}": per_snapshot,
                            f"emergence_per_snapshot_over_forward{case}": per_snapshot / bare,
                            f"first_snapshot_label_fill_over_forward{case}": first / bare,
                            f"later_snapshot_dissection_over_forward{case}": later / bare})
    print(f"images={len(pool)}")
    print(f"snapshots={len(steps)}")
    for name, value in figures.items():
        print(f"{name}={value:.3f}")


def timed_bare(model, layer, pool, batch_size) -> float:
    start = time.perf_counter()
    bare_forward(model, layer, pool, batch_size)
    return time.perf_counter() - start


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
