"""The README and docs/ name every configuration key and every command the code has, so a new
setting or command cannot ship undocumented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from dispatcher.cli import build_parser
from dispatcher.config.console import ConsoleConfig
from dispatcher.config.settings import Settings
from dispatcher.core.policy import CampaignConfig, PolicyConfig
from dispatcher.providers.itellico.config import ItellicoConfig
from dispatcher.providers.telecho.config import TelEchoConfig

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIG_DOCS = (ROOT / "docs/configuration.md").read_text()
OPERATIONS = (ROOT / "docs/operations.md").read_text()
POLICY_DOCS = (ROOT / "docs/policy.md").read_text() + (ROOT / "docs/campaigns.md").read_text()


def _models(settings_field: str) -> type[BaseModel]:
    annotation = Settings.model_fields[settings_field].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation


def _named(text: str, key: str) -> bool:
    """The key appears as a word of its own inside backticks (``key``, ``x.key``, ``key / y``)."""
    return re.search(rf"`[^`]*(?<![A-Za-z_]){re.escape(key)}(?![A-Za-z_])[^`]*`", text) is not None


@pytest.mark.parametrize("section", ["redis", "worker", "retry", "tracking", "results", "jobs",
                                     "optout"])
def test_the_configuration_docs_name_every_key_of_each_section(section: str) -> None:
    missing = [k for k in _models(section).model_fields if not _named(CONFIG_DOCS, k)]
    assert missing == [], f"[{section}] keys missing from docs/configuration.md: {missing}"


@pytest.mark.parametrize("model", [TelEchoConfig, ItellicoConfig, ConsoleConfig])
def test_the_configuration_docs_name_every_provider_and_console_key(
        model: type[BaseModel]) -> None:
    missing = [k for k in model.model_fields if not _named(CONFIG_DOCS, k)]
    assert missing == [], f"{model.__name__} keys missing from docs/configuration.md: {missing}"


@pytest.mark.parametrize("model", [PolicyConfig, CampaignConfig])
def test_the_policy_docs_name_every_policy_and_campaign_key(model: type[BaseModel]) -> None:
    missing = [k for k in model.model_fields if not _named(POLICY_DOCS, k)]
    assert missing == [], f"{model.__name__} keys missing from docs/policy.md: {missing}"


def test_the_operations_docs_list_every_command() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [c for c in sub.choices if f"`dispatcher {c}" not in OPERATIONS]
    assert missing == [], f"commands missing from docs/operations.md: {missing}"


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) <= 150


def test_nothing_in_the_docs_points_outside_the_repository() -> None:
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "benchmarks/README.md"]
    for path in texts:
        for target in re.findall(r"\]\(([^)#]+)", path.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


ARCHITECTURE = (ROOT / "docs/architecture.md").read_text()
PACKAGE = ROOT / "dispatcher"


def _named_in_architecture(rel: str) -> bool:
    """A module is named by its path (``core/jobs.py``), within a group of the same folder
    (``store/reads.py``, ``store/producing.py``), or by its folder (``cli/``)."""
    folder = rel.split("/")[0] + "/"
    return f"`{rel}`" in ARCHITECTURE or (
        "/" in rel and re.search(rf"`{re.escape(folder)}`", ARCHITECTURE) is not None
        and folder in ("cli/", "console/", "simulator/")) or (
        rel.startswith("providers/") and rel.count("/") == 2
        and f"`{rel.split('/')[-1]}`" in ARCHITECTURE)


def test_the_architecture_names_every_module() -> None:
    modules = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py"))
    missing = [m for m in modules if not _named_in_architecture(m)]
    assert missing == [], f"modules missing from docs/architecture.md: {missing}"


def test_every_key_the_lua_builds_is_named_in_keys_py() -> None:
    keys_py = (PACKAGE / "store/keys.py").read_text()
    named = set(re.findall(r'_k\("([a-z_]+)', keys_py))
    lua = "\n".join(p.read_text() for p in (PACKAGE / "lua").rglob("*.lua"))
    built = set(re.findall(r"P \.\. '([a-z_]+):?'", lua))
    assert built - named == set(), f"keys built in the Lua, not named in keys.py: {built - named}"


def test_the_readme_says_where_the_command_is_after_set_up() -> None:
    assert ".venv/bin/dispatcher" in README and "source .venv/bin/activate" in README


def test_the_docs_say_how_to_keep_the_demo_up_to_look_around() -> None:
    assert "dispatcher demo\n--keep" in OPERATIONS or "dispatcher demo --keep" in OPERATIONS


def test_the_simulators_demo_keys_are_documented() -> None:
    from dispatcher.config.settings import SIMULATOR_DEMO_KEYS
    text = README + OPERATIONS + (ROOT / "docs/providers.md").read_text()
    assert all(key in text for key in SIMULATOR_DEMO_KEYS.values())
