"""Every role against every endpoint: allowed, forbidden (403), and out of scope (404).

The table below must list every route of the application, so that a new endpoint cannot
ship without its access rules being tested.
"""

from dataclasses import dataclass, field
from decimal import Decimal as D

import pytest
import yaml

from billing.alerts.services import create_rule
from billing.auth import SYSTEM
from billing.components.services import (
    DEFAULT_BOM_DIRECTORY,
    fit_component,
    load_boms_from_directory,
)
from billing.metering.models import AnomalyRecord
from billing.mqtt import telemetry_topic
from billing.periods import Period
from billing.pricing.services import DEFAULT_PLANS_DIRECTORY
from billing.spending_caps.services import set_spending_cap
from billing.telemetry.services import IncomingMessage, VehicleDirectory, store_telemetry
from billing.web import ROW_ID
from billing.webhooks.events import INVOICE_PAID
from billing.webhooks.services import create_endpoint, emit_event, list_deliveries
from tests.conftest import NOW, auth, customer_payload
from tests.integration.invoicing import issued_invoice

ROLES = ("admin", "finance", "operator", "customer")
EVERYONE = ROLES
INVOICE_READERS = ("admin", "finance", "customer")  # operators see no invoice
FINANCE = ("admin", "finance")
MAINTAINERS = ("admin", "operator")
STAFF = ("admin", "finance", "operator")
HOOK_MANAGERS = ("admin", "customer")  # an account's own webhooks
ALERT_RULE = {"scope": "customer", "measure": "trips", "threshold": D(100)}
ALERT = {"scope": "customer", "measure": "trips", "threshold": "100"}
HOOK = {"url": "https://hooks.example/billing", "events": ["invoice.paid"]}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {customer}, {fleet}, {vehicle}, {rejected}, {plan} are filled by the fixtures
    allowed: tuple[str, ...]
    body: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PLAN = {"plan_code": "urbain", "effective_at": "2026-11-01T00:00:00+01:00"}
