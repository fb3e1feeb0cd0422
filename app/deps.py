"""Shared dependencies of the HTTP routes: settings and the one search service.

They are coroutines because they never block: FastAPI runs a plain function dependency in its thread
pool, and three hops through it cost a search more than its ranking at 10,000 articles.
"""

from __future__ import annotations

from fastapi import Request

from app.bulk_workers import BulkPool
from app.search import SearchService
from app.settings import Settings


async def get_service(request: Request) -> SearchService:
    """The search service created with the app."""
    return request.app.state.service


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_bulk_pool(request: Request) -> BulkPool:
    """The app's bulk worker pool (its processes start with the first large bulk request)."""
    return request.app.state.bulk_pool
