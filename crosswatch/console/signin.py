"""The accounts page's sign-in button: the same OAuth flow as `crosswatch auth login`.

The flow runs in a thread (its loopback listener waits for the platform's redirect); the button's
request waits until the flow has its authorization address and sends the browser there. When the
platform sends the browser back, the listener takes the code, the tokens go to the keyring, and a
sign-in hold on the target is cleared, as `auth login` does.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

from crosswatch.errors import CrosswatchError

# How long the button's request waits for the flow to produce the platform's address.
ADDRESS_WAIT_SECONDS = 15.0
LOGIN_TIMEOUT_SECONDS = 300.0


class SignInFlows:
    def __init__(self, state: Any) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._messages: dict[str, str] = {}

    def messages(self) -> dict[str, str]:
        """target -> how its last sign-in from the console went (never a secret)."""
        with self._lock:
            return dict(self._messages)

    def start(self, target: str) -> str | None:
        """Start a sign-in for ``target``; the platform's authorization address, or None (the
        reason is in ``messages()``)."""
        from crosswatch.views import sign_in_command

        target_cfg = self.state.config.targets[target]
        command = sign_in_command(target_cfg)
        if command:
            how = (f"signs in through {target_cfg.redirect_uri}, whose address must be pasted back"
                   if target_cfg.redirect_uri else "signs in with an app password, typed in a terminal")
            self._say(target, f"{target} {how}: run `{command}`")
            return None
        with self._lock:
            if target in self._running:
                self._messages[target] = "a sign-in is already under way; finish it in the other tab"
                return None
            self._running.add(target)
        addresses: queue.Queue[str | None] = queue.Queue()
        thread = threading.Thread(target=self._run, args=(target, addresses), name=f"console-signin-{target}",
                                  daemon=True)
        thread.start()
        try:
            return addresses.get(timeout=ADDRESS_WAIT_SECONDS)
        except queue.Empty:
            self._say(target, "the sign-in did not start in time; try again")
            return None

    def _run(self, target: str, addresses: queue.Queue[str | None]) -> None:
        import httpx

        from crosswatch import auth

        target_cfg = self.state.config.targets[target]
        try:
            with httpx.Client(timeout=30.0, headers={"User-Agent": "crosswatch/0.1"}) as client:
                result = auth.login(target_cfg, self.state.store, client, addresses.put, None,
                                    timeout=LOGIN_TIMEOUT_SECONDS)
            self._say(target, f"signed in as {result['username'] or result['account_id'] or 'unknown account'}")
            with self.state.lock, contextlib.suppress(CrosswatchError):
                journal = self.state.journal()
                if journal is not None:
                    journal.clear_hold(target, kind="auth")
                self.state.accounts(fresh=True)
        except CrosswatchError as exc:
            self._say(target, f"sign-in failed: {exc}")
        finally:
            addresses.put(None)  # a request still waiting learns that no address comes
            with self._lock:
                self._running.discard(target)

    def _say(self, target: str, text: str) -> None:
        with self._lock:
            self._messages[target] = text
