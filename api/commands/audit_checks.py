"""``audit verify``, ``audit checkpoint`` and ``audit verify-export``: what they check and
how they say it (see api/commands/audit.py for the options)."""

from __future__ import annotations

import argparse
import os
import sys

from api.commands.common import EXIT_FAILED, EXIT_OK, CommandError


def operator(args: argparse.Namespace) -> str:
    """The operator recorded with what a command does (``api.commands.actors``)."""
    from api.commands.actors import operator_of

    return operator_of(args)


def _checkpoints(args: argparse.Namespace):
    from projections.anchoring import CheckpointFileError, read_checkpoints

    if not args.checkpoint:
        return []
    try:
        return read_checkpoints(args.checkpoint)
    except CheckpointFileError as error:
        raise CommandError(error.code, str(error)) from None


def _signature_problems(checkpoints, public_key: str | None) -> list[tuple[int, str]]:
    from adapters.security.signing import signature_holds

    found = []
    for c in checkpoints:
        if public_key and c.public_key != public_key.lower():
            found.append((c.position, f"the checkpoint of {c.time} is not signed by the "
                          f"public key {public_key}"))
        elif c.signature and not signature_holds(c.public_key or "", c.signature,
                                                 c.message()):
            found.append((c.position, f"the signature of the checkpoint of {c.time} does "
                          "not hold: the checkpoint was edited"))
    return found


# --- verify ---------------------------------------------------------------------------------


def verify(views, args: argparse.Namespace) -> int:
    from adapters.event_store.sealing import check_seals
    from application.bootstrap import open_audit_key
    from projections.anchoring import against_checkpoints, walk_log
    from projections.audit import verify as verify_chain

    checkpoints = _checkpoints(args)
    head = views.app.recorder.max_notification_id() or 0
    audited_to = views.tracking("audit").position
    problems: list[tuple[int, str]] = []
    verdict = verify_chain(views.app, views.store, audited_to)
    if not verdict.intact:
        problems.append((verdict.position, verdict.problem))
    walk = walk_log(views.app, views.store, [c.position for c in checkpoints], stop=head)
    if walk.order_problem:
        problems.append(walk.order_problem)
    findings = against_checkpoints(walk, checkpoints)
    problems += [(f.position, f.problem) for f in findings if f.exact]
    ranges = [(f.position, f.problem) for f in findings if not f.exact]
    problems += _signature_problems(checkpoints, args.public_key)
    key = open_audit_key(args.database)
    seals = check_seals(views.app.recorder, key, head) if key is not None else None
    problems += _seal_problems(views, seals, key, checkpoints)
    return _report(views.database.display, verdict, seals, key, problems, ranges,
                   checkpoints)


def _seal_problems(views, seals, key, checkpoints) -> list[tuple[int, str]]:
    from projections.audit import AUDIT_LOG

    found = []
    if seals is not None and seals.problem:
        found.append((seals.position, seals.problem))
    if seals is not None and seals.missing:
        oid, version = seals.missing
        rows = views.store.select(AUDIT_LOG, "aggregate_id = ? AND version = ?",
                                  (oid, version))
        where = rows[0]["position"] if rows else None
        found.append((where, f"event {oid} v{version} was sealed, and is no longer in the "
                      "event store (removed)"))
    for c in checkpoints:
        if key is not None and c.key_fingerprint and c.key_fingerprint != key.fingerprint:
            found.append((c.position, f"the checkpoint of {c.time} was taken with audit key "
                          f"{c.key_fingerprint}, not {key.fingerprint}: seals checked with "
                          "another key"))
        elif seals is not None and c.sealed_from and (
                seals.first_sealed is None or seals.first_sealed > c.sealed_from):
            found.append((c.sealed_from, f"events were sealed from position {c.sealed_from} "
                          f"at the checkpoint of {c.time}; their seals are gone"))
    return found


