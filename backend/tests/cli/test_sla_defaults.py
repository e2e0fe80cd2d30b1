"""`db sla-defaults`: the default calendar and SLA policies, installed once, on a scratch database."""

import json

import pytest
from typer.testing import CliRunner

from app import calendars, sla
from app.cli import app
from app.core.config import get_settings
from tests.cli.conftest import count, one_error, rows

POLICIES_SQL = (
    "SELECT p.name, p.position, p.priority, p.first_response_minutes, p.resolution_minutes, "
    "p.warn_at_percent, c.name FROM sla_policies p JOIN calendars c ON c.id = p.calendar_id ORDER BY p.position"
)
EXPECTED_POLICIES = [
    ("Urgent", 10, "urgent", 30, 240, 75, "Business hours"),
    ("High", 20, "high", 60, 480, 75, "Business hours"),
    ("Medium", 30, "medium", 240, 3 * 480, 75, "Business hours"),
    ("Low", 40, "low", 480, 5 * 480, 75, "Business hours"),
]


def business_hours(url: str) -> list[tuple[str, dict[str, list[str]]]]:
    found = rows(url, f"SELECT time_zone, working_hours FROM calendars WHERE name = '{sla.DEFAULT_CALENDAR}'")
    return [(zone, hours if isinstance(hours, dict) else json.loads(hours)) for zone, hours in found]


def test_installs_the_defaults_once(runner: CliRunner, scratch_url: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["sla-defaults", "--time-zone", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "created calendar 'Business hours' (Europe/Berlin); installed SLA policies Urgent, High, Medium, Low"
    )
    assert business_hours(scratch_url) == [("Europe/Berlin", calendars.office_hours())]
    assert rows(scratch_url, POLICIES_SQL) == EXPECTED_POLICIES
    assert rows(scratch_url, "SELECT reason FROM sla_recompute") == [("default SLA policies installed",)]

    again = runner.invoke(app, ["sla-defaults", "--time-zone", "America/New_York"])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == "4 SLA policies exist already; nothing installed"
    assert business_hours(scratch_url) == [("Europe/Berlin", calendars.office_hours())]
    assert rows(scratch_url, POLICIES_SQL) == EXPECTED_POLICIES
    assert (count(scratch_url, "calendars"), count(scratch_url, "sla_recompute")) == (2, 1)


def test_the_zone_defaults_to_the_setting(
    runner: CliRunner, scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLA_TIME_ZONE", "America/Chicago")
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["sla-defaults"])
    assert result.exit_code == 0, result.output
    assert "(America/Chicago)" in result.output
    assert business_hours(scratch_url) == [("America/Chicago", calendars.office_hours())]


def test_an_unknown_zone_is_one_error_line_and_nothing_written(runner: CliRunner, scratch_url: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["sla-defaults", "--time-zone", "Mars/Olympus"])
    assert result.exit_code == 2
    one_error(result.output, "invalid --time-zone: unknown time zone 'Mars/Olympus'")
    assert count(scratch_url, "sla_policies") == 0
    assert count(scratch_url, "calendars") == 1  # the built-in "24x7"
    assert count(scratch_url, "sla_recompute") == 0


def test_an_unmigrated_database_is_one_error_line_saying_to_migrate(
    runner: CliRunner, scratch_url: str
) -> None:
    result = runner.invoke(app, ["sla-defaults"])
    assert result.exit_code == 4  # not at head, as `db check` says it
    one_error(result.output, "sla_policies")  # the missing table, named by the database
    assert "database not migrated (" in result.output
    assert result.output.rstrip().endswith("run `db migrate`")
    assert "unreachable" not in result.output
