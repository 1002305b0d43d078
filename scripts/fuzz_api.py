"""Fuzz the HTTP edges of the server in-process, longer than the tests do:

    .venv/bin/pip install -e '.[fuzz]'    # schemathesis
    .venv/bin/python scripts/fuzz_api.py [--cases 200] [--seed 19] \
        [--parts openapi,graphql,graphql-admin,webhooks,stripe]

The app is built as the API tests build it (tests/api/conftest.py ``served``: the real runtime
on a temporary SQLite file) with a verified user, a signal bot and its webhook. Then:

- ``openapi``: schemathesis generates requests for every operation of the app's own OpenAPI
  (``/health``, the account pages, the Stripe webhook, ``/webhooks/{id}``), ``--cases`` each;
- ``graphql``: schemathesis generates queries and mutations from the GraphQL schema, sent
  with the user's token, ``--cases`` per root field (``logout`` and ``changePassword``
  are left out: they end the session the others use); ``graphql-admin`` likewise with an
  administrator's (less ``fetchCandles``, which would call an exchange, and ``blockUser``);
- ``stripe``: signed Stripe events of each kind handled (tests/stripe_events.py), one field
  replaced by an odd value, ``--cases`` x 10 (billing on, against tests/stripe_stub.py);
- ``webhooks``: tests/edge_inputs.py's TradingView-shaped bodies (odd numbers and times, any
  JSON, any bytes), signed or not, ``--cases`` x 10.

A failure is an answer of 5xx, a traceback in an answer, a GraphQL error coded
``INTERNAL_SERVER_ERROR``, a log record at ERROR, or the user's password, token or webhook
secret in a log line. Each distinct failure is printed once with an example; exit 1 if any.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SKIPPED_FIELDS = {"Mutation.logout", "Mutation.changePassword"}
# An administrator's: would fetch from an exchange, or block the fuzzing users.
SKIPPED_FOR_ADMIN = {"Mutation.fetchCandles", "Mutation.blockUser"}


class Findings:
    def __init__(self, secrets: list[str]):
        self.secrets, self.cases, self.seen = secrets, 0, {}
        self.statuses: Counter[tuple[str, int]] = Counter()

    def check(self, where: str, status: int, text: str, sent: Any) -> None:
        self.cases += 1
        self.statuses[(where, status)] += 1
        problems = []
        if status >= 500 and not (where == "GET /health" and status == 503):  # red: said
            problems.append(f"HTTP {status}")
        if "Traceback" in text:
            problems.append("traceback in the answer")
        if "INTERNAL_SERVER_ERROR" in text:
            problems.append("INTERNAL_SERVER_ERROR")
        for problem in problems:
            self.seen.setdefault((where, problem), (status, repr(sent)[:400], text[:400]))

    def logged(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if record.levelno >= logging.ERROR:  # one per kind: not per request id
            kind = re.sub(r"request=\S+", "", line)[:120]
            self.seen.setdefault(("log", f"ERROR: {kind}"), (0, "", line[:400]))
        if any(secret in line for secret in self.secrets):
            self.seen.setdefault(("log", "a secret in a log line"), (0, "", line[:400]))


class _Tap(logging.Handler):
    def __init__(self, on_record: Callable[[logging.LogRecord], None]):
        super().__init__(logging.INFO)
        self.on_record = on_record

    def emit(self, record: logging.LogRecord) -> None:
        self.on_record(record)


def _settings(cases: int, seed: int):
    from hypothesis import HealthCheck, settings

    return settings(max_examples=cases, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=False), seed


def _run(test, seed: int) -> None:
    from hypothesis import seed as fixed_seed

    fixed_seed(seed)(test)()


def _each(strategy, settings, check: Callable[[Any], None]):
    """A hypothesis test calling ``check`` on each example of ``strategy``."""
    from hypothesis import given

    @settings
    @given(case=strategy)
    def one(case):
        check(case)

    return one


def _answer(response) -> tuple[int, str]:
    return response.status_code, response.text


def fuzz_openapi(server, findings: Findings, cases: int, seed: int) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_asgi("/openapi.json", server.client.app)
    settings, _ = _settings(cases, seed)
    for result in schema.get_all_operations():
        operation = result.ok()
        where = f"{operation.method.upper()} {operation.path}"

        _run(_each(operation.as_strategy(), settings, lambda case, where=where: findings.check(
            where, *_answer(case.call()), case)), seed)
        print(f"{where}: done ({findings.cases} cases so far)", file=sys.stderr)


def fuzz_graphql(server, findings: Findings, cases: int, seed: int, token: str,
                 role: str = "user") -> None:
    import schemathesis

    _register_scalars()
    schema = schemathesis.graphql.from_asgi("/graphql", server.client.app)
    settings, _ = _settings(cases, seed)
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIPPED_FIELDS or (
                role == "admin" and operation.label in SKIPPED_FOR_ADMIN):
            continue

        _run(_each(operation.as_strategy(), settings,
                   lambda case, where=f"{operation.label} ({role})": findings.check(
                       where, *_answer(case.call(headers=headers)), case.body)), seed)
        server.step()  # the paper market moves between fields: deals open and close
        print(f"{operation.label}: done ({findings.cases} cases so far)", file=sys.stderr)


def _register_scalars() -> None:
    """The schema's own scalars: Decimal (a string; odd ones, and the other literal kinds a
    client may send instead), DateTime, JSON."""
    import graphql
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.graphql import nodes

    from tests.edge_inputs import ODD_NUMBERS, ODD_TIMES

    literals = st.sampled_from(["1e999999", "-0", "1" * 40, "0.5", "1e-999999", "100"])
    decimals = st.one_of(
        st.sampled_from(ODD_NUMBERS).map(nodes.String),
        st.decimals(allow_nan=False, allow_infinity=False).map(str).map(nodes.String),
        st.sampled_from(["10", "100", "0.5", "87000"]).map(nodes.String),
        st.integers().map(nodes.Int),
        literals.map(lambda text: graphql.FloatValueNode(value=text)))
    times = st.one_of(st.sampled_from([*ODD_TIMES, "2026-03-01T12:00:00+00:00"]),
                      st.text(max_size=30)).map(nodes.String)
    schemathesis.graphql.scalar("Decimal", decimals)
    schemathesis.graphql.scalar("DateTime", times)
    schemathesis.graphql.scalar("JSON", st.text(max_size=40).map(nodes.String))


def fuzz_webhooks(server, findings: Findings, cases: int, seed: int, hook: dict,
                  bot_id: str) -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from domain.signals import signature_of
    from tests.edge_inputs import webhook_bodies

    now = [server.clock.current.strftime("%Y-%m-%dT%H:%M:%SZ")]
    settings, _ = _settings(cases * 10, seed)
    headers_of = st.one_of(st.just("sign"), st.none(), st.text(max_size=80))

    @settings
    @given(body=webhook_bodies(hook["secret"], bot_id, now), header=headers_of)
    def one(body: bytes, header: str | None):
        headers = {}
        if header == "sign":
            headers["X-Tradetape-Signature"] = signature_of(hook["secret"], body)
        elif header is not None:
            headers["X-Tradetape-Signature"] = header.encode("utf-8")
        response = server.client.post(f"/webhooks/{hook['id']}", content=body,
                                      headers=headers)
        findings.check("POST /webhooks/{id} (bodies)", response.status_code, response.text,
                       body)

    _run(one, seed)


def stripe_events(user: str, customer: str) -> list[dict]:
    """One event of each kind the server handles, about ``user``, as Stripe sends them."""
    from tests.stripe_events import (
        charge_refunded,
        checkout_completed,
        invoice_event,
        payment_intent_event,
        subscription_event,
    )

    t, price, month = 1_772_366_400, "price_tradetape_pro_test", (1_772_366_400,
                                                                   1_774_958_400)
    return [
        checkout_completed("evt_1", t, user=user, customer=customer, subscription="sub_f"),
        subscription_event("customer.subscription.created", "evt_2", t, sub="sub_f",
                           customer=customer, price=price, status="active", period=month),
        invoice_event("invoice.paid", "evt_3", t, invoice="in_f", sub="sub_f",
                      customer=customer, price=price, amount=1900, period=month),
        payment_intent_event("payment_intent.succeeded", "evt_4", t, intent="pi_f",
                             customer=customer, user=user, amount=500, currency="usd"),
        charge_refunded("evt_5", t, charge="ch_pi_f", customer=customer, intent="pi_f",
                        amount=500, refunded=100, currency="usd")]


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [p for i, value in enumerate(node) for p in _leaves(value, (*path, i))]
    return [path]


def _replaced(event: dict, path: tuple, value: Any) -> dict:
    import copy

    event = copy.deepcopy(event)
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


def fuzz_stripe(server, findings: Findings, cases: int, seed: int, user: str) -> None:
    """Signed events, each with one field replaced by an odd value (tests/edge_inputs.py);
    a refused one must have recorded nothing."""
    import json

    from hypothesis import strategies as st

    from tests.edge_inputs import odd_numbers
    from tests.stripe_stub import sign

    customer = server.runtime.billing.customer_of(user, "alice@example.com")
    events = stripe_events(user, customer)
    changed = st.sampled_from(events).flatmap(lambda event: st.tuples(
        st.just(event), st.sampled_from(_leaves(event)), odd_numbers()))
    settings, _ = _settings(cases * 10, seed)
    serial = iter(range(10**9))

    def one(change: tuple) -> None:
        event, path, value = change
        event = _replaced(event, path, value)
        if path != ("id",):
            event["id"] = f"evt_fuzz_{next(serial)}"  # a new event each time
        payload = json.dumps(event, indent=2).encode()
        before = server.runtime.trading.recorder.max_notification_id()
        response = server.client.post("/webhooks/stripe", content=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload)})
        findings.check("POST /webhooks/stripe (signed events)", response.status_code,
                       response.text, (path, value))
        if response.status_code != 200 and (
                server.runtime.trading.recorder.max_notification_id() != before):
            findings.seen.setdefault(("POST /webhooks/stripe", "refused yet recorded"),
                                     (response.status_code, repr((path, value)),
                                      response.text[:400]))

    _run(_each(changed, settings, one), seed)


def _billing_env(monkeypatch, stub_url: str) -> None:
    from tests.stripe_stub import API_KEY, WEBHOOK_SECRET

    for name, value in {"TRADETAPE_STRIPE_API_KEY": API_KEY,
                        "TRADETAPE_STRIPE_API_BASE": stub_url,
                        "TRADETAPE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                        "TRADETAPE_STRIPE_PRICE_PRO": "price_tradetape_pro_test"}.items():
        monkeypatch.setenv(name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200,
                        help="examples per operation (x10 for webhook bodies)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--parts", default="openapi,graphql,graphql-admin,webhooks,stripe")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    findings = Findings([])
    tap = _Tap(findings.logged)
    logging.getLogger().addHandler(tap)
    logging.getLogger().setLevel(logging.INFO)
    try:
        if parts - {"stripe"}:
            _fuzz_server(parts, findings, args.cases, args.seed)
        if "stripe" in parts:  # on a server of its own: billing on (plans limit webhooks)
            _fuzz_billing_server(findings, args.cases, args.seed)
    finally:
        logging.getLogger().removeHandler(tap)
    answers: dict[str, Counter[int]] = {}
    for (where, status), count in findings.statuses.items():  # GraphQL: Query, Mutation
        answers.setdefault(where.split(".", 1)[0], Counter())[status] += count
    for where, counts in sorted(answers.items()):
        print(f"{where}: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"{findings.cases} requests, {len(findings.seen)} distinct failures")
    for (where, problem), (status, sent, text) in findings.seen.items():
        print(f"- {where}: {problem}\n  sent: {sent}\n  answer ({status}): {text}")
    return 1 if findings.seen else 0


def _fuzz_server(parts: set[str], findings: Findings, cases: int, seed: int) -> None:
    import pytest

    from tests.api.conftest import PASSWORD, served
    from tests.api.test_webhooks import new_hook, signal_bot

    monkeypatch = pytest.MonkeyPatch()
    with tempfile.TemporaryDirectory() as tmp, \
            served(f"sqlite:///{tmp}/fuzz.sqlite", monkeypatch) as server:
        alice, admin = server.user("alice"), server.user("root", role="admin")
        bot_id = signal_bot(server, alice)
        hook = new_hook(server, alice, bot_id)
        server.step()
        findings.secrets += [PASSWORD, alice.token, alice.refresh_token, admin.token,
                             hook["secret"]]
        if "webhooks" in parts:
            fuzz_webhooks(server, findings, cases, seed, hook, bot_id)
        if "openapi" in parts:
            fuzz_openapi(server, findings, cases, seed)
        if "graphql" in parts:
            fuzz_graphql(server, findings, cases, seed, alice.token)
        if "graphql-admin" in parts:
            fuzz_graphql(server, findings, cases, seed, admin.token, "admin")
    monkeypatch.undo()


def _fuzz_billing_server(findings: Findings, cases: int, seed: int) -> None:
    import pytest

    from tests.api.conftest import served
    from tests.stripe_stub import WEBHOOK_SECRET, StripeStub

    monkeypatch = pytest.MonkeyPatch()
    stub = StripeStub().start()
    _billing_env(monkeypatch, stub.url)
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                served(f"sqlite:///{tmp}/billing.sqlite", monkeypatch) as server:
            server.runtime.billing.catalogue.ensure_defaults()  # as runtime.start() does
            alice = server.user("alice")
            findings.secrets += [WEBHOOK_SECRET, alice.token]
            fuzz_stripe(server, findings, cases, seed, alice.user_id)
    finally:
        monkeypatch.undo()
        stub.stop()


if __name__ == "__main__":
    sys.exit(main())
