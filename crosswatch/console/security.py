"""Sessions, sign-in tokens, CSRF, Host and Origin checks, the console password.

- A one-time sign-in token is made at start (and by `crosswatch status` for a console already
  running: a file in state_dir/console/tokens named by the token's SHA-256, private like the rest of
  state_dir). Using it makes a session: a random id in an HttpOnly, SameSite=Strict cookie.
- Every POST carries the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); an
  ``Origin`` (or, without one, ``Referer``) that is not the console's own address is refused.
- The ``Host`` header must name the address the console is bound to: a page on another site that
  re-points its own name at 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
- Beyond loopback the console needs a password; only its scrypt hash is kept, in the keyring.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SESSION_COOKIE = "crosswatch_session"
SESSION_SECONDS = 12 * 3600.0
# A token handed out by `crosswatch status` for a console already running is good for this long.
TOKEN_FILE_SECONDS = 600.0
PASSWORD_KEY = "console.password"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host header values the console answers to; None: any (bound to every address, where the
    password guards it)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    shown = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
    return frozenset(f"{n}:{port}" for n in shown) | (frozenset(shown) if port == 80 else frozenset())


def token_dir(state_dir: Path) -> Path:
    return state_dir / "console" / "tokens"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hand_out_token(state_dir: Path) -> str:
    """A new one-time sign-in token that a console running on this state_dir accepts."""
    folder = token_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_stale_tokens(folder)
    token = secrets.token_urlsafe(32)
    fd = os.open(folder / _digest(token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return token


def _remove_stale_tokens(folder: Path) -> None:
    """Tokens handed out and never used are worthless after TOKEN_FILE_SECONDS: remove them."""
    now = time.time()
    for path in folder.iterdir():
        try:
            if now - path.stat().st_mtime > TOKEN_FILE_SECONDS:
                path.unlink()
        except OSError:
            continue


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${key.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        kind, salt, key = stored.split("$")
        wanted = bytes.fromhex(key)
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(got, wanted)


@dataclass
class Session:
    csrf: str
    expires: float


class Sessions:
    """The sign-in tokens not used yet and the sessions made from them (in memory: a restart of
    the console signs everyone out)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = state_dir
        self._clock = clock
        self._tokens: set[str] = set()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock()

    def new_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return token

    def use_token(self, token: str) -> str | None:
        """A new session id for a sign-in token, used up by it; None for a token not known."""
        if not token or len(token) > 200:
            return None
        with self._lock:
            known = token in self._tokens
            self._tokens.discard(token)
        if not known and not self._use_token_file(token):
            return None
        return self.new_session()

    def _use_token_file(self, token: str) -> bool:
        path = token_dir(self.state_dir) / _digest(token)
        try:
            made = path.stat().st_mtime
            path.unlink()  # one use: whoever unlinks it first
        except OSError:
            return False
        return self._now() - made <= TOKEN_FILE_SECONDS

    def new_session(self) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = Session(secrets.token_urlsafe(32), self._now() + SESSION_SECONDS)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires < self._now():
                del self._sessions[session_id]
                return None
            return session


def same_origin(origin: str, host_header: str) -> bool:
    """Whether an Origin (or Referer) names this console: http(s)://<the Host header>."""
    for scheme in ("http://", "https://"):
        if origin.startswith(scheme):
            rest = origin[len(scheme):]
            return rest.split("/", 1)[0] == host_header
    return False
