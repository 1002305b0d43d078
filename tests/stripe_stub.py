"""A local Stripe for tests: a real HTTP server on 127.0.0.1 speaking Stripe's REST format
(form-encoded requests with Bearer keys, JSON objects back, Stripe's error envelope), its
answers built from Stripe's own example objects (``tests/data/stripe/openapi-fixtures.json``)
with the ids and the fields each request set. The official ``stripe`` library talks to it
through ``TRADETAPE_STRIPE_API_BASE``. It also signs webhook bodies as Stripe does.

Every request is kept (``requests``), so tests assert what the library asked. A slow Stripe:
``delay`` seconds before each answer (``released.set()`` ends the waits at once; ``holding``
counts the requests waiting). A Stripe in an outage: ``outage = 500`` (or 503, 429) answers
every request so until set back to None; ``stop()`` then ``start(port)`` closes the port and
opens it again at the same address.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

DATA = Path(__file__).parent / "data" / "stripe"
API_KEY = "sk_test_tradetape_stub"
WEBHOOK_SECRET = "whsec_tradetape_test_secret"


def fixtures() -> dict[str, Any]:
    return json.loads((DATA / "openapi-fixtures.json").read_text())["resources"]


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``payload``."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) read back into objects and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


class StripeStub:
    def __init__(self) -> None:
        self.fixtures = fixtures()
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        # path -> Stripe's error message: answered 400 there, as Stripe refuses a request
        self.refusals: dict[str, str] = {}
        self.outage: int | None = None  # every request answered with this status (5xx, 429)
        self.delay = 0.0  # seconds each answer waits (a slow Stripe), or until released
        self.released = threading.Event()
        self.holding = 0  # requests waiting now
        self._holding_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> StripeStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stub._serve(self)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode()
        path, _, query = handler.path.partition("?")
        params = nested(parse_qsl(body or query, keep_blank_values=True))
        self.requests.append((handler.command, path, params))
        if self.delay:
            self._hold()
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            status, answer = 401, _error("invalid_request_error", "Invalid API Key provided")
        elif self.outage is not None:
            status, answer = self.outage, _error("api_error", "Stripe is having trouble")
        elif path in self.refusals:
            status, answer = 400, _error("invalid_request_error", self.refusals[path])
        else:
            status, answer = self.answer(handler.command, path, params)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_stub{next(self._ids)}")
        handler.end_headers()
        handler.wfile.write(data)

    def _hold(self) -> None:
        with self._holding_lock:
            self.holding += 1
        try:
            self.released.wait(self.delay)
        finally:
            with self._holding_lock:
                self.holding -= 1

    # --- resources ------------------------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict]:
        routes = {"/v1/customers": ("customer", "cus"),
                  "/v1/checkout/sessions": ("checkout.session", "cs_test"),
                  "/v1/billing_portal/sessions": ("billing_portal.session", "bps"),
                  "/v1/refunds": ("refund", "re"),
                  "/v1/payment_intents": ("payment_intent", "pi")}
        if method == "POST" and path in routes:
            resource, prefix = routes[path]
            return 200, self._create(resource, prefix, params)
        if path == "/v1/invoices" and method == "GET":
            return 200, self._invoices(params)
        if path.startswith("/v1/invoices/") and path.endswith("/pay") and method == "POST":
            return self._pay(path.split("/")[3], params)
        if path.startswith("/v1/subscriptions/") and method == "POST":
            sub_id = path.rsplit("/", 1)[1]
            sub = self.objects.get(sub_id) or {**copy.deepcopy(self.fixtures["subscription"]),
                                               "id": sub_id}
            sub.update({k: _typed(v) for k, v in params.items()})
            self.objects[sub_id] = sub
            return 200, sub
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({path})")

    def holds(self, obj: dict[str, Any]) -> None:
        """Stripe holds ``obj`` (an invoice of a webhook event, say) as it was sent."""
        self.objects[obj["id"]] = copy.deepcopy(obj)

    def _invoices(self, params: dict[str, Any]) -> dict:
        """``GET /v1/invoices`` filtered by ``subscription`` and ``status``, as a list."""
        found = [o for o in self.objects.values() if o.get("object") == "invoice"
                 and all(_invoice_field(o, k) == params[k] for k in ("subscription", "status")
                         if k in params)]
        return {"object": "list", "url": "/v1/invoices", "has_more": False, "data": found}

    def _pay(self, invoice_id: str, params: dict[str, Any]) -> tuple[int, dict]:
        """``POST /v1/invoices/{id}/pay``; only ``paid_out_of_band`` is modelled (no charge)."""
        invoice = self.objects.get(invoice_id)
        if invoice is None or invoice.get("object") != "invoice":
            return 404, _error("invalid_request_error", f"No such invoice: '{invoice_id}'")
        if invoice.get("status") != "open":
            return 400, _error("invalid_request_error", "Invoice is already paid")
        if params.get("paid_out_of_band") != "true":
            return 400, _error("invalid_request_error", "the stub charges no card")
        invoice.update(status="paid", paid_out_of_band=True, amount_remaining=0,
                       amount_paid=invoice.get("amount_due", 0))
        return 200, invoice

    def _create(self, resource: str, prefix: str, params: dict[str, Any]) -> dict:
        obj = copy.deepcopy(self.fixtures[resource])
        obj["id"] = f"{prefix}_stub{next(self._ids):06d}"
        for key, value in params.items():
            if key in obj or key in ("metadata", "client_reference_id", "customer"):
                obj[key] = _typed(value)
        if resource == "checkout.session":
            obj["url"] = f"https://checkout.stripe.com/c/pay/{obj['id']}"
            obj["status"], obj["payment_status"] = "open", "unpaid"
        elif resource == "billing_portal.session":
            obj["url"] = f"https://billing.stripe.com/p/session/{obj['id']}"
        elif resource == "payment_intent":
            self._payment_intent(obj, params)
        self.objects[obj["id"]] = obj
        return obj

    @staticmethod
    def _payment_intent(obj: dict, params: dict[str, Any]) -> None:
        obj["amount"] = int(params["amount"])
        obj["payment_method_types"] = params.get("payment_method_types") or ["card"]
        obj["client_secret"] = f"{obj['id']}_secret_stub"
        obj["status"] = "requires_payment_method"
        obj["last_payment_error"] = None
        obj["next_action"] = None
        if obj["payment_method_types"] == ["promptpay"] and params.get("confirm") == "true":
            # The shape Stripe documents for a confirmed PromptPay PaymentIntent.
            obj["status"] = "requires_action"
            obj["next_action"] = {"type": "promptpay_display_qr_code",
                                  "promptpay_display_qr_code": {
                                      "data": f"00020101021230{obj['id']}",
                                      "expires_at": 1_900_000_000,
                                      "hosted_instructions_url":
                                          f"https://payments.stripe.com/qr/instructions/{obj['id']}",
                                      "image_url_png":
                                          f"https://qr.stripe.com/{obj['id']}.png",
                                      "image_url_svg":
                                          f"https://qr.stripe.com/{obj['id']}.svg"}}


def _invoice_field(invoice: dict, key: str) -> Any:
    """An invoice's ``status``, or its subscription in either API shape."""
    if key != "subscription" or isinstance(invoice.get("subscription"), str):
        return invoice.get(key)
    return (((invoice.get("parent") or {}).get("subscription_details") or {})
            .get("subscription"))


def _typed(value: Any) -> Any:
    if value == "true":
        return True
    if value == "false":
        return False
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _error(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}
