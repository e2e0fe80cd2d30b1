"""Polyfactory factories for teams, users, tickets and comments: realistic IT-operations data.

The tests build their rows with these, and `db seed` fills demo databases with them (app.seed). The
factories only build objects; persisting them (one by one, or in bulk) is the caller's business,
through crud or the seeder. `seed_factories(n)` makes every factory repeat the same sequence.

Unique columns stay unique without random suffixes: team names walk a fixed list (then add a
region, then a number) and e-mail addresses come from the person's name, numbered on repeats
("ada.lovelace@", "ada.lovelace2@"). Both sequences restart with `seed_factories`.
"""

import re
from collections import Counter, OrderedDict
from functools import cache
from typing import Any

from faker import Faker
from polyfactory import PostGenerated, Use
from polyfactory.factories.pydantic_factory import ModelFactory
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.clock import utcnow
from app.models import (
    Comment,
    Priority,
    Role,
    SlaState,
    Team,
    Ticket,
    TicketStatus,
    User,
)

faker = Faker()

DEMO_PASSWORD = "incident-desk-demo"
# A fixed salt makes the demo hash, and so every seeded users row, repeatable. The password is public
# anyway; real accounts (create-superuser, the API) get a random salt from app.core.security.
DEMO_PASSWORD_SALT = b"incident-desk-demo-salt"

TEAM_NAMES = (
    "Service Desk",
    "Network Operations",
    "Platform Engineering",
    "Database Administration",
    "Security Operations",
    "End-User Computing",
    "Cloud Infrastructure",
    "Identity & Access",
    "Observability",
    "Release Engineering",
)
REGIONS = ("EMEA", "Americas", "APAC")
PRIORITY_WEIGHTS = OrderedDict(
    [(Priority.low, 0.3), (Priority.medium, 0.4), (Priority.high, 0.2), (Priority.urgent, 0.1)]
)
SYSTEMS = (
    "VPN",
    "e-mail",
    "payroll service",
    "CI runners",
    "Kubernetes cluster",
    "shared drive",
    "SSO login",
    "printer on floor 3",
    "customer portal",
    "billing API",
    "Wi-Fi in building B",
    "laptop fleet",
    "backup job",
    "DNS resolver",
    "message queue",
)
SYMPTOMS = (
    "is down",
    "is slow",
    "returns 500 errors",
    "rejects valid credentials",
    "drops connections every few minutes",
    "shows a certificate warning",
    "is out of disk space",
    "times out for remote staff",
    "sends duplicate notifications",
    "needs access for a new starter",
)
SINCE = (
    "this morning",
    "yesterday afternoon",
    "the 9am deployment",
    "the weekend maintenance window",
    "about an hour ago",
    "the office move",
    "last night's patching",
)
DETAILS = (
    "It affects {n} people on our floor.",
    "The error says: {error}.",
    "It only happens from {place}.",
    "Host {host} looks like the culprit.",
    "Colleagues at {place} see the same thing.",
    "It started right after a password change.",
)
ERRORS = (
    "connection reset by peer",
    "HTTP 502 Bad Gateway",
    "certificate has expired",
    "permission denied",
    "request timed out after 30s",
    "no space left on device",
)
PLACES = ("home", "the London office", "the guest network", "the third floor", "the warehouse")
IMPACTS = (
    "We cannot process customer orders.",
    "The whole team is blocked.",
    "There is a slow workaround.",
    "Not urgent, but it is getting in the way.",
    "Month-end closing depends on this.",
)
TRIED = (
    "Restarting did not help.",
    "I already cleared the browser cache.",
    "Logging out and back in gives the same result.",
    "",
)
REPLIES = (
    "Thanks for the report, I am looking into it now.",
    "Could you send a screenshot of the error and the time it happened?",
    "We have found the cause and are working on a fix.",
    "A fix is deployed; please check on your side.",
    "Still happening this morning, same error as before.",
    "Confirmed, it works again. Thank you!",
    "Any update on this? The team is still blocked.",
    "I can reproduce it from {place}.",
    "This affects {n} more people since lunch.",
)
NOTES = (
    "Logs on {host} show '{error}' every few minutes.",
    "Escalated to the vendor, case #{n}.",
    "Probably related to last night's change; checking with the release team.",
    "Customer is a VIP, keep them posted.",
    "Same root cause as the incident last month, see the runbook.",
    "Waiting on the network team before touching {host}.",
)
RESOLUTIONS = (
    "Restarted the service and confirmed recovery with the reporter.",
    "Rolled back the faulty deployment.",
    "Renewed the expired certificate.",
    "Freed disk space and added an alert on usage.",
    "Granted the missing role in the directory.",
    "Replaced the failed hardware.",
    "Raised the connection pool limit and monitored for an hour.",
)
# Why a ticket moved, by the status it moved to (a reopen moves back to in_progress).
REASONS: dict[TicketStatus, tuple[str, ...]] = {
    TicketStatus.on_hold: (
        "Waiting for the vendor to respond.",
        "Waiting for the reporter to confirm a maintenance window.",
        "Blocked by a change freeze.",
        "Parts are on order.",
    ),
    TicketStatus.cancelled: (
        "Duplicate of an existing ticket.",
        "The reporter no longer needs this.",
        "Raised by mistake.",
        "Out of scope for IT operations; redirected to facilities.",
    ),
    TicketStatus.in_progress: (
        "The problem came back after the fix.",
        "The fix only worked for some users.",
        "Reporter says it is still broken.",
    ),
}
GENERIC_REASONS = ("See the discussion in the comments.", "Agreed with the reporter.")


