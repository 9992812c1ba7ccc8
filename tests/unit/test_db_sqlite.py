"""The text timestamps the raw SQLite paths write are the ones SQLAlchemy writes."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from billing.db import sqlite_timestamp

SQLITE = sqlite.dialect()
STORED = sqlite.DATETIME().bind_processor(SQLITE)


@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-11, minutes=-30)),
                                   dt.timezone(dt.timedelta(hours=14))]),
    )
)  # fmt: skip
def test_a_timestamp_written_raw_is_the_text_sqlalchemy_stores_for_it(instant):
    naive_utc = instant.astimezone(dt.UTC).replace(tzinfo=None)

    assert sqlite_timestamp(instant) == STORED(naive_utc)
