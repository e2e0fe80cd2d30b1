"""Settings, read from the environment and the repository's root `.env`."""

import ipaddress
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AnyUrl,
    BeforeValidator,
    EmailStr,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.core.passwords import weakness

BACKEND_DIR = Path(__file__).resolve().parents[2]
ROOT_ENV_FILE = BACKEND_DIR.parent / ".env"
# Local data (the SQLite file, the development secret) lives outside backend/, which the development
# server watches for changes: a write there must not wake the reloader (setting DATA_DIR).
DEFAULT_DATA_DIR = BACKEND_DIR.parent / ".data"
SQLITE_FILE = "incident_desk.sqlite3"
DEV_SECRET_FILE = "dev-secret-key"
PLACEHOLDER_SECRET = "changethis"
API_V1_STR = "/api/v1"
# The most exchanges with the SMTP server one send can take, each bounded by SMTP_TIMEOUT_SECONDS
# (connect, greeting, EHLO, STARTTLS, EHLO, three AUTH steps, MAIL, RCPT, DATA, the data): the
# longest send is this many timeouts (app.core.smtp), and the delivery lease must outlast it.
SMTP_EXCHANGES_PER_SEND = 12

logger = logging.getLogger("app.config")


class ConfigError(RuntimeError):
    """The configuration is unusable; the message is one line meant for an operator."""


def parse_cors(value: Any) -> list[str] | str:
    if isinstance(value, str) and not value.startswith("["):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | str):
        return value
    raise ValueError(value)


def parse_comma_list(value: Any) -> Any:
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


