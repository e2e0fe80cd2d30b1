"""All SQLModel classes: the tables and the API schemas built on them.

Each resource follows one ladder: `XBase` (shared fields) -> `XCreate` / `XUpdate` (input, unknown
fields refused) -> `XPublic` (output) and `X` (the table).
"""

import json
import re
import uuid
from datetime import UTC, datetime
from datetime import date as date_type
from enum import StrEnum
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from annotated_types import Ge, Le, MaxLen
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import (
    Field as PydanticField,
)
from sqlmodel import Field, SQLModel

from app import search
from app.core.clock import utcnow
from app.core.types import ID_PATTERN, MAX_ID, UTCDateTime, enum_type

# Constraint names must be stable for migrations (and batch mode on SQLite): set before any table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TITLE_MAX = 200
TEXT_MAX = 10_000
NAME_MAX = 100
EMAIL_MAX = 255  # the column
EMAIL_INPUT_MAX = 254  # RFC 5321's longest address: what the API accepts
PASSWORD_MIN, PASSWORD_MAX = 8, 128
LOGIN_NAME_MAX = 320  # longer login names cannot be an account's address: 422, not a lookup


def _in_utc(value: datetime) -> datetime:
    """Aware and in UTC (naive times are UTC); refused when UTC would leave years 1-9999."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range: in UTC it must fall between years 1 and 9999") from None


def _json_integer(value: Any) -> Any:
    """A JSON number without a fraction is an integer (JSON Schema agrees: 7.0 is one)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Ids and flags in request bodies are JSON integers and booleans: "1" and true are not ids, and
# "true" or 1 are not flags (pydantic's lax mode would convert them). Timestamps end up in UTC.
StrictId = Annotated[int, Strict(), Ge(1), Le(MAX_ID), BeforeValidator(_json_integer)]
StrictBool = Annotated[bool, Strict()]
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time_text(value: Any) -> Any:
    """Timestamps are written as date-times (RFC 3339; without an offset they are UTC), never as
    numbers of seconds or bare dates, which pydantic would otherwise read."""
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError("expected a datetime such as 2026-11-30T09:00:00Z")
    return value


UTCTimestamp = Annotated[datetime, AfterValidator(_in_utc), BeforeValidator(_date_time_text)]


def new_auth_stamp() -> str:
    """A fresh auth stamp: tokens carry their account's stamp; a new one revokes them all."""
    return uuid.uuid4().hex


class Output(SQLModel):
    """Base of every response body: each field the server always sends is `required` in the schema,
    defaults or not, so generated clients type them as present (no `X | Unset`)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]


class Input(SQLModel):
    """Base of every request body: unknown fields are refused, text is NUL-free.

    PostgreSQL cannot store NUL characters; refusing them here turns a would-be 500 into a 422.
    Lone surrogates and non-finite numbers never get this far (app.api.strict_json).
    """

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


# What a blank is, the same for the server's trimming and for every client's regex engine: the
# characters of ECMAScript's \s (Python's str.strip() and \s would add a few control characters).
BLANKS = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _trimmed(value: Any) -> Any:
    return value.strip(BLANKS) if isinstance(value, str) else value


# Text that is trimmed must hold something besides blanks: said in the schema too (a pattern with
# the characters themselves, not escapes, so that every regex dialect reads it alike).
NOT_BLANK = f"[^{BLANKS}]"


# Trimmed text fields of request bodies: 1..N characters, not blank.
Title = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX, pattern=NOT_BLANK)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX, pattern=NOT_BLANK)]

# In an *Update body, leaving a field out keeps its value. Fields that can be cleared take `null`;
# the others are `Annotated[X | None, NotNull]`: the schema does not offer null, and a null is a 422
# (their `_present` validator). Query parameters are never null either. (Pydantic's SkipJsonSchema
# would do the first half, but turns the field into a union whose errors name its branches.)


def drop_null(schema: dict[str, Any]) -> None:
    options = schema.get("anyOf")
    if isinstance(options, list):
        rest = [option for option in options if option.get("type") != "null"]
        if len(rest) == 1:
            del schema["anyOf"]
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest


NotNull = PydanticField(json_schema_extra=drop_null)
NOT_NULL = "may not be null (leave the field out to keep its value)"


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError(NOT_NULL)
    return value


def _lowered(value: Any) -> Any:
    # E-mail addresses are stored lower-cased: the unique index then ignores case.
    return value.lower() if isinstance(value, str) else value


# --- Enumerations ---------------------------------------------------------------------------------


class Role(StrEnum):
    admin = "admin"
    agent = "agent"
    reporter = "reporter"


class TicketStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    on_hold = "on_hold"
    resolved = "resolved"
    closed = "closed"
    cancelled = "cancelled"


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


class EventAction(StrEnum):
    created = "created"
    updated = "updated"
    assigned = "assigned"
    status_changed = "status_changed"
    commented = "commented"
    noted = "noted"  # an internal note: hidden from reporters like the note itself
    # Service-level timers (app.sla): `field` names the timer, old/new values its due time.
    sla_attached = "sla_attached"
    sla_paused = "sla_paused"
    sla_resumed = "sla_resumed"
    sla_warning = "sla_warning"
    sla_breached = "sla_breached"
    sla_met = "sla_met"
    sla_cancelled = "sla_cancelled"
    sla_recomputed = "sla_recomputed"


class TimerKind(StrEnum):
    first_response = "first_response"
    resolution = "resolution"


class TimerState(StrEnum):
    running = "running"
    paused = "paused"
    met = "met"
    breached = "breached"  # past its due time and still running: it keeps counting
    met_late = "met_late"
    cancelled = "cancelled"


class SlaState(StrEnum):
    """A ticket's service level in one word, for filtering (app.sla.summary decides it)."""

    none = "none"  # no policy applies, or it sets no target
    running = "running"
    at_risk = "at_risk"  # a running timer passed its warning point
    paused = "paused"
    breached = "breached"  # a timer is breached, or was met late
    met = "met"
    cancelled = "cancelled"


# --- Operational ----------------------------------------------------------------------------------


class DbMetadata(SQLModel, table=True):
    """One row (id 1) whose `version` every migration sets to its own revision id."""

    __tablename__ = "db_metadata"

    id: int = Field(default=1, primary_key=True)
    version: str = Field(max_length=64)


class Message(Output):
    message: str


class StatusResponse(Output):
    status: str


class DbHealth(Output):
    status: str
    current_revision: str | None
    head_revision: str
    up_to_date: bool


# --- Teams ----------------------------------------------------------------------------------------


class TeamBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX, unique=True)
    description: str | None = Field(default=None, max_length=1000)

    _trim = field_validator("name", mode="before")(_trimmed)


class TeamCreate(Input, TeamBase):
    name: Name


class TeamUpdate(Input):
    name: Annotated[Name | None, NotNull] = None
    description: str | None = Field(default=None, max_length=1000)

    _trim = field_validator("name", mode="before")(_trimmed)
    _present = field_validator("name", mode="after")(_not_null)


