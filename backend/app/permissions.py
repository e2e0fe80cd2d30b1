"""Who may do what: the whole role policy, in one table a reader can check.

| permission        | reporter          | agent | admin |
|-------------------|-------------------|-------|-------|
| ticket.create     | yes               | yes   | yes   |
| ticket.read_all   | own tickets only  | yes   | yes   |
| ticket.edit       | -                 | yes   | yes   |
| ticket.assign     | -                 | yes   | yes   |
| ticket.move       | own, the moves marked reporter_may in app.lifecycle | yes | yes |
| ticket.delete     | -                 | -     | yes   |
| comment.create    | own tickets       | yes   | yes   |
| note.internal     | - (never sees them) | yes | yes   |
| team.read         | -                 | yes   | yes   |
| team.write        | -                 | -     | yes   |
| user.read         | -                 | yes   | yes   |
| user.write        | -                 | -     | yes   |
| sla.read          | -                 | yes   | yes   |
| sla.manage        | -                 | -     | yes   |
| webhook.manage    | -                 | -     | yes   |
| alert.write       | -                 | yes   | yes   |
| notification.manage | -               | -     | yes   |

Every user may read and edit their own account (`/users/me`). An API token narrows its owner's
role further by its scopes: OPERATION_SCOPES, at the end of this module.
"""

from enum import StrEnum

from app.core.errors import Forbidden
from app.models import Role, Ticket, TokenScope, User


class Permission(StrEnum):
    ticket_create = "ticket.create"
    ticket_read_all = "ticket.read_all"
    ticket_edit = "ticket.edit"
    ticket_assign = "ticket.assign"
    ticket_move = "ticket.move"
    ticket_delete = "ticket.delete"
    comment_create = "comment.create"
    note_internal = "note.internal"
    team_read = "team.read"
    team_write = "team.write"
    user_read = "user.read"
    user_write = "user.write"
    sla_read = "sla.read"  # calendars and SLA policies
    sla_manage = "sla.manage"
    webhook_manage = "webhook.manage"  # outbound webhook endpoints and their delivery log
    alert_write = "alert.write"  # alerts from monitoring (app.alerts)
    notification_manage = "notification.manage"  # the outbox: list, re-queue


P = Permission
_AGENT = frozenset(
    {
        P.ticket_create,
        P.ticket_read_all,
        P.ticket_edit,
        P.ticket_assign,
        P.ticket_move,
        P.comment_create,
        P.note_internal,
        P.team_read,
        P.user_read,
        P.sla_read,
        P.alert_write,
    }
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.reporter: frozenset({P.ticket_create, P.comment_create}),
    Role.agent: _AGENT,
    Role.admin: _AGENT
    | {P.ticket_delete, P.team_write, P.user_write, P.sla_manage, P.webhook_manage, P.notification_manage},
}


def has(user: User, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[user.role]


def require(user: User, permission: Permission, action: str) -> None:
    """Raise Forbidden ("<role>s may not <action>") unless the user's role has the permission."""
    if not has(user, permission):
        raise Forbidden(f"{user.role.value}s may not {action}")


def can_see(user: User, ticket: Ticket) -> bool:
    return has(user, P.ticket_read_all) or ticket.reporter_id == user.id


def sees_internal_notes(user: User) -> bool:
    return has(user, P.note_internal)


# --- API tokens -----------------------------------------------------------------------------------
# The scope an API token needs for each operation, by method and path template (under /api/v1). A
# JWT from the login carries every scope; `admin` includes every scope. An operation missing from
# this table needs `admin`, so a new endpoint is closed to narrower tokens until it is listed here.
# Scopes only narrow: the owner's role (the table above) and object-level access still apply.
S = TokenScope
ANY_SCOPE = None  # any valid token may call it
OPERATION_SCOPES: dict[tuple[str, str], TokenScope | None] = {
    ("GET", "/tickets/"): S.tickets_read,
    ("GET", "/tickets/{ticket_id}"): S.tickets_read,
    ("GET", "/tickets/{ticket_id}/sla"): S.tickets_read,
    ("GET", "/tickets/{ticket_id}/transitions"): S.tickets_read,
    ("GET", "/tickets/{ticket_id}/events"): S.tickets_read,
    ("GET", "/tickets/{ticket_id}/comments"): S.tickets_read,
    ("GET", "/teams/"): S.tickets_read,  # to file tickets with a team
    ("GET", "/teams/{team_id}"): S.tickets_read,
    ("POST", "/tickets/"): S.tickets_write,
    ("PATCH", "/tickets/{ticket_id}"): S.tickets_write,
    ("PATCH", "/tickets/{ticket_id}/status"): S.tickets_write,
    ("DELETE", "/tickets/{ticket_id}"): S.tickets_write,
    ("POST", "/tickets/{ticket_id}/comments"): S.comments_write,
    ("GET", "/tickets/{ticket_id}/watchers"): S.tickets_read,
    ("POST", "/tickets/{ticket_id}/watchers"): S.tickets_write,
    ("DELETE", "/tickets/{ticket_id}/watchers/{user_id}"): S.tickets_write,
    ("GET", "/users/me"): ANY_SCOPE,
    ("GET", "/tokens/"): ANY_SCOPE,  # a token may see its owner's tokens, never a secret
    ("POST", "/webhooks/"): S.webhooks_manage,
    ("GET", "/webhooks/"): S.webhooks_manage,
    ("GET", "/webhooks/{endpoint_id}"): S.webhooks_manage,
    ("PATCH", "/webhooks/{endpoint_id}"): S.webhooks_manage,
    ("DELETE", "/webhooks/{endpoint_id}"): S.webhooks_manage,
    ("POST", "/webhooks/{endpoint_id}/rotate-secret"): S.webhooks_manage,
    ("POST", "/webhooks/{endpoint_id}/test"): S.webhooks_manage,
    ("GET", "/webhooks/{endpoint_id}/deliveries"): S.webhooks_manage,
    ("GET", "/webhooks/{endpoint_id}/deliveries/{delivery_id}"): S.webhooks_manage,
    ("POST", "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): S.webhooks_manage,
    ("POST", "/webhooks/{endpoint_id}/replay"): S.webhooks_manage,
    ("POST", "/alerts/"): S.alerts_write,
    ("POST", "/alerts/alertmanager"): S.alerts_write,
}


def scope_needed(method: str, path: str) -> TokenScope | None:
    """The scope an API token needs for `method` on the path template `path` (see the table)."""
    return OPERATION_SCOPES.get((method, path), S.admin)


def token_allows(scopes: frozenset[TokenScope], needed: TokenScope | None) -> bool:
    return needed is None or needed in scopes or S.admin in scopes
