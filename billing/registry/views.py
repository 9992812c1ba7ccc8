"""Registry endpoints: customers, fleets, vehicles and their plan assignments."""

from flask import current_app
from flask.views import MethodView

from billing.db import utcnow
from billing.devices import schemas, services
from billing.devices.membership import MembershipRules
from billing.pricing import assignments
from billing.registry import vehicle_changes
from billing.web import Blueprint, current_principal, db_session, page_body, page_schema, roles

blp = Blueprint(
    "registry", __name__, url_prefix="/api/v1", description="Customers, fleets, vehicles"
)

EVERYONE = ("admin", "finance", "operator", "customer")


def _membership_rules() -> MembershipRules:
    return MembershipRules.from_settings(current_app.extensions["billing.settings"])


@blp.route("/customers")
class Customers(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.ListCustomersArgs, location="query")
    @blp.response(200, page_schema(schemas.CustomerSchema))
    def get(self, args):
        """List the customers the key may see."""
        return page_body(services.list_customers(db_session(), current_principal(), **args))

    @roles("admin")
    @blp.arguments(schemas.CustomerSchema)
    @blp.response(201, schemas.CustomerSchema)
    def post(self, data):
        """Create a customer."""
        return services.create_customer(db_session(), data, utcnow())


@blp.route("/customers/<customer_id>")
class CustomerResource(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.CustomerSchema)
    def get(self, customer_id):
        return services.get_customer(db_session(), current_principal(), customer_id)

    @roles("admin")
    @blp.arguments(schemas.CustomerUpdateSchema(partial=True))
    @blp.response(200, schemas.CustomerSchema)
    def patch(self, changes, customer_id):
        return services.update_customer(db_session(), current_principal(), customer_id, changes)

    @roles("admin")
    @blp.response(200, schemas.CustomerSchema)
    def delete(self, customer_id):
        """Archive the customer (its fleets must be retired); nothing is erased."""
        return services.archive_customer(db_session(), current_principal(), customer_id, utcnow())


@blp.route("/fleets")
class Fleets(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.ListFleetsArgs, location="query")
    @blp.response(200, page_schema(schemas.FleetSchema))
    def get(self, args):
        return page_body(services.list_fleets(db_session(), current_principal(), **args))

    @roles("admin")
    @blp.arguments(schemas.FleetSchema)
    @blp.response(201, schemas.FleetSchema)
    def post(self, data):
        return services.create_fleet(db_session(), current_principal(), data, utcnow())


@blp.route("/fleets/<fleet_id>")
class FleetResource(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.FleetSchema)
    def get(self, fleet_id):
        return services.get_fleet(db_session(), current_principal(), fleet_id)

    @roles("admin")
    @blp.arguments(schemas.FleetUpdateSchema)
    @blp.response(200, schemas.FleetSchema)
    def patch(self, changes, fleet_id):
        return services.update_fleet(db_session(), current_principal(), fleet_id, changes)

    @roles("admin")
    @blp.response(200, schemas.FleetSchema)
    def delete(self, fleet_id):
        """Retire the fleet (it must hold no active vehicle)."""
        return services.retire_fleet(db_session(), current_principal(), fleet_id, utcnow())


@blp.route("/vehicles")
class Vehicles(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.ListVehiclesArgs, location="query")
    @blp.response(200, page_schema(schemas.VehicleSchema))
    def get(self, args):
        return page_body(services.list_vehicles(db_session(), current_principal(), **args))

    @roles("admin", "operator")
    @blp.arguments(schemas.VehicleSchema)
    @blp.response(201, schemas.VehicleChangeSchema)
    def post(self, data):
        """Register a vehicle, in its fleet from `effective_at` (default now)."""
        return vehicle_changes.enroll_vehicle(
            db_session(), current_principal(), data, utcnow(), _membership_rules()
        )


@blp.route("/vehicles/<vehicle_id>")
class VehicleResource(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.VehicleSchema)
    def get(self, vehicle_id):
        return services.get_vehicle(db_session(), current_principal(), vehicle_id)

    @roles("admin", "operator")
    @blp.arguments(schemas.VehicleUpdateSchema)
    @blp.response(200, schemas.VehicleChangeSchema)
    def patch(self, changes, vehicle_id):
        """Change the vehicle; a new `fleet_id` moves it from `effective_at`: at once when
        that instant has come, scheduled otherwise (`fleet_id` changes at the instant)."""
        return vehicle_changes.update_vehicle(
            db_session(), current_principal(), vehicle_id, changes, utcnow(), _membership_rules()
        )

    @roles("admin", "operator")
    @blp.response(200, schemas.VehicleSchema)
    def delete(self, vehicle_id):
        """Retire the vehicle: its telemetry is refused from now on, its plan ends."""
        return vehicle_changes.retire_vehicle(
            db_session(), current_principal(), vehicle_id, utcnow()
        )


@blp.route("/vehicles/<vehicle_id>/plan")
class VehiclePlan(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.PlanAssignmentSchema(many=True))
    def get(self, vehicle_id):
        """The vehicle's plan history, oldest first."""
        return assignments.list_plan_assignments(db_session(), current_principal(), vehicle_id)

    @roles("admin")
    @blp.arguments(schemas.PlanAssignmentSchema)
    @blp.response(201, schemas.PlanAssignmentSchema)
    def post(self, data, vehicle_id):
        """Put the vehicle on a plan from `effective_at`; the plan in force then ends."""
        return assignments.assign_plan(
            db_session(), current_principal(), vehicle_id, data["plan_code"], data["effective_at"]
        )

    @roles("admin")
    @blp.arguments(schemas.PlanEndSchema)
    @blp.response(200, schemas.PlanAssignmentSchema)
    def delete(self, data, vehicle_id):
        """Take the vehicle off its plan from `ended_at`."""
        return assignments.end_plan_assignment(
            db_session(), current_principal(), vehicle_id, data["ended_at"]
        )


@blp.route("/vehicles/<vehicle_id>/credentials")
class VehicleCredentials(MethodView):
    @roles("admin", "operator")
    @blp.response(201, schemas.IssuedCredentialSchema)
    def post(self, vehicle_id):
        """Issue the vehicle's broker password, shown once; the previous one is revoked.

        The broker applies the change at its next reload (`billing broker export`).
        """
        credential, password = services.issue_vehicle_credential(
            db_session(), current_principal(), vehicle_id, utcnow()
        )
        # A dict, not the tuple: flask-smorest reads a returned tuple as (body, status).
        return {"credential": credential, "password": password}

    @roles("admin", "operator")
    @blp.response(204)
    def delete(self, vehicle_id):
        """Revoke the vehicle's broker password."""
        services.revoke_vehicle_credential(db_session(), current_principal(), vehicle_id, utcnow())


@blp.route("/fleets/<fleet_id>/credentials")
class GatewayCredentials(MethodView):
    @roles("admin", "operator")
    @blp.response(201, schemas.IssuedCredentialSchema)
    def post(self, fleet_id):
        """Issue the fleet gateway's broker password, shown once; it may publish for every
        vehicle of the fleet. The previous one is revoked."""
        credential, password = services.issue_gateway_credential(
            db_session(), current_principal(), fleet_id, utcnow()
        )
        return {"credential": credential, "password": password}

    @roles("admin", "operator")
    @blp.response(204)
    def delete(self, fleet_id):
        """Revoke the fleet gateway's broker password."""
        services.revoke_gateway_credential(db_session(), current_principal(), fleet_id, utcnow())
