"""The fleet operators' pages: fleets and their vehicles' telemetry, broker credentials,
rejected messages and held anomalies. Roles as the API's: admin and operator."""

from __future__ import annotations

from typing import Any

from flask import request

from billing.devices import services as devices
from billing.metering import anomalies
from billing.metering.rollups import ACCEPTED, REJECTED
from billing.portal import operator_pages as pages
from billing.portal.web import blp, now, principal, render, signed_in, zone
from billing.web import ROW_ID, db_session

OPERATORS = ("admin", "operator")


@blp.get("/fleets/")
@signed_in(*OPERATORS)
def fleets() -> Any:
    return render("operator/fleets.html", fleets=pages.fleets(db_session(), principal()))


@blp.get("/fleets/<fleet_id>")
@signed_in(*OPERATORS)
def fleet(fleet_id: str) -> Any:
    telemetry = pages.fleet_telemetry(db_session(), principal(), fleet_id, now())
    return render("operator/fleet.html", telemetry=telemetry, zone=zone(telemetry.fleet.customer))


def _confirmed() -> bool:
    return request.form.get("confirm") == "yes"


@blp.post("/vehicles/<vehicle_id>/credentials")
@signed_in(*OPERATORS)
def issue_vehicle_credential(vehicle_id: str) -> Any:
    vehicle = devices.get_vehicle(db_session(), principal(), vehicle_id)
    if not _confirmed():
        return render(
            "operator/confirm.html", action="issue", subject=vehicle.id, fleet=vehicle.fleet
        )
    credential, password = devices.issue_vehicle_credential(
        db_session(), principal(), vehicle.id, now()
    )
    return render(
        "operator/password.html", credential=credential, password=password, fleet=vehicle.fleet
    )


@blp.post("/vehicles/<vehicle_id>/credentials/revoke")
@signed_in(*OPERATORS)
def revoke_vehicle_credential(vehicle_id: str) -> Any:
    vehicle = devices.get_vehicle(db_session(), principal(), vehicle_id)
    if not _confirmed():
        return render(
            "operator/confirm.html", action="revoke", subject=vehicle.id, fleet=vehicle.fleet
        )
    devices.revoke_vehicle_credential(db_session(), principal(), vehicle.id, now())
    return render("operator/revoked.html", subject=vehicle.id, fleet=vehicle.fleet)


@blp.post("/fleets/<fleet_id>/credentials")
@signed_in(*OPERATORS)
def issue_gateway_credential(fleet_id: str) -> Any:
    fleet = devices.get_fleet(db_session(), principal(), fleet_id)
    subject = devices.gateway_username(fleet.id)
    if not _confirmed():
        return render("operator/confirm.html", action="issue", subject=subject, fleet=fleet)
    credential, password = devices.issue_gateway_credential(
        db_session(), principal(), fleet.id, now()
    )
    return render("operator/password.html", credential=credential, password=password, fleet=fleet)


@blp.post("/fleets/<fleet_id>/credentials/revoke")
@signed_in(*OPERATORS)
def revoke_gateway_credential(fleet_id: str) -> Any:
    fleet = devices.get_fleet(db_session(), principal(), fleet_id)
    subject = devices.gateway_username(fleet.id)
    if not _confirmed():
        return render("operator/confirm.html", action="revoke", subject=subject, fleet=fleet)
    devices.revoke_gateway_credential(db_session(), principal(), fleet.id, now())
    return render("operator/revoked.html", subject=subject, fleet=fleet)


@blp.get("/telemetry/")
@signed_in(*OPERATORS)
def telemetry() -> Any:
    review = pages.telemetry_review(db_session(), principal())
    return render(
        "operator/telemetry.html", review=review, zone=zone(), done=request.args.get("done")
    )


@blp.post(f"/telemetry/anomalies/<{ROW_ID}:anomaly_id>/<any('accept', 'reject'):decision>")
@signed_in(*OPERATORS)
def decide_anomaly(anomaly_id: int, decision: str) -> Any:
    scope = principal().fleet_ids if principal().role == "operator" else None
    anomalies.decide_anomaly(
        db_session(), anomaly_id, _DECISIONS[decision], now(),
        decided_by=principal().key_id, fleet_ids=scope,
    )  # fmt: skip
    return render(
        "operator/telemetry.html",
        review=pages.telemetry_review(db_session(), principal()),
        zone=zone(),
        done=f"{anomaly_id}: {decision}",
    )


_DECISIONS = {"accept": ACCEPTED, "reject": REJECTED}
