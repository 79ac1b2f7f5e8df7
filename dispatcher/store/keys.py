"""Every Redis key name, in one place (the Lua scripts build the same names from the prefix).

All keys of a namespace share the hash tag ``{ns}``, so every script touches one Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"
PRIORITIES = ("high", "normal", "low")
NO_CAMPAIGN = "~"


@dataclass(frozen=True)
class Keys:
    ns: str

    @property
    def prefix(self) -> str:
        return "{" + self.ns + "}:"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # streams and queues
    @property
    def jobs(self) -> str:
        return self._k("jobs")

    @property
    def results(self) -> str:
        return self._k("results")

    def pushed(self, batch: str) -> str:
        """A pushed batch's token (PUSH), so sending the batch again adds nothing."""
        return self._k("pushed", batch)

    @property
    def delayed(self) -> str:
        return self._k("delayed")

    @property
    def deadlines(self) -> str:
        return self._k("deadlines")

    @property
    def finishq(self) -> str:
        return self._k("finishq")

    def tracking(self, provider: str) -> str:
        """A provider's live calls, by their next visit (one set per provider, so polls can
        go before new dials of the same provider)."""
        return self._k("tracking", provider)

    def ready(self, provider: str, priority: str, campaign: str | None) -> str:
        return self._k("ready", provider, priority, campaign or NO_CAMPAIGN)

    def ready_campaigns(self, provider: str, priority: str) -> str:
        return self._k("rq", provider, priority)

    @property
    def ready_campaigns_prefix(self) -> str:
        return self._k("rq:")

    def parked(self, provider: str) -> str:
        return self._k("parked", provider)

    def recon(self, provider: str) -> str:
        """A dead worker's dials, by when their look-up is due (grants move them first)."""
        return self._k("recon", provider)

    @property
    def unknown_providers(self) -> str:
        """Provider names jobs asked for that no worker had configured (their jobs park)."""
        return self._k("unknown_providers")

    # jobs
    @property
    def job_prefix(self) -> str:
        return self._k("job:")

    def job(self, job_id: str) -> str:
        return self._k("job", job_id)

    def timeline(self, job_id: str) -> str:
        return self._k("tl", job_id)

    def invalid_marker(self, entry_id: str) -> str:
        return self._k("invalid", entry_id)

    @property
    def dormant(self) -> str:
        """Jobs due long after they arrived, one packed field each (lua/lib/dormant.lua)."""
        return self._k("dormant")

    @property
    def orphans(self) -> str:
        return self._k("orphans")

    def call(self, call_id: str) -> str:
        return self._k("call", call_id)

    def call_end(self, call_id: str) -> str:
        return self._k("callend", call_id)

    def event(self, event_id: str) -> str:
        return self._k("event", event_id)

    # workers
    @property
    def consumers(self) -> str:
        return self._k("consumers")

    def held(self, consumer: str) -> str:
        return self._k("held", consumer)

    def visiting(self, consumer: str) -> str:
        """The live calls a worker is polling, as of its last heartbeat (HEARTBEAT)."""
        return self._k("visiting", consumer)

    def worker(self, consumer: str) -> str:
        """What a worker says of itself (host, pid, version, started, concurrency) and its
        dials in flight and calls polled at its last heartbeat (HEARTBEAT)."""
        return self._k("worker", consumer)

    @property
    def audit(self) -> str:
        """Operator actions, console and CLI (bounded stream, store/audit.py)."""
        return self._k("audit")

    @property
    def reaped(self) -> str:
        """Workers taken over as dead, and what was taken over (bounded stream, HEARTBEAT)."""
        return self._k("reaped")

    # providers
    def rate_log(self, provider: str) -> str:
        return self._k("rl", provider)

    def margin(self, provider: str) -> str:
        """The send margin each worker measured for a provider, by consumer (HEARTBEAT)."""
        return self._k("margin", provider)

    def reply(self, rid: str) -> str:
        """A granting call's reply, kept a few seconds for a replay (lua/lib/core.lua)."""
        return self._k("reply", rid)

    @property
    def reply_prefix(self) -> str:
        return self._k("reply:")

    def rate_hint(self, provider: str, window_ms: int) -> str:
        return self._k("hint", provider, str(window_ms))

    def cooldown(self, provider: str) -> str:
        return self._k("cooldown", provider)

    def halt(self, provider: str) -> str:
        return self._k("halt", provider)

    def slots(self, provider: str) -> str:
        return self._k("slots", provider)

    def slot_cap(self, provider: str) -> str:
        return self._k("slotcap", provider)

    def limits(self, provider: str) -> str:
        """A provider's limits set at runtime (LIMITS), replacing the file's in every grant."""
        return self._k("limits", provider)

    # policy and campaigns
    @property
    def dnc(self) -> str:
        return self._k("dnc")

    def number_log(self, number_key: str) -> str:
        return self._k("num", number_key)

    def consent(self, number_key: str) -> str:
        """A number's consent ledger: consents and revocations, oldest first (CONSENT); after
        ``forget`` only its revocations, under the SHA-256 (UNCONSENT)."""
        return self._k("consent", number_key)

    @property
    def registries(self) -> str:
        """Do-not-call registries: name -> as-of (epoch ms), name:count, name:loaded."""
        return self._k("registries")

    def subject_log(self, subject: str) -> str:
        """Call starts on one subject (per-subject caps), like ``number_log``."""
        return self._k("subj", subject)

    def caller_id_log(self, provider: str, caller_id: str) -> str:
        """A caller ID's call starts (its caps and its use over the last day)."""
        return self._k("cid", provider, caller_id)

    def spend(self, campaign: str) -> str:
        """A campaign's billed spend per budget day (millionths; BILL)."""
        return self._k("spend", campaign)

    def budget_holds(self, campaign: str) -> str:
        """A campaign's live calls' worst cases, held until billed (lua/lib/budget.lua)."""
        return self._k("bhold", campaign)

    def billed(self, call_id: str) -> str:
        """A call already billed (BILL runs once per call)."""
        return self._k("billed", call_id)

    def caller_id_recent(self, provider: str, caller_id: str) -> str:
        """A caller ID's last calls, answered or not (its answer rate; CIDSTAT)."""
        return self._k("cidans", provider, caller_id)

    def caller_id_stats(self, provider: str) -> str:
        """Calls and answers per caller ID of a provider's pool (``<id>:calls`` ...)."""
        return self._k("cidstat", provider)

    def caller_id_flags(self, provider: str) -> str:
        """Caller IDs whose answer rate fell below flag_answer_rate, with since when."""
        return self._k("cidflag", provider)

    def caller_id_rested(self, provider: str) -> str:
        """Caller IDs taken out of the pool until an operator restores them."""
        return self._k("cidrest", provider)

    @property
    def counts(self) -> str:
        return self._k("counts")

    @property
    def campaigns(self) -> str:
        return self._k("campaigns")

    def campaign(self, name: str) -> str:
        return self._k("camp", name)

    def campaign_slots(self, name: str) -> str:
        return self._k("cslots", name)

    def campaign_waiting(self, name: str) -> str:
        return self._k("cwait", name)

    def pace(self, name: str | None) -> str:
        return self._k("pace", name or "*")

    @property
    def paused(self) -> str:
        return self._k("paused")

    @property
    def cancelled_campaigns(self) -> str:
        return self._k("ccancel")

    # history (store/history.py, lua/lib/history.lua): scope "*" is the whole namespace
    def history_minutes(self, scope: str, metric: str, hour: int) -> str:
        """One metric's counts per minute of one hour (epoch hours), kept 7 days."""
        return self._k("histm", scope, metric, str(hour))

    def history_hours(self, scope: str, metric: str, day: int) -> str:
        """One metric's counts per hour of one day (epoch days, UTC), kept 7 days."""
        return self._k("histh", scope, metric, str(day))

    # the jobs list (lua/lib/core.lua)
    def job_index(self, state: str, campaign: str | None = None) -> str:
        """Ids in one state (and campaign), scored by when they entered it."""
        return self._k("jx", state, campaign) if campaign else self._k("jx", state)

    def outcome_index(self, outcome: str) -> str:
        """Done ids with one outcome, scored by when their result was written."""
        return self._k("jo", outcome)

    @property
    def index_built(self) -> str:
        """Set (to when, ms) once the index holds every job: by a fresh namespace's first
        intake, or by ``dispatcher reindex --apply`` after an upgrade (lua/reindex.lua)."""
        return self._k("ixbuilt")

    # the operator console
    def console_session(self, digest: str) -> str:
        """A console log-in, by the digest of its cookie (the cookie itself is not kept)."""
        return self._k("csess", digest)
