"""Serving an ``Emulator`` on a real socket with the standard library's ThreadingHTTPServer.

Each HTTP request becomes an ``httpx.Request`` for ``Emulator.handle``; the ``httpx.Response`` is
written back. Injected connection faults close the socket without a response (after holding it for a
timeout fault), which is what a client sees when a server or a proxy dies mid-request.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from crosswatch.emulator.core import Emulator
from crosswatch.emulator.faults import ConnectionDropped, ResponseTimedOut
from crosswatch.emulator.settings import EmulatorSettings

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}
)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # joined on close, so no thread outlives stop()
    block_on_close = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a browser closed while images load, a killed daemon)
        is no error of the emulator's: only anything else is printed, as the standard library does."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive connections so they can end."""
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _BodyCutShort(Exception):
    """The client went away before its whole body arrived (it was killed mid-upload, say)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request line (with Instagram tokens in query strings) to stderr.
        return

    def _serve(self) -> None:
        try:
            request = self._to_httpx()
        except _BodyCutShort:
            # Like any HTTP server, never act on half a request: the client only sees a disconnect.
            self._abandon()
            return
        try:
            response = self.server.emulator.handle(request)
        except ResponseTimedOut as stalled:
            self.server.closing.wait(stalled.hold_seconds)
            self._abandon()
            return
        except ConnectionDropped:
            self._abandon()
            return
        except Exception as exc:  # a bug in the emulator: answer 500 and show it, keep serving
            traceback.print_exc(file=sys.stderr)
            response = httpx.Response(500, text=f"emulator error: {type(exc).__name__}: {exc}")
        self._write(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _to_httpx(self) -> httpx.Request:
        body = self._read_body()
        bound_host, bound_port = self.server.server_address[:2]
        host = self.headers.get("host") or f"{bound_host!s}:{bound_port}"
        headers = [(key, value) for key, value in self.headers.items() if key.lower() != "transfer-encoding"]
        return httpx.Request(self.command, f"http://{host}{self.path}", headers=headers, content=body)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("content-length") or 0)
        return self._read_exactly(length) if length > 0 else b""

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise _BodyCutShort
        return data

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise _BodyCutShort
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # trailers end with an empty line
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self.rfile.readline()

    def _write(self, response: httpx.Response) -> None:
        body = response.read()
        self.send_response(response.status_code)
        for key, value in response.headers.multi_items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _abandon(self) -> None:
        """Close without a status line: the client sees the server disconnect."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class EmulatorServer:
    """``with EmulatorServer(Emulator()) as server: httpx.get(server.url + "/_emulator/state")``."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        self.emulator.resume_delays()
        self._server = _Server(self._address, self.emulator)
        # A short poll interval keeps stop() quick; shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="crosswatch-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self.emulator.interrupt_delays()
        server.closing.set()
        server.shutdown()
        server.cut_connections()
        server.server_close()
        thread.join()
        self.emulator.resume_delays()  # the emulator may go on serving in-process or on a new server

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    settings: EmulatorSettings | None = None,
    hosted_dir: Path | None = None,
    emulator: Emulator | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until Ctrl-C (or until ``stop`` is set), printing the base URL first.

    ``crosswatch emulator [--host] [--port]`` calls this; pass ``settings`` for short token lifetimes,
    small quotas and the like, and ``hosted_dir`` to serve a folder under ``/_emulator/hosted/`` (a
    ``directory`` media host for Instagram without another web server).
    """
    emulator = emulator or Emulator(settings, hosted_dir=hosted_dir)
    with EmulatorServer(emulator, host, port) as server:
        print(f"crosswatch emulator listening on {server.url}", flush=True)
        print(f"timelines: {server.url}/_emulator/   state: {server.url}/_emulator/state", flush=True)
        if ready is not None:
            ready.set()
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("stopping emulator", file=sys.stderr, flush=True)
