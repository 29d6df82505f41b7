"""The labeling web app through FastAPI's test client, and under concurrent load on a live server."""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict

import pytest

pytest.importorskip("fastapi", reason="the labeling app needs fastapi (pip install 'unitscope[label]')")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from unitscope.label import LabelStore, UnitKey, create_app  # noqa: E402
from unitscope.label.app import COOKIE, MAX_BODY_BYTES  # noqa: E402

from conftest_label import LiveServer, make_results  # noqa: E402

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def results(tmp_path):
    return make_results(
        tmp_path,
        networks={"scenenet": {"conv5": 4}},
        n_images=6,
        extra_labels={("scenenet", "conv5", 3): SCRIPT},
    )


@pytest.fixture
def lab(results):
    """An app with k=2 and four annotators; returns (client, tokens, store)."""
    store = LabelStore(results / "labels.sqlite")
    tokens = {name: store.add_annotator(name) for name in ("ada", "bo", "cy", "dan")}
    app = create_app(results, k=2, n_images=60, store=store)
    with TestClient(app) as client:
        yield client, tokens, store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(unit: int, **fields):
    body = {"network": "scenenet", "layer": "conv5", "unit": unit, "label": "bed", "type": "object", "marked": []}
    body.update(fields)
    return body


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


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/next"),
        ("GET", "/api/progress"),
        ("POST", "/api/answers"),
        ("GET", "/history"),
        ("GET", "/image/scenenet/conv5/0/000_img0x0.jpg"),
    ],
)
def test_requests_without_a_valid_token_are_refused(lab, method, path):
    client, tokens, store = lab
    body = json.dumps(answer(0))
    for headers in ({}, bearer("not-a-token"), bearer(""), {"Authorization": f"Basic {tokens['ada']}"}):
        response = client.request(method, path, headers=dict(headers, **{"content-type": "application/json"}), content=body)
        assert response.status_code == 401, (path, headers)
    client.cookies.set(COOKIE, "forged-cookie")
    assert client.request(method, path, content=body).status_code == 401
    assert store.answers() == []


def test_static_files_need_no_token_and_pages_send_security_headers(lab):
    client, tokens, _ = lab
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    response = client.get("/", headers=bearer(tokens["ada"]))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text.replace('<script src="/static/app.js"></script>', "")


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


# -- refused requests ---------------------------------------------------


@pytest.mark.parametrize(
    "body, status, message",
    [
        (answer(9), 404, "unknown unit"),
        (answer(0, layer="conv9"), 404, "unknown unit"),
        (answer(0, marked=["img1x0"]), 422, "marked images not shown"),
        (answer(0, type="thing"), 422, "type"),
        (answer(0, label="   "), 422, "empty"),
        (answer(0, label="bed\x00"), 422, "control characters"),
        (answer(0, label="x" * 101), 422, "at most 100"),
        (answer("0"), 422, "valid integer"),
        (answer(-1), 422, "greater than or equal to 0"),
        (answer(0, extra="field"), 422, "Extra inputs"),
        (answer(0, marked="img0x0"), 422, "valid list"),
        (answer(0, marked=["img0x0", "img0x0"]), 422, "duplicates"),
        ({"network": "scenenet"}, 422, "Field required"),
    ],
)
def test_invalid_answers_are_refused(lab, body, status, message):
    client, tokens, store = lab
    response = client.post("/api/answers", headers=bearer(tokens["ada"]), json=body)
    assert response.status_code == status
    assert message in json.dumps(response.json())
    assert store.answers() == []


