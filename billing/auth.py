"""Principals, roles and scopes (the keys that carry them live in `billing.api_keys`).

Roles: `admin` sees and does everything; `finance` reads everything and handles invoices
and exports; `operator` manages the vehicles of its fleets; `customer` reads its own account.
A resource outside a key's scope answers 404, exactly as if it did not exist.

Money is for admin, finance and customers (`Principal.sees_money`): an operator reads the
usage of its fleets' customers — statements included — but no amount, price or total.
`billing.statements.services.get_statement` applies it, the one path every statement
(JSON, CSV, terminal, pages) is read through; invoices are closed to operators altogether.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "operator", "finance", "customer")
MONEY_ROLES = ("admin", "finance", "customer")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and the customers or fleets it is limited to."""

    key_id: str
    role: str
    customer_id: str | None = None
    fleet_ids: frozenset[str] = frozenset()

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "finance")

    @property
    def sees_money(self) -> bool:
        """Whether amounts may be shown to this caller (operators see usage only)."""
        return self.role in MONEY_ROLES


# The principal of the platform's own work (commands, the scheduler, the demo): an admin.
SYSTEM = Principal(key_id="system", role="admin")


class InvalidScope(ValueError):
    pass


def check_scope(role: str, customer_id: str | None, fleet_ids: tuple[str, ...]) -> None:
    """Refuse a role with the wrong kind of scope: customers have one customer, operators
    at least one fleet, admin and finance none."""
    if role not in ROLES:
        raise InvalidScope(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == "customer" and customer_id is None:
        raise InvalidScope("a customer key needs the customer it belongs to")
    if role == "operator" and not fleet_ids:
        raise InvalidScope("an operator key needs at least one fleet")
    if role != "customer" and customer_id is not None:
        raise InvalidScope("only customer keys are scoped to a customer")
    if role != "operator" and fleet_ids:
        raise InvalidScope("only operator keys are scoped to fleets")
