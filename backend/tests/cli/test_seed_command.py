"""`db seed`: output, confirmation, --if-empty, bad counts, determinism, and the API afterwards."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from app import seed as seeding
from app.cli import app
from app.core import database, db, migrations
from app.core.config import get_settings
from app.factories import DEMO_PASSWORD
from app.main import app as api
from app.models import Ticket, TicketEvent
from scripts.bench_seed import insert_one_by_one
from tests.cli.conftest import SEEDED_TABLES, Seeded, count, execute, one_error, revision, rows
from tests.utils import API


def test_seed_prints_counts_elapsed_and_demo_logins(seeded: Seeded) -> None:
    result = seeded.result
    assert result.exit_code == 0, result.output
    output = result.output
    assert f"schema reset to head {migrations.head_revision()}; inserting 120 tickets" in output
    for table in SEEDED_TABLES:
        line = next(line for line in output.splitlines() if line.split()[:1] == [table])
        assert line.split()[1].replace(",", "") == str(count(seeded.engine, table))
    assert count(seeded.engine, "tickets") == 120
    assert count(seeded.engine, "users") == 40 + 1  # and the first admin from the settings (FIRST_SUPERUSER)
    assert count(seeded.engine, "teams") == 4
    assert "elapsed " in output and " rows/s); seed 11, anchor 2026-01-01T00:00:00Z" in output
    assert "same data again: db seed --seed 11 --anchor 2026-01-01T00:00:00Z --teams 4" in output
    for role, email in seeding.DEMO_LOGINS.items():
        line = next(line for line in output.splitlines() if email in line)
        assert line.split() == [role.value, email, DEMO_PASSWORD]
    assert revision(seeded.url) == migrations.head_revision()


def test_demo_logins_work_and_the_api_writes_after_a_seed(seeded: Seeded) -> None:
    previous = database.use_async_engine(database.create_async_db_engine(seeded.url))
    try:
        with TestClient(api) as client:  # its shutdown disposes the engine
            tokens = {}
            for role, email in seeding.DEMO_LOGINS.items():
                response = client.post(
                    f"{API}/login/access-token", data={"username": email, "password": DEMO_PASSWORD}
                )
                assert response.status_code == 200, (role, response.text)
                tokens[role] = {"Authorization": f"Bearer {response.json()['access_token']}"}
            agent = tokens[seeding.Role.agent]
            mine = client.get(f"{API}/users/me", headers=agent).json()
            assert mine["email"] == seeding.DEMO_LOGINS[seeding.Role.agent] and mine["role"] == "agent"

            # The id sequences were moved past the seeded rows: new rows get the next ids.
            ticket = client.post(f"{API}/tickets/", json={"title": "After the seed"}, headers=agent)
            assert ticket.status_code == 201, ticket.text
            assert ticket.json()["id"] == 121
            comment = client.post(
                f"{API}/tickets/{ticket.json()['id']}/comments", json={"body": "works"}, headers=agent
            )
            assert comment.status_code == 201, comment.text
            assert comment.json()["id"] == count(seeded.engine, "comments")
    finally:
        database.use_async_engine(previous)
        execute(seeded.url, "DELETE FROM tickets WHERE id = 121")


def test_empty_database_is_seeded_without_a_question(runner: CliRunner, scratch_url: str) -> None:
    migrations.upgrade(scratch_url, "head")  # migrated but holding no rows: still empty
    result = runner.invoke(app, ["seed", "--tickets", "6", "--users", "3", "--teams", "1"])
    assert result.exit_code == 0, result.output
    assert "Continue?" not in result.output
    assert count(scratch_url, "tickets") == 6


def test_seed_over_data_asks_first(runner: CliRunner, scratch_url: str) -> None:
    small = ["--tickets", "6", "--users", "3", "--teams", "1", "--seed", "1"]
    assert runner.invoke(app, ["seed", *small]).exit_code == 0
    bigger = ["--tickets", "9", "--users", "3", "--teams", "1"]

    refused = runner.invoke(app, ["seed", *bigger])  # no stdin
    assert refused.exit_code == 5
    assert "db seed deletes all data in" in refused.output
    one_error(refused.output, "not confirmed")
    assert count(scratch_url, "tickets") == 6

    accepted = runner.invoke(app, ["seed", *bigger], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert count(scratch_url, "tickets") == 9

    assert runner.invoke(app, ["seed", "--yes", *small]).exit_code == 0
    assert count(scratch_url, "tickets") == 6


def test_if_empty_seeds_only_an_empty_database(runner: CliRunner, scratch_url: str) -> None:
    args = ["seed", "--if-empty", "--tickets", "7", "--users", "3", "--teams", "1"]
    first = runner.invoke(app, args)  # not even migrated yet
    assert first.exit_code == 0, first.output
    assert count(scratch_url, "tickets") == 7
    execute(scratch_url, "DELETE FROM tickets WHERE id = 7")

    second = runner.invoke(app, args)
    assert second.exit_code == 0
    assert second.output.strip() == "the database already holds data; not seeding (--if-empty)"
    assert count(scratch_url, "tickets") == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tickets", "-1"], "--tickets must be at least 0, not -1"),
        (["--tickets", "5000001"], "--tickets must be at most 5,000,000, not 5,000,001"),
        (["--users", "2"], "--users must be at least 3 (one demo login per role), not 2"),
        (["--users", "10000000"], "--users must be at most 1,000,000, not 10,000,000"),
        (["--teams", "0"], "--teams must be at least 1 (every user belongs to a team), not 0"),
        (["--teams", "-3"], "--teams must be at least 1 (every user belongs to a team), not -3"),
        (["--seed", "-1"], "--seed must be between 0 and 2**63-1, not -1"),
        (
            ["--anchor", "2999-01-01"],
            "--anchor must be between 2000-01-01 and now, not 2999-01-01T00:00:00+00:00",
        ),
        (["--anchor", "1999-12-31T23:00:00+00:00"], "--anchor must be between 2000-01-01 and now, not"),
    ],
)
def test_bad_counts_are_one_line_and_change_nothing(
    runner: CliRunner, scratch_url: str, args: list[str], message: str
) -> None:
    migrations.upgrade(scratch_url, "head")
    execute(scratch_url, "INSERT INTO teams (id, name, created_at) VALUES (1, 'Kept', '2026-01-01 00:00:00')")
    result = runner.invoke(app, ["seed", "--yes", *args])
    assert result.exit_code == 2
    assert one_error(result.output).startswith(f"error: {message}")
    assert count(scratch_url, "teams") == 1


def test_the_help_states_the_seeds_limits(runner: CliRunner) -> None:
    """app.cli repeats app.seed's limits for the help (importing app.seed would load faker in every
    `db` process): they are the same numbers."""
    from app import cli

    assert (cli.MAX_TEAMS, cli.MAX_USERS, cli.MAX_TICKETS) == (
        seeding.MAX_TEAMS,
        seeding.MAX_USERS,
        seeding.MAX_TICKETS,
    )
    result = runner.invoke(app, ["seed", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for limit in (seeding.MAX_TEAMS, seeding.MAX_USERS, seeding.MAX_TICKETS):
        assert f"{limit:,}" in result.output


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every seeded row. Not the first admin from the settings: its password gets a fresh salt."""
    not_first_admin = f"WHERE email <> '{get_settings().FIRST_SUPERUSER}'"
    return {
        table: rows(url, f"SELECT * FROM {table} {not_first_admin if table == 'users' else ''} ORDER BY id")
        for table in SEEDED_TABLES
    }


