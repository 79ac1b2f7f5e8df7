"""The simulator's documented configuration is real: the TOML in its docstring loads, and every
value shown is the default."""

from __future__ import annotations

import textwrap
import tomllib
from typing import Any

from dispatcher.simulator import config


def documented() -> dict[str, Any]:
    doc = config.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\nFault kinds", 1)[0]
    return tomllib.loads(textwrap.dedent(block))


def test_the_documented_toml_loads_and_shows_the_defaults() -> None:
    data = documented()
    cfg = config.SimConfig.model_validate(data)
    default = config.SimConfig()
    for section in ("seed", "audit_file", "accounts", "calls", "faults", "predial"):
        assert getattr(cfg, section) == getattr(default, section), section
    ((name, key),) = cfg.keys.items()
    assert key == default.keys[name]
    assert set(cfg.resources.items()) <= set(default.resources.items())


def test_every_setting_is_documented() -> None:
    data = documented()
    for section, model in (("calls", config.CallSpec), ("faults", config.FaultSpec),
                           ("predial", config.PredialSpec)):
        assert set(data[section]) == set(model.model_fields), section
    assert set(data["accounts"]["acme"]) | {"webhook_url"} == set(config.AccountSpec.model_fields)
    (key,) = data["keys"].values()
    assert set(key) == set(config.KeySpec.model_fields)
    doc = config.__doc__ or ""
    assert all(f"``{k}``" in doc for k in config.FAULTS + config.PREDIAL_FAULTS)
    assert set(data) | {"audit_file"} == set(config.SimConfig.model_fields)
