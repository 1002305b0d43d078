"""Which bots :class:`~application.paper_trading.PaperTrading` trades: an engine rebuilt
for each from the log (its bot, open deal and that deal's orders), at a start
(``resume``), an engine worker's take (``follow_many``) or a command (``follow``), and
dropped again (``unfollow``). A live bot is reconciled with its exchange when followed."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from uuid import UUID

from application.engine import DcaEngine
from application.lease_shares import transient
from application.live_venue import LiveVenue
from application.paper_log import PaperLog, RestartBook
from application.paper_market import Market, error_reason
from application.replay import read_log
from application.running_bots import load_readable
from application.safety_retries import retried
from application.trading import Trading
from domain.accounts import ExchangeAccount
from domain.bots import Bot, BotStatus
from domain.deals import Deal
from domain.errors import DomainError, NotFoundError
from domain.orders import Order, OrderPurpose, OrderStatus
from domain.ports import OrderRequest
from domain.recording import SYSTEM, topic_of

log = logging.getLogger("tradetape.paper")
_REFUSED = (OrderStatus.REJECTED, OrderStatus.LOST)


class Following:
    """Mixed into PaperTrading, whose lock, markets and saving it uses."""

    @property
    def bot_ids(self) -> set[UUID]:
        return {bot_id for m in self._markets.values() for bot_id in m.engines}

    def resume(self) -> list[UUID]:
        """Rebuild an engine for every running bot (and any bot with an open deal), in the
        order the bots were created. The bots, their open deals, those deals' orders and the
        accounts are loaded in a few queries (``Trading.load_many``); with a restart book
        (``restart_book``: a projection's, see projections/paper_book.py) the bots to look
        at, the deals' orders and the venues' balances come from it instead of a scan."""
        with self.lock:
            if self.risk is not None:
                self.risk.resume()
            book = self.restart_book() if self.restart_book is not None else None
            followed = self.bot_ids
            candidates = book.bots if book is not None else _bot_ids(self.trading)
            bots, unreadable = load_readable(
                self.trading, [b for b in candidates if b not in followed])
            if self.risk is not None:
                self.risk.unreadable.update(unreadable)
            active = [bots[b] for b in candidates if b in bots and (
                bots[b].status is BotStatus.RUNNING or bots[b].open_deal_id is not None)]

            def failed(bot: Bot, error: Exception) -> None:
                if transient(error):
                    raise error
                if not isinstance(error, DomainError):  # its events this code cannot
                    self.record_unloadable(bot.id, error)  # read (a newer version's):
                    self._unloaded[bot.id] = bot.owner_id  # failed, its deal counted
                    return
                cause = self.trading.cause(SYSTEM, f"resume:{bot.id}")  # e.g. its live
                self._record_failure(bot.id, cause, error)  # account may not trade

            self._adopt_many(active, book, failed)
            return sorted(self.bot_ids)

    def follow_many(self, bot_ids: Iterable[UUID],
                    loaded: dict[UUID, Bot] | None = None) -> dict[UUID, Exception]:
        """``follow`` each of ``bot_ids``, loaded together as ``resume`` loads them (an
        engine worker's first share at start: thousands of bots; those in ``loaded`` were
        just loaded by the caller: taken as they are); when the orders and fills must be
        read again, they and the balances come from the restart book, if any, instead of a
        scan of the log. Returns the bots that could not be followed, with why (the others
        trade)."""
        with self.lock:
            followed = self.bot_ids
            wanted = [b for b in dict.fromkeys(bot_ids) if b not in followed]
            if not wanted:
                return {}
            # The orders and fills must be read again (at start, or another worker wrote
            # some for these bots): from the book, as of the log's head, not from a scan.
            fresh = self._log is None and self.restart_book is not None
            book = self.restart_book() if fresh else None
            given = {b: loaded[b] for b in wanted if loaded and b in loaded}
            bots = {**given, **self.trading.load_many(
                [b for b in wanted if b not in given], Bot)}
            problems: dict[UUID, Exception] = {
                b: NotFoundError(f"no bot {b}") for b in wanted if b not in bots}
            self._adopt_many([bots[b] for b in wanted if b in bots], book,
                             lambda bot, error: problems.__setitem__(bot.id, error))
            return problems

    def _adopt_many(self, bots: list[Bot], book: RestartBook | None,
                    failed: Callable[[Bot, Exception], None]) -> None:
        """``_adopt`` each of ``bots``, their accounts, open deals and those deals' orders
        loaded in a few queries first; ``failed`` hears of a bot that could not be."""
        if book is not None:
            self._log = PaperLog(None, book)
            self._given = dict(book.deposits)
        self._accounts = self.trading.load_many(
            _account_ids(bot.exchange_account_id for bot in bots), ExchangeAccount)
        try:
            try:
                deals = self.trading.load_many(
                    [bot.open_deal_id for bot in bots if bot.open_deal_id is not None], Deal)
                index = self._index()
                orders = self.trading.load_many(
                    [order_id for deal_id in deals
                     for order_id in index.open_orders_of(deal_id)], Order)
            except Exception as error:
                if transient(error) or len(bots) < 2:
                    raise
                # One deal this code cannot read (an event of a newer version) failed them
                # all, and with them a start: each bot loads its own below, that one fails
                log.warning("loading %d bots' deals together failed (%s): one at a time",
                            len(bots), error_reason(error))
                deals, orders = None, None
            for bot in bots:
                try:
                    if deals is None:
                        self._adopt(bot)
                    else:
                        self._adopt(bot, deals.get(bot.open_deal_id), orders)
                except Exception as error:
                    failed(bot, error)
        finally:
            self._accounts, self._given = {}, None

    def record_unloadable(self, bot_id: UUID, error: Exception) -> None:
        """A bot this code cannot load (its events, its configuration): failed, with the
        named code (resetting the error brings it back paused), once; on an engine worker
        fenced by the lease it holds while it tried. A bot that cannot even be read is said
        in the log only."""
        reason = f"BOT_NOT_LOADABLE: {error_reason(error)}"
        with self.lock:
            try:
                bot = self.trading.get_bot(bot_id)
                if bot.status not in (BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED):
                    return
                bot.fail(self.trading.cause(SYSTEM, f"load:{bot_id}"), reason)
                self._save_now([bot], (bot_id,))
            except Exception as again:
                log.error("bot %s: its failure (%s) could not be recorded: %s", bot_id,
                          reason, error_reason(again))

    def follow(self, bot_id: UUID) -> None:
        """Trade ``bot_id`` from now on (after it was started)."""
        with self.lock:
            if any(bot_id in market.engines for market in self._markets.values()):
                return
            self._adopt(self.trading.get_bot(bot_id))

    def _adopt(self, bot: Bot, deal: Deal | None = None,
               loaded: dict[UUID, Order] | None = None) -> None:
        """An engine for ``bot`` on its market; its open deal and that deal's orders as
        given (``resume`` loads them for every bot at once), else loaded here."""
        market = self._market(bot.exchange_account_id, bot.config.pair)
        engine = DcaEngine(bot, market.venue, self.ids,
                           risk=None if self.risk is None else self.risk.check)
        if isinstance(market.venue, LiveVenue):
            self._follow_live(market, engine)
            return
        if bot.open_deal_id is not None:
            engine.deal = deal if deal is not None else self.trading.get_deal(bot.open_deal_id)
            # The units the deal holds, summed as the deal summed them: its exit sells them.
            market.venue.restore_position(engine.deal.id.hex, engine.deal.units)
            for order_id in self._index().orders_of(bot.open_deal_id):
                if loaded is not None and order_id not in loaded:
                    continue  # final (the book knew), so not loaded
                order = (loaded[order_id] if loaded is not None
                         else self.trading.load(order_id, Order))
                if not order.is_open:
                    continue
                engine.orders[order.client_order_id] = order
                if order.exchange_order_id is not None:  # resting on the venue
                    market.venue.restore_resting(
                        OrderRequest(order.client_order_id, order.pair, order.side,
                                     order.type, order.remaining, order.price,
                                     order.deal_id.hex if order.deal_id else None),
                        order.exchange_order_id)
        self._seat(market, engine)

    def _follow_live(self, market: Market, engine: DcaEngine) -> None:
        """Reconciliation of one bot on a live exchange, when it is (re)followed: every
        order the log believes open is asked about (fills made while we were down are
        recorded at the exchange's times; one the exchange does not know is Lost), and a
        ladder the process stopped before placing is placed; inside a candle, by its step."""
        bot = engine.bot
        self._seat(market, engine)
        if bot.open_deal_id is None:
            return
        engine.deal = self.trading.get_deal(bot.open_deal_id)
        placed, refused, standing = set(), Counter(), set()
        for order_id in self._index().orders_of(bot.open_deal_id):
            order = self.trading.load(order_id, Order)
            placed.add(order.safety_order)
            if (order.purpose is OrderPurpose.SAFETY and order.status in _REFUSED
                    and retried(order.status.value, order.reason)):
                refused[order.safety_order] += 1  # refused or lost: sent again (engine)
            else:
                standing.add(order.safety_order)
            if order.is_open:
                engine.restore_order(order)
                market.venue.restore_resting(
                    OrderRequest(order.client_order_id, order.pair, order.side, order.type,
                                 order.remaining, order.price, order.deal_id.hex),
                    order.exchange_order_id)
        engine.restore_refusals({n: count for n, count in refused.items()
                                 if n not in standing})
        if self._turn is not None:
            # Followed again inside a candle (its append refused by a race, rebuilt from
            # the log): the candle's step, which reaches every live market, reconciles it
            # under the candle's cause. Done here, it would close a deal outside the
            # candle, and the re-step would open the next one a candle late.
            market.unreconciled[bot.id] = frozenset(placed)
            return
        engine.begin_step(self.trading.cause(SYSTEM, f"reconcile:{bot.id}"))
        try:
            for update in market.venue.poll():
                market.on_order_update(update)
            if engine.deal is not None:
                engine.resume_ladder(frozenset(placed))
        except DomainError as error:  # the exchange is away: the first step that reaches
            log.warning("bot %s: reconciliation deferred: %s", bot.id, error)  # it finishes
            market.unreconciled[bot.id] = frozenset(placed)
        finally:
            self._save_now(engine.take_changes(), {bot.id})

    def _seat(self, market: Market, engine: DcaEngine) -> None:
        """``engine`` trades on ``market`` (its bot's account and pair). Where is kept by
        bot: finding one (to unfollow it, close its deal) is a look-up, not a walk of every
        market (a worker's stop walked them all for each of its bots: 1.1 s at 10,000)."""
        bot = engine.bot
        key = (bot.exchange_account_id, bot.config.pair)
        market.engines[bot.id] = engine
        self._seats[bot.id] = key
        self._stale.add(key)

    def unfollow(self, bot_id: UUID, *, release: bool = False) -> None:
        """Stop trading a bot that holds no open deal here (it moved to another account);
        ``follow`` then trades it on its new account's venue. ``release``: another engine
        worker trades it from now on, open deal or not; a venue left with nothing on it is
        forgotten too (the next one is made from the log, with the other worker's fills)."""
        with self.lock:
            market, engine = self._engine_of(bot_id)
            if market is None:
                return
            key = self._seats[bot_id]
            if release or engine.deal is None:
                del market.engines[bot_id]
                del self._seats[bot_id]
                self._stale.add((engine.bot.exchange_account_id, engine.bot.config.pair))
            if release and not market.busy:
                del self._markets[key]

    def refresh_index(self) -> None:
        """Read the log's orders and fills again at the next need: another engine worker
        wrote some for the bots this one takes over."""
        with self.lock:
            self._log = None

    def _engine_of(self, bot_id: UUID) -> tuple[Market | None, DcaEngine | None]:
        """(A seat left behind, by a market forgotten or a bot that failed in it, finds
        nothing: the market at that key must hold the engine.)"""
        market = self._markets.get(self._seats.get(bot_id))  # type: ignore[arg-type]
        engine = market.engines.get(bot_id) if market is not None else None
        return (market, engine) if engine is not None else (None, None)


def _bot_ids(trading: Trading) -> list[UUID]:
    return [n.originator_id for n in read_log(trading, [topic_of(Bot.Created)])]


def _account_ids(texts) -> list[UUID]:
    ids = []
    for text in dict.fromkeys(texts):
        try:
            ids.append(UUID(text))
        except ValueError:  # e.g. backtests' "paper"
            continue
    return ids

