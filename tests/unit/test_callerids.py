"""Caller-ID pools: the configuration refuses what cannot work, naming the key; the prefixes
the grant script compares; the reference choice."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dispatcher.core.callerids import CallerIdPool, area_prefix, choose, region_prefixes
from dispatcher.core.classify import Action, ProviderError
from dispatcher.core.classify import classify as classify_with
from dispatcher.providers.itellico.config import ItellicoConfig
from dispatcher.providers.itellico.errors import classify as itellico_table
from dispatcher.providers.telecho.config import TelEchoConfig

TEL = {"kind": "telecho", "base_url": "http://x", "api_key_env": "K"}
ITL = {"kind": "itellico", "base_url": "http://x", "api_key_env": "K", "agent_id": "a"}


@pytest.mark.parametrize(("pool", "message"), [
    ({"numbers": [{"id": "tel_pn_a", "number": "2125550100"}]}, "expected an E.164 number"),
    ({"numbers": [{"id": "tel_pn_a", "number": "+1212"}]}, "expected an E.164 number"),
    ({"numbers": [{"id": "tel_pn_a", "number": "+12125550100", "caps": ["20/dya"]}]},
     "20/dya"),
    ({"numbers": []}, "at least 1"),
    ({"numbers": [{"id": "tel_pn_a", "number": "+12125550100"},
                  {"id": "tel_pn_a", "number": "+12125550101"}]}, "tel_pn_a given twice"),
    ({"selection": "nearest", "numbers": [{"id": "tel_pn_a", "number": "+12125550100"}]},
     "'local' or 'rotate'"),
    ({"numbers": [{"number": "+12125550100"}]}, "needs its id"),
])
def test_a_bad_pool_is_refused_naming_what_is_wrong(pool: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        TelEchoConfig(**TEL, caller_ids=pool)
    assert message in str(exc.value) and "caller_ids" in str(exc.value)


def test_itellico_sends_the_number_itself() -> None:
    with pytest.raises(ValidationError, match="leave id out"):
        ItellicoConfig(**ITL, caller_ids={"numbers": [{"id": "x", "number": "+12125550100"}]})
    cfg = ItellicoConfig(**ITL, caller_ids={"numbers": [{"number": "+12125550100"}]})
    assert cfg.caller_ids is not None and cfg.caller_ids.numbers[0].key == "+12125550100"


def test_prefixes_are_area_codes_and_regions() -> None:
    assert area_prefix("+12125550100") == "+1212"
    assert area_prefix("+4319876543") == "+431"      # Vienna
    assert area_prefix("+436641234567") == ""        # a mobile number has no area
    assert "+1347" in region_prefixes("US-NY") and "+1415" not in region_prefixes("US-NY")
    assert region_prefixes("AT") == ["+43"]


def test_rotate_takes_the_least_used_and_skips_capped_ones() -> None:
    pool = CallerIdPool.model_validate({"selection": "rotate", "numbers": [
        {"number": "+12125550100"}, {"number": "+14155550101"}, {"number": "+13055550102"}]})
    args = pool.grant_args()
    used = {"+12125550100": 3, "+14155550101": 1, "+13055550102": 1}
    assert choose(args, "+12125551234", used) == "+14155550101"
    assert choose(args, "+12125551234", used, frozenset({"+14155550101"})) == "+13055550102"
    assert choose(args, "+1212", used, frozenset(used)) is None


def test_itellico_422_on_a_configured_caller_id_halts_and_on_a_jobs_own_rejects() -> None:
    err = ProviderError(422, "validation_error", fields=("from_number",))
    assert classify_with(itellico_table, err, frozenset(), on_create=True) is Action.HALT
    assert classify_with(itellico_table, err, frozenset({"from"}),
                         on_create=True) is Action.REJECT


def test_metric_labels_never_hold_a_whole_number_and_never_name_two_caller_ids() -> None:
    pool = CallerIdPool.model_validate({"numbers": [
        {"number": "+12125550100"}, {"number": "+14155550101", "label": "sfo"},
        {"id": "tel_pn_mia", "number": "+13055550100"}]})
    assert [n.metric_label for n in pool.numbers] == ["…0100", "sfo", "tel_pn_mia"]
    with pytest.raises(ValidationError, match="give them a label each"):
        CallerIdPool.model_validate({"numbers": [{"number": "+12125550100"},
                                                 {"number": "+14155550100"}]})

