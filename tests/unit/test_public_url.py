"""Where links in mails point: TRADETAPE_PUBLIC_URL, else the address the server listens on
(a wildcard address replaced by loopback, an IPv6 address in brackets)."""

from __future__ import annotations

import pytest

from application.identity_settings import IdentitySettings, listening_url


@pytest.mark.parametrize("host, port, url", [
    ("127.0.0.1", 8100, "http://127.0.0.1:8100"),
    ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
    ("::", 9000, "http://[::1]:9000"),
    ("::1", 8001, "http://[::1]:8001"),
    ("trade.example.com", 80, "http://trade.example.com:80"),
])
def test_links_lead_to_the_address_the_server_listens_on(host, port, url):
    assert listening_url(host, port) == url


def test_the_public_url_setting_loses_its_trailing_slash():
    settings = IdentitySettings.from_environ({"TRADETAPE_PUBLIC_URL": "https://t.example/"})

    assert settings.public_url == "https://t.example"


@pytest.mark.parametrize("text", ["trade.example.com", "ftp://x.example", "https://"])
def test_a_public_url_that_is_no_http_url_is_refused_by_name(text):
    from domain.errors import DomainError

    with pytest.raises(DomainError) as refused:
        IdentitySettings.from_environ({"TRADETAPE_PUBLIC_URL": text})

    assert refused.value.code == "INVALID_PUBLIC_URL"
