"""GET /vehicles/{id}/access: what a fleet's unlock service asks before each ride."""

from flask.views import MethodView

from billing.access import schemas, services
from billing.db import utcnow
from billing.web import Blueprint, current_principal, db_session, roles

blp = Blueprint("access", __name__, url_prefix="/api/v1", description="The unlock check")

EVERYONE = ("admin", "finance", "operator", "customer")


@blp.route("/vehicles/<vehicle_id>/access")
class VehicleAccess(MethodView):
    @roles(*EVERYONE)
    @blp.response(200, schemas.AccessSchema)
    def get(self, vehicle_id):
        """Whether the vehicle may be unlocked now, or the reasons why not: retired, an
        invoice overdue past the block step, the spending cap reached with block_at_cap."""
        return services.vehicle_access(db_session(), current_principal(), vehicle_id, utcnow())
