"""TRADETAPE_TRUSTED_PROXIES: the peers whose X-Forwarded-For the server believes."""

from __future__ import annotations

import pytest

from application.trusted_proxies import trusted_proxies
from domain.errors import DomainError


def test_no_peer_is_trusted_unless_listed() -> None:
    assert trusted_proxies({}) == ()
    assert trusted_proxies({"TRADETAPE_TRUSTED_PROXIES": " "}) == ()


def test_addresses_and_networks_are_listed_by_commas() -> None:
    listed = trusted_proxies({"TRADETAPE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})

    assert listed == ("127.0.0.1", "10.0.0.0/8", "::1")


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "1.2.3.4; rm"])
def test_anything_else_is_refused_with_a_named_code(value: str) -> None:
    with pytest.raises(DomainError) as caught:
        trusted_proxies({"TRADETAPE_TRUSTED_PROXIES": value})

    assert (caught.value.code, caught.value.field) == ("INVALID_SETTING",
                                                       "TRADETAPE_TRUSTED_PROXIES")
