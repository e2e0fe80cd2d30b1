"""An SMTP client for the worker: one connection per batch, every network step bounded.

Built on the standard library's `smtplib` (blocking; the delivery job runs each step in a thread
with `asyncio.to_thread`, so the event loop sees SIGTERM while a message is in hand). The settings
are named as the full-stack FastAPI template names them: SMTP_HOST, SMTP_PORT, SMTP_SSL (TLS from
the first byte), SMTP_TLS (STARTTLS after connecting), SMTP_USER and SMTP_PASSWORD.

Every exchange with the server (connecting, the greeting, EHLO, STARTTLS, each AUTH step, MAIL,
RCPT, DATA, the end of the data) waits at most SMTP_TIMEOUT_SECONDS (the socket's timeout), and a
send is at most SMTP_EXCHANGES_PER_SEND of them (app.core.config): that bounds the longest send,
and the delivery lease (NOTIFY_LEASE_SECONDS) is checked to be longer.

What goes wrong is told apart, because the delivery job treats the two differently:
- `MessageRefused`: the server refused this message (4xx/5xx on MAIL, RCPT or DATA, a malformed
  address) and the connection is still usable: this message fails, the next one goes;
- `ConnectionFailed`: no connection, a timeout, a dropped connection, a refused login or STARTTLS:
  this message and the rest of the batch fail (they are tried again later).
"""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from app.core.config import Settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    ssl: bool
    starttls: bool
    user: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpSettings | None":
        """None when no SMTP server is configured (no SMTP_HOST or no EMAILS_FROM_EMAIL)."""
        if not settings.SMTP_HOST or not settings.EMAILS_FROM_EMAIL:
            return None
        return cls(
            host=settings.SMTP_HOST,
            port=settings.SMTP_PORT,
            ssl=settings.SMTP_SSL,
            starttls=settings.SMTP_TLS and not settings.SMTP_SSL,
            user=settings.SMTP_USER,
            password=settings.SMTP_PASSWORD,
            timeout=settings.SMTP_TIMEOUT_SECONDS,
        )


class SmtpFailure(Exception):
    """A send that did not happen; str() is one line for an operator (the row's last_error)."""


class MessageRefused(SmtpFailure):
    """This message was refused; the connection can send the next one."""


class ConnectionFailed(SmtpFailure):
    """The connection is gone or unusable: nothing more goes through it."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{code} {first}".strip()


def well_formed(address: str) -> bool:
    """A plain `local@domain` address, with nothing a header or an SMTP command could choke on."""
    if not address or len(address) > 254 or any(ch.isspace() or ord(ch) < 32 for ch in address):
        return False
    parsed = getaddresses([address])
    if len(parsed) != 1 or parsed[0][1] != address:
        return False
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain and "@" not in local and "." in domain.strip("."))


class SmtpConnection:
    """One open connection (blocking; call its methods through asyncio.to_thread)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        """Connect, greet, STARTTLS and log in as the settings say. Raises ConnectionFailed."""
        settings = self.settings
        try:
            if settings.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            self._smtp = smtp
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise ConnectionFailed(_one_line(exc)) from exc

    def send(self, message: Message) -> None:
        """Send one message to its To: address. Raises MessageRefused or ConnectionFailed."""
        if self._smtp is None:
            raise ConnectionFailed("not connected")
        recipient = str(message["To"] or "")
        if not well_formed(recipient):
            raise MessageRefused(f"malformed recipient address {recipient[:200]!r}")
        try:
            self._smtp.send_message(message, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise MessageRefused(f"recipient refused: {_reply(code, reply)}") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            what = "sender refused" if isinstance(exc, smtplib.SMTPSenderRefused) else "message refused"
            raise MessageRefused(f"{what}: {_reply(exc.smtp_code, exc.smtp_error)}") from exc
        except (smtplib.SMTPNotSupportedError, UnicodeError) as exc:  # e.g. a non-ASCII address
            raise MessageRefused(_one_line(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise ConnectionFailed(_one_line(exc)) from exc

    def close(self) -> None:
        """QUIT (bounded like any step), then close; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
