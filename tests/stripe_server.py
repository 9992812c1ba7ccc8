"""A local HTTP server that speaks the part of Stripe's API that `StripeGateway` calls.

Stripe cannot be reached from the test machines, so the real `stripe` library is pointed
at this server (`StripeSettings.api_base`). It takes requests as Stripe does (form
encoded, `metadata[key]=value`, bearer API key), answers with JSON objects shaped like
Stripe's, and keeps Stripe's rules that matter to us:

- Idempotency-Key: a key seen before gets the saved answer again and creates nothing;
  the same key with other parameters is an `idempotency_error`.
- An invoice is a draft until finalized; items go only on drafts, in its currency;
  invoice numbers are unique; finalizing assigns the due date from `days_until_due`.
- Only open or uncollectible invoices are voided. A credit note (of custom lines) goes on
  an open or paid invoice, never beyond what is left to credit; it first lowers what is
  left to pay (an open invoice it brings to 0 is paid), and the rest must be given as
  `credit_amount` (to the customer's balance, negative when in the customer's favour),
  `refund_amount` or `out_of_band_amount`.
- Credit notes are listed by invoice; reads (GET) take no idempotency key.

`fail_next(n)` makes the next n requests answer 500 without doing anything or saving the
key (an outage in front of the API: Stripe saves a key's answer only once the endpoint
runs); `lose_next(n)` carries them out but drops the connection before answering (a
timeout on the way back). `requests` records what was received, for assertions.
`pay` and `fail_payment` play the customer's side and return the event Stripe would send;
`signed_webhook` signs an event as Stripe signs webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_local"
WEBHOOK_SECRET = "whsec_local"
SECONDS_PER_DAY = 86_400
OK, FAIL, LOSE = "ok", "fail", "lose"  # the fates of upcoming requests
# How a credit note settles what exceeds the amount left to pay on its invoice.
SETTLEMENTS = ("credit_amount", "refund_amount", "out_of_band_amount")


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None


class StripeError(Exception):
    """An error answer: Stripe's HTTP status and error object."""

    def __init__(self, status: int, type_: str, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, "code": code}}


