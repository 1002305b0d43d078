"""tradetape audit verify | export --since ISO-TIME [--format jsonl] [--database URL]

``verify`` recomputes the audit log's hash chain from the event store and compares it row by
row: exit 0 when intact, 1 naming the first position that differs. ``export`` writes every
event recorded since a time as one JSON object a line, with its hash in the chain."""

from __future__ import annotations

import argparse
import sys

from api.commands.common import EXIT_FAILED, EXIT_OK, add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check the audit log against the event store")
    add_database_option(verify)
    export = actions.add_parser("export", help="the raw history for auditors")
    export.add_argument("--since", metavar="ISO-TIME",
                        help="events recorded at or after this time (default: all)")
    export.add_argument("--format", choices=("jsonl",), default="jsonl",
                        help="one JSON object per line (the only format)")
    add_database_option(export)


def run(args: argparse.Namespace) -> int:
    from api.commands.readmodels import open_views, past_time

    since = past_time(args.since, "--since") if getattr(args, "since", None) else None
    with open_views(args.database) as views:
        if args.action == "verify":
            return _verify(views)
        return _export(views, since)


def _verify(views) -> int:
    from projections.audit import verify

    audited_to = views.tracking("audit").position
    verdict = verify(views.app, views.store, audited_to)
    if not verdict.intact:
        print(f"audit log of {views.database.display} does NOT match the event store at "
              f"position {verdict.position}: {verdict.problem} "
              f"({verdict.checked} events before it are intact)")
        return EXIT_FAILED
    note = (f"; {verdict.unaudited} newer events not audited yet (run `tradetape projections "
            "run audit`)" if verdict.unaudited else "")
    print(f"audit log of {views.database.display} intact: {verdict.checked} events, hash "
          f"chain and rows recomputed from the event store{note}")
    return EXIT_OK


def _export(views, since) -> int:
    from projections.audit import export, jsonl

    out = sys.stdout
    for line in jsonl(export(views.app, views.store, since)):
        out.write(line)
        out.write("\n")
    return EXIT_OK
