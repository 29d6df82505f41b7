"""Training time of the two reference networks on the default world, against the 5-minute budget.

The budget (SceneNet and ObjectNet each trained in <= 300 s on a 2-core
CPU) is a speed target, so it lives here and not in the tests: a loaded CI
machine once took 672 s for a training whose accuracy was fine.  The tests
(``tests/test_training_targets.py``) keep the accuracy targets.

Builds the default world and trains both networks into a fresh temporary
cache (cold), then prints a small table and ``name=value`` lines; a
``*_budget_ratio`` above 1 is over budget.  Usage::

    python benchmarks/training_time.py [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the temporary world and cache.")
    args = parser.parse_args()

    from unitscope.data.world import generate_world
    from unitscope.training import train_reference_networks

    scratch = Path(tempfile.mkdtemp(prefix="unitscope-bench-training-"))
    try:
        start = time.perf_counter()
        world = generate_world(scratch / "world")
        world_seconds = time.perf_counter() - start
        nets = train_reference_networks(world.root, cache_dir=scratch / "cache")
        figures = {"world_seconds": world_seconds}
        print(f"{'network':<10} {'top-1':>6} {'train s':>8} {'total s':>8}")
        for name in ("scenenet", "objectnet"):
            m = nets[name].metrics
            print(f"{name:<10} {m['val_top1']:>6.3f} {m['train_seconds']:>8.0f} {m['total_seconds']:>8.0f}")
            figures[f"{name}_val_top1"] = m["val_top1"]
            figures[f"{name}_total_seconds"] = m["total_seconds"]
            figures[f"{name}_budget_ratio"] = m["total_seconds"] / BUDGET_SECONDS
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for key, value in figures.items():
        print(f"{key}={value:.3f}")


if __name__ == "__main__":
    main()
