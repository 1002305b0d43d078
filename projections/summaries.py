"""One readable line per event, for the audit log. Known events name the fields a person
checks; any other event lists its plain fields, with anything that looks like a secret
(key, secret, password, token, digest, sealed, email...) replaced by ``[redacted]``."""

from __future__ import annotations

import re
from collections.abc import Callable
from string import Formatter
from typing import Any

from projections.reader import uuid_text

# Field names whose values never reach the audit log (or an export): secrets, and sealed
# personal data and digests of tokens, which are useless there and risky anywhere.
SECRET = re.compile(r"secret|password|passphrase|token|api_?key|private|credential|sealed|"
                    r"digest|hash|email", re.IGNORECASE)
ENVELOPE = frozenset({"timestamp", "originator_topic", "actor", "correlation_id",
                      "class_version"})
REDACTED = "[redacted]"
MAX_CHARS = 240

TEMPLATES = {
    "Bot.Created": 'bot "{name}" of {owner_id} on account {exchange_account_id} ({mode})',
    "Bot.Started": "started",
    "Bot.Paused": "paused",
    "Bot.Stopped": "stopped",
    "Bot.ErrorRaised": "error: {reason}",
    "Bot.ErrorReset": "error reset",
    "Bot.ConfigEdited": "configuration edited",
    "Bot.PromotedToLive": "promoted to live trading",
    "Bot.RiskLimitReached": "no deal opened: RISK_LIMIT_REACHED {message}",
    "Bot.RiskPaused": "paused until {until}: {reason}",
    "Bot.RiskResumed": "resumed: {reason}",
    "Bot.DealStarted": "deal {deal_id} started",
    "Bot.DealFinished": "deal {deal_id} finished",
    "Bot.Renamed": 'renamed "{name}"',
    "Bot.Archived": "deleted (archived: its history is kept)",
    "BotRoster.BotRenamed": 'bot {bot_id} renamed "{name}"',
    "BacktestRequest.Made": "backtest {run_id} of {pair} on {candles_file} asked for",
    "BacktestRequest.Failed": "backtest failed: {code}",
    "Bot.LeaderboardOptedIn": "listed on the public leaderboard",
    "Bot.LeaderboardOptedOut": "removed from the public leaderboard",
    "Deal.Opened": "deal on {pair} for bot {bot_id}, take profit {take_profit_pct}%",
    "Deal.BuyFilled": "bought {amount} @ {price}, fee {fee} (safety order {safety_order})",
    "Deal.TargetsMoved": "take profit at {take_profit_price}, stop loss at {stop_loss_price}",
    "Deal.TrailingStarted": "take profit reached at {price}: trailing {trailing_pct}% below "
                            "the highest (level {level} now)",
    "Deal.TrailingTriggered": "fell to the trailing level {level} (highest {highest})",
    "Deal.StepSold": "take profit step {step}: sold {amount} @ {price}, fee {fee}",
    "Deal.StopTrailingStarted": "trailing stop activated at {price} (stop {level} now)",
    "Deal.StopTrailingTriggered": "fell to the trailing stop {level} (highest {highest})",
    "Deal.Closed": "{reason}: sold {amount} @ {price}, fee {fee}, realized {realized_pnl}",
    "Deal.Cancelled": "cancelled: {reason}",
    "Deal.RiskLimitReached": "safety order {safety_order} not placed: RISK_LIMIT_REACHED "
                             "{message}",
    "Order.Submitted": "{side} {type} {amount} {pair} @ {price} ({purpose})",
    "Order.Accepted": "accepted by the exchange as {exchange_order_id}",
    "Order.Filled": "filled {amount} @ {price}, fee {fee} {fee_currency} (trade {trade_id})",
    "Order.ObservedOpen": "the exchange reports it open as {exchange_order_id}",
    "Order.TradeObserved": "the exchange reports a trade of {amount} @ {price}, fee {fee} "
                           "{fee_currency} (trade {trade_id})",
    "Order.Lost": "lost: {reason}",
    "Order.CancelRequested": "cancel requested",
    "Order.Cancelled": "cancelled: {reason}",
    "Order.Rejected": "rejected: {reason}",
    "Order.Expired": "expired",
    "ExchangeAccount.Opened": "{kind} account on {exchange} of {owner_id}, quote {quote_asset}",
    "ExchangeAccount.Deposited": "deposited {amount} {asset}",
    "ExchangeAccount.Withdrawn": "withdrew {amount} {asset}",
    "ExchangeAccount.BalanceObserved": "exchange reports {asset}: free {free}, locked {locked}",
    "ExchangeAccount.Connected": 'live account "{name}" connected (sandbox: {sandbox}), '
                                 "keys sealed",
    "ExchangeAccount.Checked": "keys checked: {status}, code {code}",
    "ExchangeAccount.Removed": "removed",
    "BacktestRun.Started": "backtest over {candles_count} candles of {candles_source}",
    "BacktestRun.PeriodChosen": "backtest of the candles from {from_ms} until {to_ms} (UTC ms)",
    "BacktestRun.Completed": "backtest completed",
    "BacktestRun.Interrupted": "backtest interrupted: {reason}",
    "TradingSwitch.Installed": "trading switch installed",
    "TradingSwitch.EmergencyStopped": "EMERGENCY STOP of all trading: {reason}",
    "TradingSwitch.EmergencyResumed": "trading resumed after an emergency stop",
    "Webhook.Created": 'webhook "{name}" of {owner_id} created for bot {bot_id}, secret '
                       "sealed",
    "Webhook.EnabledSet": "webhook enabled: {enabled}",
    "Webhook.SecretRotated": "webhook secret rotated (sealed)",
    "Webhook.Deleted": "webhook deleted",
    "Webhook.SignalReceived": "signal {number} ({action}, id {signal_id}): {outcome} "
                              "{code}: {message}",
    "Webhook.SignalActedOn": "signal {number}: {outcome} {code}: {message}",
    "EmergencyExitRun.Installed": "emergency exits of {scope}",
    "EmergencyExitRun.Started": "CRITICAL: EMERGENCY EXIT started: {reason}",
    "EmergencyExitRun.Finished": "CRITICAL: EMERGENCY EXIT finished: {bots_stopped} bots "
                                 "stopped, {deals_closed} deals sold, {orders_cancelled} "
                                 "orders cancelled, problems: {problems}",
    "AuditCheckpoint.Taken": "audit checkpoint: chain head {chain_head} at position "
                             "{position} ({events} events), signed by {public_key}",
    "AuditRechain.Forced": "audit log re-chained by force (first disagreement at position "
                           "{position}: {problem}): {reason}",
}


