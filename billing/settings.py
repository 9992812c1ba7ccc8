"""Configuration: defaults from config/billing.toml, overridden by environment variables.

The one place that maps the environment to settings, so that nothing else reads os.environ.
"""

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "billing.toml"

# Signs values when SECRET_KEY is not set: fine on one machine, never in production.
DEVELOPMENT_SECRET = "dev-only"

# Variables read under their conventional names rather than BILLING_*.
WELL_KNOWN = {"database_url": "DATABASE_URL", "mqtt_url": "MQTT_URL", "secret_key": "SECRET_KEY"}


@dataclass(frozen=True)
class IngestSettings:
    client_id: str = "billing-ingest"
    shared_group: str = ""
    batch_size: int = 1000
    batch_delay_ms: int = 50
    max_pending: int = 20000
    max_pending_bytes: int = 64 * 1024 * 1024
    max_future_seconds: int = 86400
    max_payload_bytes: int = 262144
    max_depth: int = 32
    max_extra_bytes: int = 4096
    quarantine_after_crashes: int = 2


@dataclass(frozen=True)
class HealthSettings:
    # How often the ingest and the scheduler record their heartbeat, and how old one may
    # be before /readyz reports its role down.
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 20.0
    # Metering further behind than this (the oldest reading not yet metered) is "down".
    max_metering_lag_seconds: float = 300.0


@dataclass(frozen=True)
class BrokerSettings:
    ingest_username: str = "billing-ingest"
    host: str = "127.0.0.1"
    port: int = 1883
    mosquitto: str = "mosquitto"
    refresh_seconds: float = 2.0
    # Run after the scheduler re-exports the files of an outside broker (MQTT_URL set),
    # e.g. "systemctl reload mosquitto"; empty: the files are written, nothing is run.
    reload_command: str = ""


@dataclass(frozen=True)
class DevicesSettings:
    # How far back a registration or a fleet move may take effect (onboarding a fleet
    # with history): 400 days covers the 13 months a yearly review looks at.
    max_backdate_days: int = 400
    # How often the scheduler applies the fleet moves that have reached their instant.
    moves_interval_seconds: float = 10


@dataclass(frozen=True)
class MeteringSettings:
    max_speed_kmh: int = 60
    interval_seconds: float = 2


@dataclass(frozen=True)
class InvoicingSettings:
    grace_days: int = 3
    payment_terms_days: int = 30
    # The seller's calendar: issue and due dates are its days.
    timezone: str = "Europe/Paris"
    # Usage arriving this many months after a period is still billed as adjustments.
    adjustment_months: int = 3
    # How many closed periods the scheduler looks back at to generate missing invoices.
    catch_up_months: int = 3
    # How often the scheduler generates, refreshes and finalizes invoices.
    interval_seconds: float = 3600


@dataclass(frozen=True)
class SellerSettings:
    name: str = ""
    legal_form: str = ""
    line1: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "FR"
    siren: str = ""
    vat_number: str = ""
    rcs: str = ""
    email: str = ""
    iban: str = ""
    bic: str = ""
    late_penalty_rate: str = ""


@dataclass(frozen=True)
class StripeSettings:
    api_key: str = ""
    webhook_secret: str = ""
    api_base: str = ""
    # How often the scheduler mirrors newly finalized invoices to Stripe.
    sync_interval_seconds: float = 60.0

    @property
    def enabled(self) -> bool:
        """Collection through Stripe is on when an API key is set. Without one, invoices
        are finalized as before and nothing is queued for Stripe."""
        return bool(self.api_key)


@dataclass(frozen=True)
class SmtpSettings:
    # Empty host: no mail is sent; each message is written to the log instead (the
    # embedded default), and `billing users link EMAIL` prints a sign-in link.
    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    from_address: str = "billing@localhost"
    # Upgrade the connection with STARTTLS before logging in (off only for a local relay).
    starttls: bool = True
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class PortalSettings:
    # The address the web pages are reached at, for the links of sign-in e-mails
    # (e.g. https://billing.example.com); empty: the address of the request, or
    # http://http_host:http_port from the command line.
    base_url: str = ""
    # A sign-in link works once, for this long.
    link_minutes: int = 15
    # A page session unused for this long is over; the user signs in again.
    idle_minutes: int = 30


