"""``[console]``: where ``dispatcher console`` listens and who may act through it."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A Host header's form: a name or IPv4 address, or an IPv6 address in brackets; a port maybe.
HOST = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::")


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
    # Host headers answered (name, or name:port for that port only); None: the bind address
    # and the localhost names. A DNS-rebinding page sends its own name, which is refused.
    allowed_hosts: list[str] | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (expected e.g. "
                                 "'127.0.0.1' or '10.0.0.0/8')") from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item != "*" and not HOST.fullmatch(item):
                raise ValueError(f"{item!r} is not a host name (expected a name or address, "
                                 "with ':port' to allow that port only, or '*' for any)")
        return value

    def hosts(self) -> list[str]:
        """The Host headers answered."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        bind = f"[{self.host}]" if ":" in self.host else self.host
        first = [] if self.host in WILDCARDS else [bind]
        return first + [n for n in LOCAL_NAMES if n != bind]

    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies]