def test_same_seed_and_counts_give_identical_rows(runner: CliRunner, scratch_url: str) -> None:
    args = ["seed", "--yes", "--teams", "3", "--users", "25", "--tickets", "60", "--seed", "1234"]
    assert runner.invoke(app, args).exit_code == 0
    first = dump(scratch_url)
    assert runner.invoke(app, args).exit_code == 0
    second = dump(scratch_url)
    assert first == second
    assert all(first[table] for table in SEEDED_TABLES)

    other = runner.invoke(app, [*args[:-1], "1235"])
    assert other.exit_code == 0
    assert dump(scratch_url)["tickets"] != first["tickets"]


def test_anchor_ends_the_history(runner: CliRunner, scratch_url: str) -> None:
    args = ["--tickets", "30", "--users", "5", "--teams", "2", "--seed", "3", "--anchor", "2025-06-30"]
    result = runner.invoke(app, ["seed", *args])
    assert result.exit_code == 0, result.output
    assert "anchor 2025-06-30T00:00:00Z" in result.output
    engine = db.create_db_engine(scratch_url)
    try:
        with engine.connect() as conn:
            newest = conn.execute(select(func.max(TicketEvent.created_at))).scalar_one()
            oldest = conn.execute(select(func.min(Ticket.created_at))).scalar_one()
    finally:
        engine.dispose()
    anchor = datetime(2025, 6, 30, tzinfo=UTC)
    assert anchor - timedelta(days=seeding.HISTORY_DAYS) <= oldest <= newest <= anchor


def test_the_naive_loader_stores_the_same_rows(runner: CliRunner, scratch_url: str) -> None:
    """scripts/bench_seed.py compares the bulk path with one INSERT per object: same data either way."""
    args = ["--teams", "2", "--users", "8", "--tickets", "15", "--seed", "99"]
    assert runner.invoke(app, ["seed", "--yes", *args]).exit_code == 0
    bulk = dump(scratch_url)
    plan = seeding.make_plan(teams=2, users=8, tickets=15, seed=99, anchor=None)
    engine = db.create_db_engine(scratch_url)
    try:
        with engine.begin() as conn:  # the empty schema (`db reset` would add the first admin)
            migrations.reset(conn)
        with Session(engine) as session:
            seeding.seed_database(session, plan, loader=insert_one_by_one, defer_indexes=False)
    finally:
        engine.dispose()
    assert dump(scratch_url) == bulk
