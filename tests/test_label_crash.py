"""The server is killed (SIGKILL) during a burst of submissions: no acknowledged answer is lost.

A real server process (uvicorn, started with subprocess) takes answers from
many annotator threads at once; when enough have been acknowledged it is
killed without warning, mid-burst. After a restart on the same database,
every answer that got an HTTP 200 must be there, exactly, and labeling goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the labeling app needs fastapi (pip install 'unitscope[label]')")
httpx = pytest.importorskip("httpx")

import unitscope  # noqa: E402
from unitscope.label import LabelStore  # noqa: E402

from conftest_label import free_port, make_results  # noqa: E402

N_CLIENTS = 16
N_UNITS = 40
K = 3
KILL_AFTER = 40  # acknowledged answers before the kill


def start_server(results: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(unitscope.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    code = (
        "import sys; from unitscope.label.app import serve; "
        f"serve(sys.argv[1], port={port}, k={K}, log_level='error')"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(results)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start within 30 s")


def test_sigkill_mid_burst_loses_no_acknowledged_answer(tmp_path):
    results = make_results(tmp_path, networks={"scenenet": {"conv5": N_UNITS}}, n_images=4, size=16)
    store = LabelStore(results / "labels.sqlite")
    tokens = {f"c{i:02d}": store.add_annotator(f"c{i:02d}") for i in range(N_CLIENTS)}
    port = free_port()
    server = start_server(results, port)
    acknowledged: list[tuple[str, int, str, str, tuple[str, ...]]] = []
    lost_in_flight: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    go = threading.Barrier(N_CLIENTS)

    def annotate(name: str, token: str) -> None:
        kinds = ("simple", "texture", "region", "part", "object", "scene")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            go.wait()
            while True:
                try:
                    unit = client.get("/api/next").json()["unit"]
                except httpx.TransportError:
                    return
                if unit is None:
                    return
                u = unit["unit"]
                body = {
                    "network": "scenenet",
                    "layer": "conv5",
                    "unit": u,
                    "label": f"{name} unit {u}",
                    "type": kinds[u % 6],
                    "marked": [image["id"] for image in unit["images"][: u % 4]],
                }
                try:
                    reply = client.post("/api/answers", json=body)
                except httpx.TransportError:
                    with lock:
                        lost_in_flight.append(f"{name}/{u}")
                    return
                if reply.status_code == 200:
                    with lock:
                        acknowledged.append((name, u, body["label"], body["type"], tuple(body["marked"])))
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()

    threads = [threading.Thread(target=annotate, args=item) for item in tokens.items()]
    try:
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=30), "the burst did not reach the kill point"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=30)
        assert server.returncode == -signal.SIGKILL

        # Restart on the same database: every acknowledged answer is there, exactly.
        port = free_port()
        server = start_server(results, port)
        stored = {(a.annotator, a.unit): (a.label, a.type, a.marked) for a in store.answers()}
        missing = [ack for ack in acknowledged if stored.get((ack[0], ack[1])) != ack[2:]]
        print(
            f"\ncrash test: {N_CLIENTS} clients, {len(acknowledged)} answers acknowledged before SIGKILL, "
            f"{len(lost_in_flight)} in flight at the kill, {len(stored)} found after restart, {len(missing)} missing"
        )
        assert missing == []
        assert len(acknowledged) >= KILL_AFTER
        assert len(acknowledged) <= len(stored) <= len(acknowledged) + len(lost_in_flight)
        assert store.integrity_check() == "ok"
        # Labeling goes on after the restart.
        headers = {"Authorization": f"Bearer {tokens['c00']}"}
        unit = httpx.get(f"http://127.0.0.1:{port}/api/next", headers=headers, timeout=10).json()["unit"]
        assert ("c00", unit["unit"]) not in stored
        body = {"network": "scenenet", "layer": "conv5", "unit": unit["unit"], "label": "after restart", "type": "scene", "marked": []}
        assert httpx.post(f"http://127.0.0.1:{port}/api/answers", headers=headers, json=body, timeout=10).status_code == 200
        assert len(store.answers()) == len(stored) + 1
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
