"""The dashboard at /: the built page, its assets from the server itself, and headers that
keep scripts to our own origin."""

from __future__ import annotations

import re


def test_the_dashboard_is_served_at_the_root_with_its_assets(server):
    response = server.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<div id="root">' in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    scripts = re.findall(r'src="(/dashboard/assets/[^"]+\.js)"', response.text)
    styles = re.findall(r'href="(/dashboard/assets/[^"]+\.css)"', response.text)
    assert scripts and styles
    for url in scripts + styles:
        asset = server.client.get(url)
        assert asset.status_code == 200, url
        assert ("javascript" if url.endswith(".js") else "text/css") in \
            asset.headers["content-type"]
    assert "lightweight-charts" in server.client.get(scripts[0]).text  # the charts are bundled


def test_an_unknown_asset_is_a_404_not_the_page(server):
    assert server.client.get("/dashboard/assets/nothing.js").status_code == 404
