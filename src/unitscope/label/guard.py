"""What every request to the labeling app goes through before a route sees it.

:class:`RequestGuard` is plain ASGI middleware that

* refuses a body larger than the limit with 413, whether or not the client
  announced its length (the body is read, up to the limit, before the app
  runs);
* refuses a state-changing request (any method but GET, HEAD, OPTIONS) that a
  browser sent from another site, with 403. Logging in, logging out and
  answering are cookie-authenticated, so without this a page elsewhere could
  post the form of ``/login`` with the attacker's token (login CSRF: the
  victim then labels into the attacker's account) or log the victim out.
  The check reads what browsers send and pages cannot forge: ``Sec-Fetch-Site``
  and ``Origin`` (``Referer`` when there is no ``Origin``). A request with
  none of them does not come from a browser page (curl, scripts, tests) and
  cannot carry a victim's cookie into a forged request, so it is let through;
* adds security headers to every response. ``Referrer-Policy: same-origin``
  (not ``no-referrer``) matters here: under ``no-referrer`` a browser sends
  ``Origin: null`` with the app's own form posts, which the origin check
  would have to refuse.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

__all__ = ["RequestGuard", "SECURITY_HEADERS", "cross_origin_reason"]

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(url: str, default_scheme: str | None = None) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url if default_scheme is None else f"{default_scheme}://{url}")
        port = parts.port
    except ValueError:  # "http://[::1", "host:99999", "host:abc"
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[parts.scheme]


def cross_origin_reason(method: str, headers: dict[str, str]) -> str | None:
    """Why a request must be refused as cross-origin, or None if it may go on.

    Parameters
    ----------
    method : str
        The HTTP method; GET, HEAD and OPTIONS change nothing and always pass.
    headers : dict of str to str
        Request headers, lower-case names.

    Examples
    --------
    >>> cross_origin_reason("POST", {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}) is None
    True
    >>> cross_origin_reason("POST", {"host": "127.0.0.1:8000", "origin": "http://evil.example"})
    'its Origin http://evil.example is not this server (127.0.0.1:8000)'
    """
    if method.upper() in _SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"the browser says it comes from a {site} page"
    origin = headers.get("origin")
    source, what = (origin, "Origin") if origin is not None else (headers.get("referer"), "Referer")
    if source is None:
        return None
    host = headers.get("host", "")
    mine = _host_and_port(host, "http")
    theirs = _host_and_port(source)
    # The scheme of this server is not known behind a proxy: compare host and port, with the port
    # the Origin's scheme implies when the Host header has none.
    if theirs is not None and mine is not None and ":" not in host.rsplit("]", 1)[-1]:
        mine = (theirs[0], mine[1], _DEFAULT_PORTS[theirs[0]])
    if theirs is None or mine is None or theirs[1:] != mine[1:]:
        return f"its {what} {source[:100]} is not this server ({host[:100]})"
    return None


class RequestGuard:
    """ASGI middleware: size-limit bodies, refuse cross-origin writes, add security headers.

    Parameters
    ----------
    app : ASGI application
    max_body_bytes : int
        Larger request bodies are refused with 413.
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
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
        reason = cross_origin_reason(scope.get("method", "GET"), headers)
        if reason is not None:
            await _refuse(send_with_headers, 403, f"cross-origin request refused: {reason}")
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _refuse(send_with_headers, 413, f"request body larger than {self.max_body_bytes} bytes")
            return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                await _refuse(send_with_headers, 413, f"request body larger than {self.max_body_bytes} bytes")
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


async def _refuse(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
