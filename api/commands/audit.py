"""tradetape audit verify [--checkpoint FILE] | export | checkpoint | keygen | verify-export

``verify`` recomputes the audit log's hash chain from the event store and compares it row by
row, checks every event's seal with the audit key and, with ``--checkpoint``, that the log
still reaches (and agrees with) each checkpoint: exit 0 when intact, 1 naming the first bad
position. ``export`` writes events (since a recorded time, or a position range) as one JSON
object a line with the stored bytes, the previous hash and the hash, which ``verify-export``
(or the README's standalone script) checks with nothing else. ``checkpoint`` prints and
records the chain's head, optionally signed (``keygen`` makes the operator's key)."""

from __future__ import annotations

import argparse
import sys

from api.commands.common import EXIT_OK, CommandError, add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check the audit log against the event store")
    _checkpoint_options(verify)
    add_database_option(verify)
    export = actions.add_parser("export", help="the raw history for auditors")
    export.add_argument("--since", metavar="ISO-TIME",
                        help="events recorded at or after this time (default: all)")
    export.add_argument("--from-position", type=int, metavar="N",
                        help="events at or after log position N")
    export.add_argument("--to-position", type=int, metavar="M",
                        help="events at or before log position M")
    export.add_argument("--format", choices=("jsonl",), default="jsonl",
                        help="one JSON object per line (the only format)")
    add_database_option(export)
    checkpoint = actions.add_parser("checkpoint", help="print and record the chain's head")
    checkpoint.add_argument("--sign", metavar="KEYFILE",
                            help="sign it with this Ed25519 private key (audit keygen)")
    checkpoint.add_argument("--out", metavar="FILE",
                            help="also append it as one JSON line to FILE")
    checkpoint.add_argument("--actor", metavar="NAME",
                            help="the operator recorded with it (default: the OS user)")
    add_database_option(checkpoint)
    keygen = actions.add_parser("keygen", help="make an Ed25519 key to sign checkpoints")
    keygen.add_argument("--out", metavar="FILE", required=True,
                        help="the private key file to create (0600; never overwritten)")
    check = actions.add_parser("verify-export", help="check an export file on its own")
    check.add_argument("file", metavar="FILE", help="a file written by `audit export`")
    _checkpoint_options(check)


def _checkpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="checkpoints (JSON lines, as `audit checkpoint --out` appends) "
                        "the log must still reach and agree with")
    parser.add_argument("--public-key", metavar="HEX",
                        help="checkpoints must be signed by this Ed25519 public key")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "public_key", None) and not args.checkpoint:
        raise CommandError("CHECKPOINT_REQUIRED", "--public-key checks the signatures of "
                           "checkpoints: give them with --checkpoint FILE")
    if args.action == "keygen":
        return _keygen(args.out)
    if args.action == "verify-export":
        from api.commands.audit_checks import verify_export

        return verify_export(args)
    from api.commands.readmodels import open_views

    since = _since(args)
    _check_range(args)
    with open_views(args.database) as views:
        if args.action == "verify":
            from api.commands.audit_checks import verify

            return verify(views, args)
        if args.action == "checkpoint":
            from api.commands.audit_checks import checkpoint

            return checkpoint(views, args)
        return _export(views, since, args)


def _since(args: argparse.Namespace):
    """A recorded time, not in the future (``SINCE_IN_FUTURE``)."""
    from api.commands.readmodels import past_time

    return past_time(args.since, "--since") if getattr(args, "since", None) else None


def _check_range(args: argparse.Namespace) -> None:
    low, high = getattr(args, "from_position", None), getattr(args, "to_position", None)
    for name, value in (("--from-position", low), ("--to-position", high)):
        if value is not None and value < 1:
            raise CommandError("INVALID_POSITION", f"{name} takes a log position >= 1, "
                               f"not {value}")
    if low is not None and high is not None and low > high:
        raise CommandError("INVALID_POSITION", f"--from-position {low} is after "
                           f"--to-position {high}")


def _keygen(out: str) -> int:
    from adapters.security.signing import generate_signing_key

    public = generate_signing_key(out)
    print(f"wrote the private key {out} (keep it secret; 0600)")
    print(f"public key: {public}")
    return EXIT_OK


def _export(views, since, args: argparse.Namespace) -> int:
    from projections.audit import export, jsonl

    out = sys.stdout
    rows = export(views.app, views.store, since, first=args.from_position,
                  last=args.to_position, seals=_seals(views))
    for line in jsonl(rows):
        out.write(line)
        out.write("\n")
    return EXIT_OK


def _seals(views):
    """The seals of a page of positions, for the export, or None (no seals)."""
    from adapters.event_store.sealing import seal_lookup

    return seal_lookup(views.app.recorder)
