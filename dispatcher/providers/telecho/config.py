"""``[providers.<name>]`` keys of a TelEcho account."""

from __future__ import annotations

from typing import Literal

from dispatcher.providers.dialect import CommonConfig


class TelEchoConfig(CommonConfig):
    kind: Literal["telecho"]
    phone_number_id: str | None = None  # default caller; a job's "from" overrides it
