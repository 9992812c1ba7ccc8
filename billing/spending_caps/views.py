"""Spending caps of a customer's contract, per period."""

from flask.views import MethodView

from billing.db import utcnow
from billing.errors import Invalid
from billing.periods import Period
from billing.spending_caps import schemas, services
from billing.web import Blueprint, current_principal, db_session, roles

blp = Blueprint(
    "spending_caps", __name__, url_prefix="/api/v1", description="Spending caps of customers"
)

READERS = ("admin", "finance", "customer")
MANAGERS = ("admin", "finance")


@blp.route("/customers/<customer_id>/spending-caps")
class SpendingCaps(MethodView):
    @roles(*READERS)
    @blp.response(200, schemas.SpendingCapListSchema)
    def get(self, customer_id):
        """The customer's caps, one record per period it changes in, oldest first."""
        caps = services.list_spending_caps(db_session(), current_principal(), customer_id)
        return {"items": caps}


@blp.route("/customers/<customer_id>/spending-caps/<period>")
class SpendingCapResource(MethodView):
    @roles(*MANAGERS)
    @blp.arguments(schemas.SpendingCapRequestSchema)
    @blp.response(200, schemas.SpendingCapSchema)
    def put(self, data, customer_id, period):
        """Set the cap from `period` (YYYY-MM, the current period or later) on."""
        return services.set_spending_cap(
            db_session(), current_principal(), customer_id, _period(period), data, utcnow()
        )

    @roles(*MANAGERS)
    @blp.response(204)
    def delete(self, customer_id, period):
        """Remove the record of `period`: the cap of the period before applies again."""
        services.delete_spending_cap(
            db_session(), current_principal(), customer_id, _period(period), utcnow()
        )


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as error:
        raise Invalid("invalid period", {"period": [str(error)]}) from None
