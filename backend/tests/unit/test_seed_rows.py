"""The seeder's rows are keyed by column name and must cover every column of their table."""

from typing import Any, NamedTuple

import pytest

from app import seed
from app.models import Ticket


def test_every_row_type_has_exactly_its_tables_columns() -> None:
    seed.check_rows()  # raises otherwise


def test_a_column_the_seeder_does_not_fill_stops_the_seed_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # TicketRow as it was before `version` was added to the table.
    older = NamedTuple("TicketRow", [(name, Any) for name in seed.TicketRow._fields if name != "version"])  # type: ignore[misc]
    monkeypatch.setitem(seed.ROWS, Ticket, older)
    with pytest.raises(seed.SeedError, match=r"^the seeder has no value for tickets\.version$"):
        seed.check_rows()
    # `db seed` says so before it touches the database (make_plan), and so does generate().
    with pytest.raises(seed.SeedError, match=r"tickets\.version"):
        seed.make_plan(teams=1, users=3, tickets=1, seed=1, anchor=None)
    plan = seed.Plan(teams=1, users=3, tickets=1, seed=1, anchor=seed.DEFAULT_ANCHOR)
    with pytest.raises(seed.SeedError, match=r"tickets\.version"):
        next(seed.generate(plan))
