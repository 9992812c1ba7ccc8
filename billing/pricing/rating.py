"""The rating engine: usage quantities in, priced lines out (docs/plans.md).

Rules, for each charge of the plan and each vehicle, over one period:

1. Quantity: the vehicle's usage of the charge's metric (a missing metric is 0, other keys
   are ignored). `vehicle_days` is always the vehicle's `days_on_plan`, the one measure of
   how long it was on this plan version.
2. Billable quantity: the quantity minus the charge's included units, never below 0.
   Included units are per period and not prorated.
3. Price of the billable quantity, by model:
   - flat: amount x days_on_plan / days_in_period;
   - per_unit: billable x unit_amount;
   - package: ceil(billable / package_size) x package_amount (a started block counts);
   - graduated: each unit at the rate of the tier it falls in, plus the flat amount of every
     tier reached (tier 1 is reached even at 0);
   - volume: every unit at the rate of the tier the total falls in, plus that tier's flat
     amount. Bounds are inclusive: 100 with up_to 100 is in that tier, 100.5 is above it.
4. Minimum and maximum clamp the price. Per vehicle they are prorated by
   days_on_plan / days_in_period, so half a month on the plan gets half the floor and cap.
5. The line amount is the price rounded half-up to the currency's minor unit.

A pooled charge sums the quantities of all the vehicles given, takes the included units
once, prices and clamps that total once (the minimum and maximum are not prorated: they
are the pool's, whatever the vehicles' days), rounds it once, then splits it back over the
vehicles in proportion to their quantities (evenly when all are 0), to the cent.

Arithmetic is exact: validated plans keep numbers below 10^12 with 6 decimals and the
engine computes with 50 significant digits. The one division, proration by
days_in_period, is carried to 50 digits before the amount is rounded to the cent.
"""

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from functools import cache
from typing import Any, TypeVar, cast

from billing.money import ZERO, quantum, split_proportionally, vat_amount
from billing.pricing.plans import Charge, Plan, Tier, validate_plan

PREVIEW_VEHICLE_ID = "preview"

_TRAPS = [InvalidOperation, DivisionByZero, Overflow]
_CONTEXT = Context(prec=50, traps=_TRAPS)
# Rule 5 as a context: Context.quantize is faster than Decimal.quantize with a rounding
# argument, four times per vehicle in the hot loop. Each rating copies it, as a Context
# records flags.
_ROUNDING = Context(prec=50, rounding=ROUND_HALF_UP, traps=_TRAPS)


@dataclass(frozen=True, slots=True)
class TierLine:
    """How much of a quantity one tier priced, and at what exact (unrounded) amount."""

    tier: int
    from_quantity: Decimal
    up_to: Decimal | None
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VehicleUsage:
    """One vehicle's usage on one plan version in one period."""

    vehicle_id: str
    quantities: Mapping[str, Decimal]
    days_on_plan: Decimal


@dataclass(frozen=True, slots=True)
class RatedLine:
    """One vehicle's line for one charge: what was measured, billed, and its rounded amount.

    `unit_amount` is the single unit price when there is one (per_unit, the volume tier's
    rate, the flat amount), None for graduated and package. `tiers` is the tier breakdown of
    graduated (every tier reached) and volume (the tier the total falls in) charges; for a
    pooled charge it describes the pool, as do the `pooled_*` fields.
    """

    vehicle_id: str
    charge_index: int
    metric: str
    model: str
    scope: str
    quantity: Decimal
    billable_quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    tiers: tuple[TierLine, ...]
    pooled_quantity: Decimal | None = None
    pooled_billable_quantity: Decimal | None = None
    pooled_amount: Decimal | None = None
    minimum_applied: bool = False
    maximum_applied: bool = False


@dataclass(frozen=True, slots=True)
class Preview:
    """The price of one vehicle's usage on a plan, with VAT at the plan's rate."""

    lines: tuple[RatedLine, ...]
    subtotal: Decimal
    vat: Decimal
    total: Decimal
    currency: str
    vat_rate: Decimal


