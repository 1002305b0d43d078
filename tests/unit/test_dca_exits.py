"""Exit options of a DCA configuration (issue 12): each invalid combination is refused with
its own named rule; configurations recorded before the options existed are written, and so
replayed, byte for byte as they were."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from application.transcodings import DcaConfigAsDict
from domain.dca import DcaConfig, TakeProfitStep
from domain.errors import InvalidConfigError
from tests.stubs import a_config_input

STEPS = [{"pct": "1", "volume_pct": "50"}, {"pct": "2", "volume_pct": "50"}]


def stepped(**overrides: object) -> dict[str, object]:
    data = a_config_input(take_profit_steps=STEPS)
    del data["take_profit_pct"]
    return {k: v for k, v in {**data, **overrides}.items() if v is not None}


def refusals(data: dict[str, object]) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidConfigError) as caught:
        DcaConfig.from_mapping(data)
    return [(v.code, v.field) for v in caught.value.violations]


def test_steps_replace_the_take_profit_and_parse_exactly():
    config = DcaConfig.from_mapping(stepped())
    assert config.take_profit_steps == (TakeProfitStep(D(1), D(50)), TakeProfitStep(D(2), D(50)))
    assert config.take_profit_pct == D(1)  # the first step's, what the deal shows as target
    again = DcaConfig.from_mapping(json.loads(json.dumps(config.to_mapping())))
    assert again == config


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (stepped(take_profit_steps=[]), []),  # no steps: the take profit is required
        (stepped(take_profit_steps=[{"pct": "1", "volume_pct": "20"}] * 5),
         [("TOO_MANY_STEPS", "take_profit_steps")]),
        (stepped(take_profit_steps=[{"pct": "2", "volume_pct": "50"},
                                    {"pct": "1", "volume_pct": "50"}]),
         [("STEPS_NOT_INCREASING", "take_profit_steps")]),
        (stepped(take_profit_steps=[{"pct": "1", "volume_pct": "50"},
                                    {"pct": "2", "volume_pct": "49.9"}]),
         [("STEPS_VOLUME_NOT_100", "take_profit_steps")]),
        (stepped(take_profit_steps=[{"pct": "0", "volume_pct": "100"}]),
         [("NOT_POSITIVE", "take_profit_steps[1].pct")]),
        (stepped(take_profit_steps=[{"pct": "1", "volume_pct": "0"},
                                    {"pct": "2", "volume_pct": "100"}]),
         [("NOT_POSITIVE", "take_profit_steps[1].volume_pct")]),
        (stepped(take_profit_steps=[{"pct": "1"}]), [("INVALID_STEPS", "take_profit_steps")]),
        (stepped(take_profit_steps="1%"), [("INVALID_STEPS", "take_profit_steps")]),
        (stepped(trailing_take_profit_pct="0.5", take_profit_pct="3"),
         [("STEPS_WITH_TRAILING_TAKE_PROFIT", "take_profit_steps"),
          ("STEPS_REPLACE_TAKE_PROFIT", "take_profit_pct")]),
        (a_config_input(stop_loss_to_breakeven=True),
         [("BREAKEVEN_NEEDS_STEPS", "stop_loss_to_breakeven")]),
        (a_config_input(trailing_stop_loss=True, stop_loss_pct=None),
         [("TRAILING_STOP_NEEDS_STOP_LOSS", "trailing_stop_loss")]),
        (a_config_input(stop_loss_activation_pct="1", stop_loss_pct="2"),
         [("ACTIVATION_NEEDS_TRAILING_STOP", "stop_loss_activation_pct")]),
        (a_config_input(stop_loss_activation_pct="-1", stop_loss_pct="2",
                        trailing_stop_loss=True),
         [("NEGATIVE", "stop_loss_activation_pct")]),
        (a_config_input(trailing_stop_loss="yes", stop_loss_pct="2"),
         [("INVALID_BOOLEAN", "trailing_stop_loss")]),
    ],
)
def test_each_broken_exit_rule_is_named(data, expected):
    if not expected:
        assert ("MISSING_FIELD", "take_profit_pct") in refusals(data)
        return
    assert refusals(data) == expected


@pytest.mark.parametrize("extra", [
    {"stop_loss_to_breakeven": True},
    {"stop_loss_pct": "2", "trailing_stop_loss": True},
    {"stop_loss_pct": "2", "trailing_stop_loss": True, "stop_loss_activation_pct": "0",
     "stop_loss_to_breakeven": True},
])
def test_the_allowed_combinations_are_accepted(extra):
    assert DcaConfig.from_mapping(stepped(**extra)).take_profit_steps


def test_a_configuration_recorded_before_the_exit_options_is_written_as_it_was():
    transcoding = DcaConfigAsDict()
    old = DcaConfig.from_mapping(a_config_input(trailing_take_profit_pct="0.5"))
    recorded = transcoding.encode(old)
    # exactly the fields recorded before issue 12's exit options
    assert list(recorded) == ["pair", "base_order_quote", "safety_order_quote",
                              "max_safety_orders", "price_deviation_pct",
                              "safety_volume_scale", "safety_step_scale", "take_profit_pct",
                              "stop_loss_pct", "trailing_take_profit_pct", "cooldown_seconds"]
    assert transcoding.decode(recorded) == old


def test_a_configuration_with_exit_options_is_restored_from_what_it_recorded():
    transcoding = DcaConfigAsDict()
    config = DcaConfig.from_mapping(stepped(stop_loss_pct="2", trailing_stop_loss=True,
                                            stop_loss_activation_pct="1.5",
                                            stop_loss_to_breakeven=True))
    recorded = transcoding.encode(config)
    assert recorded["take_profit_steps"] == [{"pct": D(1), "volume_pct": D(50)},
                                             {"pct": D(2), "volume_pct": D(50)}]
    assert transcoding.decode(recorded) == config


def test_the_readme_example_with_every_exit_option_is_a_valid_configuration():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Bot configuration (`bot.json`)")[1].split("###")[0]
    example = json.loads(section.split("```json")[1].split("```")[0])
    config = DcaConfig.from_mapping(example)
    assert len(config.take_profit_steps) == 3
    assert config.stop_loss_to_breakeven and config.trailing_stop_loss
