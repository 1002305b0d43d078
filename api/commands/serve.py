"""tradetape serve [--role api|engine|projections|all] [--host 127.0.0.1] [--port 8000] [--demo]
[--speed 60] [--nice N] [--database URL]"""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option

ROLES = ("api", "engine", "projections", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=ROLES, default="all",
                        help="what this process does (default all: everything in one "
                        "process). On PostgreSQL any number of each may share the database: "
                        "api (GraphQL and commands), engine (trades the bots it leases), "
                        "projections (keeps the read models)")
    parser.add_argument("--host", default=None, help="address to listen on ($TRADETAPE_HOST, "
                        "default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port ($TRADETAPE_PORT, default 8000)")
    parser.add_argument("--speed", type=float, default=None,
                        help="market minutes per real minute of the paper feed "
                        "($TRADETAPE_SPEED, default 60: a market minute per second)")
    parser.add_argument("--demo", action="store_true",
                        help="create (or reuse) a demo user with two running bots; the paper "
                        "market then runs at 300x unless --speed says otherwise")
    parser.add_argument("--nice", type=int, default=None, metavar="N",
                        help="niceness this process sets itself to at start ($TRADETAPE_NICE; "
                        "0..19, higher yields the cores to others; negative only where the "
                        "process may raise its priority). E.g. --nice 10 for the engine and "
                        "projections roles gives the api precedence on a busy machine")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    import os
    from dataclasses import replace

    from application.demo import DEMO_SPEED
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("speed", args.speed), ("database_url", args.database),
                                   ("nice", args.nice))
                 if v is not None}
    if args.demo and args.speed is None and not os.environ.get("TRADETAPE_SPEED"):
        overrides["speed"] = DEMO_SPEED  # deals open and close within the first minute
    settings = replace(settings, demo=args.demo, **overrides).checked()
    _check_role(args.role, settings.database_url)  # before anything is opened
    _set_niceness(settings.nice)  # before any thread starts: threads inherit it
    if args.role in ("projections", "engine"):  # no HTTP
        return (_serve_projections if args.role == "projections" else _serve_engine)(settings)

    import uvicorn

    from api import logs
    from api.cors import cors_origins
    from api.http_limits import RequestLimits
    from api.server import create_app
    from application.bootstrap import open_backup_schedule
    from application.demo import DEMO_START_CANDLE, ensure_demo
    from application.identity_settings import PUBLIC_URL_ENV, listening_url
    from application.trusted_proxies import trusted_proxies
    proxies = trusted_proxies()
    limits = RequestLimits.from_environ()  # refused before anything is opened
    origins = cors_origins()
    log_config = logs.configure(logs.log_format())
    backups = open_backup_schedule(settings.database_url)  # settings checked before start
    runtime = _opened(settings, args.role)
    stops = StopSignals()  # before the lines saying it started: uvicorn takes them later
    if not os.environ.get(PUBLIC_URL_ENV):  # links in mails lead to this very server
        runtime.identity.use_public_url(listening_url(settings.host, settings.port))
    if settings.demo:
        demo = ensure_demo(runtime.identity, runtime.trading)
        for feed in runtime.loop.feeds:
            feed.start_at(DEMO_START_CANDLE, demo.registered_at)
        print(demo.login_line, flush=True)
    market = (settings.live_feed.describe() if settings.live_feed and not settings.demo
              else f"paper market at {settings.speed:g}x")
    sandbox_host = (os.environ.get("TRADETAPE_SANDBOX_HOST") or "").strip() or None
    role = "" if args.role == "all" else " (role api: trading is done by engine workers)"
    print(f"Tradetape on http://{settings.host}:{settings.port}/graphql "
          f"(health: /health){role}, {market}; "
          f"{runtime.exchange_accounts.trading_line(sandbox_host)}{_niceness_note(settings)}",
          flush=True)
    # A websocket message is held to the same size as a request body.
    app = create_app(runtime, limits=limits, cors_origins=origins)
    config = uvicorn.Config(app, host=settings.host,
                            port=settings.port, log_level="warning", log_config=log_config,
                            timeout_graceful_shutdown=10, ws_max_size=limits.max_body_bytes,
                            # X-Forwarded-For only from TRADETAPE_TRUSTED_PROXIES (none by
                            # default), not from uvicorn's default of loopback.
                            proxy_headers=bool(proxies),
                            forwarded_allow_ips=list(proxies) or None)
    _freeze_what_lives(app)
    if backups is not None:
        print(f"backups every {backups.plan.every} into {backups.plan.folder}", flush=True)
        backups.start()
    try:
        _graceful_server_class()(config, stops).run()
    finally:
        if backups is not None:
            backups.stop()
    return 0


def _opened(settings, role: str):
    """The runtime of ``role``. ``all`` is one process alone: a refusal is said at once; any
    other role is one of several sharing the server: it waits a refusal out."""
    from api.commands.serve_wait import started_or_waiting
    from application.bootstrap import open_runtime

    if role == "all":
        return open_runtime(settings, role=role)
    return started_or_waiting(lambda: open_runtime(settings, role=role))


