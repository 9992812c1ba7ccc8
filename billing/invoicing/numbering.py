"""Invoice numbers: continuous per series, without gaps, in chronological order.

French law (CGI annexe II art. 242 nonies A, 7°) wants invoice numbers "based on a
continuous chronological sequence without gaps"; separate series are allowed when each is
continuous. There is one series per kind of document and calendar year: `F-2026` for
invoices (F-2026-000001, F-2026-000002, …), `AV-2026` for credit notes.

Be careful changing this module: a number handed out twice, or skipped, is a breach that
an auditor sees at once. The counter row is locked until the caller commits the document
that carries the number, so a finalization that rolls back gives its number back and two
concurrent ones queue on the lock instead of taking the same number.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing.invoicing.models import NumberSeries

INVOICE_PREFIX = "F"
CREDIT_NOTE_PREFIX = "AV"
DIGITS = 6


def seller_day(now: dt.datetime, timezone: str) -> dt.date:
    """The seller's calendar day at `now`: the issue date of what is finalized then."""
    return now.astimezone(ZoneInfo(timezone)).date()


def series_name(prefix: str, day: dt.date) -> str:
    return f"{prefix}-{day.year}"


def format_number(series: str, number: int) -> str:
    """'F-2026' and 123 → 'F-2026-000123'."""
    return f"{series}-{number:0{DIGITS}d}"


def take_number(session: Session, prefix: str, day: dt.date) -> tuple[str, dt.date]:
    """The next number of the series of `prefix` in `day`'s year, and its issue date."""
    numbers, issue_date = take_numbers(session, prefix, day, 1)
    return numbers[0], issue_date


def take_numbers(
    session: Session, prefix: str, day: dt.date, count: int
) -> tuple[list[str], dt.date]:
    """The next `count` numbers of the series of `prefix` in `day`'s year, in order, and
    their issue date.

    The issue date is `day`, or the last issue date of the series when that is later: a
    finalization that waited for the lock behind one stamped a moment later (across
    midnight) must not carry an earlier date than the number before it. Does not commit:
    the lock holds until the caller's commit, which must carry the numbers.
    """
    series = series_name(prefix, day)
    counter = _locked_counter(session, series)
    if counter is None:
        _insert_counter(session, series, day)
        counter = _locked_counter(session, series)
        assert counter is not None  # inserted just now, or by a concurrent transaction
    first = counter.last_number + 1
    counter.last_number += count
    counter.last_issue_date = max(day, counter.last_issue_date)
    session.flush()
    numbers = [format_number(series, n) for n in range(first, counter.last_number + 1)]
    return numbers, counter.last_issue_date


def _locked_counter(session: Session, series: str) -> NumberSeries | None:
    # populate_existing: the identity map may hold the row as an earlier transaction of
    # this session left it; the locked read must win.
    return session.scalars(
        select(NumberSeries)
        .where(NumberSeries.series == series)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _insert_counter(session: Session, series: str, day: dt.date) -> None:
    """Create the series at 0; a concurrent creation wins quietly (ON CONFLICT DO NOTHING),
    after which the caller locks the row it made."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(NumberSeries)
        .values(series=series, last_number=0, last_issue_date=day)
        .on_conflict_do_nothing(index_elements=["series"])
    )