def rate_vehicles(
    plan: Plan, vehicles: Sequence[VehicleUsage], days_in_period: int
) -> list[RatedLine]:
    """Price the usage of all a customer's vehicles on one plan version in one period.

    The vehicles must come together because pooled charges price their total. Returns one
    line per vehicle per charge, zero amounts included, ordered by vehicle (as given) then
    by charge index. Raises ValueError for a period that is not a positive number of days,
    days_on_plan outside 0..days_in_period or a negative quantity, and `PlanInvalid` for a
    plan built in code that breaks the rules of `parse_plan`.
    """
    if isinstance(days_in_period, bool) or not isinstance(days_in_period, int):
        raise ValueError(f"days_in_period must be an int, not {days_in_period!r}")
    if days_in_period <= 0:
        raise ValueError(f"days_in_period must be positive, not {days_in_period}")
    with localcontext(_CONTEXT):
        return _plan_rater(plan).rate(vehicles, days_in_period)


def preview_plan(
    plan: Plan, quantities: Mapping[str, Decimal], days_on_plan: Decimal, days_in_period: int
) -> Preview:
    """Price one vehicle's usage on a plan, as sales and customers compare plans.

    Pooled charges are priced as a pool of this one vehicle. VAT is the plan's rate on the
    subtotal of the rounded lines.
    """
    usage = VehicleUsage(PREVIEW_VEHICLE_ID, quantities, days_on_plan)
    lines = tuple(rate_vehicles(plan, [usage], days_in_period))
    subtotal = sum((line.amount for line in lines), ZERO)
    vat = vat_amount(subtotal, plan.vat_rate, plan.currency)
    return Preview(lines, subtotal, vat, subtotal + vat, plan.currency, plan.vat_rate)


_Frozen = TypeVar("_Frozen")


@cache
def _mutable_twin(cls: type) -> type:
    """A subclass of the frozen, slotted dataclass `cls` that adds no slots and has object's
    __init__, __setattr__ and __delattr__: an instance of it whose slots are set can become
    a `cls` by __class__ assignment, which CPython allows between classes of the same layout.

    Why: the engine makes one RatedLine per vehicle and charge, and a frozen dataclass's
    __init__ sets each field through object.__setattr__, at about 70 ns a field: for the 15
    fields of a RatedLine that was over half the rating time. The result is a genuine `cls`
    instance (type, equality, hash, immutability), made five times faster. A subclass that
    adds no slots, rather than an unrelated class with the same slots, is the layout check's
    fast case: CPython then need not compare the two classes' slot names, which cost a
    third of the time of the assignment.
    """
    # All three object's: with the frozen __delattr__ still inherited, CPython would store
    # every field through a Python-level __setattr__, fifteen times slower.
    plain = {
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
    }
    return type(f"_Mutable{cls.__name__}", (cls,), {"__slots__": (), **plain})


