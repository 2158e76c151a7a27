"""Configuration, parsed from the environment once per process."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str
    bucket_name: str
    cursor_secret: SecretStr = Field(min_length=16)
    idle_timeout_minutes: int = Field(default=1440, ge=1)
    expired_retention_days: int = Field(default=7, ge=0)
    max_active_sessions: int = Field(default=100, ge=1)
    tracing_enabled: bool = False
    api_base_path: str = "/api/v1"
    # Due-time index partitions: spreads expiry keys so no index partition runs hot.
    due_shards: int = Field(default=4, ge=1, le=64)
    service_name: str = Field(default="sessions-api", alias="powertools_service_name")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = {key.lower(): value for key, value in os.environ.items()}
    return Settings.model_validate(env)
