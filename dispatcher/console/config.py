"""``[console]``: where ``dispatcher console`` listens and who may act through it."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConsoleConfig(BaseModel):
    """The console reads Redis for anyone who can reach it; actions (resume a provider,
    pause, resume or cancel a campaign) and unmasked numbers need a token from
    ``token_file``. Without a token file the console is read-only."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    token_file: str | None = None
    refresh_s: float = Field(default=2.0, ge=0.5, le=60)
    session_ttl_s: float = Field(default=8 * 3600.0, ge=60, le=30 * 86400)
    # Peers whose X-Forwarded-Proto/-Host and Forwarded headers are believed (addresses or
    # networks); anyone else could claim https or any host with them.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (expected e.g. "
                                 "'127.0.0.1' or '10.0.0.0/8')") from None
        return v

    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies]
