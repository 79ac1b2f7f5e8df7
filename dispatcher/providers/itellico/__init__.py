"""The itellicoAI dialect."""

from dispatcher.providers.dialect import Dialect, Webhooks
from dispatcher.providers.itellico import errors, webhook
from dispatcher.providers.itellico.adapter import Itellico, normalise
from dispatcher.providers.itellico.config import ItellicoConfig

DIALECT = Dialect(kind="itellico", config=ItellicoConfig, adapter=Itellico,
                  errors=errors.classify,
                  webhooks=Webhooks(verify=webhook.verify, parse=webhook.parse,
                                    normalise=normalise))

__all__ = ["DIALECT", "Itellico", "ItellicoConfig"]
