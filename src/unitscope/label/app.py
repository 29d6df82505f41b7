"""The labeling web app: FastAPI routes over a :class:`Catalog` and a :class:`LabelStore`.

An annotator logs in with their token (kept in an HttpOnly, SameSite=Strict
cookie; API clients may send ``Authorization: Bearer <token>`` instead), then
sees one unit at a time: its top segmentations, a concept field with the
vocabulary as suggestions, the six types, and images to click when they do
not fit. Every route but the login page and the static files refuses a
request without a valid token.

Defences, each with a test: images are served only by looking their name up
in the catalog (no path is ever built from the request); HTML is rendered by
Jinja2 with autoescaping and the page script writes text with
``textContent`` only, under a Content-Security-Policy without inline
scripts; bodies larger than ``max_body_bytes`` get 413 before any route runs;
answers are validated by a strict pydantic model (unknown fields, wrong types,
unknown images refused).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalog import Catalog, UnitEntry, UnitKey, load_catalog
from .storage import Annotator, AnswerRefused, LabelStore
from .taxonomy import TYPE_NAMES, TYPES

__all__ = ["create_app", "serve", "COOKIE", "MAX_BODY_BYTES", "MAX_LABEL_LENGTH"]

COOKIE = "unitscope_token"
MAX_BODY_BYTES = 64 * 1024
MAX_LABEL_LENGTH = 100
_HERE = Path(__file__).parent
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class AnswerIn(BaseModel):
    """The body of ``POST /api/answers``."""

    model_config = ConfigDict(extra="forbid")

    network: str = Field(min_length=1, max_length=200)
    layer: str = Field(min_length=1, max_length=200)
    unit: int = Field(ge=0, strict=True)
    label: str = Field(min_length=1, max_length=MAX_LABEL_LENGTH)
    type: Literal[TYPES]  # type: ignore[valid-type]
    marked: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=1000)

    @field_validator("label")
    @classmethod
    def _clean_label(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the concept label is empty")
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise ValueError("the concept label contains control characters")
        return value


class _Guard:
    """ASGI middleware: size-limit request bodies, add security headers.

    The whole body is read (up to the limit) before the app sees the request,
    so an oversized body is refused with 413 whether or not it announces its
    length.
    """

    def __init__(self, app: Any, *, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._refuse(send_with_headers)
            return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                await self._refuse(send_with_headers)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_body_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def _unit_json(entry: UnitEntry) -> dict[str, Any]:
    key = entry.key
    base = "/image/" + "/".join(quote(str(part), safe="") for part in key)
    return {
        "network": key.network,
        "layer": key.layer,
        "unit": key.unit,
        "images": [
            {"id": image.image_id, "rank": image.rank, "url": f"{base}/{quote(image.name, safe='')}"}
            for image in entry.images
        ],
    }


def create_app(
    results_dir: str | Path,
    *,
    db: str | Path | None = None,
    k: int = 3,
    n_images: int = 60,
    networks: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    lease_seconds: float = 1800.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    store: LabelStore | None = None,
) -> FastAPI:
    """Build the labeling app for a results directory.

    Parameters
    ----------
    results_dir : str or Path
        Results directory holding ``<network>/dissect/units.csv`` and
        ``<network>/segmentations/...`` (see :mod:`unitscope.label.catalog`).
    db : str or Path, optional
        SQLite database (default ``results_dir/labels.sqlite``).
    k : int, optional
        Annotations wanted per unit, each by a different annotator (paper: 3).
    n_images : int, optional
        Top segmentations shown per unit (paper: 60).
    networks, layers : sequence of str, optional
        Label only these networks / layers.
    lease_seconds : float, optional
        How long a unit shown to an annotator stays reserved for them.
    max_body_bytes : int, optional
        Larger request bodies are refused with 413.
    store : LabelStore, optional
        Use this store instead of opening ``db`` (tests pass one with a fake clock).

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    ValueError
        If ``k`` is not positive.
    FileNotFoundError, LookupError
        From :func:`~unitscope.label.catalog.load_catalog`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    catalog: Catalog = load_catalog(results_dir, n_images=n_images, networks=networks, layers=layers)
    if store is None:
        store = LabelStore(Path(db) if db is not None else catalog.results_dir / "labels.sqlite")
    unit_keys = catalog.keys
    pages = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )

    app = FastAPI(title="unitscope label", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog = catalog
    app.state.store = store
    app.state.k = k
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = pages.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})

    def annotator_or_none(request: Request) -> Annotator | None:
        return store.annotator_for_token(_token(request))

    def annotator_required(request: Request) -> Annotator:
        annotator = annotator_or_none(request)
        if annotator is None:
            raise HTTPException(status_code=401, detail="a valid annotator token is required")
        return annotator

    # A plain default, not an Annotated alias: a local alias cannot be
    # resolved from the string annotations of ``from __future__ import annotations``.
    authenticated = Depends(annotator_required)

    def progress(annotator: Annotator) -> dict[str, int]:
        return store.progress(annotator, unit_keys, k=k).as_dict()

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> HTMLResponse:
        return page("login.html")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if store.annotator_for_token(token) is None:
            return page("login.html", status_code=401, error="That token is not valid.")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        annotator = annotator_or_none(request)
        if annotator is None:
            return RedirectResponse("/login", status_code=303)
        return page(
            "index.html",
            annotator=annotator.name,
            vocabulary=catalog.vocabulary,
            types=[(i + 1, key, TYPE_NAMES[key]) for i, key in enumerate(TYPES)],
            k=k,
        )

    @app.get("/history", response_class=HTMLResponse)
    def history(annotator: Annotator = authenticated) -> HTMLResponse:
        answers = list(reversed(store.answers(annotator=annotator)))
        return page("history.html", annotator=annotator.name, answers=answers, type_names=TYPE_NAMES)

    @app.get("/api/next")
    def next_unit(annotator: Annotator = authenticated) -> JSONResponse:
        key = store.lease_next(annotator, unit_keys, k=k, lease_seconds=lease_seconds)
        entry = catalog.get(key) if key is not None else None
        body = {"unit": _unit_json(entry) if entry else None, "progress": progress(annotator), "k": k}
        return JSONResponse(body, headers={"cache-control": "no-store"})

    @app.get("/api/progress")
    def get_progress(annotator: Annotator = authenticated) -> dict[str, int]:
        return progress(annotator)

    @app.post("/api/answers")
    def submit(answer: AnswerIn, annotator: Annotator = authenticated) -> JSONResponse:
        key = UnitKey(answer.network, answer.layer, answer.unit)
        entry = catalog.get(key)
        if entry is None:
            raise HTTPException(status_code=404, detail=f"unknown unit {key}")
        shown = set(entry.image_ids)
        unknown = [image for image in answer.marked if image not in shown]
        if unknown:
            raise HTTPException(status_code=422, detail=f"marked images not shown for unit {key}: {unknown[:5]}")
        try:
            stored = store.submit(
                annotator,
                key,
                label=answer.label,
                type=answer.type,
                marked=answer.marked,
                n_images=len(entry.images),
                k=k,
            )
        except AnswerRefused as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        body = {
            "ok": True,
            "answer": {
                "network": stored.network,
                "layer": stored.layer,
                "unit": stored.unit,
                "label": stored.label,
                "type": stored.type,
                "marked": list(stored.marked),
                "submitted_at": stored.submitted_at,
            },
            "progress": progress(annotator),
        }
        return JSONResponse(body, headers={"cache-control": "no-store"})

    @app.get("/image/{network}/{layer}/{unit}/{name}")
    def image(network: str, layer: str, unit: str, name: str, annotator: Annotator = authenticated) -> FileResponse:
        entry = catalog.get(UnitKey(network, layer, int(unit))) if unit.isdigit() else None
        found = entry.image(name) if entry is not None else None
        if found is None:
            raise HTTPException(status_code=404, detail="no such image")
        path = found.path.resolve()
        # A symlink in the results directory must not lead out of it.
        if not path.is_relative_to(catalog.results_dir) or not path.is_file():
            raise HTTPException(status_code=404, detail="no such image")
        media = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        return FileResponse(path, media_type=media, headers={"cache-control": "private, max-age=3600"})

    app.add_middleware(_Guard, max_body_bytes=max_body_bytes)
    return app


def serve(
    results_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    **options: Any,
) -> None:
    """Run the app with uvicorn until interrupted (blocks).

    ``options`` are those of :func:`create_app`. Binds ``127.0.0.1`` by
    default: reachable from this machine only.
    """
    import uvicorn

    app = create_app(results_dir, **options)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
