"""What ``/health`` (and GraphQL's ``systemStatus.parts``) shows a caller who is not an
administrator: what a load balancer or a monitor needs (every part's status and response
time, lags, positions, the background tasks, the process) and nothing of anyone's account:
no account or user id, no amount, no per-account row, no free text (a message may quote an
id or a balance: an error is cut to its kind or code). Accounts are counted by status and
by error code instead. Administrators get ``Runtime.health()`` as it is.

Kept by name, part by part: a part or key not listed here shows its status alone, so a part
added later tells anonymous callers nothing until it is listed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from application.task_health import log_line
from domain.users import AuthenticationError

log = logging.getLogger("tradetape.health")
Part = dict[str, Any]
_KIND = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,60}(?=:|$)")  # "KeyError: …" -> "KeyError"
_ALWAYS = ("status", "response_ms")


def kind_of(text: Any) -> Any:
    """Free text cut to the kind or code it begins with (``UndefinedTable: relation …`` ->
    ``UndefinedTable``, ``EXCHANGE_UNAVAILABLE: …`` -> the code), ``error`` when it begins
    with neither; None (no error) and anything not text stay as they are."""
    if not isinstance(text, str):
        return text
    found = _KIND.match(text)
    return found.group(0) if found else "error"


def admin_token(authenticate: Callable[[str], Any], token: str | None) -> bool:
    """Whether ``token`` is an administrator's live access token (``authenticate``:
    ``Identity.authenticate``). A missing, forged, expired or non-admin token is no error
    here, just not an administrator's: a monitor asks with none, and an administrator whose
    token expired still learns whether the server is up."""
    if not token:
        return False
    try:
        return bool(authenticate(token).is_admin)
    except AuthenticationError:
        return False
    except Exception as error:  # the users' events unreadable (the database away): /health
        log.warning("/health: the token not checked, the public view given: %s",  # still
                    log_line(error))  # answers, its parts saying what is wrong
        return False


def health_seen_by(health: Callable[[], dict[str, Part]],
                   authenticate: Callable[[str], Any],
                   token: str | None) -> tuple[dict[str, Part], bool]:
    """(the parts as the holder of ``token`` sees them, whether in full): ``/health`` and
    GraphQL's ``systemStatus`` decide alike."""
    full = admin_token(authenticate, token)
    return (health() if full else public_health(health())), full


def worst_status(parts: dict[str, Part]) -> str:
    """The overall status of ``parts``: red if any is, else amber if any is, else green."""
    statuses = {part["status"] for part in parts.values()}
    return "red" if "red" in statuses else "amber" if "amber" in statuses else "green"


def public_health(parts: dict[str, Part]) -> dict[str, Part]:
    """``Runtime.health()``'s parts as an anonymous caller sees them (same part names)."""
    return {name: _VIEWS.get(name, _bare)(part) for name, part in parts.items()}


def _pick(part: Part, keys: tuple[str, ...] = (), texts: tuple[str, ...] = ()) -> Part:
    """``keys`` as they are, ``texts`` (and a failed check's ``error``) cut to their kind."""
    shown = {key: part[key] for key in (*_ALWAYS, *keys) if key in part}
    shown.update({key: kind_of(part[key]) for key in ("error", *texts) if key in part})
    return shown


def _bare(part: Part) -> Part:
    return _pick(part)


def _projections(part: Part) -> Part:
    shown = _pick(part, ("lag",))
    if isinstance(part.get("worker"), dict):
        shown["worker"] = _pick(part["worker"], ("running", "rounds"), ("last_error",))
    if isinstance(part.get("stuck"), list):
        shown["stuck"] = [_pick(s, ("name", "position", "failing_position", "since",
                                    "attempts", "needs_rebuild", "next_retry_in_s"))
                          for s in part["stuck"]]
    return shown


def _engine_loop(part: Part) -> Part:
    shown = _pick(part, ("running", "steps", "candles", "events", "last_step_at"),
                  ("last_error",))
    market = part.get("market")
    feed = ("last_candle_ms", "lag_seconds", "pairs", "failed_polls")
    if isinstance(market, dict):
        shown["market"] = _pick(market, feed, ("last_error",))
    elif isinstance(market, list):
        shown["market"] = [_pick(m, feed, ("last_error",)) for m in market]
    return shown


def _exchanges(part: Part) -> Part:
    """The live accounts counted by status and by error code, not listed."""
    accounts = list((part.get("accounts") or {}).values())
    return {**_pick(part), "accounts_by_status": _count(a.get("status") for a in accounts),
            "account_errors": _count(kind_of(a.get("error")) for a in accounts)}


def _wallet(part: Part) -> Part:
    shown = _pick(part, ("standby", "last_run_at", "age_seconds", "every_seconds",
                         "accounts", "recorded"))
    if isinstance(part.get("errors"), dict):  # account id -> "CODE: message"
        shown["account_errors"] = _count(kind_of(e) for e in part["errors"].values())
    return shown


def _billing(part: Part) -> Part:
    """How many users' wallet renewals were refused or wait for Stripe, not who."""
    return {**_pick(part), **{f"{key}_count": len(part.get(key) or {}) for key in (
        "wallet_renewals_refused", "wallet_renewals_waiting")}}


def _leases(part: Part) -> Part:
    return _pick(part, ("worker", "bots", "ticks"), ("last_error", "stood_down"))


# Where the deployment runs is no monitor's business: a host name (in a process's name
# too) or a pid helps whoever maps the servers. A process is shown by its role and a tag
# keyed with a secret of this process (random at each start): the rows of one process
# still go together, and this process still finds its own (``process.name``), in one
# answer as in the next, but no tag can be turned back into a host or a pid.
_WHERE = ("host", "pid")
_TAG_KEY = os.urandom(16)


def process_tag(name: Any, role: Any) -> str | None:
    """``engine-3f9a0c1d`` for the process named ``engine-box1-4242-7f3a``."""
    if not isinstance(name, str):
        return None
    digest = hashlib.blake2b(name.encode(), key=_TAG_KEY, digest_size=4).hexdigest()
    return f"{role}-{digest}" if isinstance(role, str) else digest


def _background(part: Part) -> Part:
    """Task reports carry a kind and a code, never a message (``application/task_health.py``);
    the deployment's rows lose where they ran."""
    shown = dict(part)
    deployment = part.get("deployment")
    if isinstance(deployment, dict) and isinstance(deployment.get("tasks"), list):
        shown["deployment"] = {**deployment, "tasks": [_unplaced(row, "process")
                                                       for row in deployment["tasks"]]}
    return shown


def _process(part: Part) -> Part:
    """Its role, niceness and tag, not its pid or its name in the deployment."""
    return _unplaced(part, "name")


def _unplaced(row: Any, name_key: str) -> Any:
    if not isinstance(row, dict):
        return row
    shown = {key: value for key, value in row.items() if key not in _WHERE}
    if name_key in row:
        shown[name_key] = process_tag(row[name_key], row.get("role"))
    return shown


def _count(values) -> dict[str, int]:
    return dict(Counter(v for v in values if v is not None))


_VIEWS: dict[str, Callable[[Part], Part]] = {
    "event_store": lambda part: _pick(part, ("head",)), "projections": _projections,
    "engine_loop": _engine_loop, "exchanges": _exchanges, "wallet": _wallet,
    "billing": _billing, "leases": _leases, "background": _background, "process": _process}
