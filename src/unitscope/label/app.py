"""The labeling web app: FastAPI routes over a :class:`Catalog` and a :class:`LabelStore`.

An annotator logs in with their token (kept in an HttpOnly, SameSite=Strict
cookie; API clients may send ``Authorization: Bearer <token>`` instead), then
sees one unit at a time: its top segmentations, a concept field with the
vocabulary as suggestions, the six types, and images to click when they do
not fit. Every route but the login page and the static files refuses a
request without a valid token.

Defences, each with a test (``tests/test_label_security.py``): images are
served only by looking their name up in the catalog (no path is ever built
from the request) and only while the file is a real image inside the
network's segmentations folder (:func:`~unitscope.label.catalog.read_image`);
HTML is rendered by Jinja2 with autoescaping and the page script writes text
with ``textContent`` only, under a Content-Security-Policy without inline
scripts; bodies larger than ``max_body_bytes`` get 413 and cross-origin
writes 403 before any route runs (:mod:`unitscope.label.guard`); answers are
checked by :func:`~unitscope.label.validation.check_answer`, the same
function as imports; odd input (bad JSON, NaN, unicode digits, huge numbers)
is a 4xx, never a 500.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalog import Catalog, UnitEntry, UnitKey, load_catalog, read_image
from .guard import RequestGuard
from .serving import serve  # noqa: F401  (kept importable from here, where it used to live)
from .records import Annotator, AnswerRefused
from .storage import LabelStore, StorageError
from .taxonomy import TYPE_NAMES, TYPES
from .validation import MAX_LABEL_LENGTH, check_answer

__all__ = ["create_app", "serve", "COOKIE", "MAX_BODY_BYTES", "MAX_LABEL_LENGTH"]

COOKIE = "unitscope_token"
MAX_BODY_BYTES = 64 * 1024
_HERE = Path(__file__).parent
_UNIT_IN_PATH = re.compile(r"^[0-9]{1,10}$")  # ASCII digits only: int() would also take "²" and "٣"


class AnswerIn(BaseModel):
    """The shape of a ``POST /api/answers`` body: JSON types only.

    What the values may be is decided by
    :func:`~unitscope.label.validation.check_answer`, the function that
    ``label import`` uses too.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    network: str
    layer: str
    unit: int
    label: str
    type: str
    marked: list[str] = Field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_answer(body: bytes) -> AnswerIn:
    """The answer in ``body``, or an HTTP 422 that says what is wrong (never a 500)."""
    try:
        # NaN and Infinity are Python's extensions to JSON: no browser sends them.
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        message = str(error) if isinstance(error, ValueError) else "nested too deeply"
        raise HTTPException(status_code=422, detail=f"the body is not valid JSON: {message[:200]}") from None
    try:
        return AnswerIn.model_validate(data)
    except ValidationError as error:
        # Without the offending input: it may hold what a JSON response cannot encode.
        details = error.errors(include_input=False, include_context=False, include_url=False)
        raise HTTPException(status_code=422, detail=[{k: d[k] for k in ("type", "loc", "msg")} for d in details])


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
        From :func:`~unitscope.label.catalog.load_catalog`; LookupError also
        when no unit of the selection has segmentation images (nothing to
        label). Both before the database is opened, so nothing is written.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (--k) must be an integer of at least 1, got {k!r}")
    catalog: Catalog = load_catalog(results_dir, n_images=n_images, networks=networks, layers=layers)
    if not catalog.units:
        raise LookupError(
            f"nothing to label in {catalog.results_dir}: no unit of the selected networks and layers has"
            " segmentation images (<network>/segmentations/<layer>/<unit>/*.jpg); run dissect with --segmentations N"
        )
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
    async def submit(request: Request, annotator: Annotator = authenticated) -> JSONResponse:
        # The body is parsed here, not by FastAPI, so that every odd body gets a 4xx that says why.
        answer = _parse_answer(await request.body())
        try:
            checked = check_answer(catalog, **answer.model_dump())
        except LookupError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        try:
            stored = store.submit(
                annotator,
                checked.key,
                label=checked.label,
                type=checked.type,
                marked=checked.marked,
                n_images=checked.n_images,
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
    def image(network: str, layer: str, unit: str, name: str, annotator: Annotator = authenticated) -> Response:
        found = read_image(catalog, UnitKey(network, layer, int(unit)), name) if _UNIT_IN_PATH.match(unit) else None
        if found is None:
            raise HTTPException(status_code=404, detail="no such image")
        data, media = found
        return Response(data, media_type=media, headers={"cache-control": "private, max-age=3600"})

    @app.exception_handler(StorageError)
    def storage_failed(request: Request, error: StorageError) -> JSONResponse:
        # The disk is full or failing: the answer was not stored, and the annotator should know it.
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"retry-after": "60"})

    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes)
    return app