URBAIN = yaml.safe_load((DEFAULT_PLANS_DIRECTORY / "urbain.yaml").read_text(encoding="utf-8"))
S1_BOM = yaml.safe_load((DEFAULT_BOM_DIRECTORY / "s1.yaml").read_text(encoding="utf-8"))
ENDPOINTS = [
    Endpoint("GET", "/api/v1/customers", EVERYONE),
    Endpoint("POST", "/api/v1/customers", ("admin",), customer_payload()),
    Endpoint("GET", "/api/v1/customers/{customer}", EVERYONE),
    Endpoint("PATCH", "/api/v1/customers/{customer}", ("admin",), {"email": "x@y.example"}),
    Endpoint("DELETE", "/api/v1/customers/{customer}", ("admin",)),
    Endpoint("GET", "/api/v1/fleets", EVERYONE),
    Endpoint("POST", "/api/v1/fleets", ("admin",), {"customer_id": "{customer}", "name": "N"}),
    Endpoint("GET", "/api/v1/fleets/{fleet}", EVERYONE),
    Endpoint("PATCH", "/api/v1/fleets/{fleet}", ("admin",), {"name": "N"}),
    Endpoint("DELETE", "/api/v1/fleets/{fleet}", ("admin",)),
    Endpoint("GET", "/api/v1/vehicles", EVERYONE),
    Endpoint(
        "POST",
        "/api/v1/vehicles",
        ("admin", "operator"),
        {"id": "NEW-1", "fleet_id": "{fleet}", "model": "s1", "serial": "NEW-1"},
    ),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}", EVERYONE),
    Endpoint("PATCH", "/api/v1/vehicles/{vehicle}", ("admin", "operator"), {"model": "s2"}),
    Endpoint("DELETE", "/api/v1/vehicles/{vehicle}", ("admin", "operator")),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}/plan", EVERYONE),
    Endpoint("POST", "/api/v1/vehicles/{vehicle}/plan", ("admin",), PLAN),
    Endpoint(
        "DELETE",
        "/api/v1/vehicles/{vehicle}/plan",
        ("admin",),
        {"ended_at": "2026-12-01T00:00:00Z"},
    ),
    Endpoint("POST", "/api/v1/vehicles/{vehicle}/credentials", ("admin", "operator")),
    Endpoint("DELETE", "/api/v1/vehicles/{vehicle}/credentials", ("admin", "operator")),
    Endpoint("POST", "/api/v1/fleets/{fleet}/credentials", ("admin", "operator")),
    Endpoint("DELETE", "/api/v1/fleets/{fleet}/credentials", ("admin", "operator")),
    Endpoint(
        "POST",
        "/api/v1/vehicles/{vehicle}/telemetry",
        ("admin", "operator"),
        {"msg_id": "access-1", "ts": "2026-11-15T09:00:00Z", "odometer_m": 10},
    ),
    Endpoint("GET", "/api/v1/rejected-messages", ("admin", "operator")),
    Endpoint("GET", "/api/v1/rejected-messages/{rejected}", ("admin", "operator")),
    Endpoint("POST", "/api/v1/rejected-messages/{rejected}/replay", ("admin", "operator")),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}/usage", EVERYONE),
    Endpoint("GET", "/api/v1/customers/{customer}/usage", EVERYONE),
    Endpoint("GET", "/api/v1/customers/{customer}/statement", EVERYONE),
    Endpoint("GET", "/api/v1/unbilled-usage", ("admin", "finance", "operator")),
    Endpoint("GET", "/api/v1/anomalies", ("admin", "operator")),
    Endpoint("POST", "/api/v1/anomalies/{anomaly}/accept", ("admin", "operator")),
    Endpoint("POST", "/api/v1/anomalies/{anomaly}/reject", ("admin", "operator")),
    Endpoint("GET", "/api/v1/plans", EVERYONE),
    Endpoint("POST", "/api/v1/plans", ("admin",), {**URBAIN, "code": "access-test"}),
    Endpoint("GET", "/api/v1/plans/{plan}", EVERYONE),
    Endpoint("PUT", "/api/v1/plans/{plan}", ("admin",), URBAIN),
    Endpoint("DELETE", "/api/v1/plans/{plan}", ("admin",)),
    Endpoint("GET", "/api/v1/plans/{plan}/versions", EVERYONE),
    Endpoint("POST", "/api/v1/plans/{plan}/preview", EVERYONE, {"usage": {"trips": "40"}}),
    Endpoint(
        "POST", "/api/v1/plans/{plan}/migrate", ("admin",), {"effective_at": "2026-12-01T00:00:00Z"}
    ),
    Endpoint("GET", "/api/v1/invoices", INVOICE_READERS),
    Endpoint("GET", "/api/v1/invoices/{invoice}", INVOICE_READERS),
    Endpoint("DELETE", "/api/v1/invoices/{invoice}", FINANCE),
    Endpoint("POST", "/api/v1/invoices/{invoice}/finalize", FINANCE),
    Endpoint("POST", "/api/v1/invoices/{invoice}/void", FINANCE, {"reason": "erreur"}),
    Endpoint(
        "POST", "/api/v1/invoices/{invoice}/credit-notes", FINANCE, {"reason": "x", "amount": "1"}
    ),
    Endpoint("GET", "/api/v1/invoices/{invoice}/pdf", INVOICE_READERS),
    Endpoint("GET", "/api/v1/invoices/{invoice}/facturx.pdf", INVOICE_READERS),
    Endpoint("GET", "/api/v1/invoices/{invoice}/facturx.xml", INVOICE_READERS),
    Endpoint("GET", "/api/v1/exports/invoices.csv", FINANCE),
    Endpoint("GET", "/api/v1/exports/invoice-lines.csv", FINANCE),
    Endpoint("GET", "/api/v1/exports/fec", FINANCE),
    Endpoint("GET", "/api/v1/exports/facturx.zip", FINANCE),
    Endpoint("GET", "/api/v1/customers/{customer}/spending-caps", INVOICE_READERS),
    Endpoint(
        "PUT", "/api/v1/customers/{customer}/spending-caps/{period}", FINANCE, {"amount": "9.00"}
    ),
    Endpoint("DELETE", "/api/v1/customers/{customer}/spending-caps/{period}", FINANCE),
    Endpoint("GET", "/api/v1/bom", FINANCE),
    Endpoint("POST", "/api/v1/bom", ("admin",), S1_BOM),
    Endpoint("GET", "/api/v1/bom/{model}", FINANCE),
    Endpoint("GET", "/api/v1/bom/{model}/versions", FINANCE),
    Endpoint("POST", "/api/v1/bom/{model}/derive-plan", FINANCE, {"km_per_month": "300"}),
    Endpoint("GET", "/api/v1/bom/{model}/learned-lifetimes", FINANCE),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}/components", EVERYONE),
    Endpoint(
        "POST", "/api/v1/vehicles/{vehicle}/components", MAINTAINERS, {"component_code": "lights"}
    ),
    Endpoint("GET", "/api/v1/components", STAFF),
    Endpoint("GET", "/api/v1/components/due", STAFF),
    Endpoint("GET", "/api/v1/components/{part}", EVERYONE),
    Endpoint("POST", "/api/v1/components/{part}/swap", MAINTAINERS, {"reason": "worn"}),
    Endpoint("POST", "/api/v1/components/{part}/removal", MAINTAINERS, {"reason": "failed"}),
    Endpoint("POST", "/api/v1/components/{part}/events", MAINTAINERS, {"kind": "inspection"}),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}/cost-of-use", INVOICE_READERS),
    Endpoint("GET", "/api/v1/customers/{customer}/cost-of-use", INVOICE_READERS),
    Endpoint("GET", "/api/v1/exports/cost-of-use.csv", FINANCE),
    Endpoint("GET", "/api/v1/vehicles/{vehicle}/access", EVERYONE),
    Endpoint("GET", "/api/v1/customers/{customer}/alerts", INVOICE_READERS),
    Endpoint("POST", "/api/v1/customers/{customer}/alerts", INVOICE_READERS, ALERT),
    Endpoint("GET", "/api/v1/customers/{customer}/alerts/{alert}", INVOICE_READERS),
    Endpoint(
        "PATCH", "/api/v1/customers/{customer}/alerts/{alert}", INVOICE_READERS, {"name": "N"}
    ),
    Endpoint("DELETE", "/api/v1/customers/{customer}/alerts/{alert}", INVOICE_READERS),
    Endpoint("GET", "/api/v1/customers/{customer}/alert-history", INVOICE_READERS),
    Endpoint("GET", "/api/v1/webhook-endpoints", HOOK_MANAGERS),
    Endpoint("POST", "/api/v1/webhook-endpoints", HOOK_MANAGERS, HOOK),
    Endpoint("GET", "/api/v1/webhook-endpoints/{endpoint}", HOOK_MANAGERS),
    Endpoint("PATCH", "/api/v1/webhook-endpoints/{endpoint}", HOOK_MANAGERS, {"enabled": False}),
    Endpoint("DELETE", "/api/v1/webhook-endpoints/{endpoint}", HOOK_MANAGERS),
    Endpoint("POST", "/api/v1/webhook-endpoints/{endpoint}/rotate-secret", HOOK_MANAGERS),
    Endpoint("GET", "/api/v1/webhook-endpoints/{endpoint}/deliveries", HOOK_MANAGERS),
    Endpoint("GET", "/api/v1/webhook-endpoints/{endpoint}/deliveries/{delivery}", HOOK_MANAGERS),
    Endpoint(
        "POST", "/api/v1/webhook-endpoints/{endpoint}/deliveries/{delivery}/replay", HOOK_MANAGERS
    ),
]
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/static/<path:filename>"),
    ("POST", "/api/v1/stripe/webhook"),  # authenticated by Stripe's signature, not a key
    # The web pages' own: signing in and out, and the pages' style sheet and icon.
    ("GET", "/assets/<path:filename>"),
    ("GET", "/"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("POST", "/sign-in/password"),
    ("GET", "/sign-in/link/<path:token>"),
    ("POST", "/sign-in/link/<path:token>"),
    ("POST", "/sign-out"),
}
ROUTE_PARAMETERS = {
    "{customer}": "<customer_id>",
    "{fleet}": "<fleet_id>",
    "{vehicle}": "<vehicle_id>",
    "{rejected}": f"<{ROW_ID}:message_id>",
    "{anomaly}": f"<{ROW_ID}:anomaly_id>",
    "{plan}": "<code>",
    "{invoice}": "<invoice_id>",
    "{period}": "<period>",
    "{model}": "<model>",
    "{part}": "<part_id>",
    "{endpoint}": "<endpoint_id>",
    "{alert}": "<alert_id>",
    "{delivery}": f"<{ROW_ID}:delivery_id>",
}
CAPPED_PERIOD = "2099-01"


