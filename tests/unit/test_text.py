"""The one rule for text people give (domain/text.py), applied by the commands that record
it, and the escaping that lets a view store any text the log holds (projections/tables.py)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.accounts import AccountKind, ExchangeAccount
from domain.bots import Bot
from domain.credentials import normalize_email, password_violations
from domain.dca import DcaConfig
from domain.errors import DomainError, InvalidConfigError
from domain.recording import Cause
from domain.system import TradingSwitch
from domain.text import CONTROL, INVALID, TOO_LONG, checked_text, text_problem
from projections.tables import ESCAPE, storable, table, unstored
from tests.projection_stubs import CONFIG

CAUSE = Cause(datetime(2026, 1, 1, tzinfo=UTC), "alice", "c-1")


@given(st.text(), st.characters(categories=["Cc"]), st.text())
def test_any_control_character_is_refused_naming_the_field(before, control, after):
    with pytest.raises(DomainError) as refused:
        checked_text(before + control + after, "name")
    assert refused.value.code == CONTROL and refused.value.field == "name"


@given(st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])))
def test_text_without_refused_characters_passes_unchanged(text):
    refused = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
    noncharacter = any(0xFDD0 <= ord(c) <= 0xFDEF or ord(c) & 0xFFFE == 0xFFFE
                       for c in text)
    if noncharacter or any(ord(c) in refused for c in text):
        assert text_problem(text, "f") is not None
    else:
        assert checked_text(text, "f") is text


@pytest.mark.parametrize(("text", "code"), [
    ("a\x00b", CONTROL), ("line\nbreak", CONTROL), ("\x9b", CONTROL), ("para\u2029", CONTROL),
    ("evil\u202egnp.exe", CONTROL), ("iso\u2066late", CONTROL), ("\ud800", INVALID),
    ("\ufdd0", INVALID), ("\U0010ffff", INVALID), ("\ufffe", INVALID),
])
def test_refused_characters_have_their_code(text, code):
    assert text_problem(text, "f").code == code


@pytest.mark.parametrize("text", ["👩\u200d💻", "می\u200cخواهم", "soft\u00adhyphen"])
def test_joiners_and_other_format_characters_are_text(text):
    assert any(unicodedata.category(c) == "Cf" for c in text)
    assert checked_text(text, "f") == text


def test_a_field_longer_than_its_bound_is_refused():
    assert checked_text("x" * 100, "display_name", max_chars=100) == "x" * 100
    with pytest.raises(DomainError) as refused:
        checked_text("x" * 101, "display_name", max_chars=100)
    assert (refused.value.code, refused.value.field) == (TOO_LONG, "display_name")


def test_commands_refuse_control_characters_before_recording_anything():
    account = str(uuid.uuid4())
    with pytest.raises(DomainError, match="TEXT_CONTROL_CHARACTER \\(name\\)"):
        Bot.create(uuid.uuid4(), CAUSE, name="a\x00b", owner_id="alice",
                   exchange_account_id=account, config=CONFIG)
    with pytest.raises(DomainError) as refused:
        ExchangeAccount.open(uuid.uuid4(), CAUSE, owner_id="alice", kind=AccountKind.PAPER,
                             exchange="x" * 33, quote_asset="USDT")
    assert (refused.value.code, refused.value.field) == (TOO_LONG, "exchange")
    switch = TradingSwitch.install(CAUSE)
    with pytest.raises(DomainError, match="TEXT_CONTROL_CHARACTER \\(reason\\)"):
        switch.emergency_stop(CAUSE, "stop\x1b[2J")
    assert not switch.halted and len(switch.collect_events()) == 1  # only Installed
    with pytest.raises(DomainError, match="TEXT_CONTROL_CHARACTER \\(email\\)"):
        normalize_email("a\x00b@example.com")
    assert [v.code for v in password_violations("Correct-Horse-9\ud800")] == [INVALID]


def test_a_pair_with_a_control_character_is_a_config_violation():
    with pytest.raises(InvalidConfigError) as refused:
        DcaConfig.from_mapping({**CONFIG.to_mapping(), "pair": "BTC/US\x00DT"})
    assert [(v.code, v.field) for v in refused.value.violations] == [(CONTROL, "pair")]


@given(st.text(alphabet=st.characters(codec=None)))
def test_storable_text_has_no_nul_or_surrogate_and_reads_back_as_it_was(text):
    stored = storable(text)
    assert "\x00" not in stored
    stored.encode("utf-8")  # a lone surrogate would raise
    assert unstored(stored) == text


def test_rows_are_stored_escaped_and_read_back_unescaped():
    names = table("t_names", key=("id",), id="text", name="text", n="int")
    row = {"id": "k\x00", "name": f"a\x00b{ESCAPE}c", "n": 1}
    values = names.to_db(row)
    assert values == ("k␀0000", "a␀0000b␀2400c", 1)
    assert names.from_db(values) == row
    assert names.storable_key(("k\x00",)) == ("k␀0000",)
    plain = ("id", "name", 2)
    assert names.storable(plain) is plain  # the common case allocates nothing


ROWS = table("t_rows", key=("id",), id="text", note="text", n="int", amount="money",
             fee="money")


@given(st.fixed_dictionaries({
    "id": st.text(alphabet=st.characters(codec=None), min_size=1),
    "note": st.none() | st.text(alphabet=st.characters(codec=None)),
    "n": st.none() | st.integers(),
    "amount": st.none() | st.decimals(allow_nan=False, allow_infinity=False),
    "fee": st.none() | st.decimals(allow_nan=False, allow_infinity=False)}))
def test_any_row_reads_back_as_it_was_written(row):
    """Every kind of column, None included: a row written and read back is the same row,
    each money value a Decimal of the same digits (its exponent too) and every text its own."""
    again = ROWS.from_db(ROWS.to_db(row))
    assert again == row
    for name in ("amount", "fee"):
        assert type(again[name]) is type(row[name])
        if row[name] is not None:
            assert again[name].as_tuple() == row[name].as_tuple()
    with pytest.raises(ValueError):  # a row of another shape is refused, not misread
        ROWS.from_db(ROWS.to_db(row)[:-1])


KINDS = st.lists(st.sampled_from(["text", "int", "money"]), min_size=1, max_size=6)
VALUE_OF = {
    "text": st.none() | st.text(alphabet=st.characters(codec=None)) | st.sampled_from(
        ["plain", "", "\x00", ESCAPE, "é", "\ud800"]),
    "int": st.none() | st.integers(),
    "money": st.none() | st.decimals(allow_nan=False, allow_infinity=False)}


def documented_form(kind, value):
    """What the module's docstring says a value is stored as."""
    if value is None:
        return None
    return {"text": storable, "money": str, "int": lambda v: v}[kind](value)


@given(KINDS.flatmap(lambda kinds: st.tuples(
    st.just(kinds), st.tuples(*(VALUE_OF[kind] for kind in kinds)))))
def test_any_table_shape_writes_the_documented_values_and_reads_them_back(shape):
    """Tables of one to six columns of any kinds (one column, no text, no money...): the
    values written are each column's stored form, and read back give the row again."""
    kinds, values = shape
    columns = {f"c{i}": kind for i, kind in enumerate(kinds)}
    shaped = table("t_shape", key=("c0",), **columns)
    row = dict(zip(columns, values, strict=True))
    written = shaped.to_db(row)
    assert written == tuple(documented_form(k, v) for k, v in zip(kinds, values, strict=True))
    assert shaped.from_db(written) == row
    as_given = tuple(str(v) if k == "money" and v is not None else v
                     for k, v in zip(kinds, values, strict=True))
    assert shaped.storable(as_given) == written  # database values given as they are
    if written == as_given:
        assert shaped.storable(as_given) is as_given