@pytest.mark.parametrize("raw", [b"{not json", b'{"unit": 0,', b"", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_is_refused(lab, raw):
    client, tokens, store = lab
    headers = dict(bearer(tokens["ada"]), **{"content-type": "application/json"})
    response = client.post("/api/answers", headers=headers, content=raw)
    assert response.status_code == 422
    assert store.answers() == []


def test_oversized_bodies_are_refused(lab):
    client, tokens, store = lab
    headers = dict(bearer(tokens["ada"]), **{"content-type": "application/json"})
    huge = json.dumps(answer(0, label="bed", marked=["x" * 200] * 400)).encode()
    assert len(huge) > MAX_BODY_BYTES
    response = client.post("/api/answers", headers=headers, content=huge)
    assert response.status_code == 413 and "larger than 65536 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(20):
            yield b" " * 8192

    response = client.post("/api/answers", headers=headers, content=chunks())
    assert response.status_code == 413
    response = client.post("/api/answers", headers=dict(headers, **{"content-length": "99999999"}), content=b"{}")
    assert response.status_code == 413
    response = client.post("/login", content=b"token=" + b"a" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert store.answers() == []


TRAVERSALS = [
    "/image/scenenet/conv5/0/..%2f..%2f..%2f..%2flabels.sqlite",
    "/image/scenenet/conv5/0/..%2F..%2F..%2Fdissect%2Funits.csv",
    "/image/scenenet/conv5/0/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2flabels.sqlite",
    "/image/..%2f..%2flabels.sqlite/conv5/0/000_img0x0.jpg",
    "/image/scenenet/..%2fdissect/0/units.csv",
    "/image/scenenet/conv5/..%2f..%2fdissect/units.csv",
    "/image/scenenet/conv5/0/%2fetc%2fpasswd",
    "/image/scenenet/conv5/0/..%5c..%5c..%5c..%5clabels.sqlite",
    "/image/scenenet/conv5/0/000_img0x0.jpg%00.sqlite",
    "/image/scenenet/conv5/0/../../../../labels.sqlite",
    "/image/scenenet/conv5/0/evil.jpg",
    "/image/scenenet/conv5/0/005_escape.jpg",
    "/static/..%2f..%2flabel%2fapp.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/app.py",
]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Results whose unit 0 folder holds a symlink to a file outside the results directory."""
    root = tmp_path_factory.mktemp("planted")
    results = make_results(root, networks={"scenenet": {"conv5": 1}}, n_images=2)
    (root / "secret.txt").write_text("SECRET")
    os.symlink(root / "secret.txt", results / "scenenet" / "segmentations" / "conv5" / "0" / "005_escape.jpg")
    store = LabelStore(results / "labels.sqlite")
    token = store.add_annotator("ada")
    app = create_app(results, store=store)
    assert app.state.catalog.units[0].image_ids == ("img0x0", "img0x1", "escape")  # listed, yet never served
    with TestClient(app) as client:
        yield client, token


@pytest.mark.parametrize("path", TRAVERSALS)
def test_image_routes_serve_only_the_units_images(planted, path):
    client, token = planted
    response = client.get(path, headers=bearer(token))
    assert response.status_code in (400, 404), response.status_code
    assert b"SECRET" not in response.content
    assert b"SQLite format" not in response.content
    assert b"network,layer" not in response.content
    assert b"def create_app" not in response.content
    assert client.get("/image/scenenet/conv5/0/000_img0x0.jpg", headers=bearer(token)).status_code == 200


def test_a_unit_image_is_served(lab, results):
    client, tokens, _ = lab
    response = client.get("/image/scenenet/conv5/2/003_img2x3.jpg", headers=bearer(tokens["ada"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    expected = results / "scenenet" / "segmentations" / "conv5" / "2" / "003_img2x3.jpg"
    assert response.content == expected.read_bytes()


# -- escaping ---------------------------------------------------------------


def test_labels_are_rendered_escaped(lab):
    client, tokens, store = lab
    # The automatic label of unit 3 is a script: it reaches the page as a datalist suggestion.
    page = client.get("/", headers=bearer(tokens["ada"])).text
    assert '<option value="&lt;script&gt;alert(1)&lt;/script&gt;">' in page
    assert SCRIPT not in page
    # An annotator's label with markup is stored as typed and shown escaped.
    body = answer(0, label=SCRIPT + '"><img src=x onerror=alert(2)>')
    assert client.post("/api/answers", headers=bearer(tokens["ada"]), json=body).status_code == 200
    assert store.answers()[0].label == body["label"]
    history = client.get("/history", headers=bearer(tokens["ada"])).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in history
    assert SCRIPT not in history and "<img src=x" not in history


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
