"""The command line's own shape of an error: one line, whatever the exception's text."""

from __future__ import annotations

import pytest


def test_a_multi_line_library_error_is_printed_on_one_line(refuse, monkeypatch, tmp_path):
    import unitscope.models.loading as loading

    def broken(*args, **kwargs):
        raise ValueError("first line\n  second line\n\nthird line")

    monkeypatch.setattr(loading, "load_model", broken)
    line = refuse(["layers", "alexnet"], mentions=["first line second line third line"], unchanged=[tmp_path])
    assert line == "unitscope: error: first line second line third line"


@pytest.mark.parametrize(
    "args, mentions",
    [
        pytest.param(["dissect"], ["missing option", "--model"], id="missing-required-option"),
        pytest.param(["layers", "alexnet", "--bogus"], ["no such option", "--bogus"], id="unknown-option"),
        pytest.param(["no-such-command"], ["no such command", "no-such-command"], id="unknown-command"),
    ],
)
def test_usage_errors_are_one_line(refuse, tmp_path, args, mentions):
    refuse(args, mentions=mentions, unchanged=[tmp_path])


def test_demo_refuses_a_report_folder_with_foreign_files_before_any_work(refuse, tmp_path):
    out = tmp_path / "demo"
    (out / "report" / "plots").mkdir(parents=True)
    (out / "report" / "plots" / "thesis.txt").write_text("mine")
    refuse(["demo", "--quick", "--out", out], mentions=["report", "did not write", "plots"], unchanged=[tmp_path])
