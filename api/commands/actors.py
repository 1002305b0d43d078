"""``--actor NAME`` for commands that change something: who the recorded events say acted.

Recorded as ``operator:NAME``; without the option, the operating-system user running the
command (``getpass.getuser()``). An operator's action is never recorded as ``system``.
"""

from __future__ import annotations

import argparse


def add_actor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", metavar="NAME", default=None,
        help="the operator acting, recorded in every event this writes as operator:NAME "
             "(default: the operating-system user)")


def operator_of(args: argparse.Namespace) -> str:
    """The actor to record for this command line (``operator:NAME``)."""
    from api.commands.common import CommandError
    from domain.actors import operator
    from domain.errors import DomainError

    name = args.actor
    if name is None:
        import getpass

        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
            raise CommandError("ACTOR_REQUIRED", "cannot tell who you are: give --actor "
                               "NAME") from None
    try:
        return operator(name)
    except DomainError as error:
        raise CommandError(error.code, f"--actor: {error.message}") from None
