"""The versioned API: every router under /api/v1."""

from fastapi import APIRouter

api_router = APIRouter()
