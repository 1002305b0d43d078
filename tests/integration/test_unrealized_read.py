"""Unrealized P/L is worked out when read, at each pair's mark (its last fill in the log):
the figures the read API gives (portfolio, a bot's and a deal's P/L, ``tradetape pnl``'s
report) are the ones worked out by hand below, and a batch that only moves a pair's mark
writes no row of the deals it marks, nor of their bots and owners.

Made-up facts, applied to the ``pnl`` and ``leaderboard`` projections and written to a real
view store (SQLite and PostgreSQL), as the runner writes a batch.
"""

from __future__ import annotations

from decimal import Decimal as D
from uuid import UUID

import pytest

from projections.balances import Balances
from projections.facts import Fact
from projections.leaderboard import LB_DEALS, Leaderboard
from projections.pnl import PNL_BOTS, PNL_DEALS, PNL_OWNERS, Pnl, pnl_report
from projections.portfolio import pnl_by_bot, pnl_by_deal, portfolio
from projections.shared_books import share_books
from projections.tables import Changes
from tests.projection_stubs import view_store

BOTS = {"A": ("alice", "BTC/USDT"), "B": ("alice", "ETH/USDT"), "C": ("bob", "BTC/USDT"),
        "D": ("bob", "ETH/USDT")}
DEALS = {"A1": "A", "B1": "B", "C1": "C", "C2": "C", "D1": "D"}


def _id(name: str) -> str:
    return str(UUID(int=(ord(name[0]) << 8) + (int(name[1:]) if name[1:] else 0)))


class Log:
    """Facts made by hand, one step (correlation id) each, a minute apart."""

    def __init__(self) -> None:
        self.position = 0

    def fact(self, kind: str, oid: str, **fields) -> Fact:
        self.position += 1
        state = {"timestamp": {"_type_": "datetime_iso", "_data_":
                               f"2026-12-01T{self.position // 60:02d}:{self.position % 60:02d}"
                               ":00+00:00"},
                 "correlation_id": f"step-{self.position}", **fields}
        return Fact(self.position, oid, 1, f"domain:{kind}", state, b"")

    def bot(self, name: str) -> Fact:
        owner, pair = BOTS[name]
        return self.fact("Bot.Created", _id(name), owner_id=owner, name=name,
                         config={"_data_": {"pair": pair}})

    def opened(self, deal: str) -> Fact:
        owner, pair = BOTS[DEALS[deal]]
        return self.fact("Deal.Opened", _id(deal), owner_id=owner, pair=pair,
                         bot_id={"_type_": "uuid_hex", "_data_": UUID(_id(DEALS[deal])).hex})

    def bought(self, deal: str, price: str, amount: str, fee: str, safety: int = 0) -> Fact:
        return self.fact("Deal.BuyFilled", _id(deal), safety_order=safety,
                         **_decimals(price=price, amount=amount, fee=fee))

    def sold(self, deal: str, price: str, amount: str, fee: str) -> Fact:
        return self.fact("Deal.StepSold", _id(deal),
                         **_decimals(price=price, amount=amount, fee=fee))

    def closed(self, deal: str, price: str, amount: str, fee: str, pnl: str) -> Fact:
        return self.fact("Deal.Closed", _id(deal),
                         reason={"_type_": "enum", "_data_": "take_profit"},
                         **_decimals(price=price, amount=amount, fee=fee, realized_pnl=pnl))


def _decimals(**values: str) -> dict:
    return {k: {"_type_": "decimal_str", "_data_": v} for k, v in values.items()}


@pytest.fixture
def books(persistent_store_url, trading):
    """``apply(facts)``: one batch through ``pnl`` and ``leaderboard`` (books shared, as
    the runner runs them), written; returns the batch's row changes by table."""
    trading(persistent_store_url)  # the store's schema, as a server makes it
    store = view_store(persistent_store_url)
    ledgers = [Pnl(), Leaderboard()]
    for projection in (*ledgers, Balances):  # balances: a portfolio reads them (none here)
        store.register(projection.name, "trading", projection.tables, projection.schema())
    share_books(ledgers)

    def apply(facts: list[Fact]) -> dict[str, set]:
        outs = [Changes(p.tables) for p in ledgers]
        for fact in facts:
            for ledger, out in zip(ledgers, outs, strict=True):
                handler = ledger.route(fact.kind)
                if handler is not None:
                    handler(fact, out)
        written: dict[str, set] = {}
        with store.transaction() as cur:
            for ledger, out in zip(ledgers, outs, strict=True):
                ledger.end_batch(out)
                frozen = out.freeze()
                store.write(cur, frozen)
                for f in frozen:
                    written[f.table.name] = {row[0] for row in f.inserts + f.upserts}
        return written

    yield store, apply
    store.close()


