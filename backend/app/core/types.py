"""Column types shared by the tables."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

MAX_ID = 2**31 - 1  # ids are 32-bit integers: larger ones are refused before they reach the database


def _at_most(limit: str) -> str:
    """A regex for the decimal numbers 1..limit written without leading zeros (e.g. 1..2147483647)."""
    shorter = [f"[1-9][0-9]{{0,{len(limit) - 2}}}"] if len(limit) > 1 else []
    same_length = []
    for i, digit in enumerate(limit):
        rest = len(limit) - i - 1
        low = "1" if i == 0 else "0"
        if digit > low:
            below = low if int(digit) - 1 == int(low) else f"[{low}-{int(digit) - 1}]"
            tail = f"[0-9]{{{rest}}}" if rest else ""
            same_length.append(f"{limit[:i]}{below}{tail}")
    same_length.append(limit)
    return "(" + "|".join(shorter + same_length) + ")"


# An id in text (a path segment, a query value): what a client's validator can check exactly.
ID_PATTERN = _at_most(str(MAX_ID))


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every database.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    (which also keeps them sortable as text) and come back aware.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_type(enum: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR holding the enum's values, with a CHECK constraint (no native PostgreSQL type)."""

    def values(members: Any) -> list[str]:
        return [member.value for member in members]

    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum),
        values_callable=values,
        validate_strings=True,
    )
