"""The clock: `utcnow()`, the current time, timezone-aware in UTC (what every stored time is)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