def _freeze_what_lives(app) -> None:
    """What exists now (modules, the runtime) lives as long as the server: keep it out of
    the collector's full passes, which would otherwise walk it again and again and pause a
    request now and then. The GraphQL schema, built after the server answers, joins it
    once built."""
    import gc

    gc.collect()
    gc.freeze()
    app.state.graphql.after_build = gc.freeze


def _check_role(role: str, database_url: str | None) -> None:
    """Roles other than ``all`` share one database with other processes: PostgreSQL's. Every
    role names itself in its connections (unless PGAPPNAME is set)."""
    import os

    from application.settings import parse_database_url
    from domain.errors import DomainError

    if role != "all" and parse_database_url(database_url).kind != "postgres":
        raise DomainError(f"--role {role} needs PostgreSQL (--database postgresql://...): "
                          "on SQLite only --role all runs, everything in one process",
                          code="ROLE_NEEDS_POSTGRES", field="role")
    # Every connection says which role opened it (pg_stat_activity.application_name): on a
    # server shared by many processes, who holds its connections is one query away.
    os.environ.setdefault("PGAPPNAME", f"tradetape-{role}")


def _set_niceness(nice: int | None) -> None:
    """``--nice N``: every thread of this process at niceness N, once (on Linux niceness is
    per thread; the ones started later inherit it). Raising the priority (a niceness below
    the inherited one) needs CAP_SYS_NICE or a RLIMIT_NICE that allows it: refused by name
    otherwise."""
    import os

    from domain.errors import DomainError

    if nice is None:
        return
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread (the only one yet) is the process
        threads = [0]
    try:
        for tid in threads:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except PermissionError:
        inherited = os.getpriority(os.PRIO_PROCESS, 0)
        raise DomainError(f"niceness {nice}: this process may not raise its priority above its "
                          f"inherited niceness {inherited} (that needs CAP_SYS_NICE or a "
                          f"RLIMIT_NICE allowing it); use {inherited}..19",
                          code="NICE_NOT_PERMITTED", field="nice") from None


def _niceness_note(settings) -> str:
    """What the start line says of ``--nice`` (nothing when it was not given)."""
    return "" if settings.nice is None else f"; niceness {settings.nice}"


class StopSignals:
    """SIGINT and SIGTERM, caught from the moment a role has started, before it says so: a
    supervisor that stops it as soon as the "started" line appears gets a clean stop
    (exit 0), not a process killed by the signal's default action (exit -15). Installed
    only once started: a process still waiting for its database stops at once."""

    def __init__(self) -> None:
        import signal
        import threading

        self.received: list[int] = []
        self._stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._record)

    def _record(self, sig: int, frame) -> None:
        self.received.append(sig)
        self._stop.set()

    def wait(self) -> None:
        """Block until one arrives (or has arrived)."""
        while not self._stop.wait(1.0):
            pass


def _serve_engine(settings) -> int:
    """``--role engine``: trades the bots it leases until SIGINT/SIGTERM (no HTTP)."""
    from api import logs
    from api.commands.serve_wait import started_or_waiting
    from application.bootstrap import open_runtime

    logs.configure(logs.log_format())

    def started():
        runtime = open_runtime(settings, role="engine")
        runtime.start()
        return runtime

    runtime = started_or_waiting(started)
    stops = StopSignals()
    print(f"Tradetape engine worker {runtime.leases.worker}: trading its leased bots, "
          f"paper market at {settings.speed:g}x{_niceness_note(settings)}", flush=True)
    try:
        stops.wait()
    finally:
        runtime.stop()
    return 0


def _serve_projections(settings) -> int:
    """``--role projections``: keeps the read models up to date until SIGINT/SIGTERM."""
    from api import logs
    from api.commands.serve_wait import started_or_waiting
    from application.bootstrap import open_projection_worker

    logs.configure(logs.log_format())

    def started():
        worker, closing = open_projection_worker(settings.database_url)
        worker.start()
        return worker, closing

    worker, closing = started_or_waiting(started)
    stops = StopSignals()
    print(f"Tradetape projections: following the log{_niceness_note(settings)}", flush=True)
    try:
        stops.wait()
    finally:
        worker.stop()
        worker.catch_up()  # what was appended before the stop is in the views
        for part in closing:
            part.close()
    return 0


def _graceful_server_class():
    """Built on demand: uvicorn is imported only when the server runs (see api/cli.py)."""
    import signal
    import threading
    from contextlib import contextmanager

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal once
        more, so the process dies by it (exit 143 for SIGTERM) although it stopped cleanly.
        Here a graceful stop returns, and ``tradetape serve`` exits 0. A signal caught
        before uvicorn took them (``StopSignals``) stops it as soon as it has started:
        its lifespan still stops the runtime."""

        def __init__(self, config: uvicorn.Config, stops: StopSignals) -> None:
            super().__init__(config)
            self.stops = stops

        @contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            signals = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            for sig in self.stops.received[:1]:
                self.handle_exit(sig, None)
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return GracefulServer
