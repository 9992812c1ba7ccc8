"""Usage billing for products sold as a service."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from billing.db import Database
from billing.errors import DomainError
from billing.settings import Settings, load_settings
from billing.validators import BoundedDecimal

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    """The Flask application: the API, its documentation and the health endpoint."""
    from billing import health, metrics, web, wiring
    from billing.access.views import blp as access_blp
    from billing.alerts.views import blp as alerts_blp
    from billing.api_keys import authenticate
    from billing.components.views import blp as components_blp
    from billing.invoicing.views import blp as invoices_blp
    from billing.metering.views import blp as usage_blp
    from billing.payments.views import blp as payments_blp
    from billing.portal.pages import register_pages
    from billing.pricing.views import blp as plans_blp
    from billing.registry.views import blp as registry_blp
    from billing.spending_caps.views import blp as spending_caps_blp
    from billing.statements.views import blp as statements_blp
    from billing.telemetry.services import VehicleDirectory
    from billing.telemetry.views import blp as telemetry_blp
    from billing.webhooks.views import blp as webhooks_blp

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.effective_secret_key,
        API_TITLE="Scooter usage billing",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=settings.http_max_request_bytes,
    )
    app.extensions["billing.settings"] = settings
    app.extensions["billing.db"] = database or Database.from_url(settings.effective_database_url)
    app.extensions["billing.vehicle_directory"] = VehicleDirectory()
    # billing.web reads the caller's key through it, knowing nothing of the key table.
    app.extensions["billing.authenticate"] = authenticate
    app.extensions.update(wiring.extensions())
    app.teardown_appcontext(web.close_db_session)
    app.before_request(web.refuse_oversized_body)
    app.before_request(web.refuse_nul_in_url)

    api = web.Api(app, spec_kwargs=_spec_kwargs())
    # A string in JSON: its bounds are documented as x-minimum/x-maximum, which OpenAPI
    # allows on strings, not as minimum/maximum, which it allows only on numbers.
    api.register_field(BoundedDecimal, "string", "decimal")
    app.register_error_handler(DomainError, web.handle_domain_error)
    # HTTP errors reach the Api's own, more specific handler; this one sees only bugs.
    app.register_error_handler(Exception, web.handle_unexpected_error)
    for blueprint in (
        health.blp,
        registry_blp,
        telemetry_blp,
        usage_blp,
        plans_blp,
        statements_blp,
        invoices_blp,
        payments_blp,
        spending_caps_blp,
        components_blp,
        webhooks_blp,
        access_blp,
        alerts_blp,
    ):
        api.register_blueprint(blueprint)

    app.add_url_rule("/metrics", view_func=metrics.metrics_view)
    register_pages(app)
    return app


def _spec_kwargs() -> dict[str, Any]:
    from billing.web import ErrorResponsesPlugin

    return {
        "info": {
            "description": "Telemetry, metering, rating, statements and invoices for "
            "vehicles rented by use. Authenticate with `Authorization: Bearer <key>`."
        },
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
        "extra_plugins": [ErrorResponsesPlugin()],
    }


logging.getLogger(__name__).addHandler(logging.NullHandler())