# Tables with surrogate ids: on SQLite, AUTOINCREMENT so that an id is never handed out twice.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Team(TeamBase, table=True):
    __tablename__ = "teams"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TeamPublic(Output, TeamBase):
    id: int
    created_at: datetime


class TeamsPublic(Output):
    data: list[TeamPublic]
    count: int


# --- Users ----------------------------------------------------------------------------------------


class UserBase(SQLModel):
    email: EmailStr = Field(max_length=EMAIL_MAX, unique=True, index=True)
    full_name: str | None = Field(default=None, max_length=NAME_MAX)

    _lower = field_validator("email", mode="after")(_lowered)


EMAIL_RULES = (
    "An e-mail address that can receive mail: special-use domains (.local, .localhost, .test, "
    ".invalid, .onion, .arpa) are refused. Stored lower-cased."
)
Email = Annotated[EmailStr, MaxLen(EMAIL_INPUT_MAX), PydanticField(description=EMAIL_RULES)]
NewPassword = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


class UserCreate(Input, UserBase):
    email: Email
    password: NewPassword
    role: Role = Role.reporter
    is_active: StrictBool = True
    team_id: StrictId | None = None


class UserUpdate(Input):
    """What an admin may change on any user."""

    email: Annotated[Email | None, NotNull] = None
    full_name: str | None = Field(default=None, max_length=NAME_MAX)
    password: Annotated[NewPassword | None, NotNull] = None
    role: Annotated[Role | None, NotNull] = None
    is_active: Annotated[StrictBool | None, NotNull] = None
    team_id: StrictId | None = None

    _lower = field_validator("email", mode="after")(_lowered)
    _present = field_validator("email", "password", "role", "is_active", mode="after")(_not_null)


class UserUpdateMe(Input):
    email: Annotated[Email | None, NotNull] = None
    full_name: str | None = Field(default=None, max_length=NAME_MAX)

    _lower = field_validator("email", mode="after")(_lowered)
    _present = field_validator("email", mode="after")(_not_null)


class UpdatePassword(Input):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


class User(UserBase, table=True):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    hashed_password: str = Field(max_length=255)
    # Every access token carries the stamp current when it was issued; a new password, a role
    # change or a deactivation sets a new stamp, and the older tokens stop working at once.
    auth_stamp: str = Field(default_factory=new_auth_stamp, max_length=32)
    role: Role = Field(default=Role.reporter, sa_type=enum_type(Role, "role"))
    is_active: bool = True
    team_id: int | None = Field(default=None, foreign_key="teams.id", ondelete="SET NULL", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # An integration's account: never logs in with a password, only through its API tokens.
    is_service_account: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class UserPublic(Output, UserBase):
    id: int
    role: Role
    is_active: bool
    is_service_account: bool
    team_id: int | None
    created_at: datetime


class UsersPublic(Output):
    data: list[UserPublic]
    count: int


class Token(Output):
    access_token: str
    token_type: str = "bearer"


class LoginForm(Input):
    """The OAuth2 password flow's form (what Swagger's Authorize sends): `username` is the e-mail."""

    model_config = ConfigDict(extra="ignore")  # OAuth2 clients may add fields

    grant_type: Annotated[str, StringConstraints(pattern="^password$")] | None = None
    username: str = Field(min_length=1, max_length=LOGIN_NAME_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


# --- Tickets --------------------------------------------------------------------------------------


class TicketBase(SQLModel):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, max_length=TEXT_MAX, sa_type=sa.Text)
    priority: Priority = Field(default=Priority.medium, sa_type=enum_type(Priority, "priority"))
    assignee_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, foreign_key="users.id", ondelete="RESTRICT"
    )
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID, foreign_key="teams.id", ondelete="RESTRICT")

    _trim = field_validator("title", mode="before")(_trimmed)


class TicketCreate(Input, TicketBase):
    title: Title
    assignee_id: StrictId | None = None
    team_id: StrictId | None = None


class TicketUpdate(Input):
    """The editable fields; status moves go through PATCH /tickets/{id}/status."""

    title: Annotated[Title | None, NotNull] = None
    description: str | None = Field(default=None, max_length=TEXT_MAX)
    priority: Annotated[Priority | None, NotNull] = None
    assignee_id: StrictId | None = None
    team_id: StrictId | None = None

    _trim = field_validator("title", mode="before")(_trimmed)
    _present = field_validator("title", "priority", mode="after")(_not_null)


def _rank_sql(column: str, enum: type[StrEnum]) -> str:
    """SQL giving each enum value its position in the enum's declared order (for sorting)."""
    cases = " ".join(f"WHEN '{member.value}' THEN {rank}" for rank, member in enumerate(enum))
    return f"CASE {column} {cases} END"


class Ticket(TicketBase, table=True):
    __tablename__ = "tickets"
    # Every list filter has an index that also serves the default order (newest first), so a page
    # (and a keyset page at any depth) reads only the rows it returns. See app/ticket_query.py.
    __table_args__ = (
        sa.Index("ix_tickets_created_at_id", "created_at", "id"),
        sa.Index("ix_tickets_updated_at_id", "updated_at", "id"),
        # PostgreSQL also carries the other filter columns, so a count by status and any of them is
        # an index-only scan (no heap visits) however many tickets match.
        sa.Index(
            "ix_tickets_status_created_at_id",
            "status",
            "created_at",
            "id",
            postgresql_include=["priority", "assignee_id", "team_id", "reporter_id"],
        ),
        sa.Index("ix_tickets_priority_created_at_id", "priority", "created_at", "id"),
        sa.Index("ix_tickets_assignee_id_created_at_id", "assignee_id", "created_at", "id"),
        sa.Index("ix_tickets_reporter_id_created_at_id", "reporter_id", "created_at", "id"),
        sa.Index("ix_tickets_team_id_created_at_id", "team_id", "created_at", "id"),
        sa.Index("ix_tickets_priority_rank_id", "priority_rank", "id"),
        sa.Index("ix_tickets_status_rank_id", "status_rank", "id"),
        sa.Index("ix_tickets_sla_state_created_at_id", "sla_state", "created_at", "id"),
        sa.Index("ix_tickets_sla_due_at_id", "sla_due_at", "id"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    status: TicketStatus = Field(default=TicketStatus.open, sa_type=enum_type(TicketStatus, "ticket_status"))
    reporter_id: int = Field(foreign_key="users.id", ondelete="RESTRICT")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, sa_type=sa.Text)
    reopen_count: int = 0
    version: int = 1
    # The service level (app.sla keeps them): the nearest due time of a running timer, and a summary.
    sla_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_state: SlaState = Field(
        default=SlaState.none,
        sa_type=enum_type(SlaState, "sla_state"),
        sa_column_kwargs={"server_default": SlaState.none.value},  # rows from before migration 0007
    )
    # Sort keys computed by the database from priority and status (urgent > ... > low; lifecycle order).
    priority_rank: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.SmallInteger, sa.Computed(_rank_sql("priority", Priority), persisted=True)),
    )
    status_rank: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.SmallInteger, sa.Computed(_rank_sql("status", TicketStatus), persisted=True)),
    )


