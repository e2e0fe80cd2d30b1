"""The versioned API: every router under /api/v1."""

from fastapi import APIRouter

from app.api.routes import login, teams, tickets, users

# Routes are matched in order: the busiest router first.
api_router = APIRouter()
api_router.include_router(tickets.router)
api_router.include_router(login.router)
api_router.include_router(users.router)
api_router.include_router(teams.router)
