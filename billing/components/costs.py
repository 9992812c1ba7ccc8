"""The cost of use: what the use of each vehicle consumed of its parts in a month, beside
what was billed for it, per vehicle, fleet and customer (docs/components.md).

Rules:
- The wear cost of a part in a month is unit_cost × the largest share of any of its
  lifetime units that the month's use took (`wear.wear_cost`): the usage days of the
  month while it was fitted, and those days as time in service. Each part's cost is
  rounded half-up to the currency's minor unit, as a line; a vehicle's is their sum.
- A vehicle counts in a customer's month for the days it belonged to that customer, as its
  statement cuts them (the day of a move counts for the new holder, as the day of a swap
  counts for the part fitted); the month in progress counts up to today.
- Billed is the vehicle's amount in the customer's statement for the month, excluding VAT
  and before any spending-cap discount (`billing.pricing.fees.vehicle_amounts`): what the
  plan priced its use at; none for a caller who sees no money. The margin is
  billed − wear cost; its rate is the margin ÷ billed.
- A vehicle without parts on record has no wear cost (null), not a zero one; the cost of
  parts in another currency than the customer's is shown but gives no margin.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from billing.auth import Principal
from billing.charges.compute import IN_PROGRESS, StatementAsOf, statement_as_of
from billing.components import wear
from billing.components.bom import Bom
from billing.components.models import BomVersion, ComponentFitting, ComponentPart
from billing.csv_cells import spreadsheet_safe
from billing.devices.models import Customer, Fleet, FleetMembership
from billing.devices.services import get_customer, get_vehicle
from billing.metering.models import UsageDay
from billing.money import ZERO, round_money
from billing.periods import Period
from billing.pricing.fees import Segment, vehicle_amounts

THOUSAND = Decimal(1000)
CHUNK = 500


@dataclass(frozen=True)
class ComponentCost:
    part_id: str
    serial: str
    component_code: str
    name: str
    km: Decimal
    kwh: Decimal
    days: int
    life_share: Decimal
    wear_cost: Decimal


@dataclass(frozen=True)
class VehicleCost:
    vehicle_id: str
    fleet_id: str | None
    currency: str
    components: tuple[ComponentCost, ...]
    wear_cost: Decimal | None
    billed: Decimal | None
    margin: Decimal | None
    margin_rate: Decimal | None


@dataclass(frozen=True)
class CostTotals:
    wear_cost: Decimal
    billed: Decimal
    margin: Decimal | None
    margin_rate: Decimal | None


@dataclass(frozen=True)
class FleetCost:
    fleet_id: str | None
    totals: CostTotals


@dataclass(frozen=True)
class CustomerCost:
    customer_id: str
    period: Period
    status: str
    currency: str
    vehicles: tuple[VehicleCost, ...]
    fleets: tuple[FleetCost, ...]
    totals: CostTotals


def customer_cost_of_use(
    session: Session,
    principal: Principal,
    customer_id: str,
    period: Period | None,
    now: dt.datetime,
) -> CustomerCost:
    """The cost of use of a customer's vehicles in `period` (default: the month of `now`),
    per vehicle and fleet, beside what its statement bills for them (NotFound outside the
    scope of `principal`)."""
    customer = get_customer(session, principal, customer_id)
    found = statement_as_of(session, customer, period, now)
    return cost_of_statement(session, found, now, shows_money=principal.sees_money)


def vehicle_cost_of_use(
    session: Session, principal: Principal, vehicle_id: str, period: Period | None, now: dt.datetime
) -> VehicleCost:
    """The cost of use of one vehicle in `period`, in the statement of its customer."""
    vehicle = get_vehicle(session, principal, vehicle_id)
    customer_id = session.get_one(Fleet, vehicle.fleet_id).customer_id
    customer = get_customer(session, principal, customer_id)
    statement = statement_as_of(session, customer, period, now)
    found = cost_of_statement(
        session, statement, now, only=vehicle_id, shows_money=principal.sees_money
    )
    if found.vehicles:
        return found.vehicles[0]
    return VehicleCost(vehicle_id, vehicle.fleet_id, found.currency, (), None, None, None, None)


def all_customers_cost_of_use(
    session: Session, principal: Principal, period: Period, now: dt.datetime
) -> list[CustomerCost]:
    """Every active customer's cost of use in `period`, by customer id (finance's export)."""
    ids = session.scalars(
        select(Customer.id).where(Customer.archived_at.is_(None)).order_by(Customer.id)
    )
    return [customer_cost_of_use(session, principal, cid, period, now) for cid in ids]


def cost_of_statement(
    session: Session,
    found: StatementAsOf,
    now: dt.datetime,
    *,
    only: str | None = None,
    shows_money: bool = True,
) -> CustomerCost:
    """The cost of use of the vehicles of the statement `found` (only vehicle `only` when
    given); billed and margins left out when not `shows_money`."""
    statement = found.statement
    currency = statement.currency
    spans = _spans(found, now, only)
    billed: dict[str, Decimal] = {}
    if shows_money:
        lines = (line for line in statement.lines if line.vehicle_id in spans)
        billed = vehicle_amounts(lines, spans, currency)
    parts = _parts_cost(session, spans)
    fleets = _fleets(session, statement.customer_id, spans)
    vehicles = []
    for vehicle_id in spans:
        costs = parts.get(vehicle_id, [])
        wear_cost = sum((c.wear_cost for c, _ in costs), ZERO) if costs else None
        comparable = all(part_currency == currency for _, part_currency in costs)
        vehicles.append(
            VehicleCost(
                vehicle_id=vehicle_id,
                fleet_id=fleets.get(vehicle_id),
                currency=currency,
                components=tuple(c for c, _ in costs),
                wear_cost=wear_cost,
                billed=billed.get(vehicle_id),
                **_margin(wear_cost if comparable else None, billed.get(vehicle_id)),
            )
        )
    by_fleet: dict[str | None, list[VehicleCost]] = defaultdict(list)
    for item in vehicles:
        by_fleet[item.fleet_id].append(item)
    return CustomerCost(
        customer_id=statement.customer_id,
        period=statement.period,
        status=found.status,
        currency=currency,
        vehicles=tuple(vehicles),
        fleets=tuple(
            FleetCost(fleet_id, _totals(items))
            for fleet_id, items in sorted(by_fleet.items(), key=lambda kv: kv[0] or "")
        ),
        totals=_totals(vehicles),
    )


def _spans(
    found: StatementAsOf, now: dt.datetime, only: str | None
) -> dict[str, tuple[dt.date, dt.date]]:
    """The local days [first, last) each vehicle of the statement counts in it, by vehicle
    id (only vehicle `only` when given)."""
    statement = found.statement
    zone = ZoneInfo(statement.timezone)
    tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
    segments_of: dict[str, list[Segment]] = defaultdict(list)
    for held in sorted(statement.segments, key=lambda s: (s.segment.vehicle_id, s.segment.start)):
        if only is None or held.segment.vehicle_id == only:
            segments_of[held.segment.vehicle_id].append(held.segment)
    spans: dict[str, tuple[dt.date, dt.date]] = {}
    for vehicle_id, segments in segments_of.items():
        # Days as the statement cuts the vehicle's month: a stretch ending during a day
        # leaves that day to the next holder.
        start = min(s.start for s in segments).astimezone(zone).date()
        until = max(s.end for s in segments)
        # A month in progress is cut at now: today counts, as its usage does.
        in_progress = found.status == IN_PROGRESS and until >= found.as_of
        end = tomorrow if in_progress else until.astimezone(zone).date()
        spans[vehicle_id] = (start, min(end, tomorrow))
    return spans


def _parts_cost(
    session: Session, spans: dict[str, tuple[dt.date, dt.date]]
) -> dict[str, list[tuple[ComponentCost, str]]]:
    """Per vehicle, the wear cost of each part fitted during its span, with the currency
    of the part's BOM; parts by component code."""
    if not spans:
        return {}
    first = min(start for start, _ in spans.values())
    last = max(end for _, end in spans.values())
    usage: dict[str, dict[dt.date, tuple[int, int]]] = defaultdict(dict)
    fittings: list[Row[str, str, dt.date, dt.date | None, str, str, str, int]] = []
    for chunk in _chunks(list(spans)):
        for vehicle_id, day, distance, energy in session.execute(
            select(
                UsageDay.vehicle_id, UsageDay.day, UsageDay.distance_m, UsageDay.energy_wh
            ).where(UsageDay.vehicle_id.in_(chunk), UsageDay.day >= first, UsageDay.day < last)
        ):
            usage[vehicle_id][day] = (distance, energy)
        fittings += session.execute(
            select(
                ComponentFitting.vehicle_id,
                ComponentFitting.part_id,
                ComponentFitting.installed_on,
                ComponentFitting.removed_on,
                ComponentPart.serial,
                ComponentPart.component_code,
                ComponentPart.model,
                ComponentPart.bom_version,
            )
            .join(ComponentPart, ComponentPart.id == ComponentFitting.part_id)
            .where(
                ComponentFitting.vehicle_id.in_(chunk),
                ComponentFitting.installed_on < last,
                (ComponentFitting.removed_on.is_(None)) | (ComponentFitting.removed_on > first),
            )
        ).all()
    lives: dict[tuple[str, str], list] = {}
    for vehicle_id, part_id, installed_on, removed_on, serial, code, model, version in fittings:
        span_start, span_end = spans[vehicle_id]
        start = max(installed_on, span_start)
        end = min(removed_on or span_end, span_end)
        if end <= start:
            continue
        days = usage[vehicle_id]
        distance = sum(days[d][0] for d in days if start <= d < end)
        energy = sum(days[d][1] for d in days if start <= d < end)
        total = lives.setdefault((vehicle_id, part_id), [serial, code, model, version, 0, 0, 0])
        total[4] += distance
        total[5] += energy
        total[6] += (end - start).days
    boms = _boms(session)
    costs: dict[str, list[tuple[ComponentCost, str]]] = defaultdict(list)
    for (vehicle_id, part_id), (serial, code, model, version, distance, energy, days) in sorted(
        lives.items(), key=lambda kv: (kv[0][0], kv[1][1], kv[1][0])
    ):
        definition = boms(model, version)
        component = definition.component_of_part(code)
        life = wear.LifeUsed(
            km=Decimal(distance) / THOUSAND, kwh=Decimal(energy) / THOUSAND, days=days
        )
        share = wear.life_fraction(component, wear.used_in_units(component, life))
        costs[vehicle_id].append(
            (
                ComponentCost(
                    part_id=part_id,
                    serial=serial,
                    component_code=code,
                    name=component.name,
                    km=life.km,
                    kwh=life.kwh,
                    days=days,
                    life_share=share.quantize(wear.QUANTUM),
                    wear_cost=round_money(component.unit_cost * share, definition.currency),
                ),
                definition.currency,
            )
        )
    return costs