class TicketPublic(Output, TicketBase):
    id: int
    status: TicketStatus
    reporter_id: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    reopen_count: int
    version: int
    sla_due_at: datetime | None = Field(
        description="The nearest due time of the ticket's running service-level timers; null when "
        "none runs (see GET /tickets/{id}/sla)."
    )
    sla_state: SlaState


class TicketsPublic(Output):
    data: list[TicketPublic]
    count: int | None = Field(
        default=None,
        description="Number of tickets matching the filters, all pages together: exact up to "
        "TICKET_COUNT_LIMIT (1,000), and that limit when more match (see `count_exact`). Null on a page "
        "fetched with a cursor (the total does not change with depth: keep the first page's).",
    )
    count_exact: bool = Field(
        default=False,
        description="True when `count` is the exact total. False when counting stopped at the limit "
        "(at least `count` tickets match; ask again with `exact_count=true` for the total) or on a "
        "cursor page.",
    )
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )


_ID = ID_PATTERN


# Query parameters that name a row by id or by a keyword.
IdOrMeOrNone = Annotated[str, StringConstraints(pattern=f"^(me|none|{_ID})$")]
IdOrMe = Annotated[str, StringConstraints(pattern=f"^(me|{_ID})$")]
IdOrNone = Annotated[str, StringConstraints(pattern=f"^(none|{_ID})$")]
SearchText = Annotated[str, StringConstraints(min_length=1, max_length=search.MAX_LENGTH)]
Cursor = Annotated[str, StringConstraints(max_length=512)]


class TicketSort(StrEnum):
    """`-` sorts descending. priority: low < medium < high < urgent; status: lifecycle order;
    sla_due_at: tickets without a due time come last in both directions."""

    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"
    priority = "priority"
    priority_desc = "-priority"
    status = "status"
    status_desc = "-status"
    sla_due_at = "sla_due_at"
    sla_due_at_desc = "-sla_due_at"


