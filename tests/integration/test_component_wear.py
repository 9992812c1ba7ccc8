"""Wear from the metering rollups, against hand-computed values: across a swap, a
refurbished part moved to another vehicle, a counter reset, late readings and a rebuild."""

import datetime as dt
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest

from billing.auth import SYSTEM
from billing.components import maintenance, services
from billing.components.models import ComponentFitting
from billing.metering.rebuild import rebuild_rollups
from tests.conftest import NOW, auth
from tests.integration.components import fitted, load_example_bom, register_s1
from tests.rides import at, meter, ride

TODAY = dt.date(2026, 11, 15)  # NOW in Paris


def months(day_count: int) -> D:
    return (D(day_count) / D("30.436875")).quantize(D("0.000001"), rounding=ROUND_HALF_UP)


def wear_by_code(session, vehicle_id: str) -> dict:
    items = maintenance.vehicle_components(session, SYSTEM, vehicle_id, NOW)
    return {item.part.component_code: item for item in items}


def used(item, unit: str) -> D:
    return next(u.used for u in item.wear.units if u.unit == unit)


@pytest.fixture
def scooter(session, registry):
    """An S1 from 1 November (Paris): 100 km on the 2nd, its front tyre swapped as worn on
    the 5th at noon, 50 km on the 6th (whose first reading also carries the 20 km of the
    3rd, whose readings have not arrived yet)."""
    load_example_bom(session)
    register_s1(session, registry.fleet_id, "S1-W", "2026-11-01T00:00:00+01:00")
    ride(session, "S1-W", "2026-11-02T09:00:00+01:00", km=100, trips=2, kwh=2)
    old_tyre = fitted(session, "S1-W", "tyre-front")
    services.swap_component(
        session, SYSTEM, old_tyre.id, {"reason": "worn", "at": at("2026-11-05T12:00:00+01:00")}, NOW
    )
    ride(
        session, "S1-W", "2026-11-06T09:00:00+01:00", km=50, trips=1, kwh=1,
        counters=(1_120_000, 53_000),
    )  # fmt: skip
    meter(session)
    return old_tyre.id


def test_registration_fits_every_part_of_the_models_bom(session, scooter):
    parts = wear_by_code(session, "S1-W")
    assert len(parts) == 12
    assert parts["battery"].serial == "SER-S1-W/battery"
    fitting = session.query(ComponentFitting).filter_by(part_id=parts["frame"].part.part_id).one()
    assert fitting.installed_on == dt.date(2026, 11, 1)
    assert services.get_bom_version(session, "s1").locked_at == NOW


def test_a_swap_splits_the_distance_at_the_day_of_the_swap(session, scooter):
    parts = wear_by_code(session, "S1-W")
    new_tyre, frame = parts["tyre-front"], parts["frame"]
    assert used(new_tyre, "km") == D(70)  # the 20 km carried by the reading of the 6th
    assert frame.life.km == D(170)
    assert used(frame, "months") == months(15)  # 1 to 15 November
    assert new_tyre.life.days == 11  # from the 5th, the day of the swap
    assert new_tyre.wear.service.km_remaining == D(930)
    old = maintenance.part_detail(session, SYSTEM, scooter, NOW)
    assert old["status"] == "scrapped" and old["wear"] is None
    [old_life] = services_life(session, scooter).values()
    assert (old_life.km, old_life.days) == (D(100), 4)


def services_life(session, part_id):
    from sqlalchemy import select

    from billing.components.models import ComponentPart
    from billing.components.queries import life_used

    return life_used(session, select(ComponentPart.id).where(ComponentPart.id == part_id))


def test_late_readings_move_the_distance_to_the_part_fitted_then(session, scooter):
    ride(
        session, "S1-W", "2026-11-03T09:00:00+01:00", km=20, trips=1, kwh=1,
        counters=(1_100_000, 52_000),
    )  # fmt: skip
    meter(session)
    [old_life] = services_life(session, scooter).values()
    assert old_life.km == D(120)
    parts = wear_by_code(session, "S1-W")
    assert used(parts["tyre-front"], "km") == D(50)
    assert parts["frame"].life.km == D(170)
    assert used(parts["battery"], "cycles") == (D(4) / D("0.72")).quantize(D("0.000001"))


