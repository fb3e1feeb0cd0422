"""Which engine holds the index: the embedded Whoosh index (default) or a Typesense cluster.

Both the indexer and the app read this from the same TRACUU_* variables (app.settings extends it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BACKENDS = ("whoosh", "typesense")


class BackendSettings(BaseSettings):
    """TRACUU_BACKEND and the Typesense connection; every field can be set as TRACUU_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="TRACUU_")

    backend: Literal["whoosh", "typesense"] = "whoosh"
    # Comma-separated node URLs of one Typesense cluster, e.g. http://127.0.0.1:8108,http://127.0.0.1:8109
    typesense_nodes: str = "http://127.0.0.1:8108"
    typesense_api_key: str = ""
    # Seconds before a node counts as down and the client tries the next one.
    typesense_timeout: float = 5.0

    @field_validator("typesense_nodes")
    @classmethod
    def _nodes_are_urls(cls, value: str) -> str:
        """Every node must be an http(s) URL with a port."""
        for url in node_urls(value):
            if not url.startswith(("http://", "https://")) or url.count(":") < 2:
                raise ValueError(f"not a node URL with a port: {url!r} (e.g. http://127.0.0.1:8108)")
        return value

    @property
    def nodes(self) -> list[str]:
        """The node URLs as a list."""
        return node_urls(self.typesense_nodes)


def node_urls(value: str) -> list[str]:
    """Split a comma-separated node list, dropping blanks and trailing slashes."""
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


def backend_settings() -> BackendSettings:
    """The backend settings of this process's environment."""
    return BackendSettings()