class TicketQuery(SQLModel):
    """The query parameters of `GET /tickets/`: typed, allow-listed filters, search, sort and paging.

    Only what the query string may say: what it means (the search parsed, the sort, where a cursor
    continues) is worked out once per request by app.ticket_query.ListPlan, which also refuses a `q`
    that is not valid search syntax and a cursor this query did not issue.
    """

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    status: list[TicketStatus] = Field(default_factory=list, description="Repeatable: any of these.")
    priority: list[Priority] = Field(default_factory=list, description="Repeatable: any of these.")
    assignee: Annotated[IdOrMeOrNone | None, NotNull] = Field(
        default=None, description="A user id, `me` or `none`."
    )
    reporter: Annotated[IdOrMe | None, NotNull] = Field(default=None, description="A user id or `me`.")
    team: Annotated[IdOrNone | None, NotNull] = Field(default=None, description="A team id or `none`.")
    sla_state: list[SlaState] = Field(
        default_factory=list,
        description="Repeatable: any of these (see GET /tickets/{id}/sla for what each means).",
    )
    created_after: Annotated[UTCTimestamp | None, NotNull] = Field(
        default=None, description="Exclusive; naive times are UTC."
    )
    created_before: Annotated[UTCTimestamp | None, NotNull] = Field(
        default=None, description="Exclusive; naive times are UTC."
    )
    updated_after: Annotated[UTCTimestamp | None, NotNull] = Field(
        default=None, description="Exclusive; naive times are UTC."
    )
    updated_before: Annotated[UTCTimestamp | None, NotNull] = Field(
        default=None, description="Exclusive; naive times are UTC."
    )
    q: Annotated[SearchText | None, NotNull] = Field(
        default=None,
        description='Full-text search: words, "phrases", OR, -exclusions. Ranked by relevance unless sorted.',
    )
    sort: Annotated[TicketSort | None, NotNull] = Field(
        default=None, description="Default `-created_at` (relevance with `q`)."
    )
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000_000, description="Rows to skip; not with `cursor`.")
    cursor: Annotated[Cursor | None, NotNull] = Field(
        default=None, description="`next_cursor` of the previous page."
    )
    exact_count: bool = Field(
        default=False,
        description="Count all matches, however many (slower on large results); by default counting "
        "stops at TICKET_COUNT_LIMIT.",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_parameters(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                allowed = ", ".join(cls.model_fields)
                raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
        return data

    @field_validator("assignee", "reporter", "team", mode="before")
    @classmethod
    def _id_or_keyword(cls, value: Any, info: ValidationInfo) -> Any:
        """Before the pattern (which says the same to clients), to name what is allowed."""
        keywords = {"assignee": ("me", "none"), "reporter": ("me",), "team": ("none",)}[str(info.field_name)]
        if not isinstance(value, str) or value in keywords:
            return value
        if not re.fullmatch(_ID, value) or int(value) > MAX_ID:
            raise ValueError(f"expected a positive id (at most {MAX_ID}) or one of: {', '.join(keywords)}")
        return value

    @model_validator(mode="after")
    def _offset_or_cursor(self) -> "TicketQuery":
        if self.cursor is not None and self.offset:
            raise ValueError("use either offset or cursor, not both")
        return self


class StatusChange(Input):
    """A lifecycle move. Which text fields are required depends on the move (see app.lifecycle)."""

    status: TicketStatus
    resolution: LongText | None = None
    reason: LongText | None = None
    assignee_id: StrictId | None = None

    _trim = field_validator("resolution", "reason", mode="before")(_trimmed)


class TransitionOption(Output):
    status: TicketStatus
    requires: list[str]


class TransitionsPublic(Output):
    current: TicketStatus
    transitions: list[TransitionOption]


# --- Audit trail ----------------------------------------------------------------------------------


class TicketEventBase(SQLModel):
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE")
    # Null for what the system records by itself (the SLA clock's warnings and breaches).
    actor_id: int | None = Field(foreign_key="users.id", ondelete="RESTRICT", index=True)
    action: EventAction = Field(sa_type=enum_type(EventAction, "event_action"))
    field: str | None = Field(default=None, max_length=32)
    old_value: str | None = Field(default=None, sa_type=sa.Text)
    new_value: str | None = Field(default=None, sa_type=sa.Text)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    ticket_version: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The X-Request-ID of the API request that made the change; None for the CLI and the seed.
    request_id: str | None = Field(default=None, max_length=128)


class TicketEvent(TicketEventBase, table=True):
    """Append-only: written with the change it records; database triggers refuse UPDATE and DELETE
    (except the cascade when its ticket is deleted)."""

    __tablename__ = "ticket_events"
    __table_args__ = (sa.Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, primary_key=True)


class TicketEventPublic(Output, TicketEventBase):
    id: int


class TicketEventsPublic(Output):
    data: list[TicketEventPublic]
    count: int


# --- Comments -------------------------------------------------------------------------------------


class CommentBase(SQLModel):
    body: str = Field(min_length=1, max_length=TEXT_MAX, sa_type=sa.Text)
    internal: bool = False

    _trim = field_validator("body", mode="before")(_trimmed)


class CommentCreate(Input, CommentBase):
    body: LongText
    internal: StrictBool = False


class Comment(CommentBase, table=True):
    __tablename__ = "comments"
    __table_args__ = (sa.Index("ix_comments_ticket_id_id", "ticket_id", "id"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE")
    author_id: int = Field(foreign_key="users.id", ondelete="RESTRICT", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CommentPublic(Output, CommentBase):
    id: int
    ticket_id: int
    author_id: int
    created_at: datetime


class CommentsPublic(Output):
    data: list[CommentPublic]
    count: int


# --- Errors -------------------------------------------------------------------------------------
# Every error body is `detail` and `request_id`; some kinds add fields. The OpenAPI schema references
# the right one per operation and status (app.api.openapi).


class ApiError(Output):
    """An error. `request_id` equals the response's X-Request-ID header: quote it to an operator."""

    detail: str = Field(description="What went wrong, for a person to read.")
    request_id: str = Field(description="The X-Request-ID of the request.")


class ApiFieldError(SQLModel):
    """One problem with the request: where (`loc`, e.g. ["body", "title"]), what kind and why."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = Field(default=None, description="The rejected value; never sent for secrets.")
    ctx: dict[str, Any] | None = None


class InvalidRequestError(Output):
    """422: the request's parameters or body are not valid; one entry per problem."""

    detail: list[ApiFieldError]
    request_id: str


class StaleVersionError(ApiError):
    """412: If-Match named an older version; `current_version` is the ticket's version now."""

    current_version: int


class MoveRefusedError(ApiError):
    """409: the lifecycle does not allow this move now; `allowed` lists the moves open to you."""

    current: TicketStatus
    allowed: list[TicketStatus]


class TicketClosedError(ApiError):
    """409: a closed or cancelled ticket can no longer be edited."""

    status: TicketStatus


class TeamInUseError(ApiError):
    """409: the team still has tickets; move them first."""

    tickets: int


# --- Login throttling -----------------------------------------------------------------------------


class LoginThrottle(SQLModel, table=True):
    """Login attempts per key in the current window (app.crud.log_in): `account:<sha256 of the
    e-mail>` or `client:<address>`. An attempt is counted before its password is checked, and
    uncounted when it succeeds; more than the limit inside the window is refused unchecked."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_started_at: datetime = Field(sa_type=UTCDateTime)


# --- Idempotency keys -----------------------------------------------------------------------------


class IdempotencyState(StrEnum):
    in_progress = "in_progress"
    completed = "completed"


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` a user sent on a create, and the response it got (app.api.idempotency).

    `fingerprint` is `METHOD path sha256(canonical JSON body)`: the same key on another request is
    refused. The row is completed in the transaction that stores the created row, so "completed"
    means "the write is there". Rows are purged once `expires_at` has passed.
    """

    __tablename__ = "idempotency_keys"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    fingerprint: str = Field(max_length=400)
    state: IdempotencyState = Field(sa_type=enum_type(IdempotencyState, "idempotency_state"))
    response_status: int | None = None
    response_body: str | None = Field(default=None, sa_type=sa.Text)  # JSON
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


# --- Service levels -------------------------------------------------------------------------------
# Calendars say when the clock counts, policies say which targets a ticket gets, timers keep each
# ticket's targets. The rules (which policy, what pauses a timer, what meets it) are in app.sla; the
# business-time arithmetic in app.business_time.

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_YEAR = 366 * 24 * 60
# "HH:MM-HH:MM", local time; 24:00 ends a day.
RangeText = Annotated[str, StringConstraints(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Holiday(SQLModel):
    date: date_type
    name: Name


def _check_calendar(model: Any) -> Any:
    """The working hours and time zone make a calendar that can work (app.business_time)."""
    from app import calendars

    problems = calendars.problems(model.time_zone, model.working_hours)
    if problems:
        raise ValueError("; ".join(problems))
    return model


class CalendarBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX, unique=True)
    time_zone: str = Field(max_length=64, description="An IANA time zone, e.g. Europe/Berlin.")
    working_hours: dict[str, list[str]] = Field(
        sa_type=sa.JSON,
        description='Per weekday (monday..sunday), local working time as "HH:MM-HH:MM" ranges '
        '(several per day allowed; "24:00" ends the day). A day left out or empty is closed.',
    )
    holidays: list[Holiday] = Field(
        default_factory=list, sa_type=sa.JSON, description="Closed days (local dates)."
    )

    _trim = field_validator("name", mode="before")(_trimmed)


class CalendarCreate(Input, CalendarBase):
    name: Name
    time_zone: TimeZoneName
    working_hours: dict[Weekday, list[RangeText]]  # type: ignore[assignment]
    holidays: list[Holiday] = PydanticField(default_factory=list, max_length=1000)

    _valid = model_validator(mode="after")(_check_calendar)


class CalendarUpdate(Input):
    name: Annotated[Name | None, NotNull] = None
    time_zone: Annotated[TimeZoneName | None, NotNull] = None
    working_hours: Annotated[dict[Weekday, list[RangeText]] | None, NotNull] = None
    holidays: Annotated[list[Holiday] | None, NotNull] = PydanticField(default=None, max_length=1000)

    _trim = field_validator("name", mode="before")(_trimmed)
    _present = field_validator("name", "time_zone", "working_hours", "holidays", mode="after")(_not_null)
    _valid = model_validator(mode="after")(_check_calendar)


class Calendar(CalendarBase, table=True):
    __tablename__ = "calendars"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    builtin: bool = False  # the "24x7" calendar: always there, not editable
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CalendarPublic(Output, CalendarBase):
    id: int
    builtin: bool
    created_at: datetime
    updated_at: datetime


class CalendarsPublic(Output):
    data: list[CalendarPublic]
    count: int


class HolidayFill(Input):
    """Add a year's public holidays of a country (from the `holidays` package) to a calendar."""

    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = PydanticField(
        description="ISO 3166-1 alpha-2, e.g. DE."
    )
    subdivision: Annotated[str | None, StringConstraints(max_length=10)] = PydanticField(
        default=None, description="A state or province code the package knows, e.g. BY."
    )
    year: Annotated[int, Strict(), BeforeValidator(_json_integer)] = PydanticField(ge=1970, le=2100)


TargetMinutes = Annotated[int, Strict(), Ge(1), Le(MINUTES_PER_YEAR), BeforeValidator(_json_integer)]
Position = Annotated[int, Strict(), Ge(1), Le(10_000), BeforeValidator(_json_integer)]
Percent = Annotated[int, Strict(), Ge(1), Le(99), BeforeValidator(_json_integer)]


class SlaPolicyBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX, unique=True)
    position: int = Field(ge=1, le=10_000, unique=True, description="First matching policy wins.")
    priority: Priority | None = Field(
        default=None, sa_type=enum_type(Priority, "priority"), description="Null matches any."
    )
    team_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        foreign_key="teams.id",
        ondelete="RESTRICT",
        description="Null matches any.",
    )
    calendar_id: int = Field(ge=1, le=MAX_ID, foreign_key="calendars.id", ondelete="RESTRICT")
    first_response_minutes: int | None = Field(
        default=None, ge=1, le=MINUTES_PER_YEAR, description="Business minutes; null: no target."
    )
    resolution_minutes: int | None = Field(
        default=None, ge=1, le=MINUTES_PER_YEAR, description="Business minutes; null: no target."
    )
    warn_at_percent: int | None = Field(
        default=75, ge=1, le=99, description="Warn when this share of a target has passed; null: never."
    )

    _trim = field_validator("name", mode="before")(_trimmed)


class SlaPolicyCreate(Input, SlaPolicyBase):
    name: Name
    position: Position
    team_id: StrictId | None = None
    calendar_id: StrictId
    first_response_minutes: TargetMinutes | None = None
    resolution_minutes: TargetMinutes | None = None
    warn_at_percent: Percent | None = 75


class SlaPolicyUpdate(Input):
    name: Annotated[Name | None, NotNull] = None
    position: Annotated[Position | None, NotNull] = None
    priority: Priority | None = None
    team_id: StrictId | None = None
    calendar_id: Annotated[StrictId | None, NotNull] = None
    first_response_minutes: TargetMinutes | None = None
    resolution_minutes: TargetMinutes | None = None
    warn_at_percent: Percent | None = None

    _trim = field_validator("name", mode="before")(_trimmed)
    _present = field_validator("name", "position", "calendar_id", mode="after")(_not_null)


class SlaPolicy(SlaPolicyBase, table=True):
    __tablename__ = "sla_policies"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaPolicyPublic(Output, SlaPolicyBase):
    id: int
    created_at: datetime
    updated_at: datetime


class SlaPoliciesPublic(Output):
    data: list[SlaPolicyPublic]
    count: int


class SlaTimerBase(SQLModel):
    kind: TimerKind = Field(sa_type=enum_type(TimerKind, "timer_kind"))
    state: TimerState = Field(sa_type=enum_type(TimerState, "timer_state"))
    policy_id: int | None = Field(default=None, foreign_key="sla_policies.id", ondelete="SET NULL")
    target_minutes: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, description="When the target is (or was) reached.")
    warn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    met_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_seconds: int = Field(default=0, description="Business time spent paused so far.")


class SlaTimer(SlaTimerBase, table=True):
    """One target of one ticket. `next_check_at` is when the SLA clock must look at it again (its
    warning or due time while it runs; null otherwise): the clock's only query reads its index."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "kind", name="uq_sla_timers_ticket_id_kind"),
        sa.Index("ix_sla_timers_next_check_at", "next_check_at"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE")
    next_check_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SlaPause(Output):
    started_at: datetime
    ended_at: datetime | None = Field(description="Null while the pause lasts.")
    reason: str = Field(description="What paused the timer, e.g. on_hold.")
    business_seconds: int = Field(description="Business time the pause moved the due time by.")


class SlaTimerPublic(Output, SlaTimerBase):
    late_seconds: int | None = Field(description="For met_late and breached timers: how late (so far).")
    pauses: list[SlaPause]


class TicketSlaPublic(Output):
    """A ticket's service level, with the numbers that explain each due time."""

    ticket_id: int
    sla_state: SlaState
    sla_due_at: datetime | None
    policy: SlaPolicyPublic | None
    calendar: CalendarPublic | None
    timers: list[SlaTimerPublic]


class SlaRecompute(SQLModel, table=True):
    """Work for the worker: recompute the running timers after a calendar or policy changed, in
    batches by ticket id (`after_ticket_id` is how far it got)."""

    __tablename__ = "sla_recompute"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    reason: str = Field(max_length=200)
    after_ticket_id: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- Alerts ---------------------------------------------------------------------------------------
# Monitoring intake (app.crud.alerts; the rules are app.alerts): an alert is a trigger, an
# acknowledge or a resolve for a dedup key; each key names the ticket its alerts went to last.

ALERT_SUMMARY_MAX = 1024  # PagerDuty's limit; the ticket's title is its first TITLE_MAX characters
ALERT_SOURCE_MAX = 255
DEDUP_KEY_MAX = 255
ALERT_DETAILS_MAX = 8000  # characters of `details` as compact JSON: the description stays in TEXT_MAX
ALERTMANAGER_ALERTS_MAX = 100  # alerts in one notification (alertmanager.yml: max_alerts: 100)


class AlertAction(StrEnum):
    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"


class AlertSeverity(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"


class AlertResult(StrEnum):
    created = "created"  # a new ticket
    deduplicated = "deduplicated"  # a repeat on the key's open ticket: a note, counted
    reopened = "reopened"  # the key's ticket, resolved within the reopen window, reopened
    acknowledged = "acknowledged"  # moved to in_progress
    resolved = "resolved"  # resolved as "resolved by <source>"
    noted = "noted"  # the move could not (or should not) be made: an internal note only
    ignored = "ignored"  # nothing to do (the key's ticket is no longer open; Alertmanager: unknown key)


DedupKey = Annotated[str, StringConstraints(min_length=1, max_length=DEDUP_KEY_MAX, pattern=NOT_BLANK)]
AlertSummary = Annotated[
    str, StringConstraints(min_length=1, max_length=ALERT_SUMMARY_MAX, pattern=NOT_BLANK)
]
AlertSource = Annotated[str, StringConstraints(min_length=1, max_length=ALERT_SOURCE_MAX, pattern=NOT_BLANK)]


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _bounded_details(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(compact_json(value)) > ALERT_DETAILS_MAX:
        raise ValueError(f"at most {ALERT_DETAILS_MAX} characters as compact JSON")
    return value


class AlertEventBase(Input):
    """An event from a monitoring tool, after PagerDuty's Events API v2 (flattened: no `payload`).
    Which fields are required depends on `action` (AlertTrigger, AlertAcknowledge, AlertResolve)."""

    dedup_key: DedupKey | None = PydanticField(
        default=None,
        description="Names the alert: its triggers share one ticket. Required to acknowledge or "
        "resolve; a trigger without one gets a new key (in the answer).",
    )
    summary: AlertSummary | None = PydanticField(
        default=None, description="What is wrong: the new ticket's title (its first 200 characters)."
    )
    severity: AlertSeverity | None = PydanticField(
        default=None,
        description="Sets a new ticket's priority: critical urgent, error high, warning medium, info low.",
    )
    source: AlertSource | None = PydanticField(
        default=None,
        description='The affected system (host, service); resolving writes "resolved by <source>" '
        "(default: the trigger's source).",
    )
    details: Annotated[dict[str, Any] | None, AfterValidator(_bounded_details)] = PydanticField(
        default=None, description=f"Any JSON object, at most {ALERT_DETAILS_MAX} characters as compact JSON."
    )
    team_id: StrictId | None = PydanticField(default=None, description="The team a new ticket goes to.")

    _trim = field_validator("dedup_key", "summary", "source", mode="before")(_trimmed)


class AlertTrigger(AlertEventBase):
    """Open a ticket for the alert, or count a repeat on its open one (see POST /alerts/)."""

    action: Literal["trigger"]
    summary: AlertSummary
    severity: AlertSeverity
    source: AlertSource


class AlertAcknowledge(AlertEventBase):
    """Move the key's ticket to in_progress, if the lifecycle allows it."""

    action: Literal["acknowledge"]
    dedup_key: DedupKey


class AlertResolve(AlertEventBase):
    """Resolve the key's ticket, unless a person has taken it over."""

    action: Literal["resolve"]
    dedup_key: DedupKey


AnyAlert = AlertTrigger | AlertAcknowledge | AlertResolve
AlertEvent = Annotated[AnyAlert, PydanticField(discriminator="action")]  # the request body
ALERT_TYPES: dict[AlertAction, type[AnyAlert]] = {
    AlertAction.trigger: AlertTrigger,
    AlertAction.acknowledge: AlertAcknowledge,
    AlertAction.resolve: AlertResolve,
}


class AlertOutcome(Output):
    """What an alert did. `ticket_id` is null when it found no ticket (`ignored`)."""

    ticket_id: int | None
    dedup_key: str
    result: AlertResult
    alert_count: int = PydanticField(description="Triggers counted on the key's ticket so far.")
    status: TicketStatus | None = PydanticField(description="The ticket's status after the alert.")
    message: str = PydanticField(description="What happened, for a person to read.")


class AlertmanagerAlert(Input):
    model_config = ConfigDict(extra="ignore")  # fields later versions add

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = PydanticField(default_factory=dict)
    annotations: dict[str, str] = PydanticField(default_factory=dict)
    startsAt: str | None = PydanticField(default=None, max_length=64)
    endsAt: str | None = PydanticField(default=None, max_length=64)
    generatorURL: str | None = PydanticField(default=None, max_length=2048)
    fingerprint: DedupKey

    @model_validator(mode="after")
    def _bounded(self) -> "AlertmanagerAlert":
        texts = [*self.labels, *self.labels.values(), *self.annotations, *self.annotations.values()]
        if any("\x00" in text for text in texts):
            raise ValueError("labels and annotations must not contain NUL characters")
        _bounded_details({"labels": self.labels, "annotations": self.annotations})
        return self


class AlertmanagerPayload(Input):
    """Prometheus Alertmanager's webhook body (version 4). Only `alerts` is read; the group fields
    are accepted as Alertmanager sends them."""

    model_config = ConfigDict(extra="ignore")

    version: str | None = PydanticField(default=None, max_length=16)
    receiver: str | None = PydanticField(default=None, max_length=NAME_MAX * 10)
    status: str | None = PydanticField(default=None, max_length=16)
    alerts: list[AlertmanagerAlert] = PydanticField(max_length=ALERTMANAGER_ALERTS_MAX)
    groupLabels: dict[str, str] = PydanticField(default_factory=dict)
    commonLabels: dict[str, str] = PydanticField(default_factory=dict)
    commonAnnotations: dict[str, str] = PydanticField(default_factory=dict)
    externalURL: str | None = PydanticField(default=None, max_length=2048)
    groupKey: str | None = PydanticField(default=None, max_length=TEXT_MAX)
    truncatedAlerts: Annotated[int, Strict()] = 0


class AlertmanagerOutcome(Output):
    results: list[AlertOutcome]


class AlertKey(SQLModel, table=True):
    """One dedup key: the ticket its alerts go to, and how often they were triggered. The row is
    the key's lock: every alert for the key holds it (SELECT ... FOR UPDATE) for its whole
    transaction, so concurrent triggers open one ticket."""

    __tablename__ = "alert_keys"

    dedup_key: str = Field(primary_key=True, max_length=DEDUP_KEY_MAX)
    # No foreign key, on purpose: a ticket's delete would then lock this row (ON DELETE SET NULL)
    # while holding the ticket, the reverse of an alert's order (the key, then its ticket), and the
    # two could deadlock. A deleted ticket's id is never reused: an alert finds no ticket there.
    ticket_id: int | None = Field(default=None, index=True)
    source: str | None = Field(default=None, max_length=ALERT_SOURCE_MAX)
    alert_count: int = 0
    first_alert_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_alert_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- API tokens -----------------------------------------------------------------------------------
# Long-lived credentials for integrations (app.crud.api_tokens). A token acts as its owner, a user or
# a service account, narrowed to its scopes: what it may do is its scopes AND its owner's role AND
# object-level access. Which scope each operation needs is a table in app.permissions.

API_TOKEN_PREFIX = "idt_"  # recognisable in logs and by secret scanners
API_TOKEN_DAYS_DEFAULT, API_TOKEN_DAYS_MAX = 90, 365


class TokenScope(StrEnum):
    tickets_read = "tickets:read"
    tickets_write = "tickets:write"
    comments_write = "comments:write"
    webhooks_manage = "webhooks:manage"
    alerts_write = "alerts:write"
    admin = "admin"  # every scope (still within the owner's role)


def _unique_scopes(value: list[TokenScope]) -> list[TokenScope]:
    return sorted(set(value))


class ApiTokenBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX)


class ApiTokenCreate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NOT_BLANK)]
    scopes: list[TokenScope] = PydanticField(min_length=1, description="What the token may do.")
    expires_in_days: Annotated[int, Strict(), Ge(1), Le(API_TOKEN_DAYS_MAX)] = PydanticField(
        default=API_TOKEN_DAYS_DEFAULT, description="Days until the token stops working (1 to 365)."
    )
    user_id: StrictId | None = PydanticField(
        default=None, description="Whose token it is (admins only; default: yourself)."
    )

    _scopes = field_validator("scopes", mode="after")(_unique_scopes)


class ApiToken(ApiTokenBase, table=True):
    """Only the SHA-256 of the secret is kept; `prefix` (its first characters) names it in lists."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    scopes: list[str] = Field(sa_type=sa.JSON)  # TokenScope values
    prefix: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # at most once a minute
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiTokenPublic(Output, ApiTokenBase):
    id: int
    user_id: int
    scopes: list[TokenScope]
    prefix: str = Field(description="The secret's first characters, to recognise it; never the secret.")
    created_by_id: int | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="The secret: shown this once, never again. Send it as a Bearer token.")


class ApiTokensPublic(Output):
    data: list[ApiTokenPublic]
    count: int


class RateLimitWindow(SQLModel, table=True):
    """Requests per API token in the current minute, shared by every worker and replica."""

    __tablename__ = "api_rate_limits"

    token_id: int = Field(foreign_key="api_tokens.id", ondelete="CASCADE", primary_key=True)
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    requests: int = 0


class ServiceAccountCreate(Input):
    """A user for an integration: it cannot log in with a password, only use the API tokens an
    admin makes for it; they keep working whoever made them."""

    email: Email
    full_name: str | None = Field(default=None, max_length=NAME_MAX)
    role: Role = Role.agent
    team_id: StrictId | None = None


# --- Webhooks -------------------------------------------------------------------------------------
# Outbound webhooks (app.webhooks: the event types, the retry schedule, what an answer means;
# app.crud.webhooks: endpoints; app.crud.webhook_outbox: a ticket write's deliveries, written in its
# transaction; app.crud.webhook_delivery: the worker's job that signs and sends them).

WEBHOOK_URL_MAX = 2000
WebhookEventType = Literal[
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.assigned",
    "ticket.commented",
    "sla.warning",
    "sla.breached",
]
WebhookUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=WEBHOOK_URL_MAX, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")
]


class WebhookFilter(SQLModel):
    """Which tickets an endpoint hears about: all when empty."""

    team_id: StrictId | None = None
    priorities: list[Priority] | None = PydanticField(default=None, min_length=1)


class WebhookEndpointBase(SQLModel):
    url: str = Field(max_length=WEBHOOK_URL_MAX)
    description: str | None = Field(default=None, max_length=NAME_MAX)
    # Event types (app.webhooks.EVENT_TYPES); empty: every type.
    event_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    filter: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # a WebhookFilter
    active: bool = True


class WebhookEndpointCreate(Input):
    url: WebhookUrl = PydanticField(
        description="http(s); its host must resolve to public addresses (WEBHOOKS_ALLOW_PRIVATE_NETWORKS)."
    )
    description: str | None = Field(default=None, max_length=NAME_MAX)
    event_types: list[WebhookEventType] = PydanticField(
        default_factory=list, description="Empty: every event type."
    )
    filter: WebhookFilter = PydanticField(default_factory=WebhookFilter)
    active: StrictBool = True


class WebhookEndpointUpdate(Input):
    url: Annotated[WebhookUrl | None, NotNull] = None
    description: str | None = Field(default=None, max_length=NAME_MAX)
    event_types: Annotated[list[WebhookEventType] | None, NotNull] = None
    filter: Annotated[WebhookFilter | None, NotNull] = None
    active: Annotated[StrictBool | None, NotNull] = None

    _present = field_validator("url", "event_types", "filter", "active", mode="after")(_not_null)


class WebhookEndpoint(WebhookEndpointBase, table=True):
    """A receiver. `secret` signs every delivery (whsec_...); after a rotation the previous one
    signs too until `previous_secret_expires_at`. `failing_since`: the first failed attempt since
    the last success (an endpoint failing for WEBHOOK_DISABLE_AFTER is disabled)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    owner_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    disabled_reason: str | None = Field(default=None, max_length=300)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookEndpointPublic(Output):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    filter: WebhookFilter
    active: bool
    disabled_reason: str | None = Field(description="Why the endpoint was disabled automatically.")
    failing_since: datetime | None
    owner_id: int | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    secret: str = Field(description="The signing secret (whsec_...): shown on creation and rotation only.")


class WebhookEndpointsPublic(Output):
    data: list[WebhookEndpointPublic]
    count: int


class WebhookDeliveryState(StrEnum):
    pending = "pending"  # due at next_attempt_at (also while a worker holds it: the claim is a lease)
    delivered = "delivered"
    dead = "dead"  # every attempt failed, or the endpoint answered 410 Gone


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: the webhook outbox. `message_id` is the webhook-id header (and
    the payload's `id`), the same on every attempt and for every endpoint the event goes to."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at", "id"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        # One event goes to every endpoint that wants it under one webhook-id.
        sa.UniqueConstraint("endpoint_id", "message_id"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    message_id: str = Field(max_length=64)
    event_type: str = Field(max_length=40)
    ticket_id: int | None = None  # no foreign key: the log outlives a deleted ticket
    payload: str = Field(sa_type=sa.Text)
    state: WebhookDeliveryState = Field(
        default=WebhookDeliveryState.pending,
        sa_type=enum_type(WebhookDeliveryState, "webhook_delivery_state"),
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One try of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_deliveries.id", ondelete="CASCADE")
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    response: str | None = Field(default=None, sa_type=sa.Text)  # the first 4 KiB


class WebhookAttemptPublic(Output):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response: str | None = Field(description="The first 4 KiB of the response body.")


class WebhookDeliveryPublic(Output):
    id: int
    endpoint_id: int
    message_id: str
    event_type: str
    ticket_id: int | None
    state: WebhookDeliveryState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_attempt: WebhookAttemptPublic | None


class WebhookDeliveriesPublic(Output):
    data: list[WebhookDeliveryPublic]
    count: int


class WebhookDeliveryDetail(WebhookDeliveryPublic):
    payload: dict[str, Any]
    log: list[WebhookAttemptPublic]


class WebhookReplay(Input):
    since: UTCTimestamp = PydanticField(description="Deliveries created at or after this time.")
    only_failed: StrictBool = PydanticField(default=True, description="Only the dead ones (default).")


class WebhookQueued(Output):
    queued: int = Field(description="Deliveries queued.")


# --- Notifications --------------------------------------------------------------------------------
# The outbox: every notification is a row written in the transaction of the change that caused it
# (app.crud.outbox.enqueue, called from the ticket-write seam and the account e-mails), delivered
# later by the worker. Who is told about what is app.notifications; delivery is app.crud.delivery.


class NotificationKind(StrEnum):
    ticket_assigned = "ticket_assigned"  # to the new assignee
    ticket_commented = "ticket_commented"  # to the watchers (internal notes: agents and admins only)
    ticket_resolved = "ticket_resolved"  # to the watchers, with the resolution
    ticket_reopened = "ticket_reopened"
    ticket_closed = "ticket_closed"
    sla_warning = "sla_warning"  # to the assignee, or the team's agents when unassigned
    sla_breached = "sla_breached"
    password_reset = "password_reset"  # account e-mails: always sent, no preference
    invitation = "invitation"
    webhook_disabled = "webhook_disabled"  # to the endpoint's owner (app.crud.webhook_delivery)


# The kinds a user may switch off (GET/PUT /users/me/notifications); account e-mails are always sent.
PREFERENCE_KINDS: tuple[NotificationKind, ...] = (
    NotificationKind.ticket_assigned,
    NotificationKind.ticket_commented,
    NotificationKind.ticket_resolved,
    NotificationKind.ticket_reopened,
    NotificationKind.ticket_closed,
    NotificationKind.sla_warning,
    NotificationKind.sla_breached,
)


class NotificationChannel(StrEnum):
    email = "email"


class NotificationState(StrEnum):
    pending = "pending"  # due at next_attempt_at (also while a worker holds it: the claim is a lease)
    sent = "sent"
    skipped = "skipped"  # not sent on purpose (no SMTP host; the recipient can no longer see it; ...)
    dead = "dead"  # every attempt failed; an admin may queue it again


class Notification(SQLModel, table=True):
    """One message to one recipient. `message_id` (RFC 5322 Message-ID) is fixed when the row is
    written, so a message sent twice after a crash is recognisable as one. `payload` (JSON) holds
    what the event was (event ids, comment id, status, timer, token id); what the message shows is
    read when it is sent, so it is current and checked against what the recipient may see then."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_due", "state", "next_attempt_at", "id"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, primary_key=True)
    channel: NotificationChannel = Field(
        default=NotificationChannel.email, sa_type=enum_type(NotificationChannel, "notification_channel")
    )
    kind: NotificationKind = Field(sa_type=enum_type(NotificationKind, "notification_kind"))
    recipient_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", ondelete="CASCADE", index=True)
    payload: str = Field(default="{}", sa_type=sa.Text)
    message_id: str = Field(max_length=255, unique=True)
    state: NotificationState = Field(
        default=NotificationState.pending, sa_type=enum_type(NotificationState, "notification_state")
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    request_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TicketWatcher(SQLModel, table=True):
    """An explicit watch or unwatch. The reporter, the assignee and every commenter watch a ticket
    without a row; a row with `watching` false is an unwatch that beats that (app.notifications)."""

    __tablename__ = "ticket_watchers"

    ticket_id: int = Field(foreign_key="tickets.id", ondelete="CASCADE", primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True, index=True)
    watching: bool
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NotificationSetting(SQLModel, table=True):
    """A user's choice for one kind of notification; no row means on."""

    __tablename__ = "notification_settings"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    kind: NotificationKind = Field(sa_type=enum_type(NotificationKind, "notification_kind"), primary_key=True)
    enabled: bool


class AccountTokenPurpose(StrEnum):
    password_reset = "password_reset"  # valid 1 hour
    invitation = "invitation"  # valid 72 hours


class AccountToken(SQLModel, table=True):
    """A single-use link sent by e-mail (password recovery, invitation). The token itself is never
    stored: it is derived from SECRET_KEY and `nonce` (app.core.account_tokens) when the e-mail is
    sent, and only its SHA-256 is kept to find it. `auth_stamp` is the user's stamp when it was
    issued: any password change (a new stamp) voids it; `used_at` makes it single-use."""

    __tablename__ = "account_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    purpose: AccountTokenPurpose = Field(sa_type=enum_type(AccountTokenPurpose, "account_token_purpose"))
    nonce: str = Field(max_length=64, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    auth_stamp: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# API schemas for watchers, settings and account e-mails


class WatchReason(StrEnum):
    """Why someone watches a ticket (app.notifications.watch_reasons)."""

    reporter = "reporter"
    assignee = "assignee"
    commenter = "commenter"
    explicit = "explicit"  # POST /tickets/{id}/watchers


class WatcherAdd(Input):
    """Who starts watching: yourself when `user_id` is left out; agents and admins may name others."""

    user_id: Annotated[StrictId | None, NotNull] = None

    _present = field_validator("user_id", mode="after")(_not_null)


class WatcherPublic(Output):
    user_id: int
    email: str | None = Field(
        description="Shown to agents and admins (who may read users); null for reporters."
    )
    full_name: str | None
    reasons: list[WatchReason]


class WatchersPublic(Output):
    data: list[WatcherPublic]
    count: int


class NotificationSettingsPublic(Output):
    """Every kind a user may switch off (PREFERENCE_KINDS): true = e-mailed (the default)."""

    ticket_assigned: bool
    ticket_commented: bool
    ticket_resolved: bool
    ticket_reopened: bool
    ticket_closed: bool
    sla_warning: bool
    sla_breached: bool


class NotificationSettingsUpdate(Input):
    """A full or partial map kind -> on/off; the kinds left out keep their setting."""

    ticket_assigned: Annotated[StrictBool | None, NotNull] = None
    ticket_commented: Annotated[StrictBool | None, NotNull] = None
    ticket_resolved: Annotated[StrictBool | None, NotNull] = None
    ticket_reopened: Annotated[StrictBool | None, NotNull] = None
    ticket_closed: Annotated[StrictBool | None, NotNull] = None
    sla_warning: Annotated[StrictBool | None, NotNull] = None
    sla_breached: Annotated[StrictBool | None, NotNull] = None

    _present = field_validator(*(kind.value for kind in PREFERENCE_KINDS), mode="after")(_not_null)


class UserCreateOrInvite(UserCreate):
    """POST /users: without `password`, the user is invited (an e-mailed link to set their own)."""

    password: Annotated[NewPassword | None, NotNull] = None  # type: ignore[assignment]

    _present = field_validator("password", mode="after")(_not_null)


class PasswordRecovery(Input):
    email: str = Field(min_length=1, max_length=LOGIN_NAME_MAX)


class PasswordReset(Input):
    """`token`: from the e-mailed link (password recovery or invitation)."""

    token: str = Field(min_length=1, max_length=128)
    new_password: NewPassword


# API schemas for the outbox (admin)


class NotificationPublic(Output):
    """A notification as admins see it (GET /notifications): never its payload."""

    id: int
    channel: NotificationChannel
    kind: NotificationKind
    recipient_id: int
    ticket_id: int | None
    state: NotificationState
    attempts: int = Field(description="Delivery attempts made (reset to 0 by a re-queue).")
    next_attempt_at: datetime = Field(
        description="Pending: when it is due (a retry's backoff, or a worker's lease while it sends)."
    )
    last_error: str | None = Field(description="Why the last attempt failed, or why it was skipped.")
    message_id: str = Field(description="The e-mail's Message-ID, the same on every attempt.")
    created_at: datetime
    sent_at: datetime | None


class NotificationsPublic(Output):
    data: list[NotificationPublic]
    count: int


class NotificationQuery(SQLModel):
    """The query parameters of `GET /notifications`: filters and paging, newest first."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    state: Annotated[NotificationState | None, NotNull] = None
    kind: Annotated[NotificationKind | None, NotNull] = None
    recipient_id: Annotated[int | None, NotNull] = Field(default=None, ge=1, le=MAX_ID)
    ticket_id: Annotated[int | None, NotNull] = Field(default=None, ge=1, le=MAX_ID)
    offset: int = Field(default=0, ge=0, le=10_000_000, description="Rows to skip.")
    limit: int = Field(default=20, ge=1, le=100, description="Rows to return (1-100).")
