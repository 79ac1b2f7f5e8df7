"""The demo's sample data: a simulator with realistic limits and a few faults, the workers'
configuration, and jobs that show every path (invalid, faulty, do-not-call, a busy line that
is redialled, people whose calling window is closed right now, a job without the consent its
campaign requires, a number that opts out during a call while a redial is due).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dispatcher.simulator.config import AccountSpec, CallSpec, FaultSpec, KeySpec, SimConfig

TEL_KEY = "tel_live_demo_key_0001"
ITL_KEY = "sk-demo-itellico-0001"
AGENT = "7f3c0c1e-0000-4000-8000-00000000a001"
WEBHOOK_SECRET = "whsec_demo"
ALWAYS_500 = "+12125550500"
FLAKY = "+12125550503"
DNC_NUMBER = "+12125550404"     # on the do-not-call list: blocked, never dialled
BUSY = "+12125550486"           # always busy: redialled once after a short delay
NIGHT_CAMPAIGN = "reminders"    # calls only 08:00-21:00 in the recipient's time zone
REDIAL_AFTER = "4s"
CONSENT_CAMPAIGN = "spring"     # require_consent = true; the demo records no consent
NO_CONSENT_NUMBER = "+12125550702"
OPTOUT_CAMPAIGN = "followup"    # a voicemail is called again after REDIAL_AFTER
OPTOUT_NUMBER = "+12125550487"  # answered by voicemail; opts out while its call is live
OPTOUT_TOKEN = "demo-optout-token"
FLORIDA_CAMPAIGN = "florida"    # jurisdiction "us"; explained at 20:30 Florida time, no job
FLORIDA_NUMBER = "+13055550123"  # Miami: area code 305 gives the region US-FL


def night_zone() -> str:
    """A fixed-offset zone where it is about 03:00 now: its calling window is closed."""
    now = dt.datetime.now(dt.UTC)
    hours = (3 - now.hour) % 24
    hours = hours - 24 if hours > 14 else hours
    return "Etc/GMT" if hours == 0 else (f"Etc/GMT-{hours}" if hours > 0 else f"Etc/GMT+{-hours}")


def sim_config(webhook_port: int) -> SimConfig:
    return SimConfig(
        seed=7,
        keys={TEL_KEY: KeySpec(dialect="telecho", limits=["20/second", "900/minute"]),
              ITL_KEY: KeySpec(dialect="itellico", limits=["10/second", "450/minute"])},
        accounts={"acme": AccountSpec(
            max_concurrent_calls=60, webhook_secret=WEBHOOK_SECRET,
            webhook_url=f"http://127.0.0.1:{webhook_port}/webhooks/eu")},
        calls=CallSpec(ring_s=(0.5, 2.0), talk_s=(1.0, 6.0), error_reason_p=0.02,
                       outcome_by_number={BUSY: "user_busy", OPTOUT_NUMBER: "machine"}),
        faults=FaultSpec(probability={"http_503": 0.02, "http_500": 0.01},
                         by_number={ALWAYS_500: "http_500", FLAKY: "http_503*2"},
                         webhook_duplicates=1),
    )


def config_toml(redis_url: str, ns: str, sim_url: str, port: int, token_file: str) -> str:
    return f"""
log_format = "json"
[redis]
url = "{redis_url}"
namespace = "{ns}"
[worker]
concurrency = 40
http_port = {port}
http_share_port = true  # one webhook URL for every worker process
claim_idle_s = 10
heartbeat_s = 1
shutdown_grace_s = 5
[retry]
base_delay_s = 0.5
max_delay_s = 4.0
[tracking]
poll_schedule_s = [1.5, 2.0, 3.0]
webhook_poll_s = 5.0
{_policy_toml(token_file)}
[providers.default]
kind = "telecho"
base_url = "{sim_url}/api/v1/public"
api_key_env = "DEMO_TELECHO_KEY"
phone_number_id = "tel_pn_main"
limits = ["20/second", "900/minute"]
max_concurrent_calls = 40
[providers.eu]
kind = "itellico"
base_url = "{sim_url}"
api_key_env = "DEMO_ITELLICO_KEY"
agent_id = "{AGENT}"
from_number = "+43720123456"
limits = ["10/second", "450/minute"]
max_concurrent_calls = 20
webhook_secret_env = "DEMO_WEBHOOK_SECRET"
"""


def _policy_toml(token_file: str) -> str:
    return f"""[policy]
calling_hours = ["always"]
[policy.redial]
user_busy = {{ after = "{REDIAL_AFTER}", max = 1 }}
[campaigns.{NIGHT_CAMPAIGN}]
calling_hours = ["mon-sun 08:00-21:00"]
[campaigns.{CONSENT_CAMPAIGN}]
require_consent = true
[campaigns.{OPTOUT_CAMPAIGN}]
redial = {{ machine = {{ after = "{REDIAL_AFTER}", max = 1 }} }}
[campaigns.{FLORIDA_CAMPAIGN}]
jurisdiction = "us"
[optout]
token_file = "{token_file}"
"""


def sample_jobs(count: int) -> tuple[list[dict[str, Any]], int, list[str]]:
    """n good jobs plus a few bad, faulty, duplicate and policy ones; returns the jobs, how
    many results to expect, and the ids that wait for their calling window instead."""
    # first, so that its call is live early on
    jobs: list[dict[str, Any]] = [{"id": "demo-optout", "to": OPTOUT_NUMBER,
                                   "campaign": OPTOUT_CAMPAIGN}]
    for index in range(count):
        job: dict[str, Any] = {"id": f"demo-{index:04d}", "to": f"+1415555{index:04d}",
                               "metadata": {"lead": index}}
        if index % 3 == 2:
            job["provider"] = "eu"
        jobs.append(job)
    jobs += [
        {"id": "demo-bad-number", "to": "0800 123"},
        {"id": "demo-both-targets", "to": "+14155550999", "agent_id": "tel_agt_sales",
         "workflow_id": "tel_wf_survey"},
        {"id": "demo-unknown-agent", "to": "+14155550998", "agent_id": "tel_agt_missing"},
        {"id": "demo-always-500", "to": ALWAYS_500, "max_attempts": 3},
        {"id": "demo-flaky", "to": FLAKY},
        {"id": "demo-0000", "to": "+14155550000"},  # duplicate id: one call, one result
        {"id": "demo-0001", "to": "+14155550001"},
        {"id": "demo-dnc", "to": DNC_NUMBER},
        {"id": "demo-busy", "to": BUSY},
        {"id": "demo-no-consent", "to": NO_CONSENT_NUMBER, "campaign": CONSENT_CAMPAIGN},
    ]
    zone = night_zone()
    night = [f"demo-night-{i}" for i in range(3)]
    jobs += [{"id": job_id, "to": f"+1212555072{i}", "campaign": NIGHT_CAMPAIGN,
              "timezone": zone} for i, job_id in enumerate(night)]
    return jobs, count + 9, night


