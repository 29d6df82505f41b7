"""Putting the labeling app on the network: which address, which port, and uvicorn.

The checks come before anything is written or printed: a host that is not
this machine's loopback needs an explicit confirmation (the app speaks plain
HTTP, so annotator tokens and answers would cross the network unencrypted),
and the port is bound here, before the app is built, so that a port already
in use is one clear error instead of a banner followed by uvicorn's exit.
The bound socket is then handed to uvicorn: no other program can take the
port in between.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Any, Callable

__all__ = ["is_loopback", "check_host", "open_listener", "run_app", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.0.0.0/8``, ``::1``).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("example.org")
    (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_host(host: str, *, allow_remote: bool = False) -> str:
    """Return ``host`` if the app may listen on it.

    Raises
    ------
    ValueError
        If ``host`` is not a loopback address and ``allow_remote`` is False:
        tokens would travel unencrypted.
    """
    if not isinstance(host, str) or not host.strip():
        raise ValueError("--host is empty; give an address such as 127.0.0.1")
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"--host {host} is not a loopback address: annotator tokens and answers would travel unencrypted"
            " (plain HTTP) to and from other machines; pass --allow-remote (allow_remote=True) to confirm,"
            " ideally behind an HTTPS proxy"
        )
    return host


def open_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, ready for :func:`run_app`.

    Raises
    ------
    ValueError
        If ``port`` is not in 1..65535 or ``host`` cannot be resolved.
    OSError
        If the port is in use, the address is not one of this machine's, or
        binding is not allowed; one line naming the host and port.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {port!r}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ValueError(f"--host {host}: not an address this machine can listen on ({error})") from None
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restarted server need not wait for the old connections' TIME_WAIT.
        # Linux still refuses a port on which another socket listens.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} on {host} is in use; pass --port with a free port") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise OSError(f"--host {host} is not an address of this machine; pass --host 127.0.0.1") from None
        if error.errno == errno.EACCES:
            raise OSError(f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges); pass --port") from None
        raise OSError(f"cannot listen on {host} port {port}: {error.strerror}") from None
    return sock


def run_app(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn on the bound ``sock`` until interrupted (blocks); closes ``sock``."""
    import uvicorn

    try:
        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()


def banner(app: Any, host: str, port: int) -> str:
    """The line announcing a served app: units, address, database, and whether tokens cross the network."""
    shown_host = f"[{host}]" if ":" in host else host
    exposed = ("" if is_loopback(host)
               else " · reachable from the network, tokens travel unencrypted unless behind an HTTPS proxy")
    return (f"labeling {len(app.state.catalog)} units (k={app.state.k}) at http://{shown_host}:{port}/ · answers in "
            f"{app.state.store.path}{exposed} · Ctrl-C to stop")


def serve(
    results_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote: bool = False,
    log_level: str | None = None,
    announce: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Run the labeling app until interrupted (blocks).

    ``options`` are those of :func:`~unitscope.label.app.create_app`. Binds
    ``127.0.0.1`` by default: reachable from this machine only; another host
    needs ``allow_remote=True`` (see :func:`check_host`).  Every check comes
    before the port is taken, and the port is taken before the database is
    created: a refused call leaves nothing behind and announces nothing.
    ``announce`` receives the :func:`banner` once the app is ready;
    ``log_level`` is uvicorn's (default: :func:`run_app`'s).
    """
    from .app import create_app

    check_host(host, allow_remote=allow_remote)
    sock = open_listener(host, port)
    try:
        app = create_app(results_dir, **options)
    except BaseException:
        sock.close()
        raise
    if announce is not None:
        announce(banner(app, host, port))
    run_app(app, sock, **({} if log_level is None else {"log_level": log_level}))