def _fast_constructor(cls: type[_Frozen], /, **constants: Any) -> Callable[..., _Frozen]:
    """A constructor of instances of the frozen, slotted dataclass `cls` (see
    `_mutable_twin`) whose fields in `constants` hold those values; it takes the other
    fields, in field order. The constants are set from the constructor's globals, not
    passed at each call."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    if unknown := constants.keys() - set(names):
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    namespace: dict[str, Any] = {"_twin": _mutable_twin(cast(type, cls)), "_frozen": cls}
    namespace.update({f"_constant_{name}": value for name, value in constants.items()})
    parameters = ", ".join(name for name in names if name not in constants)
    assignments = "".join(
        f"    instance.{name} = {'_constant_' if name in constants else ''}{name}\n"
        for name in names
    )
    exec(  # the source is made of the dataclass's field names only
        # _twin() is three times faster than object.__new__(_twin).
        f"def new({parameters}):\n    instance = _twin()\n{assignments}"
        "    instance.__class__ = _frozen\n    return instance\n",
        namespace,
    )
    return namespace["new"]


# A price function turns a billable quantity into (exact amount, display unit price, tiers).
_Price = Callable[[Decimal], tuple[Decimal, Decimal | None, tuple[TierLine, ...]]]
# An amount rounded to the currency's minor unit (rule 5), from (amount, minor unit).
_Quantize = Callable[[Decimal, Decimal], Decimal]
# A vehicle's lines of the plan's per-vehicle charges, in plan order, from
# (vehicle id, quantities, days_on_plan, days_in_period, quantize).
_VehicleLines = Callable[
    [str, Mapping[str, Decimal], Decimal, Decimal, _Quantize], tuple[RatedLine, ...]
]
# Every line of the vehicles given, vehicle by vehicle, from (vehicles, days_in_period,
# quantize).
_AllLines = Callable[[Sequence[VehicleUsage], Decimal, _Quantize], list[RatedLine]]
_PoolRate = Callable[[Sequence[VehicleUsage], int], list[RatedLine]]


class _PlanRater:
    """A plan compiled for rating: one generated function for the per-vehicle charges, and
    a closure per pooled charge."""

    __slots__ = ("all_lines", "order", "pools", "vehicle_lines")

    def __init__(self, plan: Plan):
        exponent = quantum(plan.currency)
        per_vehicle = [
            (index, charge) for index, charge in enumerate(plan.charges) if charge.scope != "pooled"
        ]
        self.vehicle_lines, self.all_lines = _vehicle_lines_functions(per_vehicle, exponent)
        self.pools = {
            index: _pool_rater(index, charge, exponent, plan.currency)
            for index, charge in enumerate(plan.charges)
            if charge.scope == "pooled"
        }
        # Per charge in plan order: (True, its pool's index) or (False, its position in
        # the vehicle's lines); None without pooled charges, when the lines are in order.
        positions = iter(range(len(per_vehicle)))
        self.order = (
            [
                (True, index) if index in self.pools else (False, next(positions))
                for index in range(len(plan.charges))
            ]
            if self.pools
            else None
        )

    def rate(self, vehicles: Sequence[VehicleUsage], days_in_period: int) -> list[RatedLine]:
        # A Decimal, for the raters: comparing a Decimal with an int converts the int.
        period = Decimal(days_in_period)
        quantize = _ROUNDING.copy().quantize
        if self.order is None:
            return self.all_lines(vehicles, period, quantize)
        for usage in vehicles:
            if not ZERO <= usage.days_on_plan <= period:
                raise _days_outside(usage.vehicle_id, usage.days_on_plan, period)
        pooled = {
            index: rate_pool(vehicles, days_in_period) for index, rate_pool in self.pools.items()
        }
        vehicle_lines = self.vehicle_lines
        lines: list[RatedLine] = []
        for position, usage in enumerate(vehicles):
            own = vehicle_lines(
                usage.vehicle_id, usage.quantities, usage.days_on_plan, period, quantize
            )
            lines.extend(
                pooled[at][position] if is_pooled else own[at] for is_pooled, at in self.order
            )
        return lines


# Compiled plans by identity. Each entry holds the plan itself, so its id cannot be reused
# by another object while the entry lives; FIFO eviction bounds the memory.
_RATERS: dict[int, tuple[Plan, _PlanRater]] = {}
_RATERS_SIZE = 64


def _plan_rater(plan: Plan) -> _PlanRater:
    entry = _RATERS.get(id(plan))
    if entry is not None and entry[0] is plan:
        return entry[1]
    rater = _PlanRater(validate_plan(plan))
    if len(_RATERS) >= _RATERS_SIZE:
        _RATERS.pop(next(iter(_RATERS)), None)
    _RATERS[id(plan)] = (plan, rater)
    return rater


def _vehicle_lines_functions(
    charges: Sequence[tuple[int, Charge]], exponent: Decimal
) -> tuple[_VehicleLines, _AllLines]:
    """Two functions, generated for the plan, that price its per-vehicle charges: rules 1
    to 5 of this module's docstring. The first prices one vehicle; the second, for plans
    without pooled charges, every vehicle given, in one loop (after checking each one's
    days on the plan).

    This is the engine's hot loop, so each charge's rules are written out for its model
    with its constants bound, no branch for what the charge does not have (no clamp
    without a minimum or maximum, no tiers without tiers), and its RatedLine built in
    place (see `_mutable_twin`): calls and tests cost as much as the arithmetic here.
    `_price_function` is the same rules for a pool, and a property test holds the two equal.
    """
    namespace: dict[str, Any] = {
        "ZERO": ZERO,
        "bisect_left": bisect_left,
        "_negative": _negative,
        "_days_outside": _days_outside,
        "_exponent": exponent,
        "_RatedLine": RatedLine,
        "_new_RatedLine": _mutable_twin(RatedLine),
        "_TierLine": TierLine,
        "_new_TierLine": _mutable_twin(TierLine),
    }
    # Most vehicles are on the plan for the whole period: their body has no proration.
    full, part = ["get = quantities.get"], ["get = quantities.get"]
    for index, charge in charges:
        full += _charge_source(index, charge, namespace, full_period=True)
        part += _charge_source(index, charge, namespace, full_period=False)
    lines = f"({''.join(f'line_{index}, ' for index, _ in charges)})"
    # all_lines makes the plan's constants its locals, once per call: its loop then reads
    # them as fast locals rather than globals, some fifty reads per vehicle.
    constants = f"{', '.join(namespace)},"
    namespace["_constants"] = tuple(namespace.values())
    source = "\n".join(
        [
            "def vehicle_lines(vehicle_id, quantities, days, period, quantize):",
            "    if days == period:",
            *_indented(full, 8),
            "    else:",
            *_indented(part, 8),
            f"    return {lines}",
            "def all_lines(vehicles, period, quantize):",
            f"    {constants} = _constants",
            "    lines = []",
            "    extend = lines.extend",
            "    for usage in vehicles:",
            "        vehicle_id, quantities = usage.vehicle_id, usage.quantities",
            "        days = usage.days_on_plan",
            "        if days == period:",
            *_indented(full, 12),
            "        elif ZERO <= days <= period:",
            *_indented(part, 12),
            "        else:",
            "            raise _days_outside(vehicle_id, days, period)",
            f"        extend({lines})",
            "    return lines",
            "",
        ]
    )
    exec(source, namespace)  # the source is made of this module's text and charge indexes
    return namespace["vehicle_lines"], namespace["all_lines"]


def _indented(lines: list[str], spaces: int) -> list[str]:
    return [" " * spaces + line for line in lines]


def _charge_source(
    index: int, charge: Charge, namespace: dict[str, Any], *, full_period: bool
) -> list[str]:
    """The statements that set `line_<index>`, the vehicle's line of this charge, for a
    vehicle on the plan for the whole period or not; the charge's constants go into
    `namespace` as c<index>_<name>."""
    prefix = f"c{index}_"
    namespace.update(
        {
            f"{prefix}metric": charge.metric,
            f"{prefix}model": charge.model,
            f"{prefix}unit": charge.unit_amount,
        }
    )
    if charge.model == "flat":
        return _flat_source(index, charge, namespace, full_period=full_period)
    quantity, billable, amount = f"quantity_{index}", f"billable_{index}", f"amount_{index}"
    namespace[f"{prefix}included"] = charge.included
    lines = [
        f"{quantity} = days"
        if charge.metric == "vehicle_days"
        else f"{quantity} = get({prefix}metric, ZERO)",
        # included is not negative: nor is a quantity above it
        f"if {quantity} > {prefix}included:",
        f"    {billable} = {quantity} - {prefix}included",
        f"elif {quantity} < ZERO:",
        f"    raise _negative(vehicle_id, {prefix}metric, {quantity})",
        "else:",
        f"    {billable} = ZERO",
    ]
    unit, tiers = f"{prefix}unit", "()"
    if charge.model == "per_unit":
        lines.append(f"{amount} = {billable} * {prefix}unit")
    elif charge.model == "package":
        namespace[f"{prefix}size"] = charge.package_size
        namespace[f"{prefix}block"] = charge.package_amount
        blocks, rest = f"blocks_{index}", f"rest_{index}"
        lines += [
            # divmod is exact where a rounded quotient's ceiling could miss a tiny remainder.
            f"{blocks}, {rest} = divmod({billable}, {prefix}size)",
            f"if {rest}:",
            f"    {blocks} += 1",
            f"{amount} = {blocks} * {prefix}block",
        ]
    else:
        lines += _tiers_source(index, charge, namespace)
        tiers = f"tiers_{index}"
        if charge.model == "volume":
            unit = f"tier_rate_{index}"
    lines += _clamp_source(index, charge, namespace, full_period=full_period)
    clamped = charge.minimum is not None or charge.maximum is not None
    return lines + _line_source(
        index,
        quantity=quantity,
        billable_quantity=billable,
        unit_amount=unit,
        amount=f"quantize({amount}, _exponent)",
        tiers=tiers,
        minimum_applied=f"at_minimum_{index}" if clamped else "False",
        maximum_applied=f"at_maximum_{index}" if clamped else "False",
    )


def _flat_source(
    index: int, charge: Charge, namespace: dict[str, Any], *, full_period: bool
) -> list[str]:
    prefix, amount = f"c{index}_", f"amount_{index}"
    namespace[f"{prefix}amount"] = charge.amount
    # A full period's amount is rounded once, per plan.
    namespace[f"{prefix}full"] = charge.amount.quantize(  # type: ignore[union-attr]
        namespace["_exponent"], ROUND_HALF_UP
    )
    return [
        f"{amount} = {prefix}full"
        if full_period
        else f"{amount} = quantize({prefix}amount * days / period, _exponent)",
        *_line_source(
            index,
            quantity="days",
            billable_quantity="days",
            unit_amount=f"{prefix}amount",
            amount=amount,
            tiers="()",
            minimum_applied="False",
            maximum_applied="False",
        ),
    ]


def _tiers_source(index: int, charge: Charge, namespace: dict[str, Any]) -> list[str]:
    """Graduated: each unit at its tier's rate, the tiers below in full (their lines and
    total computed once per plan); volume: every unit at the rate of the total's tier."""
    prefix, billable, amount = f"c{index}_", f"billable_{index}", f"amount_{index}"
    graduated = charge.model == "graduated"
    namespace[f"{prefix}bounds"], namespace[f"{prefix}prices"] = _tier_prices(
        charge.tiers, graduated=graduated
    )
    number, start, up_to = f"tier_number_{index}", f"tier_start_{index}", f"tier_up_to_{index}"
    rate, flat = f"tier_rate_{index}", f"tier_flat_{index}"
    base, below = f"base_{index}", f"below_{index}"
    in_tier, tier_amount, tier = f"in_tier_{index}", f"tier_amount_{index}", f"tier_{index}"
    return [
        # the first tier with billable <= up_to
        f"{number}, {start}, {up_to}, {rate}, {flat}, {base}, {below} = "
        f"{prefix}prices[bisect_left({prefix}bounds, {billable})]",
        f"{in_tier} = {billable} - {start}" if graduated else f"{in_tier} = {billable}",
        f"{tier_amount} = {in_tier} * {rate} + {flat}",
        *_instance_source(
            tier,
            TierLine,
            tier=number,
            from_quantity=start,
            up_to=up_to,
            quantity=in_tier,
            unit_amount=rate,
            flat_amount=flat,
            amount=tier_amount,
        ),
        f"tiers_{index} = {below} + ({tier},)",
        f"{amount} = {base} + {tier_amount}" if graduated else f"{amount} = {tier_amount}",
    ]


