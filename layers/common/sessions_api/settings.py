"""Configuration, parsed from the environment once per process."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str
    bucket_name: str
    # Only the functions that page lists hold the cursor-signing key (template.yaml): CursorCodec needs it.
    cursor_secret: SecretStr | None = Field(default=None, min_length=16)
    idle_timeout_minutes: int = Field(default=1440, ge=1)
    expired_retention_days: int = Field(default=7, ge=0)
    max_active_sessions: int = Field(default=100, ge=1)
    # Writes per second per user (each message of a batch counts): keeps any one user's keys cool.
    user_writes_per_second: int = Field(default=120, ge=25)
    # …and to any one session (its partition takes every write to it).
    session_writes_per_second: int = Field(default=80, ge=25)
    # Exported files are deleted by the bucket's lifecycle after this many days; their records go with them.
    export_retention_days: int = Field(default=7, ge=1)
    # A DELETE /me's receipt is kept this long after the erasure finished.
    erasure_receipt_days: int = Field(default=30, ge=1)
    tracing_enabled: bool = False
    api_base_path: str = "/api/v1"
    # Due-time index partitions: spreads expiry keys so no index partition runs hot (docs/capacity.md).
    due_shards: int = Field(default=64, ge=1, le=1024)
    service_name: str = Field(default="sessions-api", alias="powertools_service_name")
    # Chat: `bedrock` (Converse API) deployed, `local` (deterministic echo, no AWS) for `make dev` and tests.
    model_provider: Literal["bedrock", "local"] = "bedrock"
    default_model_id: str = "amazon.nova-lite-v1:0"
    # JSON {"<model id>": [input USD, output USD] per million tokens}, merged over the built-in price table.
    model_prices: str | None = None
    # `POST /chat` without a session_id opens a session that expires after this much idleness.
    temporary_session_idle_minutes: int = Field(default=60, ge=1)
    # A run holds its session's turn this long past the worker's last sign of life (renewed as it works),
    # so a crashed worker never holds a session for good.
    run_lease_seconds: int = Field(default=60, ge=10, le=900)
    # A synchronous chat waits this long for its run, then answers 202 with the poll URL.
    sync_chat_wait_seconds: float = Field(default=25, gt=0, le=28)
    # Events of a finished run are kept this long (its messages stay).
    run_events_retention_hours: int = Field(default=24, ge=1)
    # The local provider's pause between streamed chunks (so streaming is observable offline).
    local_stream_delay_ms: int = Field(default=50, ge=0)
    # The live WebSocket API's @connections endpoint (template.yaml; the local gateway's locally); empty: none.
    live_connections_url: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = {key.lower(): value for key, value in os.environ.items()}
    return Settings.model_validate(env)
