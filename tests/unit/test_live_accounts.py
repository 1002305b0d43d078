"""Live exchange accounts in the domain: name, sandbox flag, sealed keys, checks, removal;
and the rule that decides whether a bot may trade on one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.exchange_accounts import trading_refusal, view_of
from domain.accounts import AccountKind, ExchangeAccount, SealedKeys
from domain.errors import DomainError
from tests.stubs import a_cause, a_live_account, a_paper_account, replay, state_of


def test_connected_account_keeps_name_sandbox_and_sealed_keys_through_replay() -> None:
    account = a_live_account(sandbox=True, name="my testnet")
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "Connected"]
    again = replay(events)
    assert (again.name, again.sandbox, again.kind) == ("my testnet", True, AccountKind.LIVE)
    assert again.sealed_keys == SealedKeys("v1.sealed-key", "v1.sealed-secret", None)
    assert state_of(again) == state_of(account)


def test_a_paper_account_cannot_get_keys() -> None:
    with pytest.raises(DomainError) as refused:
        a_paper_account().connect(a_cause(), name="x", sandbox=True,
                                  keys=SealedKeys("a", "b"))
    assert refused.value.code == "ACCOUNT_NOT_LIVE"


def test_keys_are_given_once() -> None:
    account = a_live_account()
    with pytest.raises(DomainError) as refused:
        account.connect(a_cause(), name="again", sandbox=True, keys=SealedKeys("a", "b"))
    assert refused.value.code == "ACCOUNT_ALREADY_CONNECTED"


@pytest.mark.parametrize(("name", "code"), [("", "INVALID_ACCOUNT_NAME"),
                                            ("   ", "INVALID_ACCOUNT_NAME"),
                                            ("x" * 65, "TEXT_TOO_LONG"),
                                            ("a\u202eb", "TEXT_CONTROL_CHARACTER")])
def test_account_names_are_plain_short_text(name: str, code: str) -> None:
    account = ExchangeAccount.open(a_live_account().id, a_cause(), owner_id="u",
                                   kind=AccountKind.LIVE, exchange="binance",
                                   quote_asset="USDT")
    with pytest.raises(DomainError) as refused:
        account.connect(a_cause(), name=name, sandbox=True, keys=SealedKeys("a", "b"))
    assert refused.value.code == code


def test_checks_set_status_and_only_a_good_one_moves_the_last_sync() -> None:
    account = a_live_account()
    assert view_of(account).status == "not_checked"
    account.record_check(a_cause(1), "ok")
    account.observe_balance(a_cause(1), "usdt", Decimal("10.50"), Decimal("0"))
    account.record_check(a_cause(5), "auth_failed", "EXCHANGE_AUTH_FAILED")
    view = view_of(replay(account.collect_events()))
    assert view.status == "auth_failed"
    assert view.checked_at == a_cause(5).at
    assert view.last_sync_at == a_cause(1).at
    assert view.balances["USDT"].free == Decimal("10.50")


def test_a_removed_account_cannot_be_removed_or_checked_again() -> None:
    account = a_live_account()
    account.remove(a_cause(2))
    for command in (lambda: account.remove(a_cause(3)),
                    lambda: account.record_check(a_cause(3), "ok")):
        with pytest.raises(DomainError) as refused:
            command()
        assert refused.value.code == "ACCOUNT_REMOVED"
    assert replay(account.collect_events()).removed


def test_the_paper_account_cannot_be_removed() -> None:
    with pytest.raises(DomainError) as refused:
        a_paper_account().remove(a_cause())
    assert refused.value.code == "ACCOUNT_NOT_LIVE"


def test_sandbox_accounts_trade_without_the_live_switch() -> None:
    assert trading_refusal(a_live_account(sandbox=True), allow_live=False) is None


def test_a_real_money_account_needs_the_live_switch() -> None:
    live = a_live_account(sandbox=False, name="real money")
    refusal = trading_refusal(live, allow_live=False)
    assert refusal is not None and refusal.code == "LIVE_TRADING_DISABLED"
    assert "TRADETAPE_ALLOW_LIVE=1" in refusal.message
    assert trading_refusal(live, allow_live=True) is None


def test_no_bot_trades_on_a_removed_account_even_where_live_is_allowed() -> None:
    account = a_live_account(sandbox=True)
    account.remove(a_cause(1))
    refusal = trading_refusal(account, allow_live=True)
    assert refusal is not None and refusal.code == "ACCOUNT_REMOVED"


def test_paper_accounts_always_trade() -> None:
    assert trading_refusal(a_paper_account(), allow_live=False) is None


@pytest.mark.parametrize(("value", "allowed"), [(None, False), ("", False), ("0", False),
                                                ("1", True), ("true", True), ("yes", True)])
def test_the_server_allows_live_trading_only_when_told(value, allowed) -> None:
    from application.server_settings import ServerSettings

    env = {} if value is None else {"TRADETAPE_ALLOW_LIVE": value}
    assert ServerSettings.from_environ(env).allow_live is allowed


def test_a_typo_in_the_live_switch_stops_the_server_from_starting() -> None:
    from application.server_settings import ServerSettings

    with pytest.raises(DomainError) as refused:
        ServerSettings.from_environ({"TRADETAPE_ALLOW_LIVE": "yse"})
    assert (refused.value.code, refused.value.field) == ("INVALID_SETTING",
                                                         "TRADETAPE_ALLOW_LIVE")