def _clamp_source(
    index: int, charge: Charge, namespace: dict[str, Any], *, full_period: bool
) -> list[str]:
    """Rule 4: the minimum and maximum, prorated by the days on the plan."""
    minimum, maximum = charge.minimum, charge.maximum
    if minimum is None and maximum is None:
        return []
    prefix, amount = f"c{index}_", f"amount_{index}"
    floor, cap = f"floor_{index}", f"cap_{index}"
    namespace[f"{prefix}minimum"], namespace[f"{prefix}maximum"] = minimum, maximum
    bounds = [(floor, "minimum")] * (minimum is not None) + [(cap, "maximum")] * (
        maximum is not None
    )
    lines = [f"at_minimum_{index} = at_maximum_{index} = False"]
    lines += [
        f"{name} = {prefix}{bound}" if full_period else f"{name} = {prefix}{bound} * days / period"
        for name, bound in bounds
    ]
    test = "if"
    if minimum is not None:
        lines += [f"if {amount} < {floor}:", f"    {amount}, at_minimum_{index} = {floor}, True"]
        test = "elif"
    if maximum is not None:
        lines += [f"{test} {amount} > {cap}:", f"    {amount}, at_maximum_{index} = {cap}, True"]
    return lines


def _line_source(index: int, **values: str) -> list[str]:
    """The statements that build `line_<index>`, the RatedLine of a per-vehicle charge:
    `values` are the expressions of its varying fields."""
    prefix = f"c{index}_"
    return _instance_source(
        f"line_{index}",
        RatedLine,
        vehicle_id="vehicle_id",
        charge_index=str(index),
        metric=f"{prefix}metric",
        model=f"{prefix}model",
        scope="'vehicle'",
        **values,
        pooled_quantity="None",
        pooled_billable_quantity="None",
        pooled_amount="None",
    )