def fill(value, ids: dict[str, str]):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


def call(client, endpoint: Endpoint, key: str, ids: dict[str, str]):
    return client.open(
        fill(endpoint.path, ids),
        method=endpoint.method,
        json=fill(endpoint.body, ids) if endpoint.body else None,
        headers=auth(key),
    )


@pytest.fixture
def rejected(session, registry) -> dict[str, str]:
    """A rejected message of each customer's vehicle (unparsable telemetry)."""
    outcome = store_telemetry(
        session,
        [
            IncomingMessage(telemetry_topic(registry.vehicle_id), b"{"),
            IncomingMessage(telemetry_topic(registry.other_vehicle_id), b"{"),
        ],
        NOW,
        directory=VehicleDirectory(max_age=0),
        max_future_seconds=3600,
    )
    own, other = outcome.rejected_ids
    return {
        "own": str(own),
        "other": str(other),
        **held_jumps(session, registry),
        "own_invoice": issued_invoice(session, registry.customer_id, "F-2026-000001").id,
        "other_invoice": issued_invoice(session, registry.other_customer_id, "F-2026-000002").id,
        **fitted_batteries(session, registry),
        **webhook_deliveries(session, registry),
        "own_alert": create_rule(session, SYSTEM, registry.customer_id, ALERT_RULE, NOW).id,
        "other_alert": create_rule(session, SYSTEM, registry.other_customer_id, ALERT_RULE, NOW).id,
    }


