from dispatcher.logs import mask_number, scrub


def test_mask_keeps_last_three_digits() -> None:
    assert mask_number("+14155550123") == "+********123"


def test_scrub_masks_numbers_everywhere_and_drops_secrets() -> None:
    event = {"event": "call.dialing", "to": "+14155550123", "api_key": "tel_live_abc",
             "message": "dial +43720123456 failed with key tel_live_secretvalue",
             "nested": {"authorization": "Bearer x", "numbers": ["+14155550999"]},
             "job_id": "job-2026-11-22-000123"}
    out = scrub(None, "info", dict(event))
    assert out["to"] == "+********123"
    assert out["api_key"] == "***"
    assert "+43720123456" not in out["message"] and "456" in out["message"]
    assert "secretvalue" not in out["message"]
    assert out["nested"]["authorization"] == "***"
    assert out["nested"]["numbers"] == ["+********999"]
    assert out["job_id"] == event["job_id"]
