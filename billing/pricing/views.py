"""Plans endpoints: read and compare plans (every role), create, edit and archive them
(admin), preview a price, and move vehicles to a plan's latest version."""

from flask.views import MethodView

from billing.db import utcnow
from billing.devices.schemas import PlanAssignmentSchema
from billing.pricing import assignments, schemas, services
from billing.web import Blueprint, db_session, page_body, page_schema, roles

blp = Blueprint("plans", __name__, url_prefix="/api/v1", description="Pricing plans")

EVERYONE = ("admin", "finance", "operator", "customer")
PLAN_BODY = {"description": "A plan definition: the fields of config/plans/*.yaml"}


@blp.route("/plans")
class Plans(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.ListPlansArgs, location="query")
    @blp.response(200, page_schema(schemas.PlanSchema))
    def get(self, args):
        """List the plans by code, each in its latest version."""
        return page_body(services.list_plans(db_session(), **args))

    @roles("admin")
    @blp.arguments(schemas.PlanBodySchema, **PLAN_BODY)
    @blp.response(201, schemas.PlanSchema)
    def post(self, data):
        """Create a plan (version 1). Errors name each faulty field path."""
        return services.create_plan(db_session(), data, utcnow())


@blp.route("/plans/<code>")
class PlanResource(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.PlanQueryArgs, location="query")
    @blp.response(200, schemas.PlanSchema)
    def get(self, args, code):
        """The plan in its latest version, or in `version`."""
        return services.get_plan_version(db_session(), code, args.get("version"))

    @roles("admin")
    @blp.arguments(schemas.PlanBodySchema, **PLAN_BODY)
    @blp.response(200, schemas.PlanSchema)
    def put(self, data, code):
        """Edit the plan: its latest version is replaced while no usage was rated on it,
        else a new version is added. Vehicles keep the version they were assigned."""
        return services.update_plan(db_session(), code, data, utcnow())

    @roles("admin")
    @blp.response(200, schemas.PlanSchema)
    def delete(self, code):
        """Archive the plan: no new assignment; vehicles on it stay until re-assigned."""
        return services.archive_plan(db_session(), code, utcnow())


@blp.route("/plans/<code>/versions")
class PlanVersions(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.PlanSchema(many=True))
    def get(self, code):
        """Every version of the plan, oldest first."""
        return services.list_plan_versions(db_session(), code)


@blp.route("/plans/<code>/preview")
class PlanPreview(MethodView):
    @roles(*EVERYONE)
    @blp.arguments(schemas.PreviewRequestSchema)
    @blp.response(200, schemas.PreviewSchema)
    def post(self, data, code):
        """Price one vehicle's usage over one period, with its tier breakdown and VAT."""
        return services.preview(db_session(), code, **data)


@blp.route("/plans/<code>/migrate")
class PlanMigration(MethodView):
    @roles("admin")
    @blp.arguments(schemas.MigrateSchema)
    @blp.response(200, PlanAssignmentSchema(many=True))
    def post(self, data, code):
        """Move every vehicle on an older version of the plan to its latest version from
        `effective_at`; returns the new assignments."""
        return assignments.migrate_plan_assignments(db_session(), code, data["effective_at"])