def fitted_batteries(session, registry) -> dict[str, str]:
    """The example BOM loaded, and a battery fitted by hand to each customer's vehicle."""
    load_boms_from_directory(session, DEFAULT_BOM_DIRECTORY, NOW)
    own, other = (
        fit_component(session, SYSTEM, vehicle_id, {"component_code": "battery"}, NOW).id
        for vehicle_id in (registry.vehicle_id, registry.other_vehicle_id)
    )
    return {"own_part": own, "other_part": other}


@pytest.fixture(autouse=True)
def spending_caps(session, registry) -> None:
    """A cap record of each customer, for the endpoints that change or remove one."""
    for customer_id in (registry.customer_id, registry.other_customer_id):
        set_spending_cap(
            session, SYSTEM, customer_id, Period.parse(CAPPED_PERIOD), {"amount": D(1)}, NOW
        )


def webhook_deliveries(session, registry) -> dict[str, str]:
    """An endpoint of each customer, with one delivery each."""
    ids = {}
    for side, customer_id in (("own", registry.customer_id), ("other", registry.other_customer_id)):
        endpoint = create_endpoint(session, SYSTEM, {**HOOK, "customer_id": customer_id}, NOW)
        emit_event(session, INVOICE_PAID, customer_id, {}, NOW)
        session.commit()
        (delivery,) = list_deliveries(session, SYSTEM, endpoint.id, 1, 1).items
        ids |= {f"{side}_endpoint": endpoint.id, f"{side}_delivery": str(delivery.id)}
    return ids


def held_jumps(session, registry) -> dict[str, str]:
    jumps = [
        AnomalyRecord(
            vehicle_id=vehicle_id, kind="implausible_jump", msg_id="m2", previous_msg_id="m1",
            ts=NOW, distance_m=90_000, details="90 km in 5 min", status="held", detected_at=NOW,
        )
        for vehicle_id in (registry.vehicle_id, registry.other_vehicle_id)
    ]  # fmt: skip
    session.add_all(jumps)
    session.commit()
    return {"own_anomaly": str(jumps[0].id), "other_anomaly": str(jumps[1].id)}


def own_ids(registry, rejected) -> dict[str, str]:
    return {
        "customer": registry.customer_id,
        "fleet": registry.fleet_id,
        "vehicle": registry.vehicle_id,
        "rejected": rejected["own"],
        "anomaly": rejected.get("own_anomaly", ""),
        "plan": "urbain",
        "invoice": rejected.get("own_invoice", ""),
        "period": CAPPED_PERIOD,
        "model": "s1",
        "part": rejected.get("own_part", ""),
        "endpoint": rejected.get("own_endpoint", ""),
        "alert": rejected.get("own_alert", ""),
        "delivery": rejected.get("own_delivery", ""),
    }


def other_ids(registry, rejected) -> dict[str, str]:
    return {
        "customer": registry.other_customer_id,
        "fleet": registry.other_fleet_id,
        "vehicle": registry.other_vehicle_id,
        "rejected": rejected["other"],
        "anomaly": rejected["other_anomaly"],
        "plan": "urbain",  # plans are not scoped: every role reads every plan
        "invoice": rejected["other_invoice"],
        "period": CAPPED_PERIOD,
        "model": "s1",  # nor are bills of materials (admin and finance read them all)
        "part": rejected["other_part"],
        "endpoint": rejected["other_endpoint"],
        "alert": rejected["other_alert"],
        "delivery": rejected["other_delivery"],
    }


