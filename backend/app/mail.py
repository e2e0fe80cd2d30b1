"""E-mail messages from templates: what a notification says, as a MIME message (no I/O here).

`render(kind, context)` renders the kind's templates from app/email-templates (Jinja2,
autoescaped); `message(...)` wraps the result as a multipart/alternative e-mail (plain text and
HTML) with the notification's fixed Message-ID. What goes into `context` is app.crud.mail_context.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from app.models import NotificationKind


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(kind: NotificationKind, context: Mapping[str, Any]) -> Rendered:  # noqa: ARG001
    """The subject, plain-text and HTML parts of a `kind` notification. (Placeholder until the
    templates land: a generic message.)"""
    subject = f"[Incident Desk] {kind.value.replace('_', ' ')}"
    text = f"{subject}\n"
    return Rendered(subject=subject, text=text, html=f"<p>{subject}</p>")


def message(
    rendered: Rendered, *, to: str, sender: str, sender_name: str | None, message_id: str
) -> EmailMessage:
    """The e-mail: From, To, Subject, Date, the fixed Message-ID, text and HTML alternatives."""
    mail = EmailMessage()
    mail["From"] = formataddr((sender_name or "", sender))
    mail["To"] = to
    mail["Subject"] = rendered.subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    return mail