def _instance_source(variable: str, cls: type, **values: str) -> list[str]:
    """The statements that set `variable` to an instance of the frozen, slotted dataclass
    `cls` (RatedLine or TierLine), built in place (see `_mutable_twin`) from the expressions
    of all its fields in `values`: no call, no check."""
    names = [field.name for field in fields(cls)]
    assert sorted(values) == sorted(names), f"every field of a {cls.__name__} is set"
    return [
        f"{variable} = _new_{cls.__name__}()",
        *(f"{variable}.{name} = {values[name]}" for name in names),
        f"{variable}.__class__ = _{cls.__name__}",
    ]


def _tier_prices(
    tiers: tuple[Tier, ...], *, graduated: bool
) -> tuple[list[Decimal], list[tuple[Any, ...]]]:
    """(the upper bounds of all tiers but the last, and per tier: its number, start, upper
    bound, unit amount and flat amount, then the total amount and the lines of the tiers
    below it (graduated) or None and () (volume))."""
    if not tiers:
        return [], []
    bounds = _upper_bounds(tiers)
    starts = [ZERO, *bounds]
    prices: list[tuple[Any, ...]] = []
    full: list[TierLine] = []  # graduated: the tiers below a quantity's are used in full
    for number, (tier, start, bound) in enumerate(
        zip(tiers, starts, [*bounds, None], strict=True), start=1
    ):
        below = (
            (sum((line.amount for line in full), ZERO), tuple(full)) if graduated else (None, ())
        )
        rates = (tier.unit_amount, tier.flat_amount)
        prices.append((number, start, tier.up_to, *rates, *below))
        if graduated and bound is not None:
            size = bound - start
            amount = size * tier.unit_amount + tier.flat_amount
            full.append(TierLine(number, start, tier.up_to, size, *rates, amount))
    return bounds, prices


