"""Polyfactory factories for every table: realistic IT-operations data.

The tests build their rows with these, and `db seed` fills demo databases with them. The factories
only build objects; persisting them (one by one, or in bulk) is the caller's business, through crud
or the seeder. Seed them with `seed_factories(n)` for repeatable data.
"""

from datetime import datetime
from functools import cache
from typing import Any

from faker import Faker
from polyfactory import Use
from polyfactory.factories.pydantic_factory import ModelFactory

from app.core.security import hash_password
from app.models import (
    Comment,
    EventAction,
    Priority,
    Role,
    Team,
    Ticket,
    TicketEvent,
    TicketStatus,
    User,
    utcnow,
)

faker = Faker()

DEMO_PASSWORD = "incident-desk-demo"

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
RESOLUTIONS = (
    "Restarted the service and confirmed recovery with the reporter.",
    "Rolled back the faulty deployment.",
    "Renewed the expired certificate.",
    "Freed disk space and added an alert on usage.",
    "Granted the missing role in the directory.",
    "Replaced the failed hardware.",
    "Raised the connection pool limit and monitored for an hour.",
)


@cache
def demo_password_hash() -> str:
    """One argon2 hash reused by every built user (hashing costs ~0.1 s; a seed makes thousands)."""
    return hash_password(DEMO_PASSWORD)


def seed_factories(seed: int) -> None:
    """Make every factory (and their Faker) produce the same sequence again."""
    faker.seed_instance(seed)
    for factory in (TeamFactory, UserFactory, TicketFactory, CommentFactory, TicketEventFactory):
        factory.seed_random(seed)
    faker.unique.clear()


def ticket_title() -> str:
    return f"{faker.random_element(SYSTEMS).capitalize()} {faker.random_element(SYMPTOMS)}"


class _Factory(ModelFactory[Any]):
    __is_base_factory__ = True
    __check_model__ = False
    __faker__ = faker
    __allow_none_optionals__ = False


class TeamFactory(_Factory):
    __model__ = Team

    id = None
    name = Use(lambda: f"{faker.random_element(TEAM_NAMES)} {faker.unique.random_int(1, 10**9)}")
    description = Use(lambda: faker.sentence(nb_words=10))
    created_at = Use(utcnow)


class UserFactory(_Factory):
    __model__ = User

    id = None
    email = Use(lambda: f"{faker.user_name()}.{faker.unique.random_int(1, 10**9)}@example.com")
    full_name = Use(faker.name)
    hashed_password = Use(demo_password_hash)
    role = Role.agent
    is_active = True
    team_id = None
    created_at = Use(utcnow)


class TicketFactory(_Factory):
    __model__ = Ticket

    id = None
    title = Use(ticket_title)
    description = Use(lambda: faker.paragraph(nb_sentences=4))
    priority = Use(lambda: faker.random_element(list(Priority)))
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


class CommentFactory(_Factory):
    __model__ = Comment

    id = None
    body = Use(lambda: faker.paragraph(nb_sentences=2))
    internal = False
    created_at = Use(utcnow)


class TicketEventFactory(_Factory):
    __model__ = TicketEvent

    id = None
    action = EventAction.updated
    field = None
    old_value = None
    new_value = None
    reason = None
    ticket_version = 1
    created_at = Use(utcnow)


def at(moment: datetime) -> dict[str, datetime]:
    """created_at/updated_at pinned to one moment, for building histories in the past."""
    return {"created_at": moment, "updated_at": moment}
