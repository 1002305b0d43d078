"""tradetape keys rotate [--database URL]

Re-wraps every user's data key under a new master key. With key files (the default), the
new master key is made as ``<master key file>.next`` and replaces the master key file once
every data key is re-wrapped; with ``TRADETAPE_MASTER_KEY``, the new key is read from
``TRADETAPE_NEW_MASTER_KEY`` and the operator sets ``TRADETAPE_MASTER_KEY`` to it afterwards.
Stop the server first: it reads the data keys under the master key it started with. A
rotation cut short is finished by running the command again.
"""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rotate = actions.add_parser(
        "rotate", help="re-wrap every data key under a new master key",
        description="re-wrap every data key under a new master key (stop the server first)")
    add_database_option(rotate)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import CommandError
    from application.bootstrap import rotate_master_key
    from application.settings import parse_database_url

    if parse_database_url(args.database).kind == "memory":
        raise CommandError("NOTHING_TO_ROTATE", "a memory store keeps no keys to rotate")
    done = rotate_master_key(args.database)
    print(f"master key rotated: {done.rewrapped} of {done.total} data keys re-wrapped under "
          f"master key {done.key_id}; the new master key is in {done.where}. Backups taken "
          "before now need the previous master key.")
    return 0