def test_the_access_table_covers_every_route(app):
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    listed = {(e.method, route_of(e.path)) for e in ENDPOINTS}
    listed |= {(p.method, p.rule) for p in PAGES}
    assert routes - PUBLIC == listed


def route_of(path: str) -> str:
    for placeholder, parameter in ROUTE_PARAMETERS.items():
        path = path.replace(placeholder, parameter)
    return path


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_or_forbidden_as_the_table_says(
    client, keys, registry, rejected, example_plans, endpoint, role
):
    response = call(client, endpoint, keys[role], own_ids(registry, rejected))
    if role in endpoint.allowed:
        assert response.status_code not in (401, 403, 404), response.json
    else:
        assert response.status_code == 403, response.json
        assert response.json["error"]["code"] == "forbidden"


SCOPED_CASES = [
    pytest.param(endpoint, role, id=f"{role} {endpoint}")
    for endpoint in ENDPOINTS
    for role in ("operator", "customer")
    if "{" in endpoint.path.replace("{plan}", "") and role in endpoint.allowed
]


@pytest.mark.parametrize(("endpoint", "role"), SCOPED_CASES)
def test_a_scoped_key_gets_404_outside_its_scope(client, keys, registry, rejected, endpoint, role):
    response = call(client, endpoint, keys[role], other_ids(registry, rejected))
    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("role", "visible"),
    [("admin", 2), ("finance", 2), ("operator", 1), ("customer", 1)],
)
@pytest.mark.parametrize("collection", ["customers", "fleets", "vehicles"])
def test_listings_show_only_what_the_key_may_see(client, keys, registry, role, visible, collection):
    body = client.get(f"/api/v1/{collection}", headers=auth(keys[role])).json
    assert body["total"] == visible
    if visible == 1:
        expected = own_ids(registry, {"own": ""})[collection.removesuffix("s")]
        assert [item["id"] for item in body["items"]] == [expected]


def test_an_operator_cannot_register_a_vehicle_in_a_fleet_it_does_not_operate(
    client, keys, registry
):
    response = client.post(
        "/api/v1/vehicles",
        json={"id": "NEW-2", "fleet_id": registry.other_fleet_id, "model": "s1", "serial": "N2"},
        headers=auth(keys["operator"]),
    )
    assert response.status_code == 422
    assert response.json["error"]["details"] == {
        "fleet_id": [f"fleet {registry.other_fleet_id} not found"]
    }


def test_a_revoked_key_is_refused(client, session, keys, registry):
    from billing.api_keys import ApiKey, digest_key, revoke_api_key
    from billing.db import utcnow

    key = session.query(ApiKey).filter_by(digest=digest_key(keys["finance"])).one()
    revoke_api_key(session, key.id, utcnow())
    assert client.get("/api/v1/customers", headers=auth(keys["finance"])).status_code == 401


# --- the web pages: a signed-in user of each role, by page session -----------------------

ACCOUNT_READERS = ("admin", "finance", "customer")
OPERATORS = ("admin", "operator")


