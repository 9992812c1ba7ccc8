"""Components endpoints: bills of materials, the parts of the vehicles and their wear, the
due-for-service list, learned lifetimes, the price of use, and the cost of use.

BOMs hold the maker's costs: admin and finance read them. Wear carries no amount: every
role reads the parts of the vehicles it sees, and admin and operators record what happens
to them. The cost of use is money: admin, finance and customers (their own vehicles).
"""

from flask import Response
from flask.views import MethodView

from billing.components import costs, maintenance, schemas, services
from billing.db import utcnow
from billing.web import Blueprint, current_principal, db_session, page_body, page_schema, roles

blp = Blueprint(
    "components", __name__, url_prefix="/api/v1", description="Components, wear, price of use"
)

EVERYONE = ("admin", "finance", "operator", "customer")
BOM_READERS = ("admin", "finance")
MAINTAINERS = ("admin", "operator")
MONEY = ("admin", "finance", "customer")
BOM_BODY = {"description": "A BOM definition: the fields of config/bom/*.yaml"}
CSV = "text/csv"
CSV_RESPONSE = {200: {"description": "CSV", "content": {CSV: {"schema": {"type": "string"}}}}}


@blp.route("/bom")
class Boms(MethodView):
    @roles(*BOM_READERS)
    @blp.response(200, schemas.BomSchema(many=True))
    def get(self):
        """Every model's BOM, in its latest version."""
        return services.list_boms(db_session())

    @roles("admin")
    @blp.arguments(schemas.BomBodySchema, **BOM_BODY)
    @blp.response(201, schemas.BomSchema)
    def post(self, data):
        """Save a model's BOM: version 1, the unlocked latest version replaced, or a new
        version once a part was made from the latest. Errors name each field path."""
        return services.save_bom(db_session(), data, utcnow())


@blp.route("/bom/<model>")
class BomResource(MethodView):
    @roles(*BOM_READERS)
    @blp.arguments(schemas.BomQueryArgs, location="query")
    @blp.response(200, schemas.BomSchema)
    def get(self, args, model):
        """The model's BOM in its latest version, or in `version`."""
        return services.get_bom_version(db_session(), model, args.get("version"))


@blp.route("/bom/<model>/versions")
class BomVersions(MethodView):
    @roles(*BOM_READERS)
    @blp.response(200, schemas.BomSchema(many=True))
    def get(self, model):
        """Every version of the model's BOM, oldest first."""
        return services.list_bom_versions(db_session(), model)


@blp.route("/bom/<model>/derive-plan")
class BomDerivePlan(MethodView):
    @roles(*BOM_READERS)
    @blp.arguments(schemas.DeriveRequestSchema)
    @blp.response(200, schemas.DerivedPlanSchema)
    def post(self, data, model):
        """The plan pricing the use of the model at its parts' cost ÷ lifetime, plus
        overhead and margin, with what each component contributes. Nothing is saved:
        `POST /plans` the returned `plan` to offer it."""
        return services.derive_plan_for_model(db_session(), model, data)


@blp.route("/bom/<model>/learned-lifetimes")
class LearnedLifetimes(MethodView):
    @roles(*BOM_READERS)
    @blp.response(200, schemas.ComponentLifetimesSchema(many=True))
    def get(self, model):
        """Per component, the real lifetimes of the parts removed as worn (count, median,
        p10, p90 per unit) beside the BOM's figure."""
        session = db_session()
        version = services.get_bom_version(session, model)
        return maintenance.learned_lifetimes(session, model, version, utcnow())


@blp.route("/vehicles/<vehicle_id>/components")
class VehicleComponents(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.ComponentWearSchema(many=True))
    def get(self, vehicle_id):
        """The parts fitted to the vehicle, with their wear: life used and left per unit,
        the unit that runs out first, the projected end of life, the next service."""
        return maintenance.vehicle_components(
            db_session(), current_principal(), vehicle_id, utcnow()
        )

    @roles(*MAINTAINERS)
    @blp.arguments(schemas.FitRequestSchema)
    @blp.response(201, schemas.PartSchema)
    def post(self, data, vehicle_id):
        """Fit a part by hand: a new part of `component_code`, or the spare `part_id`."""
        return services.fit_component(db_session(), current_principal(), vehicle_id, data, utcnow())


