"""The versioned API: every router under /api/v1."""

from fastapi import APIRouter

from app.api.routes import (
    alerts,
    login,
    notifications,
    sla,
    teams,
    tickets,
    tokens,
    users,
    watchers,
    webhooks,
)

# The app takes their routes into its own route table (app.api.routing), matched in this order, the
# busiest first.
API_ROUTERS: tuple[APIRouter, ...] = (
    tickets.router,
    users.router,
    login.router,
    teams.router,
    sla.router,
    tokens.router,
    tokens.service_accounts,
    webhooks.router,
    alerts.router,
    watchers.router,
    notifications.router,
)
