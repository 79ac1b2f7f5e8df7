"""``[providers.<name>]`` keys of an itellicoAI account."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from dispatcher.providers.dialect import CommonConfig


class ItellicoConfig(CommonConfig):
    kind: Literal["itellico"]
    account_id: str = "me"
    from_number: str | None = None  # default caller; a job's "from" overrides it
    webhook_secret_env: str | None = None
    webhook_secret_file: str | None = None
    signature_header: str = "X-Itellico-Signature"
    timestamp_header: str = "X-Itellico-Timestamp"

    @model_validator(mode="after")
    def _pool_ids(self) -> ItellicoConfig:
        for caller in self.caller_ids.numbers if self.caller_ids else ():
            if caller.id and caller.id != caller.number:
                raise ValueError(f"caller_ids.numbers: {caller.number}: itellicoAI calls from the "
                                 "number itself; leave id out")
        return self

    @property
    def webhooks_on(self) -> bool:
        return bool(self.webhook_secret_env or self.webhook_secret_file)

    def secrets(self) -> dict[str, tuple[str | None, str | None]]:
        out = super().secrets()
        if self.webhooks_on:
            out["webhook_secret"] = (self.webhook_secret_env, self.webhook_secret_file)
        return out
