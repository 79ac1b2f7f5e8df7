import os
from pathlib import Path

import pytest

from dispatcher.config import ConfigError, load_settings, read_secret


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
