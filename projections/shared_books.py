"""One set of deal books for the ledgers run together (``pnl``, ``leaderboard``, ``equity``).

Each of them keeps the same books (bots' tallies, open deals, orders, marks) from the same
events, in tables of its own so it runs and rebuilds alone. Run together at one position,
the first (``pnl`` when there: its owners' tallies ride on the same calls) becomes the
leader: it applies each fact to the books once, and the others read those books. A
follower handles only what is its own (a leaderboard's opt-ins, equity's points: equity
looks at the books just before the leader applies a move, ``Ledger.before``) and, at the
end of a batch, writes what the leader settled into its own tables. Rows are the same rows
either way (tested against each projection run alone); only the Python work is shared.
The projections' processor time was about a third ledger work done three times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.ledger import DEAL_COLUMNS, MARK_COLUMNS, ORDER_COLUMNS, TALLY_COLUMNS, Ledger

ENABLED = True  # the switch: False keeps every ledger's books its own (the tests compare)


def share_books(ledgers: Sequence[Ledger]) -> Ledger | None:
    """Make the first of ``ledgers`` (``pnl`` first when there) the leader of the others
    when their books agree (they were loaded at one position); returns the leader, or None
    when nothing is shared."""
    if not ENABLED or len(ledgers) < 2 or any(
            ledger.leader is not None or ledger.followers for ledger in ledgers):
        return None
    ordered = sorted(ledgers, key=lambda ledger: ledger.name != "pnl")
    leader, followers = ordered[0], ordered[1:]
    if not all(_agree(leader, follower) for follower in followers):
        return None
    for follower in followers:
        for bot_id, bot in follower.bots.items():  # a follower's own columns (opt-ins)
            mine = leader.bots[bot_id]
            for key, value in bot.items():
                mine.setdefault(key, value)
        follower.leader = leader
        follower.bots, follower.deals, follower.orders = leader.bots, leader.deals, leader.orders
        follower.marks = leader.marks
        follower.open_by_bot, follower.open_by_pair = leader.open_by_bot, leader.open_by_pair
    leader.followers = list(followers)
    return leader


def _agree(one: Ledger, other: Ledger) -> bool:
    """The same books: what each ledger keeps in memory, column by column."""
    return (one.step == other.step
            and _same(one.bots, other.bots, ("owner_id", "name", "pair", "last_closed_at",
                                              *TALLY_COLUMNS))
            and _same(one.deals, other.deals, DEAL_COLUMNS)
            and _same(one.orders, other.orders, ORDER_COLUMNS)
            and _same(one.marks, other.marks, MARK_COLUMNS)
            and one.dirty_deals == other.dirty_deals == set()
            and _pending(one) == _pending(other))


def _pending(ledger: Ledger) -> set[str]:
    """The bots with a step still open (``pnl`` has its owners' tallies pending too)."""
    return {t["bot_id"] for t in ledger.pending.values() if "bot_id" in t}


def _same(one: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]],
          columns: Sequence[str]) -> bool:
    if one.keys() != other.keys():
        return False
    return all(row[c] == other[key][c] for key, row in one.items() for c in columns)
