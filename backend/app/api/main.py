"""The versioned API: every router under /api/v1."""

from fastapi import APIRouter

from app.api.routes import login, teams, tickets, users

api_router = APIRouter()
api_router.include_router(login.router)
api_router.include_router(users.router)
api_router.include_router(teams.router)
api_router.include_router(tickets.router)
