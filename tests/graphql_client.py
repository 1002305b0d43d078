"""Posting GraphQL the way a front end does, shared by the in-process API tests and the
end-to-end tests (anything with an httpx-like ``client`` whose base URL is the server)."""

from __future__ import annotations

from typing import Any


class GraphQLErrors(AssertionError):
    pass


class GraphQLCalls:
    client: Any

    def post(self, query: str, variables: dict[str, Any] | None = None,
             token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post("/graphql", json={"query": query,
                                                      "variables": variables or {}},
                                    headers=headers)
        assert response.status_code in (200, 400), response.text
        return response.json()

    def gql(self, query: str, variables: dict[str, Any] | None = None,
            token: str | None = None) -> dict[str, Any]:
        """The data of an operation that must succeed."""
        body = self.post(query, variables, token)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        return body["data"]

    def subscription(self, query: str, variables: dict[str, Any], token: str
                     ) -> list[dict[str, Any]]:
        """Every data message of a subscription until it completes (a TestClient's
        websocket, graphql-transport-ws)."""
        seen = []
        with self.client.websocket_connect("/graphql",
                                           subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init",
                          "payload": {"Authorization": f"Bearer {token}"}})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json({"id": "1", "type": "subscribe", "payload": {
                "query": query, "variables": variables}})
            while (message := ws.receive_json())["type"] != "complete":
                assert message["type"] == "next", message
                seen.append(message["payload"])
        return seen
