"""Stored plans: a plan and its numbered versions (docs/plans.md).

The rating engine (`plans`, `rating`, `totals`) stays pure; this module only stores what
`plan_to_dict` produces and hands it back to `parse_plan`. A version's definition is JSON
text with every decimal written as a string, so it reads back exactly on SQLite and
PostgreSQL alike.

Rule: a version is immutable once any usage was rated on it (`locked_at` is set). Editing a
plan whose latest version is locked adds a version; editing an unlocked one replaces it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.db import Base, UTCDateTime, utcnow
from billing.pricing import plans


class Plan(Base):
    """A plan as customers know it: its code, and the name and currency of its latest version."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PlanVersion(Base):
    """One version of a plan's definition, numbered 1, 2, … per plan."""

    __tablename__ = "plan_versions"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    definition: Mapped[str] = mapped_column(Text)
    # When the definition was set: an unlocked version replaced in place gets a new date.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by the first rating of usage on this version; from then on it never changes.
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[Plan] = relationship()

    def to_plan(self) -> plans.Plan:
        """The definition as the rating engine takes it."""
        return _definition_plan(self.definition)


def definition_text(plan: plans.Plan) -> str:
    """The stored form of a plan: `plan_to_dict` as JSON, keys in a stable order, so that
    equal plans give equal texts."""
    return json.dumps(plans.plan_to_dict(plan), ensure_ascii=False, sort_keys=True)


@functools.lru_cache(maxsize=256)
def _definition_plan(text: str) -> plans.Plan:
    # One Plan object per stored definition: parsing is not free, and the rating engine
    # keeps its compiled form of a plan by identity, so handing it the same object each
    # time makes rating a version the second time much cheaper. Plans are immutable.
    return plans.parse_plan(json.loads(text))
