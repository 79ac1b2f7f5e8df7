"""The provider registry: every dialect the dispatcher speaks, by ``kind``.

To add a dialect: a package beside ``telecho/`` (config model, adapter, error table, webhooks
if any), one entry in ``DIALECTS`` and ``ProviderConfig`` below, and its routes in the
simulator. Nothing else in the dispatcher names a dialect.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dispatcher.providers.dialect import Adapter, CommonConfig, Dialect
from dispatcher.providers.itellico import DIALECT as ITELLICO
from dispatcher.providers.itellico import ItellicoConfig
from dispatcher.providers.telecho import DIALECT as TELECHO
from dispatcher.providers.telecho import TelEchoConfig

DIALECTS: dict[str, Dialect] = {d.kind: d for d in (TELECHO, ITELLICO)}

ProviderConfig = Annotated[TelEchoConfig | ItellicoConfig, Field(discriminator="kind")]


def dialect(kind: str) -> Dialect:
    return DIALECTS[kind]


def build_adapter(name: str, cfg: CommonConfig, api_key: str, concurrency: int) -> Adapter:
    kind: str = getattr(cfg, "kind")  # noqa: B009 - every dialect's model has a `kind` tag
    return DIALECTS[kind].adapter(name, cfg, api_key, concurrency)


__all__ = ["DIALECTS", "Adapter", "CommonConfig", "Dialect", "ProviderConfig",
           "build_adapter", "dialect"]
