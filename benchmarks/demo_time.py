"""Wall time of ``unitscope demo``: cold (fresh caches) and warm (everything cached), and per stage.

Runs ``unitscope demo --quick --out HOME/demo`` twice in a subprocess with
``UNITSCOPE_HOME`` set to a fresh temporary folder: the first run builds the
world, trains both networks and runs every experiment (cold); the second
finds them in the caches (warm).  Per-stage times are read from the
``timings`` of the ``run.json`` each run writes into its results folder.
The targets on the 2-core reference machine: cold <= 15 min for ``make demo``
(the full demo, ``--full`` here), warm <= 2 min.

Prints a small table, then ``name=value`` lines. Usage::

    python benchmarks/demo_time.py [--full] [--keep] [--home DIR] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = "from unitscope.cli.main import main; main()"


def run_demo(home: Path, *, quick: bool, timeout: float) -> tuple[float, dict[str, float]]:
    """Run the demo once; return its wall time (s) and the stage timings of its run.json."""
    out = home / "demo"
    command = [sys.executable, "-c", DEMO, "demo", "--out", str(out)] + (["--quick"] if quick else [])
    env = dict(os.environ, UNITSCOPE_HOME=str(home))
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-20:])
        raise SystemExit(f"`unitscope demo` failed with exit code {done.returncode}:\n{tail}")
    run_json = out / "run.json"
    timings: dict[str, float] = {}
    if run_json.is_file():
        raw = json.loads(run_json.read_text(encoding="utf-8")).get("timings") or {}
        timings = {str(k): float(v) for k, v in raw.items() if isinstance(v, (int, float))}
    return wall, timings


def _key(stage: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", stage).strip("_").lower() or "stage"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="Time the full demo instead of --quick.")
    parser.add_argument("--keep", action="store_true", help="Keep the UNITSCOPE_HOME folder afterwards.")
    parser.add_argument("--home", type=Path, default=None,
                        help="UNITSCOPE_HOME to use (must not exist yet; default: a temporary folder).")
    parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds allowed per demo run.")
    args = parser.parse_args(argv)

    if args.home is not None and args.home.exists():
        parser.error(f"--home {args.home} exists; the cold run needs a fresh folder")
    home = args.home or Path(tempfile.mkdtemp(prefix="unitscope-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    quick = not args.full
    try:
        cold, cold_stages = run_demo(home, quick=quick, timeout=args.timeout)
        warm, warm_stages = run_demo(home, quick=quick, timeout=args.timeout)
    finally:
        if not args.keep and args.home is None:
            shutil.rmtree(home, ignore_errors=True)

    mode = "quick" if quick else "full"
    print(f"unitscope demo ({mode}), UNITSCOPE_HOME={home}{'' if args.keep or args.home else ' (removed)'}")
    stages = list(dict.fromkeys(list(cold_stages) + list(warm_stages)))
    width = max([len(s) for s in stages] + [len("total (wall)")])
    print(f"{'stage':<{width}}  {'cold s':>9}  {'warm s':>9}")
    for stage in stages:
        c, w = cold_stages.get(stage), warm_stages.get(stage)
        print(f"{stage:<{width}}  {c if c is not None else float('nan'):9.1f}  "
              f"{w if w is not None else float('nan'):9.1f}")
    print(f"{'total (wall)':<{width}}  {cold:9.1f}  {warm:9.1f}")
    print(f"demo_mode={mode}")
    print(f"demo_cold_s={cold:.1f}")
    print(f"demo_warm_s={warm:.1f}")
    print(f"demo_warm_speedup={cold / warm if warm > 0 else float('nan'):.1f}")
    for stage in stages:
        if stage in cold_stages:
            print(f"stage_cold_{_key(stage)}_s={cold_stages[stage]:.2f}")
        if stage in warm_stages:
            print(f"stage_warm_{_key(stage)}_s={warm_stages[stage]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