def _boms(session: Session) -> Callable[[str, int], Bom]:
    cache: dict[tuple[str, int], Bom] = {}

    def version_bom(model: str, version: int) -> Bom:
        if (model, version) not in cache:
            cache[(model, version)] = session.get_one(BomVersion, (model, version)).to_bom()
        return cache[(model, version)]

    return version_bom


def _fleets(
    session: Session, customer_id: str, spans: dict[str, tuple[dt.date, dt.date]]
) -> dict[str, str]:
    """The customer's fleet each vehicle was last in, of the memberships of its fleets."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(spans)):
        rows = session.execute(
            select(FleetMembership.vehicle_id, FleetMembership.fleet_id)
            .join(Fleet, Fleet.id == FleetMembership.fleet_id)
            .where(FleetMembership.vehicle_id.in_(chunk), Fleet.customer_id == customer_id)
            .order_by(FleetMembership.started_at)
        )
        found.update(dict(rows.all()))
    return found


def _margin(wear_cost: Decimal | None, billed: Decimal | None) -> dict[str, Decimal | None]:
    if wear_cost is None or billed is None:
        return {"margin": None, "margin_rate": None}
    margin = billed - wear_cost
    return {"margin": margin, "margin_rate": _rate(margin, billed)}


def _rate(margin: Decimal, billed: Decimal) -> Decimal | None:
    return (margin / billed).quantize(Decimal("0.0001")) if billed else None


def _totals(vehicles: Sequence[VehicleCost]) -> CostTotals:
    """Wear cost and billed over all vehicles; the margin over those that have one."""
    wear_cost = sum((v.wear_cost for v in vehicles if v.wear_cost is not None), ZERO)
    billed = sum((v.billed for v in vehicles if v.billed is not None), ZERO)
    with_margin = [v for v in vehicles if v.margin is not None]
    if not with_margin:
        return CostTotals(wear_cost, billed, None, None)
    margin = sum((v.margin for v in with_margin if v.margin is not None), ZERO)
    billed_with_margin = sum((v.billed for v in with_margin if v.billed is not None), ZERO)
    return CostTotals(wear_cost, billed, margin, _rate(margin, billed_with_margin))


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# --- CSV ------------------------------------------------------------------------------------

COLUMNS = (
    "row", "period", "customer_id", "fleet_id", "vehicle_id", "component_code", "serial",
    "km", "kwh", "days", "life_share", "wear_cost", "billed", "margin", "margin_rate",
    "currency",
)  # fmt: skip


def cost_of_use_csv(customers: Iterable[CustomerCost]) -> str:
    """Rows `component` (one per part), `vehicle`, `fleet` and `customer` (totals), in that
    nesting; exact decimals with a dot; cells a spreadsheet would run are escaped."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)

    def row(**cells: object) -> None:
        writer.writerow([spreadsheet_safe(_cell(cells.get(column))) for column in COLUMNS])

    for customer in customers:
        base = {"period": str(customer.period), "customer_id": customer.customer_id,
                "currency": customer.currency}  # fmt: skip
        for vehicle in customer.vehicles:
            where = {**base, "fleet_id": vehicle.fleet_id, "vehicle_id": vehicle.vehicle_id}
            for c in vehicle.components:
                row(row="component", **where, component_code=c.component_code, serial=c.serial,
                    km=c.km, kwh=c.kwh, days=c.days, life_share=c.life_share,
                    wear_cost=c.wear_cost)  # fmt: skip
            row(row="vehicle", **where, wear_cost=vehicle.wear_cost, billed=vehicle.billed,
                margin=vehicle.margin, margin_rate=vehicle.margin_rate)  # fmt: skip
        for fleet in customer.fleets:
            row(row="fleet", **base, fleet_id=fleet.fleet_id, **_total_cells(fleet.totals))
        row(row="customer", **base, **_total_cells(customer.totals))
    return buffer.getvalue()


def _total_cells(totals: CostTotals) -> dict[str, Decimal | None]:
    return {"wear_cost": totals.wear_cost, "billed": totals.billed, "margin": totals.margin,
            "margin_rate": totals.margin_rate}  # fmt: skip


def _cell(value: object) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)
