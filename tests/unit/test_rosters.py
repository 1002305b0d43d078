"""An owner's bot roster: the limit on bots that are not stopped, and their unique names."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.actors import operator
from domain.errors import DomainError
from domain.rosters import BotRoster, roster_id
from tests.stubs import OWNER_ID, a_cause, replay

BOT_A = UUID("00000000-0000-0000-0000-00000000000a")
BOT_B = UUID("00000000-0000-0000-0000-00000000000b")
BOT_C = UUID("00000000-0000-0000-0000-00000000000c")


def a_roster(**bots: str) -> BotRoster:
    return BotRoster.open(OWNER_ID, a_cause(), dict(bots))


def codes(problems: list[DomainError]) -> list[str]:
    return [p.code for p in problems]


def test_every_process_finds_an_owners_roster_under_the_same_id():
    assert roster_id("alice") == roster_id("alice") != roster_id("bob")
    assert a_roster().id == roster_id(OWNER_ID)


def test_a_name_is_taken_whatever_its_case_and_surrounding_spaces():
    roster = a_roster(**{str(BOT_A): "Scalper"})
    assert codes(roster.problems(" sCALPER ", 10)) == ["BOT_NAME_DUPLICATE"]
    assert roster.problems("Scalper 2", 10) == []
    with pytest.raises(DomainError) as refused:
        roster.enrol(a_cause(1), BOT_B, "scalper", 10)
    assert refused.value.code == "BOT_NAME_DUPLICATE" and refused.value.field == "name"


def test_the_limit_counts_the_bots_held_and_both_problems_are_told():
    roster = a_roster()
    roster.enrol(a_cause(1), BOT_A, "one", 2)
    roster.enrol(a_cause(2), BOT_B, "two", 2)
    assert codes(roster.problems("three", 2)) == ["BOT_LIMIT_REACHED"]
    assert codes(roster.problems("ONE", 2)) == ["BOT_LIMIT_REACHED", "BOT_NAME_DUPLICATE"]
    assert "the limit is 2" in roster.problems("three", 2)[0].message


def test_releasing_a_bot_frees_its_slot_and_its_name():
    roster = a_roster()
    roster.enrol(a_cause(1), BOT_A, " one ", 1)
    roster.release(a_cause(2, actor=operator("ops")), BOT_A)
    roster.release(a_cause(3), BOT_A)  # not held any more: nothing recorded
    roster.enrol(a_cause(4), BOT_C, "One", 1)
    events = roster.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "BotEnrolled", "BotReleased",
                                                   "BotEnrolled"]
    assert events[1].name == "one"  # stored as it is shown: trimmed
    assert events[2].actor == "operator:ops"
    assert replay(events).bots == {str(BOT_C): "One"}


def test_a_roster_opened_on_an_older_store_holds_the_bots_it_was_given():
    roster = a_roster(**{str(BOT_A): "old one", str(BOT_B): "old two"})
    assert codes(roster.problems("third", 2)) == ["BOT_LIMIT_REACHED"]
    assert replay(roster.collect_events()).bots == {str(BOT_A): "old one",
                                                    str(BOT_B): "old two"}


@pytest.mark.parametrize("name", ["", "  ", "two words", "tab\there", "x" * 65, "nul\x00"])
def test_an_operator_name_is_one_printable_word(name):
    with pytest.raises(DomainError) as refused:
        operator(name)
    assert refused.value.code == "INVALID_ACTOR"