@dataclass(frozen=True)
class AlertSettings:
    # How often the scheduler evaluates the usage alerts on the usage metered so far.
    interval_seconds: float = 5.0


@dataclass(frozen=True)
class DunningSettings:
    # "days:kind" after the due date, kinds reminder, penalty_notice and block (at most one).
    steps: str = "7:reminder,15:reminder,20:penalty_notice,30:block"
    # How often the scheduler takes the steps that are due (and retries failed mails).
    interval_seconds: float = 3600.0


@dataclass(frozen=True)
class AccessSettings:
    # How often the scheduler checks the spending caps that lock vehicles when reached.
    cap_watch_seconds: float = 5.0


@dataclass(frozen=True)
class WebhookSettings:
    # How often the scheduler sends the deliveries due, and how long a receiver may take.
    interval_seconds: float = 5.0
    timeout_seconds: float = 10.0
    # Retry delays double from the first up to the longest; a delivery still failing this
    # many hours after its event is given up (it can be replayed through the API).
    first_retry_seconds: float = 60.0
    longest_retry_seconds: float = 7200.0
    retry_hours: float = 24.0
    # After a rotation, the previous secret still signs (a second v1) for this long.
    secret_overlap_hours: float = 24.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    mqtt_url: str = ""
    secret_key: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_max_request_bytes: int = 1024 * 1024
    default_timezone: str = "Europe/Paris"
    default_currency: str = "EUR"
    ingest: IngestSettings = field(default_factory=IngestSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    devices: DevicesSettings = field(default_factory=DevicesSettings)
    metering: MeteringSettings = field(default_factory=MeteringSettings)
    invoicing: InvoicingSettings = field(default_factory=InvoicingSettings)
    seller: SellerSettings = field(default_factory=SellerSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    dunning: DunningSettings = field(default_factory=DunningSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'billing.db').resolve()}"

    @property
    def effective_secret_key(self) -> str:
        """SECRET_KEY, or the development value of the embedded defaults."""
        return self.secret_key or DEVELOPMENT_SECRET

    @property
    def portal_url(self) -> str:
        """Where the web pages are reached, for links made outside a request."""
        return (self.portal.base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def embedded_broker(self) -> bool:
        return not self.mqtt_url


def normalize_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the TOML defaults, then the environment, then keyword overrides."""
    environ = os.environ if environ is None else environ
    config_file = Path(environ.get("BILLING_CONFIG", DEFAULT_CONFIG_FILE))
    values: dict[str, Any] = {}
    if config_file.exists():
        values = tomllib.loads(config_file.read_text(encoding="utf-8"))
    _apply_environment(values, environ)
    values.update(overrides)
    return _build(Settings, values)


def _section_type(f: dataclasses.Field) -> type | None:
    """The settings class of a [section], or None for a plain value."""
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None


def _apply_environment(values: dict[str, Any], environ: Mapping[str, str]) -> None:
    for f in dataclasses.fields(Settings):
        section_type = _section_type(f)
        if section_type is None:
            name = WELL_KNOWN.get(f.name, f"BILLING_{f.name}".upper())
            if name in environ:
                values[f.name] = environ[name]
            continue
        section = values.setdefault(f.name, {})
        for sub in dataclasses.fields(section_type):
            name = f"BILLING_{f.name}_{sub.name}".upper()
            if name in environ:
                section[sub.name] = environ[name]


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown setting(s) for {cls.__name__}: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in values.items():
        f = known[name]
        section_type = _section_type(f)
        if section_type is not None and isinstance(value, Mapping):
            kwargs[name] = _build(section_type, value)
        elif section_type is not None:
            kwargs[name] = value
        else:
            kwargs[name] = _coerce(cls, f, value)
    return cls(**kwargs)


def _coerce(cls: type, f: dataclasses.Field, value: Any) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else None
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(value)
    except ValueError:
        raise ValueError(f"setting {cls.__name__}.{f.name}: {value!r} is not valid") from None
    return value
