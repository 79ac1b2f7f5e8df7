"""Call starts per second from ONE worker process against a zero-latency local provider.

Side by side in one run: the raw loop (XREADGROUP a batch, POST each, XACK) and the
dispatcher with pacing on (a limit far above the rate, so the Lua decision runs every time),
dedupe, atomic results and tracking off.

    python benchmarks/throughput.py --jobs 20000     # → benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis
import redis.asyncio as aioredis

from dispatcher.localredis import free_port, start_redis

HERE = Path(__file__).resolve().parent
BODY = b'{"call_id":"tel_call_0","status":"initiated","destination_number":"+1"}'
RESPONSE = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class ZeroLatency(asyncio.Protocol):
    """Answers every request with 201 at once; parses just enough of HTTP/1.1 keep-alive."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                                  else None].strip())
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            self.t.write(RESPONSE)  # type: ignore[attr-defined]


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(ZeroLatency, "127.0.0.1", port)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def fill(url: str, stream: str, n: int, group: str = "workers") -> None:
    r = redis.Redis.from_url(url)
    r.delete(stream)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"job": json.dumps({"id": f"t{i}", "to": f"+1415{5550000 + i:07d}"})})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    r.xgroup_create(stream, group, id="0")


async def raw_loop(url: str, provider: str, n: int, concurrency: int) -> float:
    r = aioredis.Redis.from_url(url, decode_responses=True)
    stream = "raw:jobs"
    done = 0
    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(eid: str, job: str) -> None:
            d = json.loads(job)
            async with s.post(provider, json={"phone_number_id": "p",
                                              "destination_number": d["to"]}) as resp:
                await resp.read()
            await r.xack(stream, "workers", eid)

        while done < n:
            resp = await r.xreadgroup("workers", "c", {stream: ">"}, count=concurrency,
                                      block=100)
            batch = [(eid, f["job"]) for _, es in resp or [] for eid, f in es]
            await asyncio.gather(*(one(e, j) for e, j in batch))
            done += len(batch)
    await r.aclose()
    return done / (time.perf_counter() - start)


def dispatcher_rate(url: str, port: int, n: int, concurrency: int, tmp: Path) -> float:
    cfg = tmp / "d.toml"
    cfg.write_text(f"""log_level = "warning"
log_format = "json"
[redis]
url = "{url}"
namespace = "tp"
[worker]
concurrency = {concurrency}
http_port = 0
[tracking]
track_calls = false
[policy]
calling_hours = ["always"]
[providers.default]
kind = "telecho"
base_url = "http://127.0.0.1:{port}"
api_key_env = "TP_KEY"
phone_number_id = "tel_pn_main"
limits = ["100000000/minute"]
""")
    r = redis.Redis.from_url(url, decode_responses=True)
    env = {**os.environ, "TP_KEY": "tel_live_x"}
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher", "run", "--config", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL)
    try:
        while r.xlen("{tp}:results") < 100:  # warm-up
            time.sleep(0.01)
        base, start = r.xlen("{tp}:results"), time.perf_counter()
        while r.xlen("{tp}:results") < n:
            time.sleep(0.05)
        return (r.xlen("{tp}:results") - base) / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--out", default=str(HERE / "results" / "throughput.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tp-"))
    rs = start_redis(workdir=str(tmp))
    port = free_port()
    import multiprocessing
    prov = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    prov.start()
    time.sleep(0.5)
    try:
        fill(rs.url, "raw:jobs", args.jobs)
        raw = asyncio.run(raw_loop(rs.url, f"http://127.0.0.1:{port}/calls/outbound",
                                   args.jobs, args.concurrency))
        fill(rs.url, "{tp}:jobs", args.jobs)
        disp = dispatcher_rate(rs.url, port, args.jobs, args.concurrency, tmp)
    finally:
        prov.terminate()
        rs.stop()
    report = {"jobs": args.jobs, "concurrency": args.concurrency,
              "raw_loop_per_s": round(raw), "dispatcher_per_s": round(disp),
              "ratio": round(disp / raw, 3)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
