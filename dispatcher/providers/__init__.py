"""Provider adapters, one per dialect, built from configuration."""

from __future__ import annotations

from dispatcher.config import ConfigError, ProviderConfig, read_secret
from dispatcher.providers.base import Adapter
from dispatcher.providers.itellico import Itellico
from dispatcher.providers.telecho import TelEcho


def build_adapter(name: str, cfg: ProviderConfig, concurrency: int) -> Adapter:
    key = read_secret(cfg.api_key_env, cfg.api_key_file, f"providers.{name}.api_key")
    if not key:
        raise ConfigError(f"providers.{name}: no API key (set api_key_env or api_key_file)")
    if cfg.kind == "telecho":
        return TelEcho(name, cfg, key, concurrency)
    return Itellico(name, cfg, key, concurrency)


__all__ = ["Adapter", "build_adapter"]
