"""The dunning plan: which step comes how many days after an invoice's due date.

Pure: parsed from the `[dunning] steps` setting, e.g. "7:reminder,15:reminder,
20:penalty_notice,30:block". Every plan starts, implicitly, with `overdue` the day after
the due date (the `invoice.overdue` event, no mail).
"""

from __future__ import annotations

from dataclasses import dataclass

OVERDUE = "overdue"
REMINDER = "reminder"
PENALTY_NOTICE = "penalty_notice"
BLOCK = "block"
KINDS = (REMINDER, PENALTY_NOTICE, BLOCK)
MAX_DAYS = 3650


@dataclass(frozen=True, order=True)
class Step:
    days: int  # after the due date
    kind: str

    @property
    def key(self) -> str:
        """The step's name in the records: "D+7 reminder"."""
        return f"D+{self.days} {self.kind}"


FIRST = Step(1, OVERDUE)


def parse_steps(text: str) -> tuple[Step, ...]:
    """The plan of `text` ("days:kind" separated by commas), `FIRST` included, in order.

    Raises ValueError naming the faulty part: unknown kinds, days out of 1..3650, a day
    given twice, steps out of order, more than one block."""
    steps = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        days, _, kind = part.partition(":")
        if not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
            raise ValueError(f"dunning step {part!r}: days must be 1 to {MAX_DAYS}")
        if kind.strip() not in KINDS:
            raise ValueError(f"dunning step {part!r}: the kind is one of {', '.join(KINDS)}")
        steps.append(Step(int(days), kind.strip()))
    step_days = [step.days for step in steps]
    if step_days != sorted(set(step_days)):
        raise ValueError(f"dunning steps {text!r}: days must increase, each once")
    if sum(step.kind == BLOCK for step in steps) > 1:
        raise ValueError(f"dunning steps {text!r}: at most one block step")
    return (FIRST, *steps)


def due_steps(plan: tuple[Step, ...], days_late: int) -> list[Step]:
    """The steps whose day has come when an invoice is `days_late` days past due."""
    return [step for step in plan if step.days <= days_late]
