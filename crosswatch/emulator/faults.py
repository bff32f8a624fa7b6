"""Injected faults: canned responses, delays, dropped connections and failing containers.

A fault targets one endpoint name (see ``Emulator.endpoint_names()``) or ``"*"`` and fires ``times``
times (``None``: until cleared). Connection faults surface as exceptions that subclass httpx's own
transport errors, so under ``httpx.MockTransport`` the client sees exactly the error class a real
dropped socket or stalled server would give it, while the real server catches them and closes the
socket (after holding it open for a timeout fault).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

FaultAction = Literal[
    "respond",  # answer with status/body/headers without applying the request
    "delay",  # wait `seconds`, then handle normally
    "drop_before",  # close the connection without applying the request
    "drop_after",  # apply the request, then close the connection without a response
    "timeout_before",  # stall for `seconds` without applying, then close (a read timeout)
    "timeout_after",  # apply, then stall for `seconds` and close
    "container_error",  # ig.media.create only: the new container ends in ERROR
    "container_expired",  # ig.media.create only: the new container ends in EXPIRED
]

TRANSPORT_ACTIONS: frozenset[str] = frozenset(
    {"respond", "delay", "drop_before", "drop_after", "timeout_before", "timeout_after"}
)
CONTAINER_ACTIONS: frozenset[str] = frozenset({"container_error", "container_expired"})
ALL_ACTIONS: frozenset[str] = TRANSPORT_ACTIONS | CONTAINER_ACTIONS
# The endpoints that create Meta containers (Instagram's and Threads').
CONTAINER_ENDPOINTS: frozenset[str] = frozenset({"ig.media.create", "threads.create"})


class ConnectionDropped(httpx.RemoteProtocolError):
    """The server closed the connection without sending a response."""


class ResponseTimedOut(httpx.ReadTimeout):
    """The server accepted the request and never answered; the real server holds the socket."""

    def __init__(self, message: str, *, request: httpx.Request, hold_seconds: float) -> None:
        super().__init__(message, request=request)
        self.hold_seconds = hold_seconds


@dataclass
class Fault:
    endpoint: str
    action: FaultAction
    status: int = 500
    body: Any = None  # dict/list -> JSON; str -> text/plain; None -> a platform-shaped error
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    times: int | None = 1
    id: int = 0
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """The armed faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        if fault.action not in ALL_ACTIONS:
            raise ValueError(f"unknown fault action {fault.action!r}")
        if fault.action in CONTAINER_ACTIONS and fault.endpoint not in CONTAINER_ENDPOINTS:
            raise ValueError("container faults apply to the ig.media.create and threads.create endpoints only")
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def take(self, endpoint: str, actions: frozenset[str]) -> Fault | None:
        """The first armed fault for ``endpoint`` among ``actions``, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.action in actions and fault.endpoint in (endpoint, "*"):
                    fault.fired += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


def fault_from_json(spec: dict[str, Any]) -> Fault:
    """Build a fault from the admin API's JSON; unknown keys are an error, not silently ignored."""
    allowed = {"endpoint", "action", "status", "body", "headers", "seconds", "times"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    if "endpoint" not in spec or "action" not in spec:
        raise ValueError("a fault needs 'endpoint' and 'action'")
    return Fault(
        endpoint=str(spec["endpoint"]),
        action=spec["action"],
        status=int(spec.get("status", 500)),
        body=spec.get("body"),
        headers={str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()},
        seconds=float(spec.get("seconds", 0.0)),
        times=None if spec.get("times", 1) is None else int(spec.get("times", 1)),
    )
