"""``scripts/bench_live.py``'s second client: when the api is gone (it exited, or the run
stopped it first), the load ends in one line, never a thread's ConnectionRefused
traceback in the benchmark's report."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def bench_live(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # its sibling modules (bench_api, ...)
    spec = importlib.util.spec_from_file_location("bench_live", SCRIPTS / "bench_live.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_live", module)  # (its dataclasses look it up)
    spec.loader.exec_module(module)
    return module


def a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_load_on_an_api_gone_ends_in_one_line_without_a_traceback(capsys, monkeypatch):
    uncaught = []
    monkeypatch.setattr(threading, "excepthook", uncaught.append)
    load = bench_live(monkeypatch).ApiLoad(a_closed_port(), ["token"], rate=5,
                                until=time.monotonic() + 30, turn=0.5)
    load.start()
    load._thread.join(20)
    assert not load._thread.is_alive()
    assert uncaught == []
    assert load.ended is not None and load.ended.startswith("ConnectionRefusedError")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "the api load ended" in line] == [
        err.strip()]


class TinyApi:
    """Answers every request 200 on keep-alive connections until ``close``: then it is
    gone at once, its connections too (as an api process stopped)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.answered = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        body = b'{"data": {}}'
        try:
            while data := client.recv(65536):
                for _ in range(data.count(b"HTTP/1.1\r\n")):
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                   % (len(body), body))
                    self.answered += 1
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()
        for client in self.clients:
            client.shutdown(socket.SHUT_RDWR)
            client.close()


def test_an_api_stopped_under_the_load_ends_it_without_a_traceback(capsys, monkeypatch):
    uncaught = []
    monkeypatch.setattr(threading, "excepthook", uncaught.append)
    api = TinyApi()
    load = bench_live(monkeypatch).ApiLoad(api.port, ["token"], rate=20,
                                           until=time.monotonic() + 30, turn=5)
    load.start()
    deadline = time.monotonic() + 10
    while api.answered < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    api.close()  # the api stops while the load still sends
    load._thread.join(20)
    load.stop()
    assert api.answered >= 5
    assert uncaught == []
    assert load.ended is not None
    assert "Traceback" not in capsys.readouterr().err


def test_the_report_says_how_much_of_the_waves_wall_time_the_engine_computed(
        capsys, monkeypatch):
    """The steps of 10,000 events or more set the lag's p99: the report sums their wall and
    processor time (``c``, the loop thread's), so a reader can tell a slow engine from one
    waiting on the database or a core. Steps without ``c`` (an older step log) count 0."""
    module = bench_live(monkeypatch)
    window = [{"s": 2.5, "e": 58_000, "c": 1.25, "a": 0.75}, {"s": 0.03, "e": 120, "c": 0.02},
              {"s": 1.5, "e": 18_000, "c": 0.5}, {"s": 0.5, "e": 10_000}]
    assert module.heavy_steps(window) == {"steps": 3, "events": 86_000, "wall_s": 4.5,
                                          "processor_s": 1.75, "appending_s": 0.75}
    assert module.heavy_steps(window[1:2]) is None  # a run without waves prints no line
    row = {"bots": 10, "processes": {}, "heavy": module.heavy_steps(window)}
    module.print_row("postgresql", row)
    assert ("heavy steps (>= 10,000 events): 3, 86,000 events in 4.5 s, of which the "
            "loop's thread computed 1.75 s (39%) and waited the rest (database, a core, the "
            "GIL); the appending thread computed 0.75 s beside it") in capsys.readouterr().out
