"""The versioned API: every router under /api/v1."""

from fastapi import APIRouter

from app.api.routes import login, notifications, sla, teams, tickets, tokens, users, webhooks

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
    notifications.router,
)
