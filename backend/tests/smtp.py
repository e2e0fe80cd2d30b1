"""A real SMTP server for the tests: aiosmtpd, in-process (its own thread and event loop), on a free
port of 127.0.0.1. It records what it received, parsed (email.policy.default), and can be told to
misbehave: refuse a recipient or a message with a given reply, answer DATA slowly, or hold DATA
until the test lets it go (to kill a worker mid-send)."""

import asyncio
import email
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import Session

from app.core import account_tokens, db
from app.core.config import get_settings
from app.crud import common, outbox
from app.factories import UserFactory
from app.models import AccountToken, AccountTokenPurpose, NotificationKind, Role
from scripts.benchkit import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def parts(self) -> dict[str, str]:
        """The message's parts by content type (text/plain, text/html), decoded."""
        found = {}
        for part in self.message.walk():
            if not part.is_multipart():
                found[part.get_content_type()] = part.get_content()  # type: ignore[attr-defined]
        return found


@dataclass
class Recorder:
    """The server's handler (aiosmtpd calls handle_RCPT and handle_DATA on its own loop)."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply, e.g. "550 ..."
    data_reply: str | None = None  # refuse every message with this reply
    data_delay: float = 0  # seconds before DATA is answered
    hold_data: float = 0  # DATA waits for `release` (at most this many seconds)
    data_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.refuse_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started.set()
        if self.hold_data:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, self.hold_data)
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def by_message_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        with self.lock:
            for item in self.received:
                found.setdefault(item.message_id, []).append(item)
        return found


class SmtpServer:
    """A started aiosmtpd server; `stop()` and `start()` again on the same port."""

    def __init__(self, recorder: Recorder | None = None, port: int | None = None) -> None:
        self.recorder = recorder or Recorder()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.recorder.received

    def env(self, **extra: str) -> dict[str, str]:
        """The settings that point the app at this server (plain SMTP, no TLS, no login)."""
        return {
            "SMTP_HOST": self.host,
            "SMTP_PORT": str(self.port),
            "SMTP_TLS": "false",
            "SMTP_SSL": "false",
            "EMAILS_FROM_EMAIL": "desk@example.com",
            "EMAILS_FROM_NAME": "Incident Desk",
            **extra,
        }


@contextmanager
def smtp_server(recorder: Recorder | None = None) -> Iterator[SmtpServer]:
    server = SmtpServer(recorder)
    server.start()
    try:
        yield server
    finally:
        server.recorder.release.set()
        server.stop()


# --- Outbox rows the tests queue ------------------------------------------------------------------


def invitation(session: Any, user: Any, *, now: Any = None) -> Any:
    """Queue an invitation for `user` as the enqueue side does: a valid single-use token row and
    an outbox row naming it (`session`: a sync Session; the caller commits)."""
    when = now or common.utcnow()
    nonce = account_tokens.new_nonce()
    token = AccountToken(
        user_id=user.id,
        purpose=AccountTokenPurpose.invitation,
        nonce=nonce,
        token_hash=account_tokens.digest(
            account_tokens.derive(get_settings().SECRET_KEY, AccountTokenPurpose.invitation.value, nonce)
        ),
        auth_stamp=user.auth_stamp,
        created_at=when,
        expires_at=when + timedelta(hours=72),
    )
    session.add(token)
    session.flush()
    queued = outbox.Queued(
        kind=NotificationKind.invitation, recipient_id=user.id, payload={"token_id": token.id}
    )
    return outbox.enqueue(session, queued, now=when)


def users_with_invitations(url: str, count: int, *, bad_addresses: int = 0) -> list[tuple[int, str]]:
    """`count` new users of the database at `url`, each with an invitation queued (committed), the
    last `bad_addresses` of them with a malformed e-mail address; (row id, Message-ID) of each."""
    engine = db.create_db_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            users = [UserFactory.build(role=Role.agent) for _ in range(count)]
            for user in users[count - bad_addresses :]:
                user.email = f"bad address {user.email}"
            session.add_all(users)
            session.flush()
            rows = [invitation(session, user) for user in users]
            session.commit()
            return [(row.id, row.message_id) for row in rows]
    finally:
        engine.dispose()
