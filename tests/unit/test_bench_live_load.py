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
