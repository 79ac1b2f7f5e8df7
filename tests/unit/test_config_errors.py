"""Configuration errors speak the operator's language: dotted key, what is wrong, where from."""

from pathlib import Path

import pytest

from dispatcher.config.errors import Sources, describe_source
from dispatcher.config.settings import ConfigError, load_settings

PROV = """
[providers.default]
kind = "telecho"
base_url = "http://x/api"
api_key_env = "K"
"""

PYDANTIC_WORDS = ("Input should", "Extra inputs", "Value error", "Field required",
                  "validation error", "errors.pydantic.dev")


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


def error_of(path: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    return str(exc.value)


def test_unknown_key_in_file_suggests_the_field_and_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[tracking]\npolll_schedule_s = [5]\n")
    msg = error_of(path)
    assert "tracking.polll_schedule_s: unknown key 'polll_schedule_s' in [tracking] " \
           "(did you mean 'poll_schedule_s'?)" in msg
    assert path in msg


def test_unknown_top_level_table_suggests_the_section(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[trackin]\ntrack_calls = true\n"))
    assert "unknown key 'trackin'" in msg and "did you mean 'tracking'?" in msg


def test_unknown_key_from_env_names_the_variable_as_spelled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("dispatcher_retry__max_atempts", "3")
    msg = error_of(write(tmp_path, ""))
    assert "retry.max_atempts: unknown key 'max_atempts' in [retry]" in msg
    assert "did you mean 'max_attempts'?" in msg
    assert "environment variable dispatcher_retry__max_atempts" in msg


def test_unknown_provider_kind_lists_the_valid_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, PROV.replace("telecho", "twilio"))
    msg = error_of(path)
    assert "providers.default.kind: unknown provider kind 'twilio'" in msg
    assert "valid kinds: 'telecho', 'itellico'" in msg
    assert path in msg


def test_bad_value_from_env_names_variable_and_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_WORKER__CONCURRENCY", "0")
    msg = error_of(write(tmp_path, "[worker]\nconcurrency = 5\n"))
    assert "worker.concurrency: must be at least 1, got '0'" in msg
    assert "environment variable DISPATCHER_WORKER__CONCURRENCY" in msg
    assert "c.toml" not in msg


def test_bad_value_from_file_names_file_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[retry]\nmax_attempts = \"many\"\n")
    msg = error_of(path)
    assert f"retry.max_attempts: expected a whole number, got 'many'; from {path}" in msg


def test_list_items_are_named_by_index(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[tracking]\npoll_schedule_s = [1, \"a\"]\n"))
    assert "tracking.poll_schedule_s[1]: expected a number, got 'a'" in msg


def test_missing_required_key_names_the_table_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_PROVIDERS__EU__BASE_URL", "http://eu")
    msg = error_of(write(tmp_path, ""))
    assert "providers.eu.kind: required key is missing from [providers.eu]" in msg
    assert "DISPATCHER_PROVIDERS__EU__BASE_URL" in msg


def test_every_problem_is_listed_once_per_line(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[worker]\nconcurrency = 0\n[retry]\nmax_atempts = 3\n"
                         "log_level = 'loud'\n"))
    lines = msg.splitlines()[1:]
    assert len(lines) == 3, msg
    assert any("retry.log_level: unknown key" in ln for ln in lines), msg


def test_top_level_literal_lists_choices(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "log_level = 'loud'\n"))
    assert "log_level: expected one of 'debug', 'info', 'warning', 'error', got 'loud'" in msg


@pytest.mark.parametrize("text", [
    "[tracking]\npolll_schedule_s = [5]\n",
    PROV.replace("telecho", "twilio"),
    PROV + "limits = [\"60/min\"]\n",
    PROV.replace("http://x/api", "ftp://x"),
    "[worker]\nconcurrency = 0\nheartbeat_s = 'x'\n",
    "[worker]\nheartbeat_s = 100\n",
    "[redis]\nnamespace = 'has space'\n",
    "[providers.eu]\nbase_url = 'http://x'\n",
    "[providers]\neu = 1\n",
    "log_level = 'loud'\n",
])
def test_no_pydantic_wording_reaches_the_operator(tmp_path: Path, text: str) -> None:
    msg = error_of(write(tmp_path, text))
    assert not [w for w in PYDANTIC_WORDS if w in msg], msg


