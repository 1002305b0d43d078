"""What ``/health`` shows a caller who is not an administrator, part by part: statuses, lags
and counts, never an account or user id, an amount or an error's text; a part it does not
know shows its status alone."""

from __future__ import annotations

from application.public_health import public_health

ACCOUNT, USER = "5b1c0f4e-2d7a-4c8e-9f10-3a2b1c0d9e8f", "9fdeae5b-1111-4c8e-9f10-3a2b1c0d9e8f"


def test_accounts_and_users_are_counted_not_named():
    shown = public_health({
        "exchanges": {"status": "amber", "response_ms": 1.5, "accounts": {
            ACCOUNT: {"status": "drift", "error": None, "checked_at": None,
                      "drift": {"BTC": {"expected": "0.51", "observed": "0.5"}},
                      "drift_unconfirmed": {}, "strays_cancelled": 0},
            "a2": {"status": "ok", "error": None}, "a3": {"status": "ok", "error": None}}},
        "wallet": {"status": "amber", "response_ms": 0.2, "last_run_at": "2026-03-04T12:00:00",
                   "age_seconds": 3.0, "every_seconds": 300.0, "accounts": 3, "recorded": 2,
                   "errors": {ACCOUNT: "EXCHANGE_UNAVAILABLE: binance GET https://x?key=1"}},
        "billing": {"status": "amber", "response_ms": 0.1,
                    "wallet_renewals_refused": {USER: "STRIPE_ERROR: card 4242 declined"},
                    "wallet_renewals_waiting": {}}})
    assert shown == {
        "exchanges": {"status": "amber", "response_ms": 1.5,
                      "accounts_by_status": {"drift": 1, "ok": 2}, "account_errors": {}},
        "wallet": {"status": "amber", "response_ms": 0.2, "last_run_at": "2026-03-04T12:00:00",
                   "age_seconds": 3.0, "every_seconds": 300.0, "accounts": 3, "recorded": 2,
                   "account_errors": {"EXCHANGE_UNAVAILABLE": 1}},
        "billing": {"status": "amber", "response_ms": 0.1,
                    "wallet_renewals_refused_count": 1, "wallet_renewals_waiting_count": 0}}


def test_errors_text_is_cut_to_its_kind_and_unknown_parts_to_their_status():
    shown = public_health({
        "engine_loop": {"status": "red", "running": True, "steps": 7, "candles": 7,
                        "events": 40, "last_step_at": None,
                        "last_error": f"InsufficientFundsError: account {ACCOUNT} holds 12.5",
                        "market": {"last_candle_ms": 60000, "lag_seconds": 1.0,
                                   "pairs": ["BTC/USDT"], "failed_polls": 2,
                                   "last_error": "binance GET https://x?signature=ab"}},
        "leases": {"status": "amber", "worker": "w1", "bots": 4, "ticks": 9,
                   "last_error": "OperationalError: connection lost", "stood_down": None},
        "event_store": {"status": "red", "error": f"KeyError: {ACCOUNT}"},
        "quantum": {"status": "green", "response_ms": 0.1, "owner": USER}})
    assert shown == {
        "engine_loop": {"status": "red", "running": True, "steps": 7, "candles": 7,
                        "events": 40, "last_step_at": None,
                        "last_error": "InsufficientFundsError",
                        "market": {"last_candle_ms": 60000, "lag_seconds": 1.0,
                                   "pairs": ["BTC/USDT"], "failed_polls": 2,
                                   "last_error": "error"}},
        "leases": {"status": "amber", "worker": "w1", "bots": 4, "ticks": 9,
                   "last_error": "OperationalError", "stood_down": None},
        "event_store": {"status": "red", "error": "KeyError"},
        "quantum": {"status": "green", "response_ms": 0.1}}


def test_only_an_administrators_live_token_sees_everything():
    from uuid import uuid4

    from application.public_health import admin_token
    from application.user_views import Principal
    from domain.users import AuthenticationError, Role

    def as_role(role):
        return lambda token: Principal(uuid4(), role, True)

    def refused(token):
        raise AuthenticationError("expired", code="TOKEN_EXPIRED")

    def store_away(token):
        raise ConnectionError("the database is away")

    assert admin_token(as_role(Role.ADMIN), "at.x") is True
    assert admin_token(as_role(Role.ADMIN), None) is False  # no token: not even asked
    assert [admin_token(check, "at.x") for check in (as_role(Role.USER), refused,
                                                     store_away)] == [False] * 3


def test_processes_are_told_by_role_and_tag_not_host_or_pid():
    row = {"task": "billing-sweep", "process": "engine-box1-4242-7f3a", "role": "engine",
           "host": "box1", "pid": 4242, "status": "green", "rounds": 3}
    shown = public_health({
        "background": {"status": "green", "tasks": {}, "deployment": {"error": None, "tasks": [
            row, {**row, "task": "reconciliation"},
            {**row, "process": "engine-box2-4242-7f3a", "host": "box2"}]}},
        "process": {"status": "green", "role": "engine", "pid": 4242, "niceness": 10,
                    "niceness_setting": 10, "name": "engine-box1-4242-7f3a"}})
    rows = shown["background"]["deployment"]["tasks"]
    assert all(set(r) == {"task", "process", "role", "status", "rounds"} for r in rows), rows
    one, same, other = (r["process"] for r in rows)
    assert one == same != other and one.startswith("engine-") and "box" not in one + other
    assert shown["process"] == {"status": "green", "role": "engine", "niceness": 10,
                                "niceness_setting": 10, "name": one}  # finds its own rows
