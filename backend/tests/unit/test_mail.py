"""The e-mail templates: every kind renders both parts and a subject, markup never gets in, and a
template that fails is an error rather than a half-empty mail."""

from email import message_from_bytes, policy
from typing import Any

import jinja2
import pytest

from app import mail
from app.models import NotificationKind

HOSTILE_TITLE = '<script>alert("x")</script> VPN & "DNS"'
HOSTILE_BODY = '<img src=x onerror="steal()"><a href="http://evil.example">click</a>'


def context(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "project": "Incident Desk",
        "recipient": {"name": "Ada Agent", "email": "ada@example.com"},
        "settings_url": "http://desk.example/settings/notifications",
        "ticket": {
            "id": 42,
            "title": HOSTILE_TITLE,
            "status": "resolved",
            "priority": "high",
            "resolution": "Rebooted the <b>router</b>",
            "url": "http://desk.example/tickets/42",
        },
        "actor": "Bob <bob@example.com>",
        "previous_status": "resolved",
        "comment": {"author": "Rita Reporter", "body": HOSTILE_BODY, "internal": False},
        "timer": "first response",
        "due_at": "2026-12-01 09:30 UTC",
        "link": "http://desk.example/reset-password?token=abc",
        "expires_at": "2026-12-01 10:30 UTC",
        "endpoint": {
            "id": 3,
            "url": "https://hooks.example.com/in",
            "reason": "every delivery failed for 5 days",
        },
    }
    return {**base, **extra}


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_renders_a_subject_and_both_parts(kind: NotificationKind) -> None:
    rendered = mail.render(kind, context())
    assert rendered.subject.startswith("[Incident Desk] ")
    assert "\n" not in rendered.subject
    assert "Hello Ada Agent," in rendered.text
    assert "Hello Ada Agent," in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text + rendered.html


@pytest.mark.parametrize("kind", [k for k in NotificationKind if k.value.startswith(("ticket_", "sla_"))])
def test_ticket_fields_are_text_never_markup(kind: NotificationKind) -> None:
    rendered = mail.render(kind, context())
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; VPN &amp; &#34;DNS&#34;" in rendered.html
    assert HOSTILE_TITLE in rendered.text  # the plain-text part is text: nothing to escape
    assert "#42" in rendered.subject and HOSTILE_TITLE in rendered.subject


def test_a_comment_body_cannot_inject_markup() -> None:
    rendered = mail.render(NotificationKind.ticket_commented, context())
    assert "<img" not in rendered.html and '<a href="http://evil.example">' not in rendered.html
    assert "&lt;img src=x onerror=&#34;steal()&#34;&gt;" in rendered.html
    assert HOSTILE_BODY in rendered.text
    assert "Rita Reporter commented:" in rendered.text


def test_an_internal_note_says_so_in_subject_and_body() -> None:
    note = context(comment={"author": "Ada", "body": "root cause: disk", "internal": True})
    rendered = mail.render(NotificationKind.ticket_commented, note)
    assert rendered.subject == f"[Incident Desk] #42 internal note: {HOSTILE_TITLE}"
    assert "added an internal note (agents and admins only):" in rendered.text


def test_resolved_mail_carries_the_resolution_escaped() -> None:
    rendered = mail.render(NotificationKind.ticket_resolved, context())
    assert "Resolution:\nRebooted the <b>router</b>" in rendered.text
    assert "Rebooted the &lt;b&gt;router&lt;/b&gt;" in rendered.html


def test_account_mails_carry_the_link_and_its_expiry() -> None:
    for kind in (NotificationKind.password_reset, NotificationKind.invitation):
        rendered = mail.render(kind, context())
        assert "http://desk.example/reset-password?token=abc" in rendered.text
        assert 'href="http://desk.example/reset-password?token=abc"' in rendered.html
        assert "until 2026-12-01 10:30 UTC" in rendered.text


def test_a_newline_in_a_title_cannot_add_a_header() -> None:
    rendered = mail.render(
        NotificationKind.ticket_assigned,
        context(ticket={**context()["ticket"], "title": "a\r\nBcc: victim@example.com"}),
    )
    assert rendered.subject == "[Incident Desk] #42 assigned to you: a Bcc: victim@example.com"


def test_a_missing_value_fails_the_render() -> None:
    broken = context()
    del broken["actor"]
    with pytest.raises(jinja2.UndefinedError):
        mail.render(NotificationKind.ticket_assigned, broken)


def test_the_message_is_multipart_alternative_with_the_fixed_message_id() -> None:
    rendered = mail.render(NotificationKind.ticket_assigned, context())
    built = mail.message(
        rendered,
        to="ada@example.com",
        sender="desk@example.com",
        sender_name="Desk",
        message_id="<m1@example.com>",
    )
    parsed = message_from_bytes(built.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == "<m1@example.com>"
    assert parsed["From"] == "Desk <desk@example.com>"
    assert parsed["To"] == "ada@example.com"
    parts = {part.get_content_type(): part.get_content() for part in parsed.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "assigned this ticket to you" in parts["text/plain"]
    assert "&lt;script&gt;" in parts["text/html"]


def test_non_ascii_names_and_subjects_arrive_intact() -> None:
    rendered = mail.Rendered(
        subject="[Incident Desk] #7 Überhitzung im Serverraum", text="Grüße", html="<p>Grüße</p>"
    )
    built = mail.message(
        rendered,
        to="ada@example.com",
        sender="desk@example.com",
        sender_name="Service Désk",
        message_id="<m2@example.com>",
    )
    parsed = message_from_bytes(built.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "[Incident Desk] #7 Überhitzung im Serverraum"
    assert parsed["From"] == "Service Désk <desk@example.com>"
    assert [part.get_content() for part in parsed.iter_parts()] == ["Grüße", "<p>Grüße</p>"]
    assert built.as_bytes().isascii()  # 7-bit on the wire: no server can mangle it
