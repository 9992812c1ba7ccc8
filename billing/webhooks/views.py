"""Webhook endpoints of an account, their delivery log and replay."""

from flask import current_app
from flask.views import MethodView

from billing.db import utcnow
from billing.web import (
    ROW_ID,
    Blueprint,
    PageArgs,
    current_principal,
    db_session,
    page_body,
    page_schema,
    roles,
)
from billing.webhooks import schemas, services

blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1", description="Outbound webhooks of accounts"
)

MANAGERS = ("admin", "customer")


def _settings():
    return current_app.extensions["billing.settings"].webhooks


class DeliveryListArgs(PageArgs, schemas.DeliveryListArgs):
    pass


@blp.route("/webhook-endpoints")
class Endpoints(MethodView):
    @roles(*MANAGERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.EndpointSchema))
    def get(self, args):
        """The endpoints the key may see: an admin's, all; a customer's, its own."""
        return page_body(services.list_endpoints(db_session(), current_principal(), **args))

    @roles(*MANAGERS)
    @blp.arguments(schemas.EndpointRequestSchema)
    @blp.response(201, schemas.EndpointWithSecretSchema)
    def post(self, data):
        """Register an endpoint; the answer holds its signing secret, shown this once."""
        return services.create_endpoint(db_session(), current_principal(), data, utcnow())


@blp.route("/webhook-endpoints/<endpoint_id>")
class EndpointResource(MethodView):
    @roles(*MANAGERS)
    @blp.response(200, schemas.EndpointSchema)
    def get(self, endpoint_id):
        return services.get_endpoint(db_session(), current_principal(), endpoint_id)

    @roles(*MANAGERS)
    @blp.arguments(schemas.EndpointUpdateSchema(partial=True))
    @blp.response(200, schemas.EndpointSchema)
    def patch(self, changes, endpoint_id):
        """Change the URL, the events, the description, or pause it (`enabled`)."""
        return services.update_endpoint(
            db_session(), current_principal(), endpoint_id, changes, utcnow()
        )

    @roles(*MANAGERS)
    @blp.response(204)
    def delete(self, endpoint_id):
        """Remove the endpoint with its delivery log."""
        services.delete_endpoint(db_session(), current_principal(), endpoint_id)


@blp.route("/webhook-endpoints/<endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    @roles(*MANAGERS)
    @blp.response(200, schemas.EndpointWithSecretSchema)
    def post(self, endpoint_id):
        """A new secret; the previous one keeps signing during the overlap."""
        return services.rotate_secret(
            db_session(), current_principal(), endpoint_id, utcnow(), _settings()
        )


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries")
class Deliveries(MethodView):
    @roles(*MANAGERS)
    @blp.arguments(DeliveryListArgs, location="query")
    @blp.response(200, page_schema(schemas.DeliverySchema))
    def get(self, args, endpoint_id):
        """The endpoint's deliveries, newest first, with their last status code."""
        page = services.list_deliveries(db_session(), current_principal(), endpoint_id, **args)
        return page_body(page)


@blp.route(f"/webhook-endpoints/<endpoint_id>/deliveries/<{ROW_ID}:delivery_id>")
class DeliveryResource(MethodView):
    @roles(*MANAGERS)
    @blp.response(200, schemas.DeliveryDetailSchema)
    def get(self, endpoint_id, delivery_id):
        """One delivery with its payload and every attempt (status code, error, duration)."""
        return services.get_delivery(db_session(), current_principal(), endpoint_id, delivery_id)


@blp.route(f"/webhook-endpoints/<endpoint_id>/deliveries/<{ROW_ID}:delivery_id>/replay")
class ReplayDelivery(MethodView):
    @roles(*MANAGERS)
    @blp.response(202, schemas.DeliverySchema)
    def post(self, endpoint_id, delivery_id):
        """Send the delivery again (same event id and body), at the sender's next pass."""
        return services.replay_delivery(
            db_session(), current_principal(), endpoint_id, delivery_id, utcnow(), _settings()
        )
