"""The sign-in redirect: a listener on 127.0.0.1 for the browser, or the address the user pastes.

Both check the random ``state`` of this sign-in before they take a code, and neither ever echoes a
code or the address that carries it.
"""

from __future__ import annotations

import hmac
import html
import http.server
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, ConfigError, UsageError

CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"
DEFAULT_LOGIN_TIMEOUT = 300.0


def strip_code_suffix(code: str) -> str:
    """Instagram appends ``#_`` to the redirect; a pasted or relayed code may still carry it."""
    return code[:-2] if code.endswith("#_") else code


# ---------------------------------------------------------------------------------------------------
# The loopback redirect listener


@dataclass(repr=False)
class _CallbackState:
    expected_state: str
    code: str | None = None
    error: str | None = None
    rejected: int = 0

    def __repr__(self) -> str:
        # The code is as good as a token for the next 30 seconds.
        return f"_CallbackState(code={'***' if self.code else None}, rejected={self.rejected})"


class LoopbackListener:
    """Receives the OAuth redirect on 127.0.0.1: exactly one callback with the right state.

    A callback with a wrong or missing state gets a 400 page and the listener keeps waiting; once a
    code (or a refusal) with the right state has arrived, any further callback gets 409 until the
    listener closes. It binds only to the loopback address, never to all interfaces.
    """

    def __init__(self, expected_state: str, port: int = 0) -> None:
        self._state = _CallbackState(expected_state)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._server = http.server.HTTPServer((LOOPBACK_HOST, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="crosswatch-oauth-callback", daemon=True)

    def __repr__(self) -> str:
        return f"LoopbackListener(address={self.address!r})"

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def redirect_uri(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}{CALLBACK_PATH}"

    @property
    def rejected(self) -> int:
        return self._state.rejected

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def wait(self, timeout: float) -> str:
        """The authorization code; AuthError on refusal or when none arrives in time."""
        if not self._done.wait(timeout):
            raise AuthError(f"no sign-in arrived within {timeout:.0f} s; run the sign-in again")
        if self._state.error:
            raise AuthError(f"the sign-in was refused ({self._state.error}); run the sign-in again "
                            "and approve access")
        assert self._state.code is not None
        return self._state.code

    def handle_callback(self, path: str) -> tuple[int, str]:
        """Decide on one request; returns the HTTP status and a short message for the page."""
        parts = urllib.parse.urlsplit(path)
        if parts.path != CALLBACK_PATH:
            return 404, "Not a crosswatch sign-in address."
        query = urllib.parse.parse_qs(parts.query)
        state = query.get("state", [""])[0]
        with self._lock:
            if self._done.is_set():
                return 409, "This sign-in is already complete; this link cannot be used again."
            if not hmac.compare_digest(state.encode(), self._state.expected_state.encode()):
                self._state.rejected += 1
                return 400, "This sign-in link does not belong to the sign-in crosswatch started."
            if "error" in query:
                words = [query.get(k, [""])[0] for k in ("error", "error_description")]
                self._state.error = ": ".join(w for w in words if w)[:300] or "access denied"
                self._done.set()
                return 400, "Sign-in was refused. You can close this tab."
            code = strip_code_suffix(query.get("code", [""])[0])
            if not code:
                self._state.rejected += 1
                return 400, "The sign-in answer carried no code."
            self._state.code = code
            self._done.set()
            return 200, "Signed in to crosswatch. You can close this tab."

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "crosswatch"
            sys_version = ""

            def do_GET(self) -> None:
                status, message = listener.handle_callback(self.path)
                page = (f"<!doctype html><meta charset=utf-8><title>crosswatch</title>"
                        f"<p>{html.escape(message)}</p>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                # The default writes the request line, code and state included, to stderr.
                return

        return Handler


def listen(cfg: TargetConfig, state: str) -> LoopbackListener:
    try:
        return LoopbackListener(state, port=cfg.redirect_port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {LOOPBACK_HOST}:{cfg.redirect_port} for the sign-in "
                          f"({exc.strerror or exc}); choose a free port (and register "
                          f"http://{LOOPBACK_HOST}:<port>{CALLBACK_PATH} with the app)",
                          key=f"targets.{cfg.name}.redirect_port") from None


def pasted_code(cfg: TargetConfig, url: str, state: str, open_browser: Callable[[str], None],
                 paste_redirect: Callable[[str], str] | None) -> str:
    if paste_redirect is None:
        raise UsageError(f"targets.{cfg.name}.redirect_uri is set, so sign-in needs the address your browser "
                         "is sent to; run `crosswatch auth login` in a terminal")
    open_browser(url)
    pasted = paste_redirect("After approving, paste the whole address your browser was sent to")
    return code_from_redirect(pasted, state)


def code_from_redirect(address: str, expected_state: str) -> str:
    """The code in a pasted redirect address, after checking its state; never echoes the address."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(address.strip()).query)
    state = query.get("state", [""])[0]
    if not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise AuthError("the pasted address does not belong to this sign-in (its state differs); "
                        "paste the address from this attempt")
    if "error" in query:
        words = [query.get(k, [""])[0] for k in ("error", "error_description")]
        raise AuthError(f"the sign-in was refused ({': '.join(w for w in words if w)[:300]}); "
                        "run the sign-in again and approve access")
    code = strip_code_suffix(query.get("code", [""])[0])
    if not code:
        raise AuthError("the pasted address carries no code; paste the whole address from the address bar")
    return code


