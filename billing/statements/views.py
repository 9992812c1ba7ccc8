"""Usage statements: a customer's month priced per vehicle, as JSON or CSV."""

from dataclasses import replace
from zoneinfo import ZoneInfo

from flask import Response, current_app, request
from flask.views import MethodView

from billing.charges import unattributed
from billing.charges.compute import StatementAsOf
from billing.charges.history import invoice_history
from billing.components.costs import cost_of_statement
from billing.db import utcnow
from billing.statements import exports, schemas, services
from billing.web import Blueprint, current_principal, db_session, roles

blp = Blueprint("statements", __name__, url_prefix="/api/v1", description="Usage statements")

EVERYONE = ("admin", "finance", "operator", "customer")
JSON, CSV = "application/json", "text/csv"
CSV_RESPONSE = {
    200: {
        "content": {
            CSV: {
                "schema": {"type": "string"},
                "example": "row,vehicle_id,plan_code,…\r\nline,MOB-000123,urbain,…\r\n",
            }
        }
    }
}


@blp.route("/customers/<customer_id>/statement")
class CustomerStatement(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.StatementArgs, location="query")
    @blp.response(200, schemas.StatementSchema)
    @blp.doc(responses=CSV_RESPONSE)
    def get(self, args, customer_id):
        """A customer's month priced per vehicle, plan and charge, with its totals.

        The current month (the default) is `in_progress`: priced up to now (the 15-minute
        bucket in progress included), with a projection to its end whose method is stated
        and the adjustments pending on invoiced months. Past months are `closed` and agree
        with their invoice to the cent; once invoiced, `invoiced` shows what was billed and
        the adjustment pending for the usage measured since. Operator keys get the usage
        only (`shows_money` false). CSV with `Accept: text/csv` or `?format=csv`.
        """
        settings = current_app.extensions["billing.settings"]
        result = services.get_statement(
            db_session(),
            current_principal(),
            customer_id,
            args.get("period"),
            utcnow(),
            history=invoice_history(current_app.extensions),
            adjustment_months=settings.invoicing.adjustment_months,
        )
        if args["cost_of_use"] and result.shows_money:
            priced = StatementAsOf(result.statement, result.status, result.as_of)
            result = replace(result, cost_of_use=cost_of_statement(db_session(), priced, utcnow()))
        if _wants_csv(args.get("format")):
            return Response(
                exports.statement_csv(result),
                mimetype=CSV,
                headers={
                    "Content-Disposition": f'attachment; filename="{exports.csv_filename(result)}"'
                },
            )
        return result


def _wants_csv(requested_format: str | None) -> bool:
    if requested_format is not None:
        return requested_format == "csv"
    return request.accept_mimetypes.best_match([JSON, CSV]) == CSV


@blp.route("/unbilled-usage")
class UnbilledUsage(MethodView):
    @roles("admin", "finance", "operator")
    @blp.arguments(schemas.UnbilledUsageArgs, location="query")
    @blp.response(200, schemas.UnbilledUsageSchema)
    def get(self, args):
        """Usage metered while the vehicle belonged to no customer or no plan: no invoice
        bills it. Backdate the registration or the move (`effective_at`), or assign the
        plan, and the next invoice run bills it. Operators see their fleets' vehicles."""
        settings = current_app.extensions["billing.settings"]
        return unattributed.list_unattributed_usage(
            db_session(),
            current_principal(),
            args.get("period"),
            utcnow(),
            ZoneInfo(settings.default_timezone),
        )
