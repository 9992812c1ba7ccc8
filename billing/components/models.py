"""Stored bills of materials and the physical parts of the vehicles (docs/components.md).

- `BomVersion`: one version of a model's BOM, its definition as JSON (every decimal a
  string, as `bom_to_dict` writes it). Immutable once used: `locked_at` is set when the
  first part is made from it; a changed file then adds a version.
- `ComponentPart`: one physical part (a serial), of one BOM component. It lives longer than
  any one vehicle: a refurbished part can be fitted to another vehicle and keeps its life.
- `ComponentFitting`: one stay of a part in a vehicle, [installed_at, removed_at). Wear
  counts the vehicle's usage days from `installed_on` (the local day of the fitting)
  until the day before `removed_on`: the day of a swap counts for the part fitted.
- `ComponentEvent`: a repair, refurbishment or inspection, with its cost.

Wear itself is never stored: it is summed from the metering rollups when asked for, so
late readings and `billing usage rebuild` are reflected at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.components import bom
from billing.db import Base, ExactDecimal, UTCDateTime, utcnow

REMOVAL_REASONS = ("worn", "failed", "damaged", "upgrade", "refurbishment", "moved")
EVENT_KINDS = ("repair", "refurbishment", "inspection")
FITTED, SPARE, SCRAPPED = "fitted", "spare", "scrapped"


class BomVersion(Base):
    __tablename__ = "bom_versions"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(3))
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def to_bom(self) -> bom.Bom:
        return _definition_bom(self.definition)


def definition_text(definition: bom.Bom) -> str:
    """The stored form of a BOM; equal BOMs give equal texts."""
    return json.dumps(bom.bom_to_dict(definition), ensure_ascii=False, sort_keys=True)


@functools.lru_cache(maxsize=64)
def _definition_bom(text: str) -> bom.Bom:
    return bom.parse_bom(json.loads(text))


class ComponentPart(Base):
    __tablename__ = "component_parts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model", "bom_version"], ["bom_versions.model", "bom_versions.version"]
        ),
        CheckConstraint("status IN ('fitted', 'spare', 'scrapped')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(64))
    bom_version: Mapped[int]
    component_code: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), default=FITTED)
    # The service clock: the last inspection, or the first fitting. Its local day bounds
    # the usage counted towards the next service.
    service_since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    service_since_on: Mapped[dt.date]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    bom_version_row: Mapped[BomVersion] = relationship(viewonly=True)
    fittings: Mapped[list[ComponentFitting]] = relationship(
        order_by="ComponentFitting.installed_at", viewonly=True
    )


class ComponentFitting(Base):
    __tablename__ = "component_fittings"
    __table_args__ = (
        Index("ix_component_fittings_vehicle", "vehicle_id", "removed_at"),
        Index("ix_component_fittings_part", "part_id"),
        # A part is in one vehicle at a time.
        Index(
            "uq_component_fittings_open_part",
            "part_id",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        CheckConstraint("removed_on IS NULL OR removed_on >= installed_on", name="days_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    part_id: Mapped[str] = mapped_column(ForeignKey("component_parts.id"))
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    installed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    installed_on: Mapped[dt.date]
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    removed_on: Mapped[dt.date | None]
    removal_reason: Mapped[str | None] = mapped_column(String(16))
    # The vehicle's counters at the fitting, summed from its rollups (for the record: wear
    # is always summed afresh from the rollups).
    vehicle_km_at_install: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    vehicle_kwh_at_install: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    part: Mapped[ComponentPart] = relationship(viewonly=True)


class ComponentEvent(Base):
    __tablename__ = "component_events"
    __table_args__ = (
        CheckConstraint("kind IN ('repair', 'refurbishment', 'inspection')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    part_id: Mapped[str] = mapped_column(ForeignKey("component_parts.id"), index=True)
    vehicle_id: Mapped[str | None] = mapped_column(ForeignKey("vehicles.id"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(20, 6))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
