"""Serving the console: the listening socket, uvicorn, the printed sign-in address.

``crosswatch console`` serves in the foreground (uvicorn stops on SIGTERM or SIGINT);
``crosswatch run`` serves it from a thread next to the daemon's. Either writes
state_dir/console/address.json (the address and the serving process) so that `crosswatch status`
can hand out a fresh sign-in address for a console already running (console/address.py).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crosswatch.config import DEFAULT_CONSOLE_PORT, Config
from crosswatch.console.address import address_file
from crosswatch.console.security import PASSWORD_KEY, Sessions, is_loopback
from crosswatch.errors import UsageError

# How many ports after the default one are tried when it is taken.
PORT_TRIES = 20


def bind(host: str, port: int, *, next_free: bool) -> socket.socket:
    """A listening socket on ``host``: ``port`` (0: any free one), or with ``next_free`` the first free
    port from ``port`` on. UsageError when none can be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tries = PORT_TRIES if next_free and port else 1
    last: OSError | None = None
    for candidate in range(port, port + tries):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), candidate))
            sock.listen(128)
            sock.set_inheritable(True)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                break
    shown = f"{port}" if tries == 1 else f"{port}-{port + tries - 1}"
    raise UsageError(f"the console cannot listen on {host}:{shown}: {last.strerror if last else 'unknown'}; "
                     "choose another with --port or console.port (0: any free port)")


@dataclass
class Console:
    """A bound console, ready to serve."""

    config: Config
    sock: socket.socket
    url: str  # http://host:port
    token: str  # the first one-time sign-in token
    server: Any  # uvicorn.Server
    state: Any  # ConsoleState

    @property
    def signin_url(self) -> str:
        return f"{self.url}/signin?token={self.token}"

    def serve(self) -> None:
        """Serve until stopped (in the main thread: SIGTERM and SIGINT stop it)."""
        self._write_address()
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._cleanup()

    def start_thread(self) -> threading.Thread:
        self._write_address()
        thread = threading.Thread(target=self._serve_in_thread, name="console", daemon=True)
        thread.start()
        return thread

    def _serve_in_thread(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._cleanup()

    def stop(self) -> None:
        self.server.should_exit = True

    def _write_address(self) -> None:
        path = address_file(self.config)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            scratch = path.with_suffix(".part")
            scratch.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
            os.replace(scratch, path)
        except OSError:
            pass  # state_dir cannot be written (the daemon says so): only `status` misses the address

    def _cleanup(self) -> None:
        with contextlib.suppress(OSError):
            current = json.loads(address_file(self.config).read_text())
            if current.get("pid") == os.getpid() and current.get("url") == self.url:
                address_file(self.config).unlink()
        self.state.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def password_hash(store: Any) -> Callable[[], str | None]:
    def read() -> str | None:
        value = store.get(PASSWORD_KEY)
        return value if isinstance(value, str) and value else None
    return read


def make_console(config: Config, *, host: str | None = None, port: int | None = None,
                 store: Any = None, warn: Callable[[str], None] | None = None,
                 on_decision: Callable[[], None] | None = None) -> Console:
    """Bind the console (config.console unless ``host``/``port`` say otherwise) and build its app.

    Beyond loopback it needs the console password in the keyring (UsageError otherwise) and warns
    that TLS belongs in front."""
    import uvicorn

    from crosswatch.console.app import ConsoleState, build_app
    from crosswatch.secrets import SecretStore

    store = store if store is not None else SecretStore()
    host = host if host is not None else config.console.host
    explicit_port = port is not None
    port = port if port is not None else config.console.port
    read_password = password_hash(store)
    if not is_loopback(host):
        if read_password() is None:
            raise UsageError(f"the console listens beyond loopback ({host}) only with a password: set one with "
                             "`crosswatch console --set-password` (read from standard input), or keep "
                             "console.host 127.0.0.1")
        (warn or _stderr)(f"warning: the console listens on {host}, beyond this machine: put TLS in front of it "
                          "(a reverse proxy); its sign-in and session travel in plain HTTP otherwise")
    sock = bind(host, port, next_free=not explicit_port or port == DEFAULT_CONSOLE_PORT)
    real_port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown_host and not shown_host.startswith("["):
        shown_host = f"[{shown_host}]"
    sessions = Sessions(config.state_dir)
    state = ConsoleState(config=config, host=host, port=real_port, sessions=sessions, store=store,
                         password_hash=read_password)
    if on_decision is not None:
        state.on_decision = on_decision
    app = build_app(state)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                           lifespan="off"))
    return Console(config, sock, f"http://{shown_host}:{real_port}", sessions.new_token(), server, state)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