@dataclass(frozen=True)
class Page:
    method: str
    rule: str  # as the application routes it
    path: str  # filled as Endpoint.path is
    allowed: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PAGES = [
    Page("GET", "/accounts/<customer_id>/", "/accounts/{customer}/", ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/statements/", "/accounts/{customer}/statements/",
         ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/statements/<period>",
         "/accounts/{customer}/statements/2026-11", ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/statements/<period>.csv",
         "/accounts/{customer}/statements/2026-11.csv", ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/invoices/", "/accounts/{customer}/invoices/",
         ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/invoices/<invoice_id>/<any('pdf', 'facturx.pdf'):kind>",
         "/accounts/{customer}/invoices/{invoice}/facturx.pdf", ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/vehicles/<vehicle_id>",
         "/accounts/{customer}/vehicles/{vehicle}", ACCOUNT_READERS),
    Page("GET", "/accounts/<customer_id>/plans", "/accounts/{customer}/plans", ACCOUNT_READERS),
    Page("GET", "/finance/invoices/", "/finance/invoices/", FINANCE),
    Page("GET", "/finance/drafts/", "/finance/drafts/", FINANCE),
    Page("GET", "/finance/invoices/<invoice_id>", "/finance/invoices/{invoice}", FINANCE),
    Page("POST", "/finance/invoices/<invoice_id>/finalize", "/finance/invoices/{invoice}/finalize",
         FINANCE),
    Page("POST", "/finance/invoices/<invoice_id>/void", "/finance/invoices/{invoice}/void",
         FINANCE),
    Page("POST", "/finance/invoices/<invoice_id>/credit-notes",
         "/finance/invoices/{invoice}/credit-notes", FINANCE),
    Page("GET", "/finance/collection/", "/finance/collection/", FINANCE),
    Page("GET", "/finance/exports/", "/finance/exports/", FINANCE),
    Page("GET",
         "/finance/exports/<any('invoices.csv', 'invoice-lines.csv', 'fec', 'facturx.zip'):kind>",
         "/finance/exports/fec?period=2026-12", FINANCE),
    Page("GET", "/finance/unbilled/", "/finance/unbilled/", ("admin", "finance", "operator")),
    Page("GET", "/fleets/", "/fleets/", OPERATORS),
    Page("GET", "/fleets/<fleet_id>", "/fleets/{fleet}", OPERATORS),
    Page("POST", "/vehicles/<vehicle_id>/credentials", "/vehicles/{vehicle}/credentials",
         OPERATORS),
    Page("POST", "/vehicles/<vehicle_id>/credentials/revoke",
         "/vehicles/{vehicle}/credentials/revoke", OPERATORS),
    Page("POST", "/fleets/<fleet_id>/credentials", "/fleets/{fleet}/credentials", OPERATORS),
    Page("POST", "/fleets/<fleet_id>/credentials/revoke", "/fleets/{fleet}/credentials/revoke",
         OPERATORS),
    Page("GET", "/telemetry/", "/telemetry/", OPERATORS),
    Page("POST", f"/telemetry/anomalies/<{ROW_ID}:anomaly_id>/<any('accept', 'reject'):decision>",
         "/telemetry/anomalies/{anomaly}/accept", OPERATORS),
]  # fmt: skip


@pytest.fixture
def page_clients(app, session, registry):
    """A test client signed in as a user of each role, scoped as the `keys` fixture's."""
    from billing.db import utcnow
    from billing.users import services as users
    from tests.portal import signed_in_client

    scopes = {
        "operator": {"fleet_ids": [registry.fleet_id]},
        "customer": {"customer_id": registry.customer_id},
    }
    return {
        role: signed_in_client(
            app, session,
            users.add_user(session, f"{role}@access.example", role, NOW, **scopes.get(role, {})),
            utcnow(),
        )
        for role in ROLES
    }  # fmt: skip


def open_page(client, page: Page, ids: dict[str, str]):
    from tests.portal import csrf_token

    path = fill(page.path, ids)
    if page.method == "GET":
        return client.get(path)
    # Without "confirm": the actions answer their confirmation page and change nothing.
    return client.post(path, data={"csrf_token": csrf_token(client), "reason": "r", "amount": "1"})


@pytest.mark.parametrize("page", PAGES, ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_open_a_page_or_gets_403_as_the_table_says(
    page_clients, registry, rejected, example_plans, page, role
):
    response = open_page(page_clients[role], page, own_ids(registry, rejected))
    if role in page.allowed:
        assert response.status_code not in (302, 401, 403, 404), response.status_code
    else:
        assert response.status_code == 403


PAGE_SCOPED_CASES = [
    pytest.param(page, role, id=f"{role} {page}")
    for page in PAGES
    for role in ("operator", "customer")
    if "{" in page.path and role in page.allowed
]


@pytest.mark.parametrize(("page", "role"), PAGE_SCOPED_CASES)
def test_a_scoped_user_gets_404_outside_its_scope(page_clients, registry, rejected, page, role):
    response = open_page(page_clients[role], page, other_ids(registry, rejected))
    assert response.status_code == 404


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_an_anonymous_visitor_is_sent_to_sign_in(app, registry, rejected, page):
    client = app.test_client()
    path = fill(page.path, own_ids(registry, rejected))
    response = client.get(path) if page.method == "GET" else client.post(path)
    if page.method == "GET":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/sign-in")
    else:
        assert response.status_code == 400  # no CSRF token: refused before anything