def test_secret_named_values_are_never_shown(tmp_path: Path) -> None:
    itellico = PROV.replace("telecho", "itellico")  # webhooks are an itellicoAI key
    msg = error_of(write(tmp_path, itellico + "webhook_secret_env = 987654321\n"
                         "api_key = \"tel_live_leakme\"\n"))
    assert "providers.default.webhook_secret_env: expected a string" in msg
    assert "unknown key 'api_key' in [providers.default]" in msg
    assert "987654321" not in msg and "leakme" not in msg


def test_long_values_are_not_echoed(tmp_path: Path) -> None:
    long_url = "ftp://" + "x" * 200
    msg = error_of(write(tmp_path, PROV.replace("http://x/api", long_url)))
    assert "providers.default.base_url: expected an http:// or https:// URL" in msg
    assert long_url not in msg


def test_url_passwords_in_values_are_hidden(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "[redis]\nsocket_timeout_s = 'redis://u:pw@h'\n"))
    assert "redis://u:***@h" in msg and "pw@" not in msg


def test_unparsable_env_json_names_the_variable_not_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_TRACKING__POLL_SCHEDULE_S", "5,10")
    path = write(tmp_path, "")
    msg = error_of(path)
    assert "tracking.poll_schedule_s: cannot parse '5,10' as JSON" in msg
    assert "environment variable DISPATCHER_TRACKING__POLL_SCHEDULE_S" in msg
    assert path not in msg


def test_post_load_checks_name_their_source(tmp_path: Path) -> None:
    path = write(tmp_path, PROV.replace('api_key_env = "K"', ""))
    msg = error_of(path)
    assert "providers.default: set api_key_env or api_key_file" in msg and path in msg


# -- describe_source is pure: precedence and case-insensitive env names -------------------
def src(toml: dict[str, object] | None = None, env: dict[str, str] | None = None,
        overrides: dict[str, object] | None = None) -> Sources:
    return Sources("/etc/d.toml", toml or {}, env or {}, overrides or {})


def test_source_default_when_nowhere() -> None:
    assert describe_source(("tracking", "poll_schedule_s"), src()) == "default value"


def test_source_file_when_only_in_toml() -> None:
    s = src(toml={"tracking": {"poll_schedule_s": [1]}})
    assert describe_source(("tracking", "poll_schedule_s"), s) == "from /etc/d.toml"


def test_source_env_beats_file_and_matches_case_insensitively() -> None:
    s = src(toml={"tracking": {"poll_schedule_s": [1]}},
            env={"Dispatcher_Tracking__Poll_Schedule_S": "[2]"})
    assert describe_source(("tracking", "poll_schedule_s"), s) == \
        "from environment variable Dispatcher_Tracking__Poll_Schedule_S"


def test_source_env_json_for_a_whole_table() -> None:
    s = src(env={"DISPATCHER_TRACKING": '{"poll_schedule_s": [2]}'})
    assert describe_source(("tracking", "poll_schedule_s", 0), s) == \
        "from environment variable DISPATCHER_TRACKING"


def test_source_of_a_table_lists_every_contributor() -> None:
    s = src(toml={"worker": {"heartbeat_s": 9}}, env={"DISPATCHER_WORKER__CLAIM_IDLE_S": "4"})
    assert describe_source(("worker",), s, table=True) == \
        "from environment variable DISPATCHER_WORKER__CLAIM_IDLE_S and /etc/d.toml"


def test_source_overrides_win() -> None:
    s = src(env={"DISPATCHER_WORKER__CONCURRENCY": "3"}, overrides={"worker": {"concurrency": 1}})
    assert describe_source(("worker", "concurrency"), s) == "from load_settings() arguments"
