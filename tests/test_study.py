"""unitscope.study: the dissect sequence on toys, and the whole study from Python with its stage reuse."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from toys import IndicatorNet, RawToyPool

from unitscope.study import DissectionStudy, RunRecord, StudyConfig, dissect_study, run_study


def test_dissect_study_saves_network_null_census_and_tiles(tmp_path):
    pool, net = RawToyPool(n=10), IndicatorNet()
    bars = []

    class Bar:
        def close(self):
            bars[-1] = (bars[-1][0], "closed")

    def progress(name):
        bars.append((name, "open"))
        return (lambda done, total=None: None), Bar()

    record = RunRecord("dissect", {"seed": 3})
    # the same planted network as its own "null": every detector is found again, so every layer is flagged
    done = dissect_study(net, ["conv"], pool, network="toy", out=tmp_path, null_model=IndicatorNet(),
                         segmentations=2, progress=progress, record=record, batch_size=4,
                         threshold_rule="inclusive", min_support=1, label_cache=None)
    assert isinstance(done, DissectionStudy) and done.folder == tmp_path / "toy" / "dissect"
    for name in ("toy", "toy-random"):
        units = pd.read_csv(tmp_path / name / "dissect" / "units.csv")
        assert list(units.unit) == [0, 1, 2]
        assert list((tmp_path / name / "dissect").glob("census_*.csv"))
        assert not (tmp_path / name / ".partial" / "dissect").exists()
    assert done.null.network == "toy-random"
    flagged = [w for w in done.result.warnings if "random-weights null" in w]
    assert flagged and flagged[0].startswith("conv: the random-weights null has")
    assert done.warnings[: len(done.result.warnings)] == done.result.warnings
    saved = json.loads((tmp_path / "toy" / "dissect" / "result.json").read_text())
    assert any("random-weights null" in w for w in saved["warnings"])
    tiles = json.loads((tmp_path / "toy" / "segmentations" / "conv" / "tiles.json").read_text())
    assert set(tiles["units"]) == {"0", "1", "2"}
    assert all((tmp_path / "toy" / "segmentations" / "conv" / unit / f).exists()
               for unit, files in tiles["units"].items() for f in files)
    assert not (tmp_path / "toy-random" / "segmentations").exists()  # tiles only for the network itself
    assert [name for name, _ in bars] == ["dissect toy", "dissect toy-random", "segmentations toy"]
    assert all(state == "closed" for _, state in bars)
    run = json.loads((tmp_path / "toy" / "dissect" / "run.json").read_text())
    assert run["seed"] == 3 and set(run["networks"]) == {"toy", "toy-random"}
    assert {"dissect toy", "dissect toy-random", "save", "segmentations"} <= set(run["stages"])


def test_dissect_study_without_a_null_or_tiles(tmp_path):
    done = dissect_study(IndicatorNet(), ["conv"], RawToyPool(n=8), network="toy", out=tmp_path, batch_size=4,
                         label_cache=None)
    assert done.null is None and done.warnings == done.result.warnings
    assert (tmp_path / "toy" / "dissect" / "units.csv").exists()
    assert not (tmp_path / "toy-random").exists() and not (tmp_path / "toy" / "segmentations").exists()
    assert not (tmp_path / "toy" / "dissect" / "run.json").exists()  # written only with a record


def test_dissect_study_refuses_foreign_tiles_before_any_work(tmp_path):
    unit = tmp_path / "toy" / "segmentations" / "conv" / "0"
    unit.mkdir(parents=True)
    (unit / "0_img1.jpg").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        dissect_study(IndicatorNet(), ["conv"], RawToyPool(n=8), network="toy", out=tmp_path, segmentations=2,
                      batch_size=4, label_cache=None)
    assert not (tmp_path / "toy" / "dissect").exists() and (unit / "0_img1.jpg").read_bytes() == b"mine"


def test_the_run_record_is_a_run_metadata_written_in_the_order_readers_know(tmp_path):
    from unitscope.results.run import RunMetadata

    record = RunRecord("rf", {"seed": 7, "layers": ["conv"]})
    with record.stage("topk"):
        pass
    record.add_time("topk", 1.23456)
    record.network("toy", IndicatorNet(), RawToyPool(n=2))
    path = record.write(tmp_path / "a")
    document = json.loads(path.read_text())
    assert list(document) == ["command", "options", "networks", "seed", "versions", "started", "finished",
                              "wall_seconds", "stages"]
    loaded = RunMetadata.load(tmp_path / "a")
    assert loaded.is_command and loaded.seed == 7 and loaded.stages["topk"] >= 1.235 and not loaded.extra
    assert loaded.save(tmp_path / "b").read_bytes() == path.read_bytes()


def test_the_command_line_starts_without_torch():
    # the study's checks run while options are parsed; `unitscope --help` must not wait for torch to load
    probe = "import sys, unitscope.cli.main, unitscope.study; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_run_study_gives_every_section_then_reuses_every_stage(tmp_path):
    config = StudyConfig(out=tmp_path / "results", home=tmp_path / "home", quick=True)
    lines = []
    results = run_study(config, log=lines.append)
    assert {n.name for n in results.networks} == {"scenenet", "objectnet"}
    assert set(results.nulls) == {"scenenet-random", "objectnet-random"}
    for network in results.networks:
        assert network.dissection is not None and network.census is not None
        assert network.segmentations and network.rf is not None and network.localize is not None
    scenenet = results.network("scenenet")
    assert scenenet.minimal and scenenet.ablate is not None
    assert results.preference is not None
    assert (config.out / "report" / "index.html").exists()
    assert results.run.timings["dissect"] > 0

    lines.clear()
    again = run_study(config, log=lines.append)
    stages = ("dissect", "preference", "minimal", "receptive_fields", "localize_ablate")
    for stage in stages:
        assert f"{stage}: cached" in lines
        assert again.run.timings[stage] == 0.0
