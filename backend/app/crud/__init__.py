"""All data access, one module per resource; the only code that touches the database.

Functions are async (the request path) and take the request's `Database` and their arguments by
keyword; each write is one transaction (app.core.database). `from app import crud` gives them all:

- users: users, the per-request user check, logging in and its throttling;
- teams; sla_admin: calendars and SLA policies, and the default policies;
- tickets: one ticket, its writes, moves and audit trail; comments;
- ticket_writes: the transaction every ticket write runs in, and the hooks that see what it wrote;
- ticket_list: the list with filters, search, sorts and keyset paging;
- ticket_sla: a ticket's service level, explained (read-only);
- idempotency: Idempotency-Key rows;
- notifications_admin: the outbox as admins see it (list, re-queue, the /metrics gauges); the
  worker's delivery job is app.crud.delivery.

`db seed`'s synchronous bulk loader is not request-path data access: it lives beside the seeder
(app.seed_load).
"""

from app.audit import CREATED_FIELDS
from app.crud.comments import add_comment, list_comments
from app.crud.idempotency import claim_idempotency_key, complete_idempotency_key, release_idempotency_key
from app.crud.notifications_admin import (
    NOTIFICATION_NOT_FOUND,
    list_notifications,
    read_outbox,
    requeue_notification,
)
from app.crud.sla_admin import (
    DefaultsInstalled,
    create_calendar,
    create_policy,
    delete_calendar,
    delete_policy,
    fill_holidays,
    get_calendar,
    get_policy,
    install_defaults,
    list_calendars,
    list_policies,
    update_calendar,
    update_policy,
)
from app.crud.teams import TEAM_TAKEN, create_team, delete_team, get_team, list_teams, update_team
from app.crud.ticket_list import TicketPage, list_tickets
from app.crud.ticket_sla import get_ticket_sla
from app.crud.tickets import (
    TICKET_NOT_FOUND,
    count_tickets_by_status,
    create_ticket,
    delete_ticket,
    get_ticket,
    list_events,
    list_transitions,
    move_ticket,
    update_ticket,
)
from app.crud.users import (
    BAD_CREDENTIALS,
    EMAIL_TAKEN,
    THROTTLED,
    authenticate,
    change_password,
    count_login_attempts,
    create_user,
    current_user,
    delete_user,
    get_user,
    get_user_by_email,
    list_users,
    log_in,
    settle_login_attempts,
    throttle_key,
    update_user,
)

__all__ = [
    "BAD_CREDENTIALS",
    "CREATED_FIELDS",
    "EMAIL_TAKEN",
    "NOTIFICATION_NOT_FOUND",
    "TEAM_TAKEN",
    "THROTTLED",
    "TICKET_NOT_FOUND",
    "DefaultsInstalled",
    "TicketPage",
    "add_comment",
    "authenticate",
    "change_password",
    "claim_idempotency_key",
    "complete_idempotency_key",
    "count_login_attempts",
    "count_tickets_by_status",
    "create_calendar",
    "create_policy",
    "create_team",
    "create_ticket",
    "create_user",
    "current_user",
    "delete_calendar",
    "delete_policy",
    "delete_team",
    "delete_ticket",
    "delete_user",
    "fill_holidays",
    "get_calendar",
    "get_policy",
    "get_team",
    "get_ticket",
    "get_ticket_sla",
    "get_user",
    "get_user_by_email",
    "install_defaults",
    "list_calendars",
    "list_comments",
    "list_events",
    "list_notifications",
    "list_policies",
    "list_teams",
    "list_tickets",
    "list_transitions",
    "list_users",
    "log_in",
    "move_ticket",
    "read_outbox",
    "release_idempotency_key",
    "requeue_notification",
    "settle_login_attempts",
    "throttle_key",
    "update_calendar",
    "update_policy",
    "update_team",
    "update_ticket",
    "update_user",
]
