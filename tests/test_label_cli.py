"""``unitscope label ...`` through typer's test runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitscope.cli.label import label_app
from unitscope.label import LabelStore, UnitKey

from conftest_label import free_port, make_results

runner = CliRunner()


@pytest.fixture
def results(tmp_path):
    return make_results(tmp_path, networks={"scenenet": {"conv5": 2}}, n_images=3, size=16)


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_add_annotator_prints_the_token_once(results):
    result = runner.invoke(label_app, ["add-annotator", "ada", "--results", str(results)])
    assert result.exit_code == 0, result.output
    line = one_line(result)
    assert line.startswith("token for ada (shown once, store it now): ")
    token = line.rsplit(" ", 1)[1]
    store = LabelStore(results / "labels.sqlite")
    assert store.annotator_for_token(token).name == "ada"
    again = runner.invoke(label_app, ["add-annotator", "ada", "--results", str(results)])
    assert again.exit_code == 2
    assert one_line(again) == (
        "unitscope: error: annotator 'ada' already exists (replace_token=True, or --replace-token, issues a new token)"
    )
    renewed = runner.invoke(label_app, ["add-annotator", "ada", "--results", str(results), "--replace-token"])
    assert renewed.exit_code == 0
    assert store.annotator_for_token(token) is None
    bad = runner.invoke(label_app, ["add-annotator", "<b>", "--results", str(results)])
    assert bad.exit_code == 2 and one_line(bad).startswith("unitscope: error: invalid annotator name '<b>'")
    missing = runner.invoke(label_app, ["add-annotator", "bo", "--results", str(results / "nope")])
    assert missing.exit_code == 2 and one_line(missing).endswith("nope does not exist")


def test_export_import_results(results, tmp_path):
    store = LabelStore(results / "labels.sqlite")
    ada = store.annotator_for_token(store.add_annotator("ada"))
    store.submit(ada, UnitKey("scenenet", "conv5", 0), label="bed", type="object", marked=["img0x1"], n_images=3, k=3)
    store.submit(ada, UnitKey("scenenet", "conv5", 1), label="sky", type="region", marked=[], n_images=3, k=3)
    out = tmp_path / "answers.json"
    result = runner.invoke(label_app, ["export", str(out), "--results", str(results)])
    assert result.exit_code == 0 and one_line(result) == f"exported 2 answers to {out}"
    assert len(json.loads(out.read_text())["answers"]) == 2

    other = tmp_path / "other.sqlite"
    result = runner.invoke(label_app, ["import", str(out), "--results", str(results), "--db", str(other)])
    assert result.exit_code == 0
    assert one_line(result) == f"imported 2 answers from {out} (0 already present, 0 conflicting kept as stored)"
    assert LabelStore(other).answers() == store.answers()

    result = runner.invoke(label_app, ["results", "--results", str(results)])
    assert result.exit_code == 0
    assert one_line(result) == f"wrote human labels for 1 network(s): {results / 'scenenet' / 'human'}"
    for name in ("units.csv", "layers.csv", "compare.csv", "summary.json"):
        assert (results / "scenenet" / "human" / name).is_file()


def test_errors_are_one_line_with_exit_code_2(results, tmp_path):
    cases = [
        (["results", "--results", str(tmp_path)], f"unitscope: error: no labeling database at {tmp_path / 'labels.sqlite'}"),
        (["export", str(tmp_path / "a.csv"), "--results", str(tmp_path)], f"unitscope: error: no labeling database at {tmp_path / 'labels.sqlite'}"),
        (["serve", str(tmp_path / "missing")], f"unitscope: error: results directory {tmp_path / 'missing'} does not exist"),
        (["serve", str(results), "--network", "nope"], f"unitscope: error: network(s) nope not in {results}; available: scenenet"),
        (["serve", str(results), "--k", "0"], "unitscope: error: k (--k) must be an integer of at least 1, got 0"),
    ]
    for args, expected in cases:
        result = runner.invoke(label_app, args)
        assert result.exit_code == 2, (args, result.output)
        assert one_line(result) == expected
    bad = tmp_path / "bad.csv"
    bad.write_text("annotator,network\nada,scenenet\n")
    result = runner.invoke(label_app, ["import", str(bad), "--results", str(results)])
    assert result.exit_code == 2
    assert one_line(result).startswith(f"unitscope: error: {bad}:2: missing field(s) layer, unit")


def test_serve_binds_localhost_by_default(results, monkeypatch):
    from unitscope.label import serving

    calls = []

    def run_app(app, sock, **options):
        calls.append((app, sock.getsockname(), options))
        sock.close()

    monkeypatch.setattr(serving, "run_app", run_app)
    port = free_port()
    result = runner.invoke(label_app, ["serve", str(results), "--port", str(port), "--images", "2"])
    assert result.exit_code == 0, result.output
    assert one_line(result) == (
        f"labeling 2 units (k=3) at http://127.0.0.1:{port}/ · answers in {results / 'labels.sqlite'} · Ctrl-C to stop"
    )
    (app, address, options), = calls
    assert address == ("127.0.0.1", port) and options == {}
    assert [len(entry.images) for entry in app.state.catalog.units] == [2, 2]


def test_busy_port_is_one_line_before_any_banner_and_writes_nothing(results):
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        result = runner.invoke(label_app, ["serve", str(results), "--port", str(port)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"unitscope: error: port {port} on 127.0.0.1 is in use; pass --port with a free port"
    assert not (results / "labels.sqlite").exists()


def test_a_remote_host_needs_allow_remote_and_the_banner_says_tokens_are_unencrypted(results, monkeypatch):
    from unitscope.label import serving

    refused = runner.invoke(label_app, ["serve", str(results), "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "not a loopback address: annotator tokens and answers would travel unencrypted" in refused.stderr
    assert not (results / "labels.sqlite").exists()
    # Confirmed: the tests bind loopback only, so the listener is stood in for.
    bound = []
    monkeypatch.setattr(serving, "open_listener", lambda host, port: bound.append((host, port)) or socket_on_loopback())
    monkeypatch.setattr(serving, "run_app", lambda app, sock, **options: sock.close())
    result = runner.invoke(label_app, ["serve", str(results), "--host", "0.0.0.0", "--allow-remote", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert bound == [("0.0.0.0", 8123)]
    assert "http://0.0.0.0:8123/" in result.stdout
    assert "reachable from the network, tokens travel unencrypted unless behind an HTTPS proxy" in result.stdout


def socket_on_loopback():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock
