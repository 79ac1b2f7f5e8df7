"""``[console]``: where ``dispatcher console`` listens and who may act through it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConsoleConfig(BaseModel):
    """The console reads Redis for anyone who can reach it; actions (resume a provider,
    pause, resume or cancel a campaign) and unmasked numbers need a token from
    ``token_file``. Without a token file the console is read-only."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    token_file: str | None = None
    refresh_s: float = Field(default=2.0, ge=0.5, le=60)