def _pool_rater(index: int, charge: Charge, exponent: Decimal, currency: str) -> _PoolRate:
    metric, included = charge.metric, charge.included
    price = _price_function(charge)
    new_line = _fast_constructor(
        RatedLine, charge_index=index, metric=metric, model=charge.model, scope="pooled"
    )

    def rate_pool(vehicles: Sequence[VehicleUsage], days_in_period: int) -> list[RatedLine]:
        quantities = [_pooled_quantity(usage, metric) for usage in vehicles]
        total = sum(quantities, ZERO)
        billable = max(total - included, ZERO)
        amount, unit_amount, tiers = price(billable)
        amount, at_minimum, at_maximum = _clamp(amount, charge.minimum, charge.maximum)
        pooled_amount = amount.quantize(exponent, ROUND_HALF_UP)
        shares = split_proportionally(pooled_amount, quantities, currency)
        return [
            new_line(
                vehicle_id=usage.vehicle_id,
                quantity=quantity,
                billable_quantity=quantity,
                unit_amount=unit_amount,
                amount=share,
                tiers=tiers,
                pooled_quantity=total,
                pooled_billable_quantity=billable,
                pooled_amount=pooled_amount,
                minimum_applied=at_minimum,
                maximum_applied=at_maximum,
            )
            for usage, quantity, share in zip(vehicles, quantities, shares, strict=True)
        ]

    return rate_pool


def _pooled_quantity(usage: VehicleUsage, metric: str) -> Decimal:
    if metric == "vehicle_days":
        return usage.days_on_plan
    quantity = usage.quantities.get(metric, ZERO)
    if quantity < 0:
        raise _negative(usage.vehicle_id, metric, quantity)
    return quantity


def _clamp(
    amount: Decimal, minimum: Decimal | None, maximum: Decimal | None
) -> tuple[Decimal, bool, bool]:
    """(amount clamped to the bounds, minimum applied, maximum applied).

    Validation ensures minimum <= maximum, so at most one applies.
    """
    if minimum is not None and amount < minimum:
        return minimum, True, False
    if maximum is not None and amount > maximum:
        return maximum, False, True
    return amount, False, False


def _prorate(amount: Decimal, days: Decimal, days_in_period: int | Decimal) -> Decimal:
    # Multiply before dividing: the product is exact, so the division is the only rounding.
    return amount * days / days_in_period


def _days_outside(vehicle_id: str, days: Decimal, period: Decimal) -> ValueError:
    return ValueError(f"vehicle {vehicle_id}: days_on_plan {days} is not within 0..{int(period)}")