def test_a_rebuild_of_the_rollups_gives_the_same_wear(session, scooter):
    before = {code: item.life for code, item in wear_by_code(session, "S1-W").items()}
    rebuild_rollups(session, NOW, max_speed_kmh=60)
    after = {code: item.life for code, item in wear_by_code(session, "S1-W").items()}
    assert after == before


def test_a_counter_reset_starts_a_new_baseline_and_adds_only_real_distance(session, scooter):
    ride(
        session, "S1-W", "2026-11-10T09:00:00+01:00", km=30, trips=1, kwh=1,
        counters=(5_000, 100),
    )  # fmt: skip
    meter(session)
    parts = wear_by_code(session, "S1-W")
    assert used(parts["tyre-front"], "km") == D(100)
    assert parts["frame"].life.km == D(200)


def test_a_refurbished_battery_fitted_to_another_vehicle_keeps_its_life(session, registry, scooter):
    battery = fitted(session, "S1-W", "battery")
    services.remove_component(
        session,
        SYSTEM,
        battery.id,
        {"reason": "refurbishment", "at": at("2026-11-07T12:00:00+01:00")},
        NOW,
    )
    event = services.record_event(
        session,
        SYSTEM,
        battery.id,
        {"kind": "refurbishment", "at": at("2026-11-07T15:00:00+01:00")},
        NOW,
    )
    assert event.cost == D("150.00")  # the BOM's refurbishment cost
    register_s1(session, registry.fleet_id, "S1-X", "2026-11-01T00:00:00+01:00")
    services.remove_component(
        session, SYSTEM, fitted(session, "S1-X", "battery").id,
        {"reason": "upgrade", "at": at("2026-11-08T08:00:00+01:00")}, NOW,
    )  # fmt: skip
    services.fit_component(
        session,
        SYSTEM,
        "S1-X",
        {"part_id": battery.id, "installed_at": at("2026-11-08T08:00:00+01:00")},
        NOW,
    )
    ride(session, "S1-X", "2026-11-09T09:00:00+01:00", km=40, trips=1, kwh=4)
    meter(session)
    item = wear_by_code(session, "S1-X")["battery"]
    assert item.part.part_id == battery.id
    # 4 kWh in S1-W up to the 6th (2 + 1 + the 1 carried from the 3rd), then 4 in S1-X
    assert item.life.kwh == D(8)
    assert item.life.days == 6 + 8  # 1–6 in S1-W, 8–15 in S1-X
    assert used(item, "cycles") == D("11.111111")  # 8 / 0.72
    assert used(item, "months") == months(14)
    assert "battery" not in wear_by_code(session, "S1-W")


def test_the_projection_follows_the_recent_rate_and_says_when_history_is_too_short(
    session, registry, scooter
):
    tyre = wear_by_code(session, "S1-W")["tyre-rear"]
    # 170 km over the 14 days since the first usage day (2 to 15 November)
    rate = D(170) / 14
    remaining = D(3000) - D(170)
    expected = TODAY + dt.timedelta(days=int(remaining / rate))
    assert tyre.wear.projected_end_of_life == expected
    assert tyre.wear.history_sufficient
    register_s1(session, registry.fleet_id, "S1-NEW", "2026-11-12T00:00:00+01:00")
    ride(session, "S1-NEW", "2026-11-13T09:00:00+01:00", km=10, trips=1, kwh=1)
    meter(session)
    young = wear_by_code(session, "S1-NEW")
    assert not young["tyre-rear"].wear.history_sufficient
    assert young["tyre-rear"].wear.projected_end_of_life is None
    # months need no rate: the frame's 240 months are projected even so
    frame_end = young["frame"].wear.projected_end_of_life
    assert frame_end is not None and frame_end.year == 2046


def test_learned_lifetimes_count_the_parts_removed_as_worn(client, keys, scooter):
    response = client.get("/api/v1/bom/s1/learned-lifetimes", headers=auth(keys["finance"]))
    assert response.status_code == 200, response.json
    by_code = {item["code"]: item["lifetimes"] for item in response.json}
    assert by_code["battery"] == []  # none worn out
    km, months = by_code["tyre-front"]
    # the front tyre scrapped on the 5th: 100 km (the 20 km of the 3rd not yet arrived), 4 days
    assert km == {"unit": "km", "bom_lifetime": "4000", "count": 1, "median": "100.000000",
                  "p10": "100.000000", "p90": "100.000000"}  # fmt: skip
    assert (months["count"], months["median"]) == (1, "0.131420")  # 4 / 30.436875 = 0.1314197…
