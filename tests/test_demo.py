"""`unitscope demo --quick`: the whole study end to end, and a second run that reuses every cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

VENV_BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_quick_demo_runs_every_stage_then_reuses_the_caches(tmp_path):
    env = {"UNITSCOPE_HOME": str(tmp_path / "home"), "PATH": str(VENV_BIN) + ":/usr/bin:/bin",
           "HOME": str(tmp_path)}
    out = tmp_path / "results"
    first = subprocess.run([str(VENV_BIN / "unitscope"), "demo", "--quick", "--out", str(out)],
                           capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    report = out / "report" / "index.html"
    assert f"report: {report}" in first.stdout
    html = report.read_text()
    for section in ("Layer preference", "Minimal images", "Receptive fields", "Object census",
                    "Ablation"):
        assert section in html
    for name in ("scenenet", "objectnet", "scenenet-random", "objectnet-random"):
        units = pd.read_csv(out / name / "dissect" / "units.csv")
        assert set(units.layer) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    assert (out / "preference" / "fractions.csv").exists()
    assert (out / "scenenet" / "minimal" / "masks").is_dir()
    assert (out / "scenenet" / "rf" / "summary.csv").exists()
    assert (out / "scenenet" / "localize" / "objects.csv").exists()
    assert (out / "scenenet" / "ablate" / "classes.csv").exists()
    run = json.loads((out / "run.json").read_text())
    assert set(run["networks"]) == {"scenenet", "objectnet"}
    assert run["timings"]["dissect"] > 0

    second = subprocess.run([str(VENV_BIN / "unitscope"), "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    for stage in ("dissect", "preference", "minimal", "receptive_fields", "localize_ablate"):
        assert f"{stage}: cached" in second.stderr
    rerun = json.loads((out / "run.json").read_text())
    assert rerun["timings"]["dissect"] == 0.0