def _shown(value: Any) -> str:
    if type(value) is dict:
        value = _unwrap(value)
    return "-" if value is None else str(value)


def _unwrap(value: dict[str, Any]) -> Any:
    data = value.get("_data_")
    return uuid_text(data) if value.get("_type_") == "uuid_hex" else data


def _compile(template: str) -> Callable[[dict[str, Any]], str]:
    """A template as a function of the stored state: typed values shown by their stored
    form (``{"_type_": "decimal_str", "_data_": "1.50"}`` reads ``1.50``), missing ones ``-``.
    Compiled into one function whose body shows each field inline (what ``_shown`` does,
    without a call per field): this runs for every event of the log. The body reads the
    state by subscript (a specialised opcode, where ``get`` is a method call: most of the
    time); a missing key raises KeyError, and the state is shown again by ``get``, as
    ``_shown`` would (try costs nothing until it raises)."""
    pieces, fast, slow, names = [], [], [], {}
    for literal, field, _, _ in Formatter().parse(template):
        pieces.append(literal.replace("{", "{{").replace("}", "}}").replace('"', '\\"'))
        if field is not None:
            if not field.isidentifier():
                raise ValueError(f"bad field {field!r} in {template!r}")
            if field not in names:
                name = names[field] = f"v{len(names)}"
                slow += [f"    {name} = s.get({field!r})",
                         f"    if {name}.__class__ is dict:",
                         f"        {name} = (uuid_text({name}.get('_data_')) if "
                         f"{name}.get('_type_') == 'uuid_hex' else {name}.get('_data_'))",
                         f"    {name} = '-' if {name} is None else {name}"]
                fast += [f"        {name} = s[{field!r}]",
                         f"        if {name}.__class__ is dict:",
                         f"            {name} = (uuid_text({name}['_data_']) if "
                         f"{name}['_type_'] == 'uuid_hex' else {name}['_data_'])",
                         f"        if {name} is None:",
                         f"            {name} = '-'"]
            pieces.append(f"{{{names[field]}}}")
    body = f'f"{"".join(pieces)}"[:{MAX_CHARS}]'
    namespace: dict[str, Any] = {"uuid_text": uuid_text}
    code = "\n".join(["def by_get(s):", *slow, f"    return {body}",
                      "def render(s):", "    try:", *fast, f"        return {body}",
                      "    except KeyError:", "        return by_get(s)"])
    exec(code, namespace)
    return namespace["render"]


RENDER = {kind: _compile(template) for kind, template in TEMPLATES.items()}


def summarize(kind: str, state: dict[str, Any]) -> str:
    render = RENDER.get(kind)
    if render is not None:
        return render(state)
    parts = []
    for name, value in state.items():
        if name in ENVELOPE:
            continue
        shown = REDACTED if SECRET.search(name) else _short(value)
        parts.append(f"{name}={shown}")
    event_type = kind.rpartition(".")[2]
    return (f"{event_type}: {', '.join(parts)}" if parts else event_type)[:MAX_CHARS]


def plain(value: Any, name: str = "") -> Any:
    """The stored JSON with typed values unwrapped and secrets redacted (for exports)."""
    if name and SECRET.search(name):
        return REDACTED
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return plain(_unwrap(value))
        return {k: plain(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _short(value: Any) -> str:
    value = plain(value)
    text = value if isinstance(value, str) else repr(value) if value is not None else "-"
    return text if len(text) <= 40 else text[:39] + "…"
