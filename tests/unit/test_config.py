import os
from pathlib import Path

import pytest

from dispatcher.config.settings import (
    ConfigError,
    check_runnable,
    check_secrets,
    load_settings,
    read_secret,
)


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


PROV = """
[providers.default]
kind = "telecho"
base_url = "http://x/api"
api_key_env = "K"
"""


def test_defaults_and_toml(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, PROV + 'limits = ["60/minute", "1000/hour"]\n'))
    assert s.redis.namespace == "dispatcher" and s.retry.max_attempts == 8
    assert [w.limit for w in s.providers["default"].windows] == [60, 1000]


def test_env_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_WORKER__CONCURRENCY", "7")
    monkeypatch.setenv("DISPATCHER_RETRY__MAX_ATTEMPTS", "3")
    s = load_settings(write(tmp_path, PROV))
    assert (s.worker.concurrency, s.retry.max_attempts) == (7, 3)


@pytest.mark.parametrize(("text", "needle"), [
    (PROV + 'limits = ["60/min"]\n', "providers.default.limits"),
    (PROV.replace("telecho", "twilio"), "providers.default.kind"),
    ("[worker]\nconcurrency = 0\n", "worker.concurrency"),
    ("[redis]\nblock_ms = 20000\nsocket_timeout_s = 5\n", "block_ms"),
    ("[retry]\nmax_atempts = 3\n", "retry.max_atempts"),
    (PROV.replace('api_key_env = "K"', ""), "api_key_env or api_key_file"),
    ("[redis\n", "c.toml"),
])
def test_bad_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text))
    assert needle in str(exc.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(str(tmp_path / "nope.toml"))


def test_secret_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "key"
    f.write_text("sk-from-file\n")
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    assert read_secret("MY_KEY", None, "k") == "sk-from-env"
    assert read_secret(None, str(f), "k") == "sk-from-file"
    assert read_secret("UNSET_KEY_X", str(f), "k") == "sk-from-file"
    with pytest.raises(ConfigError, match="UNSET_KEY_X"):
        read_secret("UNSET_KEY_X", None, "providers.x.api_key")
    os.environ.pop("MY_KEY", None)


def test_check_runnable_refuses_no_providers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no providers configured: add a \[providers.NAME\]"):
        check_runnable(load_settings(write(tmp_path, "")))


def test_check_runnable_accepts_one_provider(tmp_path: Path) -> None:
    check_runnable(load_settings(write(tmp_path, PROV)))


TWO = PROV + """
[providers.eu]
kind = "itellico"
base_url = "http://eu"
api_key_file = "{key}"
webhook_secret_file = "{hook}"
"""


def test_check_secrets_lists_every_missing_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K", raising=False)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    s = load_settings(write(tmp_path, TWO.format(key=empty, hook="/x/y")))
    with pytest.raises(ConfigError) as exc:
        check_secrets(s)
    lines = str(exc.value).splitlines()
    assert lines[1:] == [
        "  providers.default.api_key: environment variable K is not set or empty",
        f"  providers.eu.api_key: {empty} is empty",
        "  providers.eu.webhook_secret: cannot read /x/y: No such file or directory",
    ]


def test_check_secrets_passes_and_never_echoes_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, hook = tmp_path / "key", tmp_path / "hook"
    key.write_text("sk-eu-value")
    hook.write_text("whsec_value")
    monkeypatch.setenv("K", "tel_live_value")
    check_secrets(load_settings(write(tmp_path, TWO.format(key=key, hook=hook))))
    monkeypatch.setenv("K", "")
    with pytest.raises(ConfigError) as exc:
        check_secrets(load_settings(write(tmp_path, TWO.format(key=key, hook=hook))))
    assert "value" not in str(exc.value)


def test_check_secrets_requires_an_api_key_source(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, PROV))
    s.providers["default"].api_key_env = None  # as if built without load_settings' check
    with pytest.raises(ConfigError, match=r"providers.default.api_key: set api_key_env or "
                                          r"api_key_file"):
        check_secrets(s)


def test_read_secret_reports_binary_files(tmp_path: Path) -> None:
    f = tmp_path / "bin"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_secret(None, str(f), "providers.x.api_key")


def test_secret_pairs_are_found_in_any_section() -> None:
    from pydantic import BaseModel

    from dispatcher.config.settings import _secret_refs

    class Hook(BaseModel):
        predial_secret_env: str | None = "H"
        predial_secret_file: str | None = None

    class Root(BaseModel):
        policy: Hook = Hook()
        campaigns: dict[str, Hook] = {"spring": Hook(predial_secret_env=None)}
        hooks: list[Hook] = [Hook()]

    assert list(_secret_refs(Root(), "")) == [
        ("policy.predial_secret", "H", None),
        ("campaigns.spring.predial_secret", None, None),
        ("hooks[0].predial_secret", "H", None),
    ]


def test_the_shipped_configuration_names_the_simulators_demo_key_when_its_own_is_unset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELECHO_API_KEY", raising=False)
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    root = Path(__file__).resolve().parents[2]
    s = load_settings(str(root / "config/dispatcher.toml"))
    with pytest.raises(ConfigError) as exc:
        check_secrets(s)
    text = str(exc.value)
    assert "environment variable TELECHO_API_KEY is not set" in text
    assert "export TELECHO_API_KEY=tel_live_demo_key_0001" in text
    monkeypatch.setenv("TELECHO_API_KEY", "tel_live_demo_key_0001")
    check_secrets(s)


def test_a_provider_elsewhere_gets_no_simulator_hint(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K", raising=False)
    s = load_settings(write(tmp_path, PROV))
    with pytest.raises(ConfigError) as exc:
        check_secrets(s)
    assert "simulate" not in str(exc.value)


def test_wait_replicas_defaults_off_and_is_refused_in_cluster_mode(tmp_path: Path) -> None:
    assert load_settings(None).redis.wait_replicas == 0
    with pytest.raises(ConfigError, match=r"redis\.wait_replicas: not supported in cluster"):
        load_settings(write(tmp_path, '[redis]\nmode = "cluster"\nwait_replicas = 1\n'))
