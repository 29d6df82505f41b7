"""The report folder: never delete what unitscope did not write, swap a new report in whole, honour the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_results import make_fake_results

from unitscope.cli.main import app
from unitscope.report import build, build_report, folder
from unitscope.report.folder import MANIFEST


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return make_fake_results(tmp_path_factory.mktemp("folder"), partial=True)


def test_the_issue_sequence_keeps_the_users_file(results, tmp_path):
    # mkdir -p d/plots; echo x > d/plots/thesis.txt; unitscope report R --out d; unitscope report R --out d
    (tmp_path / "d" / "plots").mkdir(parents=True)
    (tmp_path / "d" / "plots" / "thesis.txt").write_text("x\n")
    for _ in range(2):
        result = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "d")])
        assert result.exit_code == 2
        assert "holds files unitscope did not write (plots)" in result.stderr
    assert (tmp_path / "d" / "plots" / "thesis.txt").read_text() == "x\n"
    assert _siblings(tmp_path / "d") == ["d"]


def test_a_report_folder_is_replaced_whole_and_lists_what_it_wrote(results, tmp_path):
    out = tmp_path / "site"
    out.mkdir()  # an empty folder is fine
    index = build_report(results, out=out)
    manifest = json.loads((out / MANIFEST).read_text())
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert manifest["written_by"] == "unitscope report" and manifest["files"] == files
    assert "index.html" in files and len([f for f in files if f.startswith("units/")]) == 12
    before = _tree(out)
    assert build_report(results, out=out) == index
    after = _tree(out)
    assert sorted(after) == sorted(before)
    assert after[MANIFEST] == before[MANIFEST]
    assert _siblings(out) == ["site"]  # no temporary folder left


def test_a_report_written_before_the_manifest_is_recognised(results, tmp_path):
    out = tmp_path / "site"
    build_report(results, out=out)
    (out / MANIFEST).write_text("written by unitscope.report.build_report\n")  # what earlier builds wrote
    build_report(results, out=out)
    assert json.loads((out / MANIFEST).read_text())["written_by"] == "unitscope report"
    (out / MANIFEST).write_text("written by unitscope.report.build_report\n")
    (out / "plots" / "thesis.txt").write_text("x\n")  # not a name an earlier build could write
    with pytest.raises(ValueError, match=r"did not write \(plots/thesis.txt\)"):
        build_report(results, out=out)
    assert (out / "plots" / "thesis.txt").read_text() == "x\n"


@pytest.mark.parametrize("atomic_exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_killed_build_leaves_the_previous_report_complete(results, tmp_path, monkeypatch, atomic_exchange):
    out = tmp_path / "site"
    build_report(results, out=out)
    before = _tree(out)
    if not atomic_exchange:
        monkeypatch.setattr(folder, "_exchange", lambda a, b: False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(build, "_write_unit_pages", killed)
        with pytest.raises(KeyboardInterrupt):
            build_report(results, out=out, title="the new one")
    assert _tree(out) == before
    assert _siblings(out) == ["site"]
    build_report(results, out=out, title="the new one")
    assert "<title>the new one</title>" in (out / "index.html").read_text()
    assert _siblings(out) == ["site"]


def test_the_temporary_folder_of_a_killed_process_is_removed_next_time(results, tmp_path):
    out = tmp_path / "site"
    left = tmp_path / ".site.unitscope-tmp-999999999-0badcafe"  # no such process
    (left / "units").mkdir(parents=True)
    other = tmp_path / ".other.unitscope-tmp-999999999-0badcafe"  # another report's: not this build's business
    other.mkdir()
    build_report(results, out=out)
    assert _siblings(out) == [".other.unitscope-tmp-999999999-0badcafe", "site"]


def test_the_report_honours_the_umask(results, tmp_path):
    for path in results.rglob("*.jpg"):
        path.chmod(0o600)  # copied images get the umask's permissions, not their source's
    previous = os.umask(0o022)
    try:
        out = tmp_path / "site"
        build_report(results, out=out, copy_images=True)
        build_report(results, out=out, copy_images=True)  # a replaced folder too
    finally:
        os.umask(previous)
        for path in results.rglob("*.jpg"):
            path.chmod(0o644)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    folders = {stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")] if p.is_dir()}
    assert modes == {0o644} and folders == {0o755}
    assert any(out.glob("files/**/*.jpg"))


def test_a_replaced_folder_keeps_its_own_permissions(results, tmp_path):
    out = tmp_path / "site"
    build_report(results, out=out)
    out.chmod(0o750)
    build_report(results, out=out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_same_results_same_report_bytes_under_source_date_epoch(tmp_path, monkeypatch):
    """Reproducible builds: with SOURCE_DATE_EPOCH the stamp is fixed, so two builds are byte-identical."""
    from fake_results import make_fake_results

    from unitscope.report import build_report

    results = make_fake_results(tmp_path / "results")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = build_report(results, out=tmp_path / "a").read_text(encoding="utf-8")
    second = build_report(results, out=tmp_path / "b").read_text(encoding="utf-8")
    assert "2023-11-14 22:13 UTC" in first
    assert first.replace(str(tmp_path / "a"), "").replace(str(tmp_path / "b"), "") == \
        second.replace(str(tmp_path / "a"), "").replace(str(tmp_path / "b"), "")
