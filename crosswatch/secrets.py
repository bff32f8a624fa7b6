"""The secret store: tokens and client secrets live only in the OS keyring (service ``crosswatch``).

Headless machines and tests choose a backend with keyring's own ``PYTHON_KEYRING_BACKEND`` (for
example ``keyrings.alt.file.PlaintextKeyring``). Every keyring failure becomes ``SecretStoreError``
with a line that says what to do; no message here ever includes a stored value.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import keyring
import keyring.errors

from crosswatch.errors import SecretStoreError

SERVICE = "crosswatch"
HINT = ("the OS keyring is not available; install and unlock one (Secret Service, macOS Keychain, "
        "Windows Credential Locker), or choose a backend with PYTHON_KEYRING_BACKEND, e.g. "
        "keyrings.alt.file.PlaintextKeyring on a headless machine")


# Some backends (keyrings.alt's files) rewrite their file in place: serialise access in-process so a
# reader never sees it half-written.
_KEYRING_LOCK = threading.RLock()


class SecretStore:
    """Named secrets in the keyring. Names are ``<target>:token`` and ``<target>:client_secret``."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def __repr__(self) -> str:
        return f"SecretStore(service={self.service!r})"

    def get(self, name: str) -> str | None:
        try:
            with _KEYRING_LOCK:
                return keyring.get_password(self.service, name)
        except Exception as exc:
            raise _store_error("read", name, exc) from None

    def set(self, name: str, value: str) -> None:
        try:
            with _KEYRING_LOCK:
                keyring.set_password(self.service, name, value)
        except Exception as exc:
            raise _store_error("write", name, exc) from None

    def delete(self, name: str) -> bool:
        """Remove ``name``; False when it was not there."""
        try:
            with _KEYRING_LOCK:
                keyring.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:
            raise _store_error("delete", name, exc) from None
        return True

    def get_json(self, name: str) -> dict[str, Any] | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise SecretStoreError(f"the keyring entry {self.service}/{name} is damaged; "
                                   "sign in again to replace it") from None
        if not isinstance(value, dict):
            raise SecretStoreError(f"the keyring entry {self.service}/{name} is damaged; "
                                   "sign in again to replace it")
        return value

    def set_json(self, name: str, value: dict[str, Any]) -> None:
        self.set(name, json.dumps(value, sort_keys=True))


def _store_error(action: str, name: str, exc: Exception) -> SecretStoreError:
    # The keyring's own message names the backend problem; it never contains the value.
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return SecretStoreError(f"cannot {action} {SERVICE}/{name} in the keyring ({detail}): {HINT}")
