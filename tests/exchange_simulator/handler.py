"""The simulator's HTTP plumbing: listening sockets on threads, and the request handler that
applies faults around :meth:`tests.exchange_simulator.http.SimulatorServer.answer`.

Every answer closes its connection (HTTP/1.0): "down" and "lose the response" then need no
bookkeeping of kept-alive connections, and a client killed with ``kill -9`` leaves nothing
behind. Errors of a client that went away are ignored, quietly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.exchange_simulator.control import control_answer
from tests.exchange_simulator.faults import Fault

if TYPE_CHECKING:
    from tests.exchange_simulator.http import SimulatorServer

HOST = "127.0.0.1"
ORDER_PATH = "/api/v3/order"
_RATE_LIMIT_MSG = ("Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                   "minute. Please use WebSocket Streams for live updates to avoid polling the "
                   "API.")
_BACKEND_TIMEOUT_MSG = ("Timeout waiting for response from backend server. Send status unknown; "
                        "execution status unknown.")
_REFUSED_MSG = "An unknown error occurred while processing the request."


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a request held by a timeout fault must not block a shutdown
    simulator: SimulatorServer
    control_only: bool

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that went away (killed, timed out) is normal here."""


def serve(simulator: SimulatorServer, port: int, *, control_only: bool) -> _Server:
    server = _Server((HOST, port), _Handler)
    server.simulator, server.control_only = simulator, control_only
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     name=f"exchange-simulator-{port}", daemon=True).start()
    return server


def close(server: _Server) -> None:
    server.shutdown()
    server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: see the module's docstring
    timeout = 30  # seconds a client may take to send its request

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the ledger, not an access log."""

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        simulator = self.server.simulator
        if parts.path.startswith("/_simulator/"):
            self._send(*control_answer(simulator, method, parts.path, body))
        elif self.server.control_only:
            self._send(404, {"code": -1000, "msg": "This is the simulator's control port."}, {})
        else:
            self._serve_api(simulator, method, parts.path, parts.query, body)

    def _serve_api(self, simulator: SimulatorServer, method: str, path: str, query: str,
                   body: str) -> None:
        fault = simulator.faults.take(method, path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        creating = method == "POST" and path == ORDER_PATH
        client_id = _client_id(query, body) if creating else None
        if fault and (fault.kind in ("rate_limit", "refuse") or (
                fault.kind in ("timeout", "backend_timeout") and not fault.execute)):
            if client_id:
                simulator.matching.record_attempt(client_id, "not_executed", fault.kind)
            self._fault_instead_of_answer(fault)
            return
        if fault and fault.kind == "timeout" and fault.late:
            time.sleep(fault.seconds)  # the client has given up when the order is placed
        status, payload, extra = simulator.answer(method, path, query, body, headers)
        if client_id:
            outcome = "accepted" if status == 200 else f"refused:{payload.get('code')}"
            simulator.matching.record_attempt(client_id, outcome, fault.kind if fault else None)
        if fault is None:
            self._send(status, payload, extra)
        elif fault.kind == "timeout":
            if not fault.late:
                time.sleep(fault.seconds)
            self._send(status, payload, extra)
        else:
            self._fault_instead_of_answer(fault)

    def _fault_instead_of_answer(self, fault: Fault) -> None:
        if fault.kind == "rate_limit":
            retry = {"Retry-After": str(max(1, round(fault.seconds)))}
            self._send(fault.status, {"code": -1003, "msg": _RATE_LIMIT_MSG}, retry)
        elif fault.kind == "backend_timeout":
            self._send(503, {"code": -1007, "msg": _BACKEND_TIMEOUT_MSG}, {})
        elif fault.kind == "refuse":
            self._send(fault.status, {"code": fault.code, "msg": _REFUSED_MSG}, {})
        elif fault.kind == "timeout":
            time.sleep(fault.seconds)
            self._drop()
        else:  # lose_response
            self._drop()

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-MBX-USED-WEIGHT-1M", "1")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away (timed out, killed): the answer is lost, as it would be

    def _drop(self) -> None:
        """Close the connection without a word: the client sees it torn down."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _client_id(query: str, body: str) -> str | None:
    return dict(parse_qsl(query + "&" + body)).get("newClientOrderId")


