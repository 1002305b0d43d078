"""Processes of one schema keep one version of the cross-process rules (the lease fence, the
exposure holds' keys): an engine worker that sees a live process of another version trades
nothing, so old and new never trade the same users together. Two engine workers driven tick
by tick on PostgreSQL, each publishing its deployment rows as ``serve`` does, one of them
(and an api process) of a newer protocol."""

from __future__ import annotations

import logging
from collections import Counter
from types import SimpleNamespace

import psycopg
from psycopg import sql

from adapters.event_store.leases import PROTOCOL
from adapters.event_store.task_board import PostgresTaskRows
from application.runtime import Runtime
from application.settings import _connect_kwargs, parse_database_url
from application.task_board import TTL_SECONDS, Process
from tests.integration.test_engine_leases import Worker, client_ids, deals_opened, seed_bots

REPORT = {"wallet-monitor": {"status": "green"}}


def publish(url: str, name: str, role: str, protocol: int | None) -> PostgresTaskRows:
    """A process's deployment rows, as its task board publishes them (``protocol``: the
    version it keeps; None: code older than versions, which writes none)."""
    rows = PostgresTaskRows(parse_database_url(url))
    rows.protocol = protocol
    rows.publish(Process(name, role, "host", 1), REPORT, TTL_SECONDS)
    return rows


def health(worker: Worker) -> tuple[str, dict]:
    return Runtime._lease_health(SimpleNamespace(leases=worker.leases))


def test_an_older_worker_trades_nothing_while_a_newer_process_runs(postgres_url, caplog):
    bots = seed_bots(postgres_url, accounts=2, per_account=2)
    old = Worker(postgres_url, "old", seconds=30)
    old_rows = publish(postgres_url, "engine-old", "engine", PROTOCOL)
    old.leases.tick()
    assert set(old.leases.held) == set(bots) and health(old)[0] == "green"
    # an api process of the next version starts: its holds are not the ones this worker
    # would see, so it lets every bot go and takes none (one line, on /health too)
    api = publish(postgres_url, "api-new", "api", PROTOCOL + 1)
    with caplog.at_level(logging.ERROR, logger="tradetape.leases"):
        old.leases.tick()
        old.leases.tick()
    lines = [r.getMessage() for r in caplog.records if "PROTOCOL_" in r.getMessage()]
    assert len(lines) == 1 and "PROTOCOL_NEWER" in lines[0] and "api-new" in lines[0]
    assert old.leases.held == {} and old.paper.bot_ids == set()
    status, detail = health(old)
    assert status == "amber" and detail["stood_down"].startswith("PROTOCOL_NEWER")
    assert detail["bots"] == 0
    assert not old.leases.claim(bots[0])  # a command here takes none either
    assert old.store.holders(bots) == {}  # given away, not held to expire
    old.candle()
    assert deals_opened(postgres_url) == Counter()

    # a worker of the new version joins: it waits for the old one to leave
    new = Worker(postgres_url, "new", seconds=30)
    new.store.protocol = PROTOCOL + 1
    new_rows = publish(postgres_url, "engine-new", "engine", PROTOCOL + 1)
    new.leases.tick()
    assert new.leases.held == {} and new.leases.stood_down.startswith("PROTOCOL_OLDER")
    assert "engine-old" in new.leases.stood_down
    new.candle()
    assert deals_opened(postgres_url) == Counter()

    # the old one stops (its rows forgotten, its leases given away): the new one trades
    old_rows.forget(Process("engine-old", "engine", "host", 1))
    old.close()
    new.leases.tick()
    assert set(new.leases.held) == set(bots) and new.leases.stood_down is None
    assert health(new)[0] == "green"
    new.candle()
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
    assert max(client_ids(postgres_url).values()) == 1
    new.close()
    for rows in (api, new_rows, old_rows):
        rows.close()


def test_a_process_of_older_code_is_waited_for_until_its_rows_expire(postgres_url):
    bots = seed_bots(postgres_url, accounts=1, per_account=2)
    # a process of code older than versions: its rows carry none
    rows = publish(postgres_url, "engine-older-code", "engine", None)
    worker = Worker(postgres_url, "w", seconds=30)
    mine = publish(postgres_url, "engine-w", "engine", PROTOCOL)
    worker.leases.tick()
    assert worker.leases.held == {}
    assert "engine-older-code (engine, protocol 0)" in worker.leases.stood_down
    # it was killed: its rows are no longer renewed, and past the deployment's ttl it is
    # gone (rows of this version alone are left)
    database = parse_database_url(postgres_url)
    schema = database.env.get("POSTGRES_SCHEMA") or "public"
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET reported_at = now() - make_interval(secs => %s) "
                             "WHERE process = %s").format(
                                 sql.Identifier(schema, "background_tasks")),
                     (TTL_SECONDS + 1, "engine-older-code"))
    worker.leases.tick()
    assert set(worker.leases.held) == set(bots) and worker.leases.stood_down is None
    worker.candle()
    assert deals_opened(postgres_url) == Counter(dict.fromkeys(bots, 1))
    worker.close()
    rows.close()
    mine.close()
