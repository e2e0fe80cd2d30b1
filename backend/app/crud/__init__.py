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
- api_tokens: API tokens and their rate limit; service_accounts: users for integrations;
- alerts: alerts from monitoring, which open, note, reopen, acknowledge and resolve tickets.
- notify: the ticket-write hook that queues notifications (registered here, once); watchers,
  notification_settings: a ticket's watchers, a user's notification settings;
- account_tokens: password recovery, invitations and the reset that consumes their links.
- notifications_admin: the outbox as admins see it (list, re-queue, the /metrics gauges); the
  worker's delivery job is app.crud.delivery.

`db seed`'s synchronous bulk loader is not request-path data access: it lives beside the seeder
(app.seed_load).
"""

from app.audit import CREATED_FIELDS
from app.crud import notify, ticket_writes, webhook_outbox
from app.crud.account_tokens import create_or_invite_user, request_password_reset, reset_password
from app.crud.alerts import ALERT_NOT_FOUND, handle_alert, handle_alertmanager
from app.crud.api_tokens import create_token, list_tokens, looks_like_api_token, revoke_token, use_token
from app.crud.comments import add_comment, list_comments
from app.crud.idempotency import claim_idempotency_key, complete_idempotency_key, release_idempotency_key
from app.crud.notification_settings import get_notification_settings, update_notification_settings
from app.crud.notifications_admin import (
    NOTIFICATION_NOT_FOUND,
    list_notifications,
    read_outbox,
    requeue_notification,
)
from app.crud.service_accounts import create_service_account, list_service_accounts
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
from app.crud.watchers import list_watchers, unwatch, watch
from app.crud.webhooks import (
    create_endpoint,
    delete_endpoint,
    delivery_payload,
    get_delivery,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    redeliver,
    replay,
    rotate_secret,
    send_test_event,
    update_endpoint,
)

__all__ = [
    "ALERT_NOT_FOUND",
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
    "create_endpoint",
    "create_or_invite_user",
    "create_policy",
    "create_service_account",
    "create_team",
    "create_ticket",
    "create_token",
    "create_user",
    "current_user",
    "delete_calendar",
    "delete_endpoint",
    "delete_policy",
    "delete_team",
    "delete_ticket",
    "delete_user",
    "delivery_payload",
    "fill_holidays",
    "get_calendar",
    "get_delivery",
    "get_endpoint",
    "get_notification_settings",
    "get_policy",
    "get_team",
    "get_ticket",
    "get_ticket_sla",
    "get_user",
    "get_user_by_email",
    "handle_alert",
    "handle_alertmanager",
    "install_defaults",
    "list_calendars",
    "list_comments",
    "list_deliveries",
    "list_endpoints",
    "list_events",
    "list_notifications",
    "list_policies",
    "list_service_accounts",
    "list_teams",
    "list_tickets",
    "list_tokens",
    "list_transitions",
    "list_users",
    "list_watchers",
    "log_in",
    "looks_like_api_token",
    "move_ticket",
    "read_outbox",
    "redeliver",
    "release_idempotency_key",
    "replay",
    "request_password_reset",
    "requeue_notification",
    "reset_password",
    "revoke_token",
    "rotate_secret",
    "send_test_event",
    "settle_login_attempts",
    "stop_notifying",
    "throttle_key",
    "unwatch",
    "update_calendar",
    "update_endpoint",
    "update_notification_settings",
    "update_policy",
    "update_team",
    "update_ticket",
    "update_user",
    "use_token",
    "watch",
]


# Every ticket write (the API's and the SLA clock's) hands what it wrote to these, inside its
# transaction (app.crud.ticket_writes): its notifications and its webhook deliveries are queued
# there, with the write or not at all.
stop_notifying = ticket_writes.register(before=notify.hook)
ticket_writes.register(before=webhook_outbox.enqueue)
