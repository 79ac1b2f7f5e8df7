"""Token files: an optional ``label=NAME`` per line names the holder; files without labels
read as before; a bad label is refused with the line named."""

from __future__ import annotations

import pytest

from dispatcher.config.settings import ConfigError
from dispatcher.console.auth import parse_tokens

A, B = "a" * 16, "b" * 16


def test_a_label_names_the_token_and_grants_stay_as_written() -> None:
    [(_, g1), (_, g2), (_, g3)] = parse_tokens(
        f"{A} actions numbers label=alice\n{B} label=ops-1@night\n{'c' * 16} numbers # x\n")
    assert (g1.label, g1.actions, g1.numbers) == ("alice", True, True)
    assert (g2.label, g2.actions, g2.numbers) == ("ops-1@night", True, False)
    assert (g3.actions, g3.numbers) == (False, True)


def test_a_file_without_labels_reads_as_before() -> None:
    [(_, g)] = parse_tokens(f"{A} actions\n")
    assert len(g.label) == 8 and g.label != A[:8] and g.actions and not g.numbers


@pytest.mark.parametrize("line", [f"{A} label=", f"{A} label=a b", f"{A} label=<x>",
                                  f"{A} label=x label=y", f"{A} label={'x' * 41}"])
def test_a_bad_label_is_refused_naming_the_line(line: str) -> None:
    with pytest.raises(ConfigError, match="tokens:2: "):
        parse_tokens(f"# header\n{line}\n", "tokens")
