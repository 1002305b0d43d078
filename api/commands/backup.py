"""tradetape backup create (--out FILE | --out-dir DIR [--retain]) | verify FILE |
restore FILE --database URL | prune DIR

``create`` copies the log and the tables beside it at one position (while the server
trades), ``verify`` checks a file against its manifest, ``restore`` writes it into an empty
store, rebuilds the read models and runs the audit check: exit 1 if that fails."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from api.commands.common import EXIT_FAILED, EXIT_OK, add_database_option, print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="back up the store at one position")
    where = create.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="FILE", help="the backup file to write (.tar.gz)")
    where.add_argument("--out-dir", metavar="DIR", help="write tradetape-<UTC time>.tar.gz "
                       "into DIR (for cron)")
    create.add_argument("--retain", action="store_true", help="with --out-dir: then keep "
                        "the newest backup of each of the last 7 days, 4 weeks, 12 months")
    add_database_option(create)
    verify = actions.add_parser("verify", help="check a backup file against its manifest")
    verify.add_argument("file", metavar="FILE")
    restore = actions.add_parser("restore", help="into an empty store, then rebuild and "
                                 "audit verify")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--database", metavar="URL", required=True,
                         help="the empty store to restore into (sqlite:///PATH or "
                         "postgresql://...)")
    prune = actions.add_parser("prune", help="apply the retention to a folder of backups")
    prune.add_argument("dir", metavar="DIR")
    for sub in (create, verify, restore):
        sub.add_argument("--json", action="store_true", help="one JSON object on stdout")
    for sub in (verify, restore):
        sub.add_argument("--manifest-sha256", metavar="HEX", help="the manifest hash "
                         "printed by create (default: read from FILE.sha256)")


def run(args: argparse.Namespace) -> int:
    return {"create": _create, "verify": _verify, "restore": _restore,
            "prune": _prune}[args.action](args)


class _Progress:
    """A line on stderr every few seconds while a big table is read or written."""

    def __init__(self, verb: str, every: float = 2.0):
        self.verb, self.every = verb, every
        self.started = self.shown = time.monotonic()
        self.table = ""

    def __call__(self, table: str, rows: int) -> None:
        now = time.monotonic()
        if table != self.table:  # the rate is per table
            self.table, self.started = table, now
        if now - self.shown >= self.every:
            self.shown = now
            rate = rows / max(now - self.started, 1e-9)
            print(f"{self.verb} {table}: {rows:,} rows ({rate:,.0f} rows/s)", file=sys.stderr)


def _create(args: argparse.Namespace) -> int:
    from adapters.clock import SystemClock
    from api.commands.common import CommandError
    from application.backup import create, tradetape_version
    from application.backup_retention import backup_name, prune
    from application.bootstrap import open_backup_store

    if args.retain and not args.out_dir:
        raise CommandError("RETAIN_NEEDS_OUT_DIR", "--retain applies to a folder of "
                           "scheduled backups: use it with --out-dir")
    clock = SystemClock()
    out = Path(args.out) if args.out else Path(args.out_dir) / backup_name(clock.now())
    started = time.monotonic()
    made = create(open_backup_store(args.database), out, clock=clock,
                  version=tradetape_version(), on_progress=_Progress("backed up"))
    pruned = prune(out.parent) if args.retain and args.out_dir else []
    if args.json:
        print_json({"file": str(out), "manifest_sha256": made.manifest_sha256,
                    "position": made.manifest["position"], "pruned": [str(p) for p in pruned],
                    "tables": {t["name"]: t["rows"] for t in made.manifest["tables"]}})
        return EXIT_OK
    tables = ", ".join(f"{t['name']} {t['rows']}" for t in made.manifest["tables"])
    print(f"backup {out}: {made.manifest['source']['database']} at position "
          f"{made.manifest['position']} ({tables}; {out.stat().st_size:,} bytes, "
          f"{time.monotonic() - started:.1f}s)")
    print(f"manifest sha256: {made.manifest_sha256} (also in {out.name}.sha256; keep it "
          "apart from the backup to check it later)")
    for path in pruned:
        print(f"pruned {path}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from application.backup import verify
    from domain.backup import BackupError

    try:
        checked = verify(Path(args.file), args.manifest_sha256, _Progress("verified"))
    except BackupError as error:
        if error.code != "BACKUP_CORRUPT":
            raise
        print(f"backup {args.file} is NOT intact: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json({"file": args.file, "ok": checked.ok, "problems": checked.problems,
                    "manifest_sha256": checked.manifest_sha256,
                    "expected_sha256": checked.expected_sha256,
                    "position": checked.manifest.get("position")})
    elif checked.ok:
        note = ("" if checked.expected_sha256 else "; no FILE.sha256 or --manifest-sha256 to "
                "check the manifest itself against")
        print(f"backup {args.file} intact: position {checked.manifest['position']}, "
              f"{len(checked.manifest['tables'])} tables, manifest sha256 "
              f"{checked.manifest_sha256}{note}")
    else:
        print(f"backup {args.file} is NOT intact:", file=sys.stderr)
        for problem in checked.problems:
            print(f"  {problem}", file=sys.stderr)
    return EXIT_OK if checked.ok else EXIT_FAILED


def _restore(args: argparse.Namespace) -> int:
    from api.commands.backup_checks import after_restore
    from application.backup import restore
    from application.bootstrap import open_backup_store

    target = open_backup_store(args.database)
    restored = restore(Path(args.file), target, expected_sha256=args.manifest_sha256,
                       on_progress=_Progress("restored"))
    checks = after_restore(Path(args.file), args.database, restored.position,
                           progress=sys.stderr.isatty())
    if args.json:
        print_json({"file": args.file, "database": target.display,
                    "position": restored.position, "rows": restored.rows, **checks.as_dict()})
    else:
        rows = ", ".join(f"{name} {count}" for name, count in restored.rows.items())
        print(f"restored {args.file} into {target.display}: position {restored.position} "
              f"({rows})")
        for line in checks.lines():
            print(line)
    return EXIT_OK if checks.ok else EXIT_FAILED


def _prune(args: argparse.Namespace) -> int:
    from api.commands.common import CommandError
    from application.backup_retention import prune

    if not Path(args.dir).is_dir():
        raise CommandError("NOT_A_FOLDER", f"{args.dir} is not a folder of backups")
    for path in prune(Path(args.dir)):
        print(f"pruned {path}")
    return EXIT_OK