@blp.route("/components")
class Parts(MethodView):
    @roles("admin", "finance", "operator")
    @blp.arguments(schemas.ListPartsArgs, location="query")
    @blp.response(200, page_schema(schemas.PartSchema))
    def get(self, args):
        """Parts by serial (`status=spare`: those that can be fitted)."""
        return page_body(services.list_parts(db_session(), current_principal(), **args))


@blp.route("/components/due")
class DueComponents(MethodView):
    @roles("admin", "finance", "operator")
    @blp.arguments(schemas.DueArgs, location="query")
    @blp.response(200, page_schema(schemas.DueItemSchema))
    def get(self, args):
        """The parts due for service within `horizon_days`, by due date."""
        return page_body(maintenance.due_list(db_session(), current_principal(), utcnow(), **args))


@blp.route("/components/<part_id>")
class Part(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.PartDetailSchema)
    def get(self, part_id):
        """A part, its fittings and events, and its wear when fitted."""
        return maintenance.part_detail(db_session(), current_principal(), part_id, utcnow())


@blp.route("/components/<part_id>/swap")
class PartSwap(MethodView):
    @roles(*MAINTAINERS)
    @blp.arguments(schemas.SwapRequestSchema)
    @blp.response(201, schemas.PartSchema)
    def post(self, data, part_id):
        """Replace the part (by a new part, or the spare `replacement_id`); returns the
        part fitted."""
        return services.swap_component(db_session(), current_principal(), part_id, data, utcnow())


@blp.route("/components/<part_id>/removal")
class PartRemoval(MethodView):
    @roles(*MAINTAINERS)
    @blp.arguments(schemas.RemovalRequestSchema)
    @blp.response(200, schemas.PartSchema)
    def post(self, data, part_id):
        """Take the part out: scrapped when worn, a spare otherwise."""
        return services.remove_component(db_session(), current_principal(), part_id, data, utcnow())


@blp.route("/components/<part_id>/events")
class PartEvents(MethodView):
    @roles(*MAINTAINERS)
    @blp.arguments(schemas.EventRequestSchema)
    @blp.response(201, schemas.EventSchema)
    def post(self, data, part_id):
        """Record a repair, refurbishment or inspection (which restarts the service
        interval). The part keeps the life it used."""
        return services.record_event(db_session(), current_principal(), part_id, data, utcnow())


@blp.route("/vehicles/<vehicle_id>/cost-of-use")
class VehicleCostOfUse(MethodView):
    @roles(*MONEY)
    @blp.arguments(schemas.CostArgs, location="query")
    @blp.response(200, schemas.VehicleCostSchema)
    def get(self, args, vehicle_id):
        """What the vehicle's use consumed of its parts in the month (wear cost per part),
        beside what its customer's statement bills for it."""
        return costs.vehicle_cost_of_use(
            db_session(), current_principal(), vehicle_id, args.get("period"), utcnow()
        )


@blp.route("/customers/<customer_id>/cost-of-use")
class CustomerCostOfUse(MethodView):
    @roles(*MONEY)
    @blp.arguments(schemas.CostArgs, location="query")
    @blp.response(200, schemas.CustomerCostSchema)
    @blp.doc(responses=CSV_RESPONSE)
    def get(self, args, customer_id):
        """The cost of use of the customer's vehicles in the month, per vehicle and fleet,
        with the margin of the contract. CSV with `?format=csv`."""
        result = costs.customer_cost_of_use(
            db_session(), current_principal(), customer_id, args.get("period"), utcnow()
        )
        if args.get("format") == "csv":
            return _csv(
                costs.cost_of_use_csv([result]), f"cost-of-use-{customer_id}-{result.period}"
            )
        return result


@blp.route("/exports/cost-of-use.csv")
class CostOfUseExport(MethodView):
    @roles("admin", "finance")
    @blp.arguments(schemas.ExportCostArgs, location="query")
    @blp.doc(responses=CSV_RESPONSE)
    def get(self, args):
        """Every customer's cost of use in the month, as CSV."""
        found = costs.all_customers_cost_of_use(
            db_session(), current_principal(), args["period"], utcnow()
        )
        return _csv(costs.cost_of_use_csv(found), f"cost-of-use-{args['period']}")


def _csv(text: str, name: str) -> Response:
    return Response(
        text, mimetype=CSV, headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
    )
