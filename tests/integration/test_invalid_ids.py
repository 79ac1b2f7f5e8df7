"""A refused payload is answered by its id when the id is plain, and names its stream entry."""

from __future__ import annotations

from dispatcher.client import Client
from dispatcher.dev.localredis import LocalRedis
from dispatcher.simulator import RunningSimulator
from dispatcher.store import Store
from dispatcher.store.protocol import Place
from dispatcher.store.types import Placement
from tests.conftest import RunningWorker, make_settings, provider_cfg, start_worker, wait_results

GOOD = '"to": "+14155550100"'
BAD = {
    "dup": '{"id": "dup", ' + GOOD + ', "to": "+14155550101"}',
    "nan": '{"id": "nan", ' + GOOD + ', "metadata": {"x": NaN}}',
    "big": '{"id": "big", ' + GOOD + ', "metadata": {"x": 1e400}}',
    "sur": '{"id": "sur", ' + GOOD + ', "metadata": {"x": "\\udc00"}}',
    "deep": '{"id": "deep", ' + GOOD + ', "metadata": ' + '{"a":' * 40 + "1" + "}" * 41,
    "huge": '{"id": "huge", ' + GOOD + ', "metadata": {"x": "' + "y" * 1_000_000 + '"}}',
}


async def test_refused_payloads_are_answered_by_their_id_and_entry(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    start_worker(make_settings(redis_server.url, ns, {
        "default": provider_cfg("telecho", sim.url)}, tracking={"track_calls": False}), workers)
    entries = {}
    for name, raw in [*BAD.items(), ("none", "{not json")]:
        entries[name] = str(await store.r.xadd(store.k.jobs, {"job": raw}))
    results = await wait_results(store, len(entries))
    by_entry = {r["entry_id"]: r for r in results}
    assert {r["outcome"] for r in results} == {"invalid"}
    assert {name: by_entry[e]["job_id"] for name, e in entries.items()} == {
        **{name: name for name in BAD}, "none": None}
    assert by_entry[entries["huge"]]["error_message"].startswith("job: payload of at least")
    # kept for its id's lifetime: an oversized payload is not kept whole
    assert len(await store.r.hget(store.k.job("huge"), "raw") or "") <= 65537
    async with Client(redis_server.url, namespace=ns) as client:  # a producer waiting on its id
        assert (await client.wait("nan", timeout=5))["entry_id"] == entries["nan"]


async def test_an_invalid_job_finished_after_a_crash_still_names_its_entry(
        redis_server: LocalRedis, ns: str, store: Store, sim: RunningSimulator,
        workers: list[RunningWorker]) -> None:
    """A worker placed the job and died before writing its result: another writes it from
    the stored payload, with the same id and entry."""
    raw = BAD["nan"]
    entry = str(await store.r.xadd(store.k.jobs, {"job": raw}))
    await store.read("dead-worker", 10, 10)
    await store.ingest([Placement(
        entry_id=entry, job_id="nan", raw=raw, provider="default", priority="normal",
        campaign="", to="", dnc_key="", expires_ms=0, place=Place.FINISH, fin="invalid")])
    await store.r.zadd(store.k.finishq, {"nan": 0})  # the dead worker's lease is over
    start_worker(make_settings(redis_server.url, ns, {
        "default": provider_cfg("telecho", sim.url)}, tracking={"track_calls": False}), workers)
    [res] = await wait_results(store, 1)
    assert (res["job_id"], res["outcome"], res["entry_id"]) == ("nan", "invalid", entry)
    assert res["error_message"] == "job: NaN is not a JSON number"
