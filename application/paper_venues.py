"""The markets of :class:`~application.paper_trading.PaperTrading`: an account's venue on a
pair, made at the first need (paper: its wallet from the account's deposits and fills, one
wallet for all its pairs; live: the exchange's, storing decisions before each request),
and what the API reads of them (wallets, positions' desks, exchange rules)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from application.engine import DcaEngine
from application.live_venue import LiveVenue
from application.paper_market import Market, PaperVenue
from application.position_desk import PositionDesk
from application.trading import Trading
from domain.accounts import AccountKind, ExchangeAccount
from domain.errors import DomainError, LeaseLostError, NotFoundError
from domain.money import ZERO
from domain.ports import Balance


class Venues:
    """Mixed into PaperTrading, whose lock, markets and saving it uses."""

    def _market(self, account_id: str, pair: str) -> Market:
        key = (account_id, pair)
        if key not in self._markets:
            account = self._preloaded_account(account_id)
            if account is None:
                self._markets[key] = Market(self._paper_venue(account_id, pair))
            else:
                self._markets[key] = self._live_market(account, pair)
            self._opened += 1
            self._markets[key].order = self._opened
            if (account is None and account_id not in self._wallet_hints
                    and hasattr(self._markets[key].venue, "join_wallet")):
                self._wallet_hints[account_id] = (key, self._markets[key])
            self._stale.add(key)
            if pair in self._last_close:  # a position opened now trades at the last close
                self._markets[key].venue.price = self._last_close[pair]
        return self._markets[key]

    def _live_market(self, account: ExchangeAccount, pair: str) -> Market:
        if self.live_venues is None:
            raise DomainError("this server trades on paper only: live accounts need the "
                              "exchange adapters", code="LIVE_TRADING_DISABLED")
        venue = self.live_venues(account, pair)
        market = Market(venue)

        def write_ahead() -> None:
            """Store every decision taken so far (the order about to be sent included)
            before a request leaves for the exchange."""
            for bot_id, engine in list(market.engines.items()):
                self._stage(engine.take_changes(), (bot_id,))
            if market.desk is not None:
                self._stage(market.desk.take_changes())
            staged = sum(len(a.pending_events)  # (each aggregate once: collected once)
                         for a in {id(a): a for a in self._pending}.values())
            if self._flush() < staged:
                # Refused without a raise (an engine worker's LEASE_LOST: its markets go
                # on from the log, the new holder's): the request must not leave, else
                # it is an order the log never knew, and the new holder sends it again
                raise LeaseLostError("the write-ahead of an exchange request was refused: "
                                     "the request is not sent")

        venue.before_request = write_ahead
        return market

    def _preloaded(self, account_id: str) -> ExchangeAccount | None:
        try:
            return self._accounts.get(UUID(account_id))
        except ValueError:
            return None

    def _preloaded_account(self, account_id: str) -> ExchangeAccount | None:
        """The account if it is live (as ``_live_account``), from what ``resume`` loaded."""
        account = self._preloaded(account_id)
        if account is None:
            return _live_account(self.trading, account_id)
        return account if account.kind is AccountKind.LIVE else None

    def market_rules(self, account_id: str, pair: str):
        """A live account's exchange rules for ``pair`` (None for paper accounts, and where
        this runner has no exchange adapters)."""
        rules_of = getattr(self.live_venues, "market_rules", None)
        account = _live_account(self.trading, account_id) if rules_of else None
        return None if account is None else rules_of(account, pair)

    def desk(self, account_id: str, pair: str) -> PositionDesk:
        """The positions' desk of an account on a pair (call with ``lock`` held)."""
        market = self._market(account_id, pair)
        if market.desk is None:
            market.desk = PositionDesk(market.venue, self.ids)
        return market.desk

    def positions_of(self, account_id: str) -> list:
        """The open positions of an account's desks (users' own, outside bots)."""
        return [position for (account, _), market in self._markets.items()
                if account == account_id and market.desk is not None
                for position in market.desk.positions.values()]

    def engines_of(self, account_id: str) -> list[DcaEngine]:
        return [engine for (account, _), market in self._markets.items()
                if account == account_id for engine in market.engines.values()]


    def live_markets(self) -> list[tuple[str, str, LiveVenue]]:
        """(account id, pair, venue) of every live market this runner trades."""
        return [(account, pair, m.venue) for (account, pair), m in self._markets.items()
                if isinstance(m.venue, LiveVenue)]

    def paper_wallet(self, account_id: str) -> dict[str, Balance]:
        """A paper account's balances as its venue holds them (one wallet for all its
        pairs); without a venue yet, what its deposits and fills made (nothing locked)."""
        with self.lock:
            venue = self._wallet_venue(account_id)
            if venue is not None:
                return {a: b for a, b in venue.fetch_balance().items() if a}
            held = _deposits(self.trading, account_id)
            for asset, change in self._index().asset_fills(account_id).items():
                held[asset] = held.get(asset, ZERO) + change
            return {asset: Balance(amount) for asset, amount in held.items()}

    def credit_paper(self, account_id: str, asset: str, amount: Decimal) -> None:
        """A deposit (or, negative, a withdrawal) just recorded on a paper account reaches
        its venue, when it has one (a venue made later reads it from the events)."""
        with self.lock:
            venue = self._wallet_venue(account_id)
            if venue is not None:
                venue.add_balance(asset, amount)

    def _wallet_venue(self, account_id: str) -> PaperVenue | None:
        """The venue of the account's first paper market (its wallet), None without one.
        Found from where it was last seen, while that market is still there. WHY: a start
        opens a market for every account's pairs, and a walk of every market for each was
        quadratic (3,000 walks of up to 3,000 markets at 10,000 bots)."""
        hint = self._wallet_hints.get(account_id)
        if hint is None:
            return None  # no paper market of the account was ever opened (``_market``)
        key, market = hint
        if self._markets.get(key) is market:  # still there: still the first one
            return market.venue
        found = next(((k, m) for k, m in self._markets.items()
                      if k[0] == account_id and hasattr(m.venue, "join_wallet")), None)
        if found is None:
            del self._wallet_hints[account_id]
            return None
        self._wallet_hints[account_id] = found
        return found[1].venue

    def _paper_venue(self, account_id: str, pair: str) -> PaperVenue:
        """The account's venue for ``pair``. An account's pairs share one wallet: its
        deposits and every pair's fills, each asset counted once."""
        base, _, quote = pair.partition("/")
        sibling = self._wallet_venue(account_id)
        if sibling is not None:
            venue = self.venue_factory(pair, ZERO, ZERO)
            venue.join_wallet(sibling)
            return venue
        balances = (_deposits(self.trading, account_id) if self._given is None
                    else dict(self._given.get(account_id, {})))
        for asset, change in self._index().asset_fills(account_id).items():
            balances[asset] = balances.get(asset, ZERO) + change
        venue = self.venue_factory(pair, balances.pop(quote, ZERO), balances.pop(base, ZERO))
        for asset, amount in sorted(balances.items()):
            if amount:
                venue.add_balance(asset, amount)
        return venue


def _live_account(trading: Trading, account_id: str) -> ExchangeAccount | None:
    try:
        account = trading.load(UUID(account_id), ExchangeAccount)
    except (ValueError, NotFoundError):
        return None
    return account if account.kind is AccountKind.LIVE else None


def _deposits(trading: Trading, account_id: str) -> dict[str, Decimal]:
    """What a paper account was given, by asset (deposits less withdrawals)."""
    try:
        account = trading.load(UUID(account_id), ExchangeAccount)
    except (ValueError, NotFoundError):
        return {}  # e.g. backtests' "paper": no deposits recorded
    given: dict[str, Decimal] = {}
    for event in trading.events.get(account.id):
        if isinstance(event, ExchangeAccount.Deposited | ExchangeAccount.Withdrawn):
            sign = -1 if isinstance(event, ExchangeAccount.Withdrawn) else 1
            given[event.asset] = given.get(event.asset, ZERO) + sign * event.amount
    return given
