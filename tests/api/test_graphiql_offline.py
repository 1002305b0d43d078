"""GraphiQL with no internet: the page a browser gets on GET /graphql names no other host,
every script and stylesheet it loads is served by us with the bytes the npm packages pinned
in api/static/graphiql/README.md hold, and a clean install ships them."""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from pathlib import Path

import api

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
API_DIR = Path(api.__file__).parent
ASSET = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="(sha384-[^"]+)"')


def graphiql_page(server) -> str:
    response = server.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_the_graphiql_page_names_no_host_but_the_server(server):
    page = graphiql_page(server)
    assert "GraphiQL.createFetcher" in page  # it is GraphiQL, not some other page
    assert "subscriptionUrl" in page  # subscriptions over the same server's websocket
    assert re.findall(r"(?:https?:)?//[\w.-]+", page) == []  # no absolute or protocol-relative
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url == "data:," or url.startswith("/graphiql-assets/"), url


def test_every_asset_the_page_loads_is_served_with_its_pinned_bytes(server):
    assets = ASSET.findall(graphiql_page(server))
    names = {url.rsplit("/", 1)[1] for url, _ in assets}
    assert names == {"react.production.min.js", "react-dom.production.min.js",
                     "js.cookie.min.js", "graphiql.min.js", "graphiql.min.css",
                     "graphiql-plugin-explorer.umd.js", "graphiql-plugin-explorer.css"}
    for url, integrity in assets:
        response = server.client.get(url)
        assert response.status_code == 200, url
        kind = "text/css" if url.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"], url
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert f"sha384-{digest}" == integrity, f"{url} is not the pinned npm file"


def test_the_licences_and_provenance_are_served_beside_the_assets(server):
    readme = server.client.get("/graphiql-assets/README.md").text
    for package, version in [("graphiql", "3.8.3"), ("@graphiql/plugin-explorer", "1.0.2"),
                             ("react", "18.2.0"), ("react-dom", "18.2.0"),
                             ("js-cookie", "3.0.5")]:
        assert re.search(rf"\| {re.escape(package)} \| {version} \| `sha512-", readme), package
        name = package.rsplit("/", 1)[-1].replace("plugin-", "graphiql-plugin-")
        licence = server.client.get(f"/graphiql-assets/licenses/{name}.LICENSE")
        assert licence.status_code == 200 and "MIT License" in licence.text, name


def test_a_graphql_get_query_is_still_answered_as_json(server):
    response = server.client.get("/graphql", params={"query": "{ __typename }"},
                                 headers={"accept": "application/json"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_package_data_ships_every_vendored_file():
    pyproject = tomllib.loads((API_DIR.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["api"]
    files = [p.relative_to(API_DIR) for p in (API_DIR / "static").rglob("*") if p.is_file()]
    assert len(files) >= 13
    for path in files:
        assert any(path.match(pattern) and len(path.parts) == len(Path(pattern).parts)
                   for pattern in patterns), f"{path} would be missing from a clean install"