def _first_batch(log: Log) -> list[Fact]:
    return [log.bot("A"), log.bot("B"), log.bot("C"), log.bot("D"),
            log.opened("A1"), log.bought("A1", "100", "0.5", "0.05"),
            log.bought("A1", "90", "0.5", "0.045", safety=1),
            log.opened("B1"), log.bought("B1", "10", "2", "0.02"),
            log.sold("B1", "12", "1", "0.012"),
            log.opened("C1"), log.bought("C1", "110", "0.2", "0.022"),
            log.closed("C1", "120", "0.2", "0.024", "1.954"),
            log.opened("C2"), log.bought("C2", "95", "0.1", "0.0095")]


def test_open_deals_are_marked_when_read_at_their_pairs_last_fill(books):
    store, apply = books
    apply(_first_batch(Log()))
    # BTC/USDT's last fill: C2's buy at 95; ETH/USDT's: B1's step sold at 12.
    # A1: 1 unit, cost 50 + 45 = 95, buy fees 0.095: 1 × 95 − 95 − 0.095
    # B1: 1 unit left, cost 20, buy fees 0.02, sold 12 for 0.012: 12 − 20 − 0.02 + 11.988
    # C2: 0.1 × 95 − 9.5 − 0.0095
    deals = pnl_by_deal(store, [_id(d) for d in ("A1", "B1", "C1", "C2")])
    assert [(deals[_id(d)]["mark_price"], deals[_id(d)]["unrealized_pnl"])
            for d in ("A1", "B1", "C1", "C2")] == [
        (D("95"), D("-0.095")), (D("12"), D("3.968")), (D("120"), D("0")),
        (D("95"), D("-0.0095"))]
    bots = pnl_by_bot(store, [_id(b) for b in "ABCD"])
    assert [bots[_id(b)]["unrealized_pnl"] for b in "ABCD"] == [
        D("-0.095"), D("3.968"), D("-0.0095"), D("0")]
    alice = portfolio(store, "alice")
    assert (alice["unrealized_pnl"], alice["deals_open"]) == (D("3.873"), 2)
    assert portfolio(store, "bob")["unrealized_pnl"] == D("-0.0095")
    report = pnl_report(store)  # ``tradetape pnl``
    assert report["unrealized_pnl"] == D("3.8635")
    assert [b["unrealized_pnl"] for b in report["bots"]] == [
        D("-0.095"), D("3.968"), D("-0.0095"), D("0")]
    assert pnl_report(store, owner="alice")["unrealized_pnl"] == D("3.873")
    assert pnl_report(store, bot=_id("C"))["unrealized_pnl"] == D("-0.0095")
    assert pnl_report(store, owner="bob")["realized_pnl"] == D("1.954")


def test_a_batch_that_moves_a_mark_writes_only_what_its_events_change(books):
    store, apply = books
    log = Log()
    apply(_first_batch(log))
    # D buys ETH/USDT at 11: B1 is marked at 11 when read, its rows stay as they were.
    written = apply([log.opened("D1"), log.bought("D1", "11", "1", "0.011")])
    assert written[PNL_DEALS.name] == written[LB_DEALS.name] == {_id("D1")}
    # C: the last step of the batch before (C2's buy) ends here, its capital settles
    assert written[PNL_BOTS.name] == {_id("C"), _id("D")}
    assert written[PNL_OWNERS.name] == {"bob"}
    assert pnl_by_deal(store, [_id("B1")])[_id("B1")]["unrealized_pnl"] == D("2.968")
    assert pnl_by_bot(store, [_id("D")])[_id("D")]["unrealized_pnl"] == D("-0.011")
    assert portfolio(store, "alice")["unrealized_pnl"] == D("2.873")