class FakeStripe:
    """Stripe's state (customers, invoices, items) and the handling of one request."""

    def __init__(self) -> None:
        self.url = ""  # set once the server listens
        self.customers: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.invoice_items: dict[str, dict] = {}
        self.credit_notes: dict[str, dict] = {}
        self.requests: list[ReceivedRequest] = []
        self._saved: dict[str, tuple[str, dict, int, dict]] = {}  # key → request, answer
        self._plan: list[str] = []  # what happens to the next requests: OK, FAIL or LOSE
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern, Callable[..., dict]]] = [
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("POST", re.compile(r"/v1/invoices"), self._create_invoice),
            ("POST", re.compile(r"/v1/invoiceitems"), self._create_invoice_item),
            ("POST", re.compile(r"/v1/invoices/(\w+)/finalize"), self._finalize),
            ("POST", re.compile(r"/v1/invoices/(\w+)/send"), self._send),
            ("POST", re.compile(r"/v1/invoices/(\w+)/void"), self._void),
            ("GET", re.compile(r"/v1/invoices/(\w+)"), self._retrieve_invoice),
            ("POST", re.compile(r"/v1/credit_notes"), self._create_credit_note),
            ("GET", re.compile(r"/v1/credit_notes"), self._list_credit_notes),
        ]

    def fail_next(self, count: int, *, after: int = 0) -> None:
        """Answer `count` requests, once `after` more went through, with 500, doing nothing."""
        with self._lock:
            self._plan = [OK] * after + [FAIL] * count

    def lose_next(self, count: int, *, after: int = 0) -> None:
        """Carry out `count` requests, once `after` more went through, but never answer."""
        with self._lock:
            self._plan = [OK] * after + [LOSE] * count

    def requests_to(self, method: str, path_pattern: str) -> list[ReceivedRequest]:
        """The requests received whose path matches `path_pattern` entirely."""
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # --- one request ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict] | None:
        """The status and JSON answer to a request; None when the answer is to be lost."""
        params = decode_form(body)
        key = headers.get("idempotency-key")
        with self._lock:
            self.requests.append(ReceivedRequest(method, path, params, key))
            fate = self._plan.pop(0) if self._plan else OK
            if fate == FAIL:
                return 500, StripeError(500, "api_error", "Injected failure.").body
            answer = self._answer(method, path, params, headers, key)
            return None if fate == LOSE else answer

    def _answer(
        self, method: str, path: str, params: dict, headers: dict[str, str], key: str | None
    ) -> tuple[int, dict]:
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, StripeError(401, "invalid_request_error", "Invalid API Key.").body
        if key is not None and key in self._saved:
            return self._replay(key, path, params)
        status, answer = self._route(method, path, params)
        if key is not None:  # a snapshot: later changes to the object are not replayed
            self._saved[key] = (path, params, status, json.loads(json.dumps(answer)))
        return status, answer

    def _replay(self, key: str, path: str, params: dict) -> tuple[int, dict]:
        saved_path, saved_params, status, answer = self._saved[key]
        if (saved_path, saved_params) != (path, params):
            return 400, StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
            ).body
        return status, answer

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                try:
                    return 200, handler(params, *match.groups())
                except StripeError as error:
                    return error.status, error.body
        return 404, StripeError(404, "invalid_request_error", f"Unrecognized URL {path}").body

    # --- endpoints -----------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_local{next(self._ids):06d}"

    def _create_customer(self, params: dict) -> dict:
        customer = {
            "id": self._new_id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "livemode": False,
            "name": params.get("name"),
            "email": params.get("email"),
            "address": params.get("address"),
            "preferred_locales": params.get("preferred_locales", []),
            "metadata": params.get("metadata", {}),
            "balance": 0,  # negative: credit in the customer's favour
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_invoice(self, params: dict) -> dict:
        if params.get("customer") not in self.customers:
            raise _missing("customer", params.get("customer"))
        if params.get("collection_method") == "send_invoice" and "days_until_due" not in params:
            raise _invalid("days_until_due is required for send_invoice invoices", "days_until_due")
        number = params.get("number")
        if number and any(i["number"] == number for i in self.invoices.values()):
            raise _invalid(f"An invoice with number {number} already exists", "number")
        invoice = {
            "id": self._new_id("in"),
            "object": "invoice",
            "created": int(time.time()),
            "livemode": False,
            "customer": params["customer"],
            "currency": params.get("currency"),
            "collection_method": params.get("collection_method", "charge_automatically"),
            "days_until_due": _integer(params.get("days_until_due")),
            "due_date": None,
            "auto_advance": params.get("auto_advance") == "true",
            "number": number,
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "status": "draft",
            "status_transitions": {"finalized_at": None, "paid_at": None},
            "subtotal": 0,
            "total": 0,
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "pre_payment_credit_notes_amount": 0,
            "post_payment_credit_notes_amount": 0,
            "lines": {"object": "list", "data": [], "has_more": False, "url": ""},
        }
        invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
        self.invoices[invoice["id"]] = invoice
        return invoice

    def _create_invoice_item(self, params: dict) -> dict:
        invoice = self.invoices.get(params.get("invoice", ""))
        if invoice is None:
            raise _missing("invoice", params.get("invoice"))
        if invoice["status"] != "draft":
            raise _invalid("You can only add invoice items to draft invoices.", "invoice")
        if params.get("customer") != invoice["customer"]:
            raise _invalid("The invoice belongs to another customer.", "customer")
        if params.get("currency") != invoice["currency"]:
            raise _invalid("The currency must match the invoice's currency.", "currency")
        if "amount" not in params:
            raise _invalid("Missing required param: amount.", "amount")
        item = {
            "id": self._new_id("ii"),
            "object": "invoiceitem",
            "livemode": False,
            "customer": params["customer"],
            "invoice": invoice["id"],
            "currency": params["currency"],
            "amount": _integer(params["amount"]),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
        }
        self.invoice_items[item["id"]] = item
        invoice["lines"]["data"].append(
            {"id": f"il_{item['id']}", "object": "line_item", "amount": item["amount"],
             "currency": item["currency"], "description": item["description"]}
        )  # fmt: skip
        total = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice.update(subtotal=total, total=total, amount_due=total, amount_remaining=total)
        return item

    def _finalize(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["status"] != "draft":
            raise _invalid(f"Invoice {invoice_id} is already finalized.", None)
        now = int(time.time())
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["days_until_due"] is not None:
            invoice["due_date"] = now + invoice["days_until_due"] * SECONDS_PER_DAY
        invoice["number"] = invoice["number"] or f"LOCAL-{len(self.invoices):04d}"
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.test/{invoice_id}"
        return invoice

    def _send(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["status"] != "open" or invoice["collection_method"] != "send_invoice":
            raise _invalid("Only open send_invoice invoices can be sent.", None)
        return invoice

    def _void(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["status"] not in ("open", "uncollectible"):
            raise _invalid(f"Only open invoices are voided; this one is {invoice['status']}.", None)
        invoice.update(status="void", amount_remaining=0)
        invoice["status_transitions"]["voided_at"] = int(time.time())
        return invoice

    def _retrieve_invoice(self, params: dict, invoice_id: str) -> dict:
        return self._invoice(invoice_id)

    def _create_credit_note(self, params: dict) -> dict:
        invoice = self.invoices.get(params.get("invoice", ""))
        if invoice is None:
            raise _missing("invoice", params.get("invoice"))
        if invoice["status"] not in ("open", "paid"):
            raise _invalid("Credit notes go on open or paid invoices only.", "invoice")
        lines = params.get("lines") or []
        if not lines or any(line.get("type") != "custom_line_item" for line in lines):
            raise _invalid("Give the lines to credit, of type custom_line_item.", "lines")
        amounts = [int(line["unit_amount"]) * int(line.get("quantity", "1")) for line in lines]
        if any(amount <= 0 for amount in amounts):
            raise _invalid("Each line credits a positive amount.", "lines")
        amount = sum(amounts)
        credited = (
            invoice["pre_payment_credit_notes_amount"] + invoice["post_payment_credit_notes_amount"]
        )
        if amount > invoice["total"] - credited:
            raise _invalid("The credit note exceeds what is left to credit.", "lines")
        pre_payment = min(amount, invoice["amount_remaining"])
        settled = {name: int(params.get(name, "0")) for name in SETTLEMENTS}
        if sum(settled.values()) != amount - pre_payment:
            raise _invalid(
                f"The sum of credit_amount, refund_amount and out_of_band_amount "
                f"({sum(settled.values())}) must equal the post-payment amount "
                f"({amount - pre_payment}).",
                None,
            )
        note = {
            "id": self._new_id("cn"), "object": "credit_note", "livemode": False,
            "created": int(time.time()), "invoice": invoice["id"],
            "customer": invoice["customer"], "currency": invoice["currency"],
            "amount": amount, "total": amount, "pre_payment_amount": pre_payment,
            "post_payment_amount": amount - pre_payment, "status": "issued",
            "type": "post_payment" if amount > pre_payment else "pre_payment",
            "memo": params.get("memo"), "metadata": params.get("metadata", {}),
            "lines": {"object": "list", "has_more": False,
                      "url": "/v1/credit_notes/lines", "data": [
                          {"object": "credit_note_line_item", "type": "custom_line_item",
                           "description": line.get("description"), "amount": line_amount}
                          for line, line_amount in zip(lines, amounts, strict=True)]},
            **settled,
        }  # fmt: skip
        self.credit_notes[note["id"]] = note
        invoice["amount_due"] -= pre_payment
        invoice["amount_remaining"] -= pre_payment
        invoice["pre_payment_credit_notes_amount"] += pre_payment
        invoice["post_payment_credit_notes_amount"] += amount - pre_payment
        self.customers[invoice["customer"]]["balance"] -= settled["credit_amount"]
        if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
            invoice["status"] = "paid"  # closed by credit notes: nothing left to pay
            invoice["status_transitions"]["paid_at"] = int(time.time())
        return note

    def _list_credit_notes(self, params: dict) -> dict:
        invoice_id = params.get("invoice")
        notes = [n for n in self.credit_notes.values() if invoice_id in (None, n["invoice"])]
        limit = int(params.get("limit", "10"))
        return {
            "object": "list",
            "url": "/v1/credit_notes",
            "has_more": len(notes) > limit,
            "data": notes[:limit],
        }

    def _invoice(self, invoice_id: str) -> dict:
        if invoice_id not in self.invoices:
            raise _missing("invoice", invoice_id)
        return self.invoices[invoice_id]

    # --- the customer's side -------------------------------------------------------------

    def pay(self, invoice_id: str) -> dict:
        """The customer pays an open invoice; the `invoice.paid` event Stripe sends."""
        with self._lock:
            invoice = self._invoice(invoice_id)
            invoice["status_transitions"]["paid_at"] = int(time.time())
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            return self.event("invoice.paid", invoice)

    def fail_payment(self, invoice_id: str) -> dict:
        """A payment attempt fails (a SEPA debit returned…); the event Stripe sends."""
        with self._lock:
            return self.event("invoice.payment_failed", self._invoice(invoice_id))

    def event(self, type_: str, data_object: dict) -> dict:
        return {
            "id": self._new_id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type_,
            "data": {"object": json.loads(json.dumps(data_object))},
        }


def _integer(value: str | None) -> int | None:
    return None if value is None else int(value)


def _missing(kind: str, identifier: str | None) -> StripeError:
    return StripeError(
        404, "invalid_request_error", f"No such {kind}: '{identifier}'", "resource_missing"
    )


def _invalid(message: str, param: str | None) -> StripeError:
    error = StripeError(400, "invalid_request_error", message, "parameter_invalid")
    error.body["error"]["param"] = param
    return error


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back to nested data: `a[b]=1&c[0]=x` → {"a": {"b": "1"},
    "c": ["x"]}. Values stay strings, as Stripe receives them."""
    decoded: dict[str, Any] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        keys = re.findall(r"[^\[\]]+", name)  # "a[b][0]" → ["a", "b", "0"]
        node: dict | list = decoded
        for key, next_key in itertools.pairwise(keys):
            node = _child(node, key, [] if next_key.isdigit() else {})
        _put(node, keys[-1], value)
    return decoded


def _child(node: dict | list, key: str, empty: dict | list) -> Any:
    if isinstance(node, dict):
        return node.setdefault(key, empty)
    _put(node, key, empty, replace=False)
    return node[int(key)]


def _put(node: dict | list, key: str, value: Any, replace: bool = True) -> None:
    if isinstance(node, dict):
        node[key] = value
        return
    index = int(key)
    node.extend([None] * (index + 1 - len(node)))
    if replace or node[index] is None:
        node[index] = value


def signed_webhook(
    event: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook request carrying `event`, signed as Stripe signs."""
    body = json.dumps(event).encode()
    headers = {
        "Stripe-Signature": signature_header(body, secret, timestamp),
        "Content-Type": "application/json",
    }
    return body, headers


def signature_header(
    body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> str:
    """Stripe's `Stripe-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<body>" keyed with the endpoint's secret>`."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256)
    return f"t={signed_at},v1={mac.hexdigest()}"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe  # set on the subclass made for each server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._respond("POST", self.path.split("?", 1)[0], self.rfile.read(length).decode())

    def do_GET(self) -> None:  # the parameters of a read are in the query string
        path, _, query = self.path.partition("?")
        self._respond("GET", path, query)

    def _respond(self, method: str, path: str, form: str) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        outcome = self.fake.handle(method, path, headers, form)
        if outcome is None:
            self.close_connection = True  # the client sees the connection drop, no answer
            return
        status, answer = outcome
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", f"req_local{time.monotonic_ns()}")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the recorded requests when an assertion needs them."""


@contextmanager
def stripe_server() -> Iterator[FakeStripe]:
    """A fake Stripe listening on a free local port (its base URL in `url`)."""
    fake = FakeStripe()
    handler = type("FakeStripeHandler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
