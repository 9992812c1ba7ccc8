"""Every table, imported in one place so that migrations and tests see the whole schema."""

from billing import api_keys, heartbeats, jobs  # noqa: F401
from billing.access import models as access_models  # noqa: F401
from billing.alerts import models as alerts_models  # noqa: F401
from billing.components import models as components_models  # noqa: F401
from billing.db import Base
from billing.devices import models as devices_models  # noqa: F401
from billing.dunning import models as dunning_models  # noqa: F401
from billing.invoicing import models as invoicing_models  # noqa: F401
from billing.metering import models as metering_models  # noqa: F401
from billing.payments import models as payments_models  # noqa: F401
from billing.pricing import assignments as pricing_assignments  # noqa: F401
from billing.pricing import models as pricing_models  # noqa: F401
from billing.spending_caps import models as spending_caps_models  # noqa: F401
from billing.telemetry import models as telemetry_models  # noqa: F401
from billing.users import models as users_models  # noqa: F401
from billing.webhooks import models as webhooks_models  # noqa: F401

metadata = Base.metadata
