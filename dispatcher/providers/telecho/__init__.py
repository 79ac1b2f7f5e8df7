"""The TelEcho dialect."""

from dispatcher.providers.dialect import Dialect
from dispatcher.providers.telecho import errors
from dispatcher.providers.telecho.adapter import TelEcho
from dispatcher.providers.telecho.config import TelEchoConfig

DIALECT = Dialect(kind="telecho", config=TelEchoConfig, adapter=TelEcho,
                  errors=errors.classify)

__all__ = ["DIALECT", "TelEcho", "TelEchoConfig"]
