"""``[providers.<name>]`` keys of a TelEcho account."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from dispatcher.providers.dialect import CommonConfig


class TelEchoConfig(CommonConfig):
    kind: Literal["telecho"]
    phone_number_id: str | None = None  # default caller; a job's "from" overrides it

    @model_validator(mode="after")
    def _pool_ids(self) -> TelEchoConfig:
        for caller in self.caller_ids.numbers if self.caller_ids else ():
            if not caller.id:
                raise ValueError(f"caller_ids.numbers: {caller.number} needs its id "
                                 "(the phone_number_id TelEcho knows it by)")
        return self