def _report(display, verdict, seals, key, problems, ranges, checkpoints) -> int:
    """The first bad position: the lowest of those named exactly, else where the first
    checkpoint that no longer holds leaves off."""
    if problems or ranges:
        exact = [p for p, _ in problems if p is not None]
        first = min(exact or [p for p, _ in ranges] or ["unknown"])
        problems = problems + ranges
        print(f"audit trail of {display} is NOT intact (the audit log, the event store, "
              f"their seals or the checkpoints disagree): first bad position {first}")
        for position, problem in sorted(problems, key=lambda p: (p[0] is None, p[0] or 0)):
            print(f"  position {'?' if position is None else position}: {problem}")
        return EXIT_FAILED
    note = (f"; {verdict.unaudited} newer events not audited yet (run `tradetape projections "
            "run audit`)" if verdict.unaudited else "")
    print(f"audit log of {display} intact: {verdict.checked} events, hash chain and rows "
          f"recomputed from the event store{note}")
    if seals is None:
        print("  seals: not checked (" + ("no audit key found: set TRADETAPE_AUDIT_KEY or "
              "TRADETAPE_AUDIT_KEY_FILE" if key is None else "this store keeps none") + ")")
    else:
        before = (f", {seals.unsealed_before} written before sealing began"
                  if seals.unsealed_before else "")
        print(f"  seals: {seals.checked} events sealed with key {key.fingerprint}{before}")
    if checkpoints:
        print(f"  checkpoints: the log reaches and agrees with all {len(checkpoints)} (last "
              f"at position {checkpoints[-1].position}, {checkpoints[-1].time})")
    return EXIT_OK


# --- checkpoint -----------------------------------------------------------------------------


def checkpoint(views, args: argparse.Namespace) -> int:
    """The file is opened before anything is recorded: a checkpoint that cannot be written
    out is not taken."""
    from contextlib import nullcontext

    from application.bootstrap import take_audit_checkpoint

    with open_for_append(args.out) if args.out else nullcontext() as out:
        c = take_audit_checkpoint(views.app, views.store, views.database, sign=args.sign,
                                  actor=operator(args))
        if c is None:
            raise CommandError("AUDIT_NOT_BUILT", f"the audit log of "
                               f"{views.database.display} is empty: run `tradetape projections "
                               "run audit` first", EXIT_FAILED)
        line = c.to_json()
        if out is not None:
            out.write(line + "\n")
    print(line)
    return EXIT_OK


def open_for_append(path: str):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as error:
        raise CommandError("CHECKPOINT_UNWRITABLE", f"cannot write {path}: "
                           f"{error.strerror}", EXIT_FAILED) from None
    return os.fdopen(fd, "a")


# --- verify-export --------------------------------------------------------------------------


def verify_export(args: argparse.Namespace) -> int:
    from projections.export_check import check_export

    checkpoints = _checkpoints(args)
    try:
        with open(args.file, encoding="utf-8") as file:
            verdict = check_export(file, checkpoints)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError("EXPORT_UNREADABLE", f"cannot read {args.file}: {error}",
                           EXIT_FAILED) from None
    problems = _signature_problems(checkpoints, args.public_key)
    if not verdict.intact or problems:
        for line, position, problem in ([(verdict.line, verdict.position, verdict.problem)]
                                        if not verdict.intact else []) + [
                                            (None, p, text) for p, text in problems]:
            where = ", ".join(([f"line {line}"] if line else []) +
                              ([f"position {position}"] if position is not None else []))
            print(f"{args.file} is NOT intact at {where}: {problem}")
        return EXIT_FAILED
    covered = len(checkpoints) - len(verdict.uncovered)
    print(f"{args.file} intact: {verdict.lines} events, positions {verdict.first}.."
          f"{verdict.last}, chain continuous and every hash recomputed"
          + (f"; agrees with {covered} checkpoint(s)" if checkpoints else ""), file=sys.stdout)
    return EXIT_OK
