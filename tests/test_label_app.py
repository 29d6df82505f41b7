"""The labeling web app through FastAPI's test client, and under concurrent load on a live server.

Its defences (tokens, headers, paths, odd input, cross-origin requests) are
tested in ``test_label_security.py``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict

import pytest

pytest.importorskip("fastapi", reason="the labeling app needs fastapi (pip install 'unitscope[label]')")
httpx = pytest.importorskip("httpx")

from unitscope.label import LabelStore, UnitKey, create_app  # noqa: E402

from conftest_label import LiveServer, answer, bearer, lab, make_results, results  # noqa: E402,F401 (fixtures)


# -- access ---------------------------------------------------------------


def test_login_sets_a_strict_http_only_cookie(lab):
    client, tokens, _ = lab
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/", headers=bearer("not-a-token"), follow_redirects=False).status_code == 303
    assert 'action="/login"' in client.get("/login").text
    response = client.post("/login", data={"token": "wrong"}, follow_redirects=False)
    assert response.status_code == 401 and "not valid" in response.text
    response = client.post("/login", data={"token": tokens["ada"]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    page = client.get("/")  # the client kept the cookie
    assert page.status_code == 200
    assert "ada" in page.text and 'list="concepts"' in page.text
    assert client.get("/api/next").status_code == 200
    client.post("/logout", follow_redirects=False)
    client.cookies.clear()
    assert client.get("/api/next").status_code == 401


# -- assignment and storage ------------------------------------------------


def test_assignment_rules_through_the_api(lab):
    client, tokens, store = lab
    unit_of = lambda who: client.get("/api/next", headers=bearer(tokens[who])).json()["unit"]  # noqa: E731
    first = unit_of("ada")
    assert (first["network"], first["layer"], first["unit"]) == ("scenenet", "conv5", 0)
    assert [image["id"] for image in first["images"]] == [f"img0x{r}" for r in range(6)]
    assert first["images"][2]["url"] == "/image/scenenet/conv5/0/002_img0x2.jpg"
    assert unit_of("bo")["unit"] == 0  # k=2: a second annotator joins unit 0
    assert unit_of("cy")["unit"] == 1  # unit 0 has two live leases: full
    assert unit_of("ada")["unit"] == 0  # reload: same unit again
    response = client.post("/api/answers", headers=bearer(tokens["ada"]), json=answer(0))
    assert response.status_code == 200
    assert response.json()["progress"] == {
        "mine": 1,
        "available": 3,
        "units_total": 4,
        "units_complete": 0,
        "annotations_done": 1,
        "annotations_needed": 8,
    }
    assert unit_of("ada")["unit"] == 1  # never unit 0 again; unit 1 has one lease (cy)
    assert client.post("/api/answers", headers=bearer(tokens["bo"]), json=answer(0)).status_code == 200
    # Unit 0 is complete: a third annotator is refused, and ada cannot answer twice.
    refused = client.post("/api/answers", headers=bearer(tokens["dan"]), json=answer(0))
    assert refused.status_code == 409 and "already has its 2 annotations" in refused.json()["detail"]
    again = client.post("/api/answers", headers=bearer(tokens["cy"]), json=answer(1))
    assert again.status_code == 200
    assert client.post("/api/answers", headers=bearer(tokens["cy"]), json=answer(1)).status_code == 409
    progress = client.get("/api/progress", headers=bearer(tokens["dan"])).json()
    assert progress == {
        "mine": 0,
        "available": 3,
        "units_total": 4,
        "units_complete": 1,
        "annotations_done": 3,
        "annotations_needed": 8,
    }
    assert [(a.annotator, a.unit) for a in store.answers()] == [("ada", 0), ("bo", 0), ("cy", 1)]


def test_answers_through_the_api_are_stored_exactly(lab):
    client, tokens, store = lab
    client.get("/api/next", headers=bearer(tokens["ada"]))
    label = "  Ünïcode  bed, \"quoted\" & <b>bold</b>  "
    body = answer(0, label=label, type="part", marked=["img0x5", "img0x1"])
    response = client.post("/api/answers", headers=bearer(tokens["ada"]), json=body)
    assert response.status_code == 200
    echoed = response.json()["answer"]
    assert echoed["label"] == label.strip() and echoed["marked"] == ["img0x5", "img0x1"]
    (stored,) = store.answers()
    assert stored.label == label.strip()
    assert (stored.annotator, stored.network, stored.layer, stored.unit, stored.type) == ("ada", "scenenet", "conv5", 0, "part")
    assert stored.marked == ("img0x5", "img0x1") and stored.n_images == 6
    assert stored.shown_at is not None and stored.shown_at <= stored.submitted_at
    assert stored.submitted_at == echoed["submitted_at"]


def test_a_unit_image_is_served(lab, results):
    client, tokens, _ = lab
    response = client.get("/image/scenenet/conv5/2/003_img2x3.jpg", headers=bearer(tokens["ada"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    expected = results / "scenenet" / "segmentations" / "conv5" / "2" / "003_img2x3.jpg"
    assert response.content == expected.read_bytes()


def test_a_full_disk_is_a_503_that_says_so(lab, monkeypatch):
    client, tokens, store = lab
    client.get("/api/next", headers=bearer(tokens["ada"]))

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(LabelStore, "_connect", full)
    response = client.post("/api/answers", headers=bearer(tokens["ada"]), json=answer(0))
    assert response.status_code == 503 and response.headers["retry-after"] == "60"
    assert "database or disk is full" in response.json()["detail"]
    monkeypatch.undo()
    assert store.answers() == []


# -- many annotators at once, through a live server -------------------------


def test_concurrent_annotators_lose_no_answer(tmp_path):
    results = make_results(tmp_path, networks={"scenenet": {"conv5": 20}}, n_images=3, size=16)
    store = LabelStore(results / "labels.sqlite")
    n_clients, k = 12, 3
    tokens = {f"w{i:02d}": store.add_annotator(f"w{i:02d}") for i in range(n_clients)}
    app = create_app(results, k=k, store=store)
    acknowledged: dict[str, list[tuple[int, str, tuple[str, ...]]]] = defaultdict(list)
    failures: list[str] = []
    start = threading.Barrier(n_clients)

    def annotate(name: str, token: str) -> None:
        with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:
            start.wait()  # everyone asks for work at the same moment
            while True:
                response = client.get("/api/next")
                if response.status_code != 200:
                    failures.append(f"{name} next {response.status_code}")
                    return
                unit = response.json()["unit"]
                if unit is None:
                    return
                label = f"{name}-u{unit['unit']}"
                marked = tuple(image["id"] for image in unit["images"][: unit["unit"] % 3])
                body = {**answer(unit["unit"]), "label": label, "marked": list(marked)}
                reply = client.post("/api/answers", json=body)
                if reply.status_code == 200:
                    acknowledged[name].append((unit["unit"], label, marked))
                else:
                    failures.append(f"{name} submit {reply.status_code} {reply.text}")

    with LiveServer(app) as server:
        threads = [threading.Thread(target=annotate, args=item) for item in tokens.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []
    stored = store.answers()
    sent = sorted((name, unit, label, marked) for name, items in acknowledged.items() for unit, label, marked in items)
    assert len(sent) == 20 * k == 60
    assert sorted((a.annotator, a.unit, a.label, a.marked) for a in stored) == sent
    per_unit = defaultdict(set)
    for a in stored:
        per_unit[a.unit].add(a.annotator)
    assert all(len(names) == k for names in per_unit.values()) and len(per_unit) == 20
    assert sum(1 for items in acknowledged.values() if items) >= 6  # the work was really shared
    assert store.integrity_check() == "ok"
    assert UnitKey("scenenet", "conv5", 0) in {a.key for a in stored}
