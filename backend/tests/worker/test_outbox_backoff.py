"""The retry schedule of the outbox (app.crud.delivery.BACKOFF), as USAGE.md documents it."""

import random
from datetime import timedelta

import pytest

from app.crud.delivery import BACKOFF, Backoff


class Fixed(random.Random):
    """A random source whose uniform() always lands at one point of its range (0: low end, 1: high)."""

    def __init__(self, at: float) -> None:
        super().__init__(0)
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


def test_the_documented_schedule() -> None:
    # 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, then 1 h each.
    assert [BACKOFF.base(n) for n in range(1, 11)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    middle = Fixed(0.5)
    assert [BACKOFF.delay(n, middle) for n in (1, 2, 8)] == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(hours=1),
    ]


@pytest.mark.parametrize(("at", "factor"), [(0.0, 0.8), (1.0, 1.2)], ids=["lowest", "highest"])
def test_the_jitter_spreads_each_wait_by_20_percent(at: float, factor: float) -> None:
    for attempts in range(1, 12):
        assert BACKOFF.delay(attempts, Fixed(at)).total_seconds() == pytest.approx(
            BACKOFF.base(attempts) * factor
        )


def test_waits_spread_and_stay_in_bounds_with_a_seeded_source() -> None:
    rng = random.Random(18)
    waits = [BACKOFF.delay(3, rng).total_seconds() for _ in range(500)]
    assert all(96 <= wait <= 144 for wait in waits)  # 120 s +-20 %
    assert len({round(wait) for wait in waits}) > 30  # spread, not all the same second


def test_a_schedule_is_data() -> None:
    quick = Backoff(first=1, factor=3, cap=10, jitter=0)
    assert [quick.base(n) for n in range(1, 5)] == [1, 3, 9, 10]
    assert quick.delay(2, random.Random()) == timedelta(seconds=3)


def test_the_lease_must_outlast_the_longest_send() -> None:
    from pydantic import ValidationError

    from app.core.config import SMTP_EXCHANGES_PER_SEND, Settings

    assert Settings(SMTP_TIMEOUT_SECONDS=10, NOTIFY_LEASE_SECONDS=121).NOTIFY_LEASE_SECONDS == 121
    with pytest.raises(ValidationError, match="NOTIFY_LEASE_SECONDS must be more than 120 "):
        Settings(SMTP_TIMEOUT_SECONDS=10, NOTIFY_LEASE_SECONDS=120)
    assert SMTP_EXCHANGES_PER_SEND * Settings().SMTP_TIMEOUT_SECONDS < Settings().NOTIFY_LEASE_SECONDS
