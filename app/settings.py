"""Settings in one place, read once from TRACUU_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from indexer.backend import BackendSettings


class Settings(BackendSettings):
    """Service settings; every field can be set as TRACUU_<NAME> (backend fields: indexer/backend.py)."""

    model_config = SettingsConfigDict(env_prefix="TRACUU_")

    index_dir: Path = Path("data/index")
    host: str = "127.0.0.1"
    port: int = 8000
    max_query_chars: int = 500
    default_limit: int = 10
    max_limit: int = 100
    max_offset: int = 10_000
    max_bulk_queries: int = 1000
    max_bulk_bytes: int = 1_000_000
    # Processes a bulk request of many distinct queries is answered by (app.bulk_workers); 0: one per core.
    bulk_workers: int = Field(default=0, ge=0)
    # Per client (by address): requests a minute on average and the burst allowed; 0 turns it off.
    # A bulk request costs one more per 20 kB of body (about a hundred queries).
    rate_limit_per_minute: int = 6000
    rate_limit_burst: int = 300
    # Searches in progress at once (they share two cores); more are answered 503 at once.
    max_in_flight: int = 64
    # A search (each query of a bulk request) stops and answers 503 past this; 0 turns it off. Generous:
    # searches take milliseconds, but two cores under load can stretch one by a hundred times.
    search_timeout_ms: int = 10_000
    # Bearer token for PUT/DELETE /api/documents/{id}; empty means writes over HTTP are disabled.
    write_token: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment the first time."""
    return Settings()