def _negative(vehicle_id: str, metric: str, quantity: Decimal) -> ValueError:
    return ValueError(f"vehicle {vehicle_id}: {metric} is negative ({quantity})")


def _price_function(charge: Charge) -> _Price:
    if charge.model == "per_unit":
        return _per_unit_price(charge.unit_amount)  # type: ignore[arg-type]
    if charge.model == "package":
        return _package_price(charge.package_size, charge.package_amount)  # type: ignore[arg-type]
    if charge.model == "graduated":
        return _graduated_price(charge.tiers)
    return _volume_price(charge.tiers)


def _per_unit_price(unit_amount: Decimal) -> _Price:
    def price(billable: Decimal) -> tuple[Decimal, Decimal | None, tuple[TierLine, ...]]:
        return billable * unit_amount, unit_amount, ()

    return price


def _package_price(size: Decimal, block_amount: Decimal) -> _Price:
    def price(billable: Decimal) -> tuple[Decimal, Decimal | None, tuple[TierLine, ...]]:
        # divmod is exact where a rounded quotient's ceiling could miss a tiny remainder.
        blocks, rest = divmod(billable, size)
        if rest:
            blocks += 1
        return blocks * block_amount, None, ()

    return price


def _graduated_price(tiers: tuple[Tier, ...]) -> _Price:
    bounds = _upper_bounds(tiers)
    starts = [ZERO, *bounds]
    new_lines = _tier_line_constructors(tiers, starts)
    rates = [(tier.unit_amount, tier.flat_amount) for tier in tiers]
    # The tiers below the one a quantity falls in are always used in full: their lines
    # and the running total of their amounts are computed once per plan.
    full = [
        _tier_line(new_lines[position], rates[position], bound - starts[position])
        for position, bound in enumerate(bounds)
    ]
    prefixes = [tuple(full[:position]) for position in range(len(tiers))]
    bases = [sum((line.amount for line in full[:position]), ZERO) for position in range(len(tiers))]

    def price(billable: Decimal) -> tuple[Decimal, Decimal | None, tuple[TierLine, ...]]:
        position = bisect_left(bounds, billable)  # first tier with billable <= up_to
        unit_amount, flat_amount = rates[position]
        quantity = billable - starts[position]
        amount = quantity * unit_amount + flat_amount
        line = new_lines[position](quantity, amount)
        return bases[position] + amount, None, (*prefixes[position], line)

    return price


def _volume_price(tiers: tuple[Tier, ...]) -> _Price:
    bounds = _upper_bounds(tiers)
    new_lines = _tier_line_constructors(tiers, [ZERO, *bounds])
    rates = [(tier.unit_amount, tier.flat_amount) for tier in tiers]

    def price(billable: Decimal) -> tuple[Decimal, Decimal | None, tuple[TierLine, ...]]:
        position = bisect_left(bounds, billable)  # first tier with billable <= up_to
        unit_amount, flat_amount = rates[position]
        amount = billable * unit_amount + flat_amount
        return amount, unit_amount, (new_lines[position](billable, amount),)

    return price


def _upper_bounds(tiers: Sequence[Tier]) -> list[Decimal]:
    """The upper bounds of all tiers but the last, which validation makes unbounded."""
    bounds = [tier.up_to for tier in tiers[:-1]]
    if None in bounds:
        raise ValueError("only the last tier may be unbounded")
    return bounds  # type: ignore[return-value]


def _tier_line_constructors(
    tiers: Sequence[Tier], starts: Sequence[Decimal]
) -> list[Callable[[Decimal, Decimal], TierLine]]:
    """Per tier, a constructor of its TierLine from (quantity, amount)."""
    return [
        _fast_constructor(
            TierLine,
            tier=number,
            from_quantity=start,
            up_to=tier.up_to,
            unit_amount=tier.unit_amount,
            flat_amount=tier.flat_amount,
        )
        for number, (tier, start) in enumerate(zip(tiers, starts, strict=True), start=1)
    ]


def _tier_line(
    new_line: Callable[[Decimal, Decimal], TierLine],
    rates: tuple[Decimal, Decimal],
    quantity: Decimal,
) -> TierLine:
    unit_amount, flat_amount = rates
    return new_line(quantity, quantity * unit_amount + flat_amount)
