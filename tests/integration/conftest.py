"""Fixtures of the integration tests that live in their own modules."""

from tests.brokers import account_book, mosquitto  # noqa: F401
from tests.databases import fresh_db, fresh_url  # noqa: F401
from tests.integration.invoicing import fleet  # noqa: F401
from tests.stripe_fixtures import fake_stripe, stripe_settings  # noqa: F401
from tests.webhook_receiver import receiver  # noqa: F401