@cache
def demo_password_hash() -> str:
    """The argon2 hash of DEMO_PASSWORD, the same in every process (see DEMO_PASSWORD_SALT)."""
    return Argon2Hasher().hash(DEMO_PASSWORD, salt=DEMO_PASSWORD_SALT)


_team_names_made = 0
_emails_made: Counter[str] = Counter()


def seed_factories(seed: int) -> None:
    """Make every factory (and their Faker) produce the same sequence again."""
    global _team_names_made
    faker.seed_instance(seed)
    for factory in (TeamFactory, UserFactory, TicketFactory, CommentFactory):
        factory.seed_random(seed)
    faker.unique.clear()
    _team_names_made = 0
    _emails_made.clear()


def team_name() -> str:
    """The next team name: the ten base names, then each with a region, then numbered."""
    global _team_names_made
    n, _team_names_made = _team_names_made, _team_names_made + 1
    base = TEAM_NAMES[n % len(TEAM_NAMES)]
    round_ = n // len(TEAM_NAMES)
    if round_ == 0:
        return base
    region = REGIONS[(round_ - 1) % len(REGIONS)]
    number = (round_ - 1) // len(REGIONS) + 1
    return f"{base} {region}" if number == 1 else f"{base} {region} {number}"


def unique_email(full_name: str, domain: str = "example.com") -> str:
    """first.last@domain from a name; repeats of the same name get 2, 3, ... appended."""
    parts = [re.sub(r"[^a-z0-9]", "", word) for word in full_name.lower().split()]
    local = ".".join(p for p in parts[-2:] if p) or "user"
    _emails_made[local] += 1
    count = _emails_made[local]
    return f"{local}@{domain}" if count == 1 else f"{local}{count}@{domain}"


def person_name() -> str:
    return f"{faker.first_name()} {faker.last_name()}"


def _fill(template: str) -> str:
    return template.format(
        n=faker.random_int(2, 400),
        error=faker.random_element(ERRORS),
        place=faker.random_element(PLACES),
        host=f"{faker.random_element(('app', 'db', 'web', 'vpn', 'mq'))}-{faker.random_int(1, 40):02d}",
    )


def ticket_title() -> str:
    system = faker.random_element(SYSTEMS)
    return f"{system[0].upper()}{system[1:]} {faker.random_element(SYMPTOMS)}"


def ticket_description(title: str | None = None) -> str:
    """A few sentences about the problem `title` names (a new problem when it is None)."""
    since = f"{title or ticket_title()} since {faker.random_element(SINCE)}."
    sentences = [since, _fill(faker.random_element(DETAILS)), faker.random_element(IMPACTS)]
    return " ".join(s for s in [*sentences, faker.random_element(TRIED)] if s)


def comment_body(internal: bool) -> str:
    return _fill(faker.random_element(NOTES if internal else REPLIES))


def resolution_text() -> str:
    return faker.random_element(RESOLUTIONS)


def move_reason(target: TicketStatus) -> str:
    return faker.random_element(REASONS.get(target, GENERIC_REASONS))


class _Factory(ModelFactory[Any]):
    __is_base_factory__ = True
    __check_model__ = False
    __faker__ = faker
    __allow_none_optionals__ = False


class TeamFactory(_Factory):
    __model__ = Team

    id = None
    name = Use(team_name)
    description = Use(
        lambda: f"Looks after the {faker.random_element(SYSTEMS)} and the {faker.random_element(SYSTEMS)}."
    )
    created_at = Use(utcnow)


class UserFactory(_Factory):
    __model__ = User

    id = None
    full_name = Use(person_name)
    email = PostGenerated(lambda _name, values: unique_email(values.get("full_name") or "user"))
    hashed_password = Use(demo_password_hash)
    auth_stamp = Use(lambda: faker.hexify("^" * 32))
    role = Role.agent
    is_active = True
    team_id = None
    created_at = Use(utcnow)
    is_service_account = False


class TicketFactory(_Factory):
    __model__ = Ticket

    id = None
    title = Use(ticket_title)
    description = PostGenerated(lambda _name, values: ticket_description(values.get("title")))
    priority = Use(lambda: faker.random_element(PRIORITY_WEIGHTS))
    status = TicketStatus.open
    assignee_id = None
    team_id = None
    created_at = Use(utcnow)
    updated_at = Use(utcnow)
    resolved_at = None
    closed_at = None
    resolution = None
    reopen_count = 0
    version = 1
    sla_due_at = None  # kept by app.sla from the ticket's history
    sla_state = SlaState.none
    priority_rank = None  # generated by the database
    status_rank = None


class CommentFactory(_Factory):
    __model__ = Comment

    id = None
    internal = False
    body = PostGenerated(lambda _name, values: comment_body(bool(values.get("internal"))))
    created_at = Use(utcnow)
