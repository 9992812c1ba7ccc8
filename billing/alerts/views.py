"""Usage alerts of a customer and their history."""

from flask.views import MethodView

from billing.alerts import schemas, services
from billing.db import utcnow
from billing.web import (
    Blueprint,
    PageArgs,
    current_principal,
    db_session,
    page_body,
    page_schema,
    roles,
)

blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="Usage alerts")

MANAGERS = ("admin", "finance", "customer")  # alerts tell amounts: not for operators


@blp.route("/customers/<customer_id>/alerts")
class Alerts(MethodView):
    @roles(*MANAGERS)
    @blp.response(200, schemas.AlertRuleListSchema)
    def get(self, customer_id):
        """The customer's alert rules, oldest first."""
        return {"items": services.list_rules(db_session(), current_principal(), customer_id)}

    @roles(*MANAGERS)
    @blp.arguments(schemas.AlertRuleRequestSchema)
    @blp.response(201, schemas.AlertRuleSchema)
    def post(self, data, customer_id):
        """Add a rule: fired once per period when its measure reaches the threshold."""
        return services.create_rule(db_session(), current_principal(), customer_id, data, utcnow())


@blp.route("/customers/<customer_id>/alerts/<alert_id>")
class AlertResource(MethodView):
    @roles(*MANAGERS)
    @blp.response(200, schemas.AlertRuleSchema)
    def get(self, customer_id, alert_id):
        return services.get_rule(db_session(), current_principal(), customer_id, alert_id)

    @roles(*MANAGERS)
    @blp.arguments(schemas.AlertRuleUpdateSchema)
    @blp.response(200, schemas.AlertRuleSchema)
    def patch(self, changes, customer_id, alert_id):
        """Rename it, change its threshold, or pause it (`enabled`)."""
        return services.update_rule(
            db_session(), current_principal(), customer_id, alert_id, changes, utcnow()
        )

    @roles(*MANAGERS)
    @blp.response(204)
    def delete(self, customer_id, alert_id):
        """Remove the rule and its history."""
        services.delete_rule(db_session(), current_principal(), customer_id, alert_id)


@blp.route("/customers/<customer_id>/alert-history")
class AlertHistory(MethodView):
    @roles(*MANAGERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.AlertFiringSchema))
    def get(self, args, customer_id):
        """The alerts fired for the customer, newest first: period, value, threshold."""
        page = services.list_firings(db_session(), current_principal(), customer_id, **args)
        return page_body(page)
