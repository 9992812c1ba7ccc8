"""Page-numbered listings, shared by every list endpoint and command."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

MAX_PER_PAGE = 500
# Keeps the offset, (page - 1) * per_page, within what every database takes (64 bits).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int


def paginate(session: Session, query: Select, page: int, per_page: int) -> Page:
    """One page of `query` (which must be ordered) and the total count of its rows."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, page=page, per_page=per_page, total=total or 0)
