"""tradetape serve [--host 127.0.0.1] [--port 8000] [--demo] [--speed 60] [--database URL]"""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on ($TRADETAPE_HOST, "
                        "default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port ($TRADETAPE_PORT, default 8000)")
    parser.add_argument("--speed", type=float, default=None,
                        help="market minutes per real minute of the paper feed "
                        "($TRADETAPE_SPEED, default 60: a market minute per second)")
    parser.add_argument("--demo", action="store_true",
                        help="create (or reuse) a demo user with two running bots")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import uvicorn

    from api.server import create_app
    from application.bootstrap import open_runtime
    from application.demo import ensure_demo
    from application.server_settings import ServerSettings

    settings = ServerSettings.from_environ()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("speed", args.speed), ("database_url", args.database))
                 if v is not None}
    settings = replace(settings, demo=args.demo, **overrides).checked()
    runtime = open_runtime(settings)
    if settings.demo:
        demo = ensure_demo(runtime.identity, runtime.trading)
        print(demo.login_line, flush=True)
    print(f"Tradetape on http://{settings.host}:{settings.port}/graphql "
          f"(health: /health), paper market at {settings.speed:g}x", flush=True)
    uvicorn.run(create_app(runtime), host=settings.host, port=settings.port,
                log_level="warning", timeout_graceful_shutdown=10)
    return 0
