"""A role process whose PostgreSQL server refuses it at start (here: the server's port still
closed) says so on one line and waits, instead of exiting only to be started again by its
supervisor; it starts as soon as the server accepts. A process alone (``--role all``)
still says the refusal at once and exits, as before."""

from __future__ import annotations

import contextlib
import signal
import socket
import socketserver
import subprocess
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from tests.e2e.conftest import TRADETAPE, server_env


def closed_port() -> socket.socket:
    """A port bound and not listening: connections to it are refused, and while the socket
    stays open no other test (xdist runs two at once) can be given it and start listening
    there. Released (closed) only when the test opens the port itself."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class Forwarder(socketserver.ThreadingTCPServer):
    """The server's port opening late: every connection to ``port`` passed on to PostgreSQL."""

    daemon_threads = allow_reuse_address = True

    def __init__(self, port: int, target: tuple[str, int]):
        self.target = target
        super().__init__(("127.0.0.1", port), _Pipe)


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with socket.create_connection(self.server.target) as upstream:
            back = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
            back.start()
            _copy(self.request, upstream)
            back.join()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + f":{port}"))


def serve(role: str, url: str, folder) -> subprocess.Popen:
    return subprocess.Popen(
        [str(TRADETAPE), "serve", "--role", role, "--database", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(),
        cwd=folder,
    )


def test_a_projections_process_waits_for_the_server_then_starts(postgres_url, tmp_path):
    reserved = closed_port()
    port = reserved.getsockname()[1]
    process = serve("projections", through(postgres_url, port), tmp_path)
    forwarder = None
    try:
        time.sleep(4)  # refused at 0 s, 0.5, 1.5 and 3.5 s: still waiting, not exited
        assert process.poll() is None
        target = urlsplit(postgres_url)
        reserved.close()
        forwarder = Forwarder(port, (target.hostname, target.port or 5432))
        threading.Thread(target=forwarder.serve_forever, daemon=True).start()
        line = process.stdout.readline()  # the next try (within 4 s) starts
        assert line.startswith("Tradetape projections: following the log"), line
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0
        warnings = err.splitlines()
        assert len(warnings) == 1, err  # said once, however many tries
        assert warnings[0].startswith(
            "warning: DATABASE_UNAVAILABLE: cannot connect to "
            f"postgresql://postgres@127.0.0.1:{port}/test"
        ), err
        assert "refused" in warnings[0] and "until the server accepts" in warnings[0]
    finally:
        reserved.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        if forwarder is not None:
            forwarder.shutdown()
            forwarder.server_close()


def test_a_single_process_still_says_the_refusal_at_once(tmp_path):
    with closed_port() as reserved:
        run = _serve_alone(reserved.getsockname()[1], tmp_path)
    assert run.returncode != 0
    assert run.stderr.startswith("error: DATABASE_UNAVAILABLE"), run.stderr
    assert "Traceback" not in run.stderr


def _serve_alone(port: int, folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(TRADETAPE),
            "serve",
            "--database",
            f"postgresql://postgres@127.0.0.1:{port}/test",
        ],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=folder,
        timeout=60,
        check=False,
    )