def normalise_database_url(raw: str) -> str:
    """Return a SQLAlchemy URL; `postgres://` and `postgresql://` use the psycopg 3 driver."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("not a database URL (expected e.g. postgresql://user:pass@host/db)")
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if not url.host and not url.query.get("host"):
            raise ValueError("a PostgreSQL URL needs a host")
        if not url.database:
            raise ValueError("a PostgreSQL URL needs a database name")
        url = url.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ValueError(f"unsupported database '{backend}' (use postgresql:// or sqlite://)")
    return url.render_as_string(hide_password=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ROOT_ENV_FILE,
        env_ignore_empty=True,
        extra="ignore",
    )

    PROJECT_NAME: str = "Incident Desk"
    # Where local data lives: the default SQLite database and, with ENVIRONMENT=local, the
    # development secret. Outside backend/ by default (the development server watches that folder).
    DATA_DIR: Path = DEFAULT_DATA_DIR
    ENVIRONMENT: Literal["local", "staging", "production"] = "local"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    SECRET_KEY: str = PLACEHOLDER_SECRET
    ACCESS_TOKEN_EXPIRE_MINUTES: int = 60 * 8

    # Login throttling: this many failures inside the window lock the account (or the client
    # address) until the window has passed since the first failure. A success clears both.
    # Threads that hash and check passwords (app.core.offload); 0: half the CPU cores, at least 1.
    PASSWORD_HASH_THREADS: int = Field(default=0, ge=0, le=64)
    LOGIN_MAX_FAILURES_PER_ACCOUNT: int = 5
    LOGIN_MAX_FAILURES_PER_CLIENT: int = 20
    LOGIN_WINDOW_SECONDS: int = 15 * 60

    FIRST_SUPERUSER: EmailStr = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str = PLACEHOLDER_SECRET

    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or networks,
    # comma-separated; uvicorn's own name for it). Empty: nobody, and the client address is the
    # TCP peer. Behind a reverse proxy, name exactly that proxy (e.g. the compose network's).
    FORWARDED_ALLOW_IPS: Annotated[list[str], NoDecode, BeforeValidator(parse_comma_list)] = []

    # GET /metrics: open to anyone only when METRICS_PUBLIC is true; otherwise it takes
    # `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' `authorization.credentials`) or an admin's
    # access token.
    METRICS_PUBLIC: bool = False
    METRICS_TOKEN: str = ""

    BACKEND_CORS_ORIGINS: Annotated[list[AnyUrl] | str, NoDecode, BeforeValidator(parse_cors)] = []
    FRONTEND_HOST: str = "http://localhost:5173"

    # Empty means: build it from POSTGRES_* when POSTGRES_SERVER is set, else embedded SQLite.
    DATABASE_URL: str = ""
    POSTGRES_SERVER: str = ""
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str = "postgres"
    POSTGRES_PASSWORD: str = ""
    POSTGRES_DB: str = "app"
    DB_CONNECT_TIMEOUT_SECONDS: int = 2
    DB_POOL_SIZE: int = 10
    DB_WAIT_SECONDS: int = 60
    # Bounds on every database wait of a request (app.core.database). Under contention a request
    # queues for a pooled connection and for a lock up to these, then answers 503 with Retry-After.
    DB_POOL_TIMEOUT_SECONDS: int = Field(default=5, ge=1)
    DB_LOCK_TIMEOUT_SECONDS: int = Field(default=5, ge=1)
    # A statement the server runs longer than this is cancelled by the server (PostgreSQL).
    DB_STATEMENT_TIMEOUT_SECONDS: int = Field(default=15, ge=1)
    # A request under /api/v1 answers within this, whatever happens below (a database that stops
    # answering without closing its connections): 503 with Retry-After. Keep it above the pool and
    # lock timeouts, which give their own 503 first.
    API_REQUEST_TIMEOUT_SECONDS: int = Field(default=12, ge=1)

    # --- Operations (issue 6): log format, request size limit, idempotent retries ---------------
    # auto: readable lines when ENVIRONMENT=local, one JSON object per line otherwise.
    LOG_FORMAT: Literal["auto", "json", "console"] = "auto"
    # Request bodies larger than this are refused with 413 (declared or counted while streamed).
    MAX_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)
    # How long an Idempotency-Key (and the response it stored) is remembered after first use.
    IDEMPOTENCY_TTL_HOURS: int = Field(default=24, ge=1, le=24 * 30)

    # --- Ticket list (issue [5/6]) -------------------------------------------------------------
    # The list counts matching tickets exactly up to this many; past it, `count` is this number and
    # `count_exact` is false (`exact_count=true` asks for the full count, at its cost).
    TICKET_COUNT_LIMIT: int = Field(default=1000, ge=1)

    # --- Service levels and the worker (issue [6/8]) --------------------------------------------
    # The time zone of the business-hours calendar `db sla-defaults` (and `db seed`) installs.
    SLA_TIME_ZONE: str = "UTC"
    # The worker (`worker`) looks for due work this often; a pass handles tickets in batches of
    # WORKER_BATCH_SIZE, each batch one transaction.
    WORKER_INTERVAL_SECONDS: float = Field(default=5, gt=0, le=3600)
    WORKER_BATCH_SIZE: int = Field(default=200, ge=1, le=10_000)

    # E-mail (named as the full-stack FastAPI template names them). No SMTP_HOST: notifications are
    # still written to the outbox, and the worker marks them skipped instead of sending them.
    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_TLS: bool = True  # STARTTLS after connecting
    SMTP_SSL: bool = False  # TLS from the first byte (port 465); excludes SMTP_TLS
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TIMEOUT_SECONDS: float = Field(default=10, gt=0, le=120)
    EMAILS_FROM_EMAIL: EmailStr | None = None
    EMAILS_FROM_NAME: str | None = None
    # Delivery attempts before a notification is dead (the schedule: app.crud.delivery).
    NOTIFY_MAX_ATTEMPTS: int = Field(default=8, ge=1, le=30)
    # A worker that claims notifications holds them this long (a lease): if it dies mid-send, another
    # worker sends them when the lease ends. More than SMTP_EXCHANGES_PER_SEND x SMTP_TIMEOUT_SECONDS
    # (a batch sends while a whole send still fits in what is left of its lease).
    NOTIFY_LEASE_SECONDS: float = Field(default=300, gt=0, le=86_400)
    # The worker serves its own Prometheus counters (notifications sent, failed, dead, skipped) on
    # this port, at /metrics; 0: not served.
    WORKER_METRICS_PORT: int = Field(default=0, ge=0, le=65535)
    # Account links (password recovery, invitation) point at FRONTEND_HOST; how long they last.
    PASSWORD_RESET_TOKEN_MINUTES: int = Field(default=60, ge=5, le=24 * 60)
    INVITATION_TOKEN_HOURS: int = Field(default=72, ge=1, le=24 * 30)
    # Requests per minute per API token, counted in the database (shared by every worker and replica).
    API_TOKEN_RATE_LIMIT_PER_MINUTE: int = Field(default=1000, ge=1, le=1_000_000)
    # Webhook receivers on loopback, link-local or private addresses (the resolved address is
    # checked, not the name): refused unless this is true (a receiver on the same network).
    WEBHOOKS_ALLOW_PRIVATE_NETWORKS: bool = False
    # Alerts (monitoring intake): a trigger this soon after its key's ticket was resolved reopens
    # that ticket instead of opening a new one (0: never reopen).
    ALERT_REOPEN_WINDOW_SECONDS: int = Field(default=3600, ge=0, le=30 * 24 * 3600)

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address or network (or *)") from None
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return normalise_database_url(value) if value else value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def all_cors_origins(self) -> list[str]:
        origins = [str(origin).rstrip("/") for origin in self.BACKEND_CORS_ORIGINS]
        return [*origins, self.FRONTEND_HOST.rstrip("/")]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def SQLALCHEMY_DATABASE_URI(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        if self.POSTGRES_SERVER:
            url = URL.create(
                "postgresql+psycopg",
                username=self.POSTGRES_USER,
                password=self.POSTGRES_PASSWORD or None,
                host=self.POSTGRES_SERVER,
                port=self.POSTGRES_PORT,
                database=self.POSTGRES_DB,
            )
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{self.DATA_DIR / SQLITE_FILE}"

    def _placeholders(self) -> list[str]:
        """The settings that still hold the development placeholder `changethis`."""
        names = ["SECRET_KEY", "FIRST_SUPERUSER_PASSWORD"]
        if self.POSTGRES_SERVER and not self.DATABASE_URL:
            names.append("POSTGRES_PASSWORD")
        return [name for name in names if getattr(self, name) == PLACEHOLDER_SECRET]

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Self:
        longest = SMTP_EXCHANGES_PER_SEND * self.SMTP_TIMEOUT_SECONDS
        if longest >= self.NOTIFY_LEASE_SECONDS:
            raise ValueError(
                f"NOTIFY_LEASE_SECONDS must be more than {longest:g} ({SMTP_EXCHANGES_PER_SEND} x "
                "SMTP_TIMEOUT_SECONDS, the longest send)"
            )
        return self

    @model_validator(mode="after")
    def _enforce_secrets(self) -> Self:
        placeholders = self._placeholders()
        if self.ENVIRONMENT != "local":
            if placeholders:
                name = placeholders[0]
                raise ValueError(
                    f'{name} is "{PLACEHOLDER_SECRET}"; set a real value in .env or the environment '
                    f"(ENVIRONMENT={self.ENVIRONMENT})"
                )
            if len(self.SECRET_KEY) < 32:
                raise ValueError("SECRET_KEY must be at least 32 characters outside ENVIRONMENT=local")
            if problem := weakness(self.FIRST_SUPERUSER_PASSWORD, [str(self.FIRST_SUPERUSER)]):
                raise ValueError(f"FIRST_SUPERUSER_PASSWORD is {problem}")
        elif self.SECRET_KEY == PLACEHOLDER_SECRET:
            # Development: a random secret kept in .data/ (stable across reloads and processes),
            # never the short public placeholder.
            self.SECRET_KEY = development_secret(self.DATA_DIR / DEV_SECRET_FILE)
        return self

    def development_warnings(self) -> list[str]:
        """What a local start should say once (the server logs it in one line at startup)."""
        warnings = []
        placeholders = [name for name in self._placeholders() if name != "SECRET_KEY"]
        if placeholders:
            warnings.append(
                f'{" and ".join(placeholders)} still "{PLACEHOLDER_SECRET}" (development only; set real '
                "values in .env or the environment before deploying)"
            )
        if len(self.SECRET_KEY.encode()) < 32:
            warnings.append("SECRET_KEY is shorter than 32 bytes: tokens are weakly signed")
        return warnings


def development_secret(path: Path) -> str:
    """A random secret for ENVIRONMENT=local, made once and kept in `path`; in-process only (tokens
    die with the process) where that folder cannot be written."""
    try:
        return path.read_text().strip()
    except OSError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secret)
        draft.chmod(0o600)
        try:  # atomic: when two processes start together, the first link wins and both read it
            os.link(draft, path)
        except FileExistsError:
            secret = path.read_text().strip()
        finally:
            draft.unlink(missing_ok=True)
    except OSError:
        logger.warning("cannot keep a development secret in %s: tokens last until a restart", path)
    return secret


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; raises ConfigError with a one-line message when invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {describe_validation_error(exc)}") from None
